//! The system's processes, started and stopped by the launcher, never outliving it.
//!
//! Each process runs under a small `sh` supervisor holding the write end of a pipe from
//! the launcher as its standard input: when the launcher exits — cleanly, on Ctrl-C, or
//! killed — the pipe closes and the supervisor SIGKILLs its process. A clean stop sends
//! SIGTERM first and waits; every service shuts down gracefully on it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long a process may take to stop on SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// Runs `"$0" "$@"` with /dev/null as input, records its pid, and kills it when this
/// shell's standard input (a pipe from the launcher) closes.
const SUPERVISOR: &str = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
child=$!
echo "$child" > "$STOCKPILE_PID_FILE"
( read -r _ <&3; kill -KILL "$child" 2>/dev/null ) </dev/null &
exec 3<&-
wait "$child"
"#;

/// One supervised process.
pub struct Process {
    pub name: String,
    pid: u32,
    supervisor: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program` with `args` and `env`, output appended to `<logs>/<name>.log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        logs: &Path,
    ) -> anyhow::Result<Process> {
        anyhow::ensure!(
            program.is_file(),
            "{} is not built (make run builds it)",
            program.display()
        );
        fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
        let log = logs.join(format!("{name}.log"));
        let pid_file = logs.join(format!("{name}.pid"));
        let _ = fs::remove_file(&pid_file);
        let output = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("STOCKPILE_PID_FILE", &pid_file)
            .stdin(Stdio::piped())
            .stdout(output.try_clone().context("sharing the log file")?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            if let Some(pid) = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse().ok())
            {
                break pid;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{name} did not start (no pid in {})",
                pid_file.display()
            );
            std::thread::sleep(POLL);
        };
        Ok(Process {
            name: name.to_string(),
            pid,
            supervisor,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process is still there.
    pub fn is_running(&mut self) -> bool {
        matches!(self.supervisor.try_wait(), Ok(None)) && pid_alive(self.pid)
    }

    /// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL. Returns whether it stopped
    /// by itself.
    pub fn stop(&mut self) -> bool {
        signal(self.pid, "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while pid_alive(self.pid) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let clean = !pid_alive(self.pid);
        if !clean {
            signal(self.pid, "KILL");
        }
        // Closing the pipe ends the supervisor's watcher; reap the supervisor.
        if let Some(mut stdin) = self.supervisor.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.supervisor.wait();
        clean
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if pid_alive(self.pid) {
            signal(self.pid, "KILL");
        }
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

/// Whether a process with this pid exists (and is not a zombie we could reap).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; `Z` is a zombie waiting for its parent.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
