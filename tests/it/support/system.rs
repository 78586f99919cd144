//! The system's own processes for integration tests: the sequencer and the emitter
//! services run as real binaries (so they can be killed with SIGKILL), with keys and a
//! trust root written to a temporary folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use stockpile_core::keys::SignerKey;
use stockpile_nats::NatsConfig;

use super::nats::NatsServer;

/// How long a test waits for the system to reach a state before failing.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Log lines a failure message shows per service.
const LOG_TAIL_LINES: usize = 40;

/// A built binary of the workspace, beside the test binary's `deps` folder. `make test`
/// (`cargo test --workspace --all-targets`) builds them all first.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// A running service process, killed when dropped.
pub struct Service {
    name: String,
    binary: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    pub fn start(
        name: &str,
        binary: PathBuf,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        log_dir: &Path,
    ) -> Service {
        let mut service = Service {
            name: name.to_string(),
            binary,
            args,
            envs,
            log: log_dir.join(format!("{name}.log")),
            child: None,
        };
        service.spawn();
        service
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open service log");
        let child = Command::new(&self.binary)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.name));
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush or acknowledge anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not stop on SIGTERM; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sets (or with `None` removes) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.envs.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.envs.push((key.to_string(), value.to_string()));
        }
    }

    /// Adds arguments for the next start.
    pub fn add_args(&mut self, args: &[&str]) {
        self.args.extend(args.iter().map(|arg| arg.to_string()));
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Waits for the process to exit by itself; returns its code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!("[{}]\n{}", self.name, lines[start..].join("\n"))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The NATS flags of a service binary for one deploy/nats user.
pub fn nats_args(config: &NatsConfig) -> (Vec<String>, Vec<(String, String)>) {
    let mut args = vec!["--nats-url".to_string(), config.url.clone()];
    let mut envs = Vec::new();
    if let Some(user) = &config.user {
        args.extend(["--nats-user".to_string(), user.clone()]);
    }
    if let Some(password) = &config.password {
        envs.push(("STOCKPILE_NATS_PASSWORD".to_string(), password.clone()));
    }
    (args, envs)
}

/// Writes a secret key file and returns its path.
pub fn write_key(dir: &Path, key: &SignerKey) -> PathBuf {
    let path = dir.join(format!("{}.key", key.name().replace('/', "_")));
    fs::write(&path, key.to_string()).expect("write key file");
    path
}

/// Starts a sequencer for the ledger described by `trust` with `log_key`.
pub fn start_sequencer(
    nats: &NatsServer,
    dir: &Path,
    instance: &str,
    trust_json: &str,
    log_key: &SignerKey,
    extra: &[&str],
) -> Service {
    let trust = dir.join(format!("trust-{instance}.json"));
    fs::write(&trust, trust_json).expect("write trust root");
    let key = write_key(dir, log_key);
    let (mut args, envs) = nats_args(&nats.config_for("sequencer"));
    args.extend([
        "--trust".into(),
        trust.display().to_string(),
        "--log-key".into(),
        key.display().to_string(),
        "--instance".into(),
        instance.into(),
        "--checkpoint-interval-ms".into(),
        "200".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Service::start(
        &format!("sequencer-{instance}"),
        binary("stockpile-sequencer"),
        args,
        envs,
        dir,
    )
}

/// A JetStream context as `user`, on a private runtime-agnostic client.
pub async fn jetstream_as(nats: &NatsServer, user: &str) -> jetstream::Context {
    let client = stockpile_nats::connect(&nats.config_for(user))
        .await
        .unwrap_or_else(|error| panic!("connect as {user}: {error:#}"));
    jetstream::new(client)
}

/// Number of entries in LEDGER (0 before the sequencer created it).
pub async fn ledger_size(js: &jetstream::Context) -> u64 {
    stockpile_nats::ledger::ledger_size(js).await.unwrap_or(0)
}

/// Polls until LEDGER holds at least `size` entries, panicking with the given logs after
/// [`SETTLE_TIMEOUT`].
pub async fn wait_for_ledger_size(js: &jetstream::Context, size: u64, logs: &[&Service]) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let now = ledger_size(js).await;
        if now >= size {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|s| s.log_tail()).collect();
            panic!(
                "ledger reached {now} of {size} entries in {SETTLE_TIMEOUT:?}; logs:\n{}",
                logs.join("\n----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the `stockpile` command in-process; returns (exit code, stdout, stderr).
pub fn stockpile(args: &[&str]) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut argv = vec!["stockpile".into()];
    argv.extend(args.iter().map(std::ffi::OsString::from));
    let code = stockpile_cli::run(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Polls until the latest checkpoint covers at least `size` entries.
pub async fn wait_for_checkpoint(js: &jetstream::Context, size: u64, logs: &[&Service]) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let covered = match stockpile_nats::checkpoints::latest_checkpoint(js).await {
            Ok(Some(stored)) => stored.unverified_body().map(|c| c.size).unwrap_or(0),
            _ => 0,
        };
        if covered >= size {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|s| s.log_tail()).collect();
            panic!(
                "no checkpoint covers {size} entries (latest: {covered}); logs:\n{}",
                logs.join("\n----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A minimal HTTP/1.1 client for the services' JSON APIs (loopback only): returns the
/// status code and the body.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let (status, body) = http_bytes(addr, method, path, body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// [`http`] with the body as bytes (entries, binary downloads).
pub fn http_bytes(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
    let answer = http_with_headers(addr, method, path, &[], body);
    (answer.status, answer.body)
}

/// An answer with its headers (names lower-cased).
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The first value of a header, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// [`http`] with extra request headers (`Authorization`, say), answering the headers too.
pub fn http_with_headers(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpAnswer {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|error| panic!("connect to {addr}: {error}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP response from {addr}{path}: {:?}",
                String::from_utf8_lossy(&response)
            )
        });
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let rest = &response[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    HttpAnswer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(2).position(|window| window == b"\r\n") {
        let Some(size) = std::str::from_utf8(&bytes[..end])
            .ok()
            .and_then(|size| usize::from_str_radix(size.trim(), 16).ok())
        else {
            break;
        };
        let rest = &bytes[end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        bytes = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// Waits for a service to write its bound address to `path`.
pub fn wait_for_addr_file(path: &Path, service: &Service) -> String {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            let text = text.trim().to_string();
            if !text.is_empty() {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} wrote no address; log:\n{}",
            path.display(),
            service.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A two-thread runtime for the async parts of a synchronous test (the in-process CLI
/// starts its own runtime, so tests stay synchronous and block on this one).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Waits until the sequencer has created the topology.
pub async fn wait_for_stream(js: &jetstream::Context, logs: &[&Service]) {
    for _ in 0..200 {
        if js.get_stream("SUBMISSIONS").await.is_ok() && js.get_stream("LEDGER").await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs: Vec<String> = logs.iter().map(|s| s.log_tail()).collect();
    panic!(
        "the sequencer did not create the streams:\n{}",
        logs.join("\n----\n")
    );
}

/// `stockpile verify --nats` as the inspector, with `extra` flags (e.g. `--json`).
pub fn verify_live(nats: &NatsServer, trust: &Path, extra: &[&str]) -> (u8, String, String) {
    let url = nats.url();
    let password = nats.password("inspector").to_string();
    let mut args = vec![
        "verify",
        "--nats",
        &url,
        "--nats-user",
        "inspector",
        "--nats-password",
        &password,
        "--trust",
        trust.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    stockpile(&args)
}
