//! A real nats-server for tests, run from the configuration that ships in `deploy/nats`
//! (`single.conf` + `accounts.conf`), so that the tests exercise exactly what `make run`
//! and production use.
//!
//! Each [`NatsServer`] owns its child process, a temporary directory (JetStream store and
//! the server's log), free loopback ports and fresh random passwords for every user. It
//! binds to 127.0.0.1 only, and is killed when dropped, or when the test process dies
//! (see `SUPERVISOR`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stockpile_nats::NatsConfig;

/// The users of `deploy/nats/accounts.conf`.
pub const USERS: [&str; 8] = [
    "sequencer",
    "depot",
    "demil",
    "export-control",
    "registrar",
    "projector",
    "inspector",
    "admin",
];

/// The emitting services (each with its own `stockpile.submit.<name>`).
pub const EMITTERS: [&str; 4] = ["depot", "demil", "export-control", "registrar"];

/// How long a server may take to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// The shipped configuration directory, `deploy/nats`.
pub fn deploy_dir() -> PathBuf {
    repo_root().join("deploy").join("nats")
}

/// The nats-server to run: `$STOCKPILE_NATS_SERVER`, else the pinned one `make nats`
/// installs in `.tools/nats/bin`, else `nats-server` on `PATH`.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STOCKPILE_NATS_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "STOCKPILE_NATS_SERVER={} is not a file",
            path.display()
        );
        return path;
    }
    let pinned = repo_root().join(".tools/nats/bin/nats-server");
    if pinned.is_file() {
        return pinned;
    }
    if let Some(path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
    {
        return path;
    }
    panic!(
        "no nats-server found: run `make nats` (installs the pinned one into .tools/nats), \
         put nats-server on PATH, or set STOCKPILE_NATS_SERVER to its path"
    );
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("binding an ephemeral port on 127.0.0.1")
        .port()
}

/// The environment variable holding `user`'s password (`export-control` →
/// `STOCKPILE_NATS_EXPORT_CONTROL_PASSWORD`).
pub fn password_variable(user: &str) -> String {
    format!(
        "STOCKPILE_NATS_{}_PASSWORD",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

/// A random password the nats-server configuration parser reads as a string: a letter
/// prefix, then hex (an environment value is parsed like a configuration value, so
/// `1234` would become a number and `true` a boolean).
fn random_password() -> String {
    let mut bytes = [0u8; 18];
    let from_os = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        // Not cryptographic, but unique per process and call: enough for a test server.
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            let value = hasher.finish().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sp-{hex}")
}

/// Runs the server (`$0 "$@"`) under `sh`, which SIGKILLs it as soon as its stdin, a
/// pipe from the test process, closes: on [`NatsServer::kill`], on drop, and also when
/// the test process dies without unwinding (a SIGKILLed or aborted test run), so that no
/// server outlives its test. The server's own stdin is /dev/null; `sh` exits with the
/// server's status.
const SUPERVISOR: &str = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
server=$!
( read -r _ <&3; kill -KILL "$server" 2>/dev/null ) </dev/null &
exec 3<&-
wait "$server"
"#;

/// How long [`NatsServer::kill`] waits for the supervisor before killing it directly.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A running nats-server with the shipped configuration.
pub struct NatsServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    http_port: u16,
    passwords: BTreeMap<String, String>,
}

impl NatsServer {
    /// Starts `deploy/nats/single.conf` on free 127.0.0.1 ports with a temporary store and
    /// random passwords, and waits until it accepts connections.
    pub fn start() -> NatsServer {
        NatsServer::start_with_config(&deploy_dir().join("single.conf"))
    }

    /// Like [`NatsServer::start`], with another configuration file that takes the same
    /// environment variables.
    pub fn start_with_config(config: &Path) -> NatsServer {
        // Another process may take a port between `free_port` and the server binding
        // it; then try again with new ports.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let dir = tempfile::Builder::new()
                .prefix("stockpile-nats-")
                .tempdir()
                .expect("creating a temporary directory");
            let passwords = USERS
                .iter()
                .map(|user| (user.to_string(), random_password()))
                .collect();
            let mut server = NatsServer {
                child: None,
                dir,
                config: config.to_path_buf(),
                port: free_port(),
                http_port: free_port(),
                passwords,
            };
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(message) if attempts < 3 && message.contains("address already in use") => {
                    continue;
                }
                Err(message) => panic!("{message}"),
            }
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The monitoring port (`/varz`, `/jsz`, `/healthz`).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The URL and credentials of `user` (one of [`USERS`]).
    pub fn config_for(&self, user: &str) -> NatsConfig {
        NatsConfig {
            url: self.url(),
            user: Some(user.to_string()),
            password: Some(self.password(user).to_string()),
            client_name: Some(format!("test-{user}")),
            ..Default::default()
        }
    }

    /// The generated password of `user`.
    pub fn password(&self, user: &str) -> &str {
        self.passwords
            .get(user)
            .unwrap_or_else(|| panic!("{user:?} is not a user of deploy/nats/accounts.conf"))
    }

    /// The environment the configuration files read (ports, store, passwords).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("STOCKPILE_NATS_PORT".to_string(), self.port.to_string()),
            (
                "STOCKPILE_NATS_HTTP_PORT".to_string(),
                self.http_port.to_string(),
            ),
            (
                "STOCKPILE_NATS_STORE".to_string(),
                self.store_dir().display().to_string(),
            ),
        ];
        env.extend(
            self.passwords
                .iter()
                .map(|(user, password)| (password_variable(user), password.clone())),
        );
        env
    }

    /// The JetStream store directory (kept across [`NatsServer::restart`]).
    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it to exit.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the supervisor's stdin makes it SIGKILL the server and exit.
        drop(child.stdin.take());
        let deadline = Instant::now() + KILL_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.wait();
    }

    /// Starts the server again on the same ports, store and passwords (killing it first
    /// if it still runs).
    pub fn restart(&mut self) {
        self.kill();
        if let Err(message) = self.spawn_and_wait() {
            panic!("{message}");
        }
    }

    /// GET on the monitoring port, e.g. `monitor("/varz")`; returns the body. A raw
    /// HTTP/1.0 request on 127.0.0.1, so no proxy setting can redirect it.
    pub fn monitor(&self, path: &str) -> String {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connecting to the monitoring port {address}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("setting a read timeout");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("sending the monitoring request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|e| panic!("reading the monitoring response for {path}: {e}"));
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("malformed HTTP response for {path}: {response:?}"));
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "GET {path} on the monitoring port: {head}"
        );
        body.to_string()
    }

    /// `monitor(path)` parsed as JSON.
    pub fn monitor_json(&self, path: &str) -> serde_json::Value {
        let body = self.monitor(path);
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"))
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("opening {}: {e}", self.log_path().display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("duplicating the log file handle: {e}"))?;
        let binary = nats_server_binary();
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg(&binary)
            .arg("-c")
            .arg(&self.config)
            .envs(self.env())
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        self.child = Some(child);

        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "nats-server ({}, {}) exited with {status} before accepting connections on {address}; its log:\n{}",
                    binary.display(),
                    self.config.display(),
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
                && self.is_running()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "nats-server ({}, {}) did not accept connections on {address} within {START_TIMEOUT:?}; its log:\n{}",
                    binary.display(),
                    self.config.display(),
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Log lines shown when a test panics while it holds the server.
const LOG_TAIL_LINES: usize = 30;

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!(
                "nats-server on port {} (store {}), last {} log lines:\n{}",
                self.port,
                self.store_dir().display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}
