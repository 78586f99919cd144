//! A real nats-server for the benchmarks, on a free loopback port, with the durability
//! setting each figure states. No accounts: the figures are about the store and the
//! pipeline, and the shipped account configuration adds no work per message.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// When the file store fsyncs (`jetstream.sync_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `sync_interval: always`: every message is fsynced before it is acknowledged
    /// (the shipped `deploy/nats/single.conf`).
    SyncAlways,
    /// The server default (fsync every two minutes): an acknowledgement means written to
    /// the operating system, not to the disk. What a replicated (R3) deployment relies on
    /// for the other copies.
    SyncDefault,
}

impl Durability {
    pub fn describe(self) -> &'static str {
        match self {
            Durability::SyncAlways => "sync_interval: always (fsync before every ack)",
            Durability::SyncDefault => {
                "sync_interval: default 2 min (ack after write, before fsync)"
            }
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Durability::SyncAlways => "sync always",
            Durability::SyncDefault => "sync default",
        }
    }
}

/// A running nats-server, killed when dropped.
pub struct NatsServer {
    child: Child,
    pub url: String,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts nats-server with JetStream, its store in a fresh directory under `work`.
    pub fn start(work: &Path, durability: Durability) -> anyhow::Result<NatsServer> {
        let binary = nats_server_binary()?;
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("nats-")
            .tempdir_in(work)
            .context("creating the nats-server directory")?;
        let port = free_port()?;
        let store = dir.path().join("store");
        let sync = match durability {
            Durability::SyncAlways => "  sync_interval: always\n",
            Durability::SyncDefault => "",
        };
        let config = format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 8MB\njetstream {{\n  store_dir: \"{}\"\n{sync}  max_file_store: 64GB\n  max_memory_store: 1GB\n}}\n",
            store.display()
        );
        let config_path = dir.path().join("nats.conf");
        std::fs::write(&config_path, config).context("writing nats.conf")?;
        let log = std::fs::File::create(dir.path().join("nats.log")).context("nats.log")?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("nats-server exited at start ({status})");
            }
            if Instant::now() > deadline {
                bail!("nats-server did not accept connections within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nats-server to run: `$STOCKPILE_NATS_SERVER`, else the pinned one `make nats`
/// installs in `.tools/nats/bin`, else `nats-server` on `PATH`.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("STOCKPILE_NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let pinned = repo_root().join(".tools/nats/bin/nats-server");
    if pinned.is_file() {
        return Ok(pinned);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .find(|path| path.is_file())
        })
        .context("no nats-server: run `make nats`, or set STOCKPILE_NATS_SERVER")
}

/// The workspace root (two levels above this crate's manifest at build time, or the
/// current directory when run from elsewhere).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent().and_then(Path::parent) {
        Some(root) if root.join("Cargo.toml").is_file() => root.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A sibling binary of this one (`target/release/<name>`): the benchmarks run the real
/// service and CLI binaries as processes.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating stockpile-bench")?;
    let path = exe
        .parent()
        .context("stockpile-bench has no directory")?
        .join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build it first (`cargo build --release --workspace --bins`)",
        path.display()
    );
    Ok(path)
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // Linux has used 100 on every architecture we run on; `getconf CLK_TCK` confirms.
    100.0
}

/// Peak resident memory (`VmHWM`) of a running process, in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}
