//! `stockpile-run` (what `make run` starts) as a user runs it: the whole system comes up,
//! the demo is seeded through the services' APIs and verified, the dashboard's API
//! answers with years of history, and Ctrl-C — or the end of a scripted run — leaves no
//! process behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::nats::{deploy_dir, nats_server_binary};
use crate::support::system::{binary, http, http_with_headers};

/// Entries of the demo in these tests (the real `make run` seeds more).
const DEMO_ENTRIES: &str = "1500";
/// How long a whole launch may take in a debug build.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(300);

fn launcher(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(binary("stockpile-run"));
    command
        .args([
            "--dir",
            dir.to_str().expect("utf-8 path"),
            "--entries",
            DEMO_ENTRIES,
            "--dataset",
            "us",
            "--dashboard",
            "127.0.0.1:0",
            "--nats-server",
            nats_server_binary().to_str().expect("utf-8 path"),
            "--deploy",
            deploy_dir().to_str().expect("utf-8 path"),
        ])
        .args(extra)
        .stdin(Stdio::null());
    command
}

/// The pids the launcher's supervisors recorded, by process name.
fn recorded_pids(dir: &Path) -> Vec<(String, u32)> {
    let mut pids = Vec::new();
    for item in fs::read_dir(dir.join("logs")).expect("logs") {
        let path = item.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "pid") {
            let pid = fs::read_to_string(&path)
                .expect("pid file")
                .trim()
                .parse()
                .expect("a pid");
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            pids.push((name, pid));
        }
    }
    pids.sort();
    pids
}

/// N of the launcher's "Posted N events" line.
fn posted(output: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.strip_prefix("Posted "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no \"Posted N events\" line:\n{output}"))
}

/// A launcher running in its own process group, interrupted and then killed with its
/// whole group when dropped — also when an assertion fails halfway through the test.
struct Group(std::process::Child);

impl Group {
    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), "--", &format!("-{}", self.0.id())])
            .status();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.signal("INT");
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            self.signal("KILL");
            let _ = self.0.wait();
        }
    }
}

fn alive(pid: u32) -> bool {
    stockpile_launcher::processes::pid_alive(pid)
}

fn assert_nothing_left(dir: &Path) {
    let pids = recorded_pids(dir);
    let names: Vec<&str> = pids.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "demil",
            "depot",
            "export-control",
            "nats-server",
            "projector",
            "sequencer"
        ],
        "every process of the system was started"
    );
    for (name, pid) in pids {
        assert!(!alive(pid), "{name} (pid {pid}) is still running");
    }
}

#[test]
fn a_scripted_run_brings_the_system_up_verifies_and_leaves_nothing_behind() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join(".run");
    // The relative run directory `make run` gives.
    let output = launcher(Path::new(".run"), &["--exit-after-verify"])
        .current_dir(work.path())
        .output()
        .expect("run stockpile-run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("findings       none: the ledger verifies"),
        "{stdout}"
    );
    // Every scenario event a service can sign (one is signed by a key no service holds).
    let events = posted(&stdout);
    assert!(events >= 1_400, "{stdout}");
    assert!(
        stdout.contains("Dashboard     http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Stopped; nothing left running."),
        "{stdout}"
    );
    // One token per service, readable by its owner only, and where to find them said.
    assert!(
        stdout.contains(&format!("API tokens    {}", dir.join("tokens").display())),
        "{stdout}"
    );
    let mut tokens = Vec::new();
    for service in ["depot", "demil", "export-control"] {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("tokens").join(format!("{service}.token"));
        let mode = fs::metadata(&path)
            .expect("a token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        let token = fs::read_to_string(&path).expect("token").trim().to_string();
        assert!(token.len() >= 32, "{service}: {token:?}");
        tokens.push(token);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "each service has its own token");
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("verify.json")).expect("report"))
            .expect("JSON report");
    assert_eq!(report["entries"], events, "every posted event is one entry");
    assert_nothing_left(&dir);
}

#[test]
fn ctrl_c_stops_a_running_system_after_serving_years_of_history() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("run");
    let log = work.path().join("launcher.log");
    let out = fs::File::create(&log).expect("log");
    // Its own process group, as a shell gives a foreground job: Ctrl-C reaches them all.
    let mut group = {
        use std::os::unix::process::CommandExt as _;
        Group(
            launcher(&dir, &[])
                .process_group(0)
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .spawn()
                .expect("start stockpile-run"),
        )
    };
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    let text = |log: &PathBuf| fs::read_to_string(log).unwrap_or_default();
    while !text(&log).contains("Press Ctrl-C") {
        assert!(
            Instant::now() < deadline && group.0.try_wait().expect("wait").is_none(),
            "the system did not come up:\n{}",
            text(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let addr = text(&log)
        .lines()
        .find_map(|line| line.strip_prefix("Dashboard     http://"))
        .map(|rest| rest.trim_end_matches('/').to_string())
        .expect("the dashboard address");

    // The projector serves the seeded ledger, and its history spans years: the first
    // entry was recorded years before the last (the demo records events at their time).
    let (status, body) = http(&addr, "GET", "/v1/summary", None);
    assert_eq!(status, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        summary["as_of"]["entries"],
        posted(&text(&log)),
        "{summary}"
    );
    let (_, first) = http(&addr, "GET", "/v1/stockpile?as_of_index=0", None);
    let first: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    let year = |ms: &serde_json::Value| {
        stockpile_core::time::TimestampMs(ms.as_i64().expect("a time"))
            .date()
            .year()
    };
    let (first_year, last_year) = (
        year(&first["as_of"]["recorded_at"]),
        year(&summary["as_of"]["recorded_at"]),
    );
    assert!(last_year >= first_year + 5, "{first_year} → {last_year}");
    let report_year = first_year + 2;
    let (status, report) = http(
        &addr,
        "GET",
        &format!("/v1/reports/article7/{report_year}"),
        None,
    );
    assert_eq!(status, 200, "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON");
    assert_eq!(report["cover"]["year"], report_year);

    // The depot's API answers its token only.
    let depot = text(&log)
        .lines()
        .find_map(|line| line.strip_prefix("depot"))
        .and_then(|rest| rest.trim().strip_prefix("http://"))
        .and_then(|rest| rest.strip_suffix("/v1/events"))
        .expect("the depot's address")
        .to_string();
    let (status, body) = http(&depot, "GET", "/v1/status", None);
    assert_eq!(status, 401, "{body}");
    let token = fs::read_to_string(dir.join("tokens").join("depot.token")).expect("token");
    let bearer = format!("Bearer {}", token.trim());
    let answer = http_with_headers(
        &depot,
        "GET",
        "/v1/status",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());

    // Ctrl-C: SIGINT to the whole foreground group.
    group.signal("INT");
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = group.0.try_wait().expect("wait") {
            break status.code();
        }
        assert!(Instant::now() < deadline, "still running:\n{}", text(&log));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0), "{}", text(&log));
    assert!(
        text(&log).contains("Stopped; nothing left running."),
        "{}",
        text(&log)
    );
    assert_nothing_left(&dir);
}
