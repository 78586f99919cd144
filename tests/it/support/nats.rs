//! A real nats-server for tests, run from the configuration that ships in `deploy/nats`
//! (`single.conf` + `accounts.conf`), so that the tests exercise exactly what `make run`
//! and production use; and a three-node cluster of them from `cluster.conf`
//! ([`NatsCluster`]).
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
    /// Further variables the configuration reads (a cluster node's name, routes…).
    extra_env: Vec<(String, String)>,
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
                extra_env: Vec::new(),
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
        env.extend(self.extra_env.iter().cloned());
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
        let (status, head, body) = self
            .try_monitor(path)
            .unwrap_or_else(|message| panic!("{message}"));
        assert_eq!(status, 200, "GET {path} on the monitoring port: {head}");
        body
    }

    /// GET on the monitoring port: the status code, the status line and the body, or why
    /// there is no answer (a server that is down or still starting).
    pub fn try_monitor(&self, path: &str) -> Result<(u16, String, String), String> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
            .map_err(|e| format!("connecting to the monitoring port {address}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| format!("setting a read timeout: {e}"))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .map_err(|e| format!("sending the monitoring request for {path}: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| format!("reading the monitoring response for {path}: {e}"))?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("malformed HTTP response for {path}: {response:?}"))?;
        let status_line = head.lines().next().unwrap_or_default().to_string();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no status in {status_line:?} for {path}"))?;
        Ok((status, status_line, body.to_string()))
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
            // STOCKPILE_TEST_FULL_LOGS=1 shows the whole log.
            let shown = if std::env::var_os("STOCKPILE_TEST_FULL_LOGS").is_some() {
                lines.len()
            } else {
                LOG_TAIL_LINES
            };
            let tail = &lines[lines.len().saturating_sub(shown)..];
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

/// Nodes in a [`NatsCluster`].
pub const CLUSTER_NODES: usize = 3;

/// How long a cluster may take to elect its meta leader, or a restarted node to catch up.
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A three-node JetStream cluster from `deploy/nats/cluster.conf`: every node on its own
/// free 127.0.0.1 ports (client, monitoring, route) with its own temporary store, all
/// with the same users and passwords, routes authenticated with a random password. Nodes
/// are named `n1`, `n2`, `n3` (the names streams report their leader and replicas by).
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts the three nodes and waits until they agree on a meta leader and every node
    /// reports itself healthy (`/healthz`).
    pub fn start() -> NatsCluster {
        let config = deploy_dir().join("cluster.conf");
        let mut attempts = 0;
        loop {
            attempts += 1;
            let passwords: BTreeMap<String, String> = USERS
                .iter()
                .map(|user| (user.to_string(), random_password()))
                .collect();
            let route_password = random_password();
            let mut ports = std::collections::BTreeSet::new();
            while ports.len() < CLUSTER_NODES * 3 {
                ports.insert(free_port());
            }
            let ports: Vec<u16> = ports.into_iter().collect();
            let routes = ports
                .chunks(3)
                .map(|node| format!("nats-route://route:{route_password}@127.0.0.1:{}", node[2]))
                .collect::<Vec<_>>()
                .join(", ");
            let mut nodes = Vec::new();
            let mut failure = None;
            for (index, node_ports) in ports.chunks(3).enumerate() {
                let name = node_name(index);
                let dir = tempfile::Builder::new()
                    .prefix(&format!("stockpile-nats-{name}-"))
                    .tempdir()
                    .expect("creating a temporary directory");
                let mut node = NatsServer {
                    child: None,
                    dir,
                    config: config.clone(),
                    port: node_ports[0],
                    http_port: node_ports[1],
                    passwords: passwords.clone(),
                    extra_env: vec![
                        ("STOCKPILE_NATS_SERVER_NAME".into(), name),
                        (
                            "STOCKPILE_NATS_CLUSTER_PORT".into(),
                            node_ports[2].to_string(),
                        ),
                        (
                            "STOCKPILE_NATS_ROUTE_PASSWORD".into(),
                            route_password.clone(),
                        ),
                        ("STOCKPILE_NATS_ROUTES".into(), format!("[{routes}]")),
                    ],
                };
                if let Err(message) = node.spawn_and_wait() {
                    failure = Some(message);
                    break;
                }
                nodes.push(node);
            }
            match failure {
                None => {
                    let cluster = NatsCluster { nodes };
                    for index in 0..CLUSTER_NODES {
                        cluster.wait_until_healthy(index);
                    }
                    return cluster;
                }
                // The nodes started so far are killed as `nodes` drops.
                Some(message) if attempts < 3 && message.contains("address already in use") => {}
                Some(message) => panic!("{message}"),
            }
        }
    }

    /// Every node's client URL, comma separated (what `--nats-url` takes).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The connection settings of `user`, listing all three nodes.
    pub fn config_for(&self, user: &str) -> NatsConfig {
        NatsConfig {
            url: self.url(),
            ..self.nodes[0].config_for(user)
        }
    }

    pub fn password(&self, user: &str) -> &str {
        self.nodes[0].password(user)
    }

    /// Node `index` (0, 1 or 2; named `n1`, `n2`, `n3`).
    pub fn node(&self, index: usize) -> &NatsServer {
        &self.nodes[index]
    }

    /// The route port of node `index` (where the other nodes connect).
    pub fn route_port(&self, index: usize) -> u16 {
        self.nodes[index]
            .extra_env
            .iter()
            .find(|(name, _)| name == "STOCKPILE_NATS_CLUSTER_PORT")
            .and_then(|(_, port)| port.parse().ok())
            .expect("a cluster node has a route port")
    }

    /// The index of the node a stream or the meta group names (`n2` → 1).
    pub fn index_of(&self, name: &str) -> usize {
        (0..CLUSTER_NODES)
            .find(|index| node_name(*index) == name)
            .unwrap_or_else(|| panic!("{name:?} is not a node of the test cluster"))
    }

    /// SIGKILLs node `index` (no clean shutdown, no leadership hand-over).
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Starts node `index` again on its ports and store, and waits until it is healthy
    /// again: in contact with the meta leader, and every stream and consumer it holds a
    /// replica of caught up (nats-server's `/healthz` checks both).
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].restart();
        self.wait_until_healthy(index);
    }

    /// Polls `/healthz` of node `index` until it answers 200 and `/jsz` names a meta
    /// leader with every peer current, panicking with the node's log after
    /// [`CLUSTER_READY_TIMEOUT`].
    pub fn wait_until_healthy(&self, index: usize) {
        let node = &self.nodes[index];
        let deadline = Instant::now() + CLUSTER_READY_TIMEOUT;
        loop {
            let why = match self.health(index) {
                Ok(()) => return,
                Err(why) => why,
            };
            if Instant::now() > deadline {
                panic!(
                    "cluster node {} not healthy within {CLUSTER_READY_TIMEOUT:?}: {why}; its log:\n{}",
                    node_name(index),
                    node.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether node `index` is healthy, or why not: `/healthz` answers 200 (JetStream in
    /// contact with the meta leader, every replica on the node current), routes to the
    /// other nodes are up, and the meta leader sees every peer current.
    pub fn health(&self, index: usize) -> Result<(), String> {
        let node = &self.nodes[index];
        let (status, _, body) = node.try_monitor("/healthz")?;
        if status != 200 {
            return Err(format!("/healthz {status}: {body}"));
        }
        let routez = json_of(node, "/routez")?;
        let routed: std::collections::BTreeSet<&str> = routez["routes"]
            .as_array()
            .map(|routes| {
                routes
                    .iter()
                    .filter_map(|route| route["remote_name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let unrouted: Vec<String> = (0..CLUSTER_NODES)
            .filter(|other| *other != index)
            .map(node_name)
            .filter(|name| !routed.contains(name.as_str()))
            .collect();
        if !unrouted.is_empty() {
            return Err(format!("no route to {unrouted:?} yet"));
        }
        let meta = json_of(node, "/jsz")?["meta_cluster"].clone();
        let leader = meta["leader"].as_str().unwrap_or_default();
        if leader.is_empty() {
            return Err(format!("no meta leader yet: {meta}"));
        }
        if meta["cluster_size"].as_u64() != Some(CLUSTER_NODES as u64) {
            return Err(format!("meta cluster size is not {CLUSTER_NODES}: {meta}"));
        }
        // Only the leader knows whether the followers are current (a follower reports
        // the other follower as never seen).
        let leader_index = (0..CLUSTER_NODES)
            .find(|other| node_name(*other) == leader)
            .ok_or_else(|| format!("unknown meta leader {leader:?}"))?;
        let leader_meta = json_of(&self.nodes[leader_index], "/jsz")?["meta_cluster"].clone();
        let behind: Vec<&serde_json::Value> = leader_meta["replicas"]
            .as_array()
            .map(|peers| {
                peers
                    .iter()
                    .filter(|peer| peer["current"] != serde_json::Value::Bool(true))
                    .collect()
            })
            .unwrap_or_default();
        if !behind.is_empty() {
            return Err(format!(
                "the meta leader {leader} sees peers behind: {behind:?}"
            ));
        }
        Ok(())
    }

    /// What node `index` itself holds of `stream` in the account STOCKPILE (from its
    /// `/jsz`): the stream's detail with `state` and `cluster`, or `None` if the node holds
    /// no replica of it.
    pub fn stream_on_node(&self, index: usize, stream: &str) -> Option<serde_json::Value> {
        let jsz = self.nodes[index].monitor_json("/jsz?accounts=true&streams=true");
        jsz["account_details"]
            .as_array()?
            .iter()
            .filter(|account| account["name"] == "STOCKPILE")
            .flat_map(|account| {
                account["stream_detail"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|detail| detail["name"] == stream)
    }
}

/// A monitoring endpoint of `node` as JSON, or why not.
fn json_of(node: &NatsServer, path: &str) -> Result<serde_json::Value, String> {
    let (status, _, body) = node.try_monitor(path)?;
    if status != 200 {
        return Err(format!("{path} {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{path} is not JSON ({e}): {body}"))
}

/// The server name of node `index` (`n1`, `n2`, `n3`).
pub fn node_name(index: usize) -> String {
    format!("n{}", index + 1)
}
