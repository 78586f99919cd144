//! `make run`: the whole system on one machine, as real processes.
//!
//! 1. a run directory (`.run/` by default, made afresh): the scenario's keys, the trust
//!    root, random NATS passwords, a random API token per emitting service
//!    (`tokens/<service>.token`, 0600), logs;
//! 2. nats-server with the shipped configuration (`deploy/nats/single.conf`, accounts and
//!    one user per service) on a free loopback port;
//! 3. the sequencer (recording each entry at its event's time, so years of history load
//!    in minutes — `--demo-event-time`), the projector replica `main` (its consumer
//!    created as admin) serving the API and the dashboard, and the depot, demil and
//!    export-control services, each with its own NATS user, keys and `--token-file`
//!    (and a rate limit raised for the demo's bulk load: [`DEMO_HTTP_RATE_PER_SECOND`]);
//! 4. the demo scenario posted event by event through the services' HTTP APIs, each
//!    with its service's token ([`seed`]);
//! 5. `stockpile verify` of the live ledger as the inspector; its report is kept for the
//!    dashboard and its summary printed with the addresses to open;
//! 6. then it runs until Ctrl-C (or, with `exit_after_verify`, stops at once) and stops
//!    every process it started, newest first.
//!
//! Every process runs under a supervisor that kills it if the launcher dies
//! ([`processes`]): nothing outlives the launcher.

pub mod processes;
pub mod seed;

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use stockpile_core::keys::SignerKey;
use stockpile_nats::NatsConfig;
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioKeys};

use crate::processes::Process;

/// NATS users of deploy/nats/accounts.conf, each given a random password per run.
pub const NATS_USERS: [&str; 8] = [
    "sequencer",
    "depot",
    "demil",
    "export-control",
    "registrar",
    "projector",
    "inspector",
    "admin",
];
/// The emitting services, with the roles whose keys each holds.
pub const SERVICES: [(&str, &[&str]); 3] = [
    ("depot", &["registrar", "depot", "inspector"]),
    ("demil", &["demil", "certifier"]),
    ("export-control", &["export_control"]),
];
/// The services' rate limit during the demo (`--http-rate-per-second` and
/// `--http-rate-burst`): the seed loads years of history at once, far faster than a
/// depot's systems send (the services' default is
/// `stockpile_emitter::limits::HTTP_RATE_PER_SECOND`). The seed still honours a 429.
pub const DEMO_HTTP_RATE_PER_SECOND: u32 = 5_000;
/// Random bytes of an API token (hex-encoded in its file: 64 characters).
const API_TOKEN_BYTES: usize = 32;
/// How long a process may take to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the ledger, its checkpoints and the projector may take to settle after
/// seeding.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(100);
/// Log lines quoted when a process fails to start.
const LOG_TAIL_LINES: usize = 20;

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// The run directory, made afresh.
    pub dir: PathBuf,
    /// Where the service binaries are (`stockpile-sequencer`, …).
    pub bin_dir: PathBuf,
    pub nats_server: PathBuf,
    /// `deploy/nats`.
    pub deploy_dir: PathBuf,
    pub dataset: Dataset,
    pub seed: u64,
    /// The scenario is padded with routine operations up to this many entries.
    pub min_entries: u64,
    /// Where the projector serves the API and the dashboard.
    pub dashboard: SocketAddr,
    /// Stop everything after the verifier's summary (for scripts and tests).
    pub exit_after_verify: bool,
    /// The State's name on the Article 7 cover page.
    pub state_name: String,
}

/// What a launch ended with.
#[derive(Debug, Clone)]
pub struct LaunchOutcome {
    /// `stockpile verify`'s exit code (0 clean, 1 findings, 2 error).
    pub verify_exit: u8,
    pub entries: u64,
    /// The processes started, with their pids (all stopped when this is returned).
    pub pids: Vec<(String, u32)>,
    pub dashboard: String,
}

/// The processes of a running system, stopped newest first when dropped.
struct System {
    processes: Vec<Process>,
}

impl System {
    fn stop(&mut self) {
        while let Some(mut process) = self.processes.pop() {
            let clean = process.stop();
            if !clean {
                tracing::warn!(process = %process.name, "did not stop on SIGTERM; killed");
            }
        }
    }

    fn start(
        &mut self,
        name: &str,
        program: &Path,
        args: Vec<String>,
        env: &[(String, String)],
        logs: &Path,
    ) -> anyhow::Result<&mut Process> {
        let process = Process::start(name, program, &args, env, logs)?;
        tracing::info!(process = name, pid = process.pid(), "started");
        self.processes.push(process);
        Ok(self.processes.last_mut().expect("just pushed"))
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything generated for one run.
struct RunFiles {
    trust: PathBuf,
    keys: BTreeMap<&'static str, PathBuf>,
    log_key: PathBuf,
    passwords: BTreeMap<&'static str, String>,
    /// Each emitting service's API token: its file and the token.
    tokens: BTreeMap<&'static str, (PathBuf, String)>,
    logs: PathBuf,
}

/// Brings the system up, seeds and verifies it; then waits for `shutdown` unless
/// `exit_after_verify`; stops everything before returning.
pub async fn run(
    config: LaunchConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<LaunchOutcome> {
    tokio::pin!(shutdown);
    // Absolute: nats-server reads the store path from an environment variable as a
    // configuration value, where `.run/nats` would parse as a number.
    let mut config = config;
    config.dir = std::path::absolute(&config.dir)
        .with_context(|| format!("resolving {}", config.dir.display()))?;
    let files = prepare(&config)?;
    let mut system = System {
        processes: Vec::new(),
    };
    let result = tokio::select! {
        result = bring_up_and_seed(&config, &files, &mut system) => result,
        () = &mut shutdown => {
            println!("Interrupted; stopping everything.");
            Err(anyhow::anyhow!("interrupted before the system was up"))
        }
    };
    let pids: Vec<(String, u32)> = system
        .processes
        .iter()
        .map(|process| (process.name.clone(), process.pid()))
        .collect();
    let outcome = match result {
        Ok((verify_exit, entries, dashboard)) => {
            if !config.exit_after_verify {
                println!("Press Ctrl-C to stop everything.");
                shutdown.await;
                println!("Stopping…");
            }
            Ok(LaunchOutcome {
                verify_exit,
                entries,
                pids,
                dashboard,
            })
        }
        Err(error) => Err(error),
    };
    tokio::task::spawn_blocking(move || system.stop())
        .await
        .context("stopping the processes")?;
    println!("Stopped; nothing left running.");
    outcome
}

/// The run directory afresh: keys, trust root, passwords.
fn prepare(config: &LaunchConfig) -> anyhow::Result<RunFiles> {
    if config.dir.exists() {
        fs::remove_dir_all(&config.dir)
            .with_context(|| format!("removing the previous run in {}", config.dir.display()))?;
    }
    let keys_dir = config.dir.join("keys");
    fs::create_dir_all(&keys_dir).with_context(|| format!("creating {}", keys_dir.display()))?;
    let scenario_keys = ScenarioKeys::new(config.dataset, config.seed);
    let trust = config.dir.join("trust.json");
    fs::write(&trust, scenario_keys.trust_root().to_json())
        .with_context(|| format!("writing {}", trust.display()))?;
    let mut keys = BTreeMap::new();
    for (role, key) in [
        ("registrar", &scenario_keys.registrar),
        ("depot", &scenario_keys.depot),
        ("inspector", &scenario_keys.inspector),
        ("demil", &scenario_keys.demil),
        ("certifier", &scenario_keys.certifier),
        ("export_control", &scenario_keys.export_control),
    ] {
        keys.insert(role, write_key(&keys_dir, role, key)?);
    }
    let log_key = write_key(&keys_dir, "log", &scenario_keys.log)?;
    let passwords = NATS_USERS
        .iter()
        .map(|user| (*user, random_password()))
        .collect();
    let tokens_dir = config.dir.join("tokens");
    {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tokens_dir)
            .with_context(|| format!("creating {}", tokens_dir.display()))?;
    }
    let mut tokens = BTreeMap::new();
    for (service, _) in SERVICES {
        let token = random_token();
        let path = tokens_dir.join(format!("{service}.token"));
        write_secret(&path, &format!("{token}\n"))?;
        tokens.insert(service, (path, token));
    }
    Ok(RunFiles {
        trust,
        keys,
        log_key,
        passwords,
        tokens,
        logs: config.dir.join("logs"),
    })
}

fn write_key(dir: &Path, role: &str, key: &SignerKey) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{role}.key"));
    write_secret(&path, &key.to_string())?;
    Ok(path)
}

/// A new file only its owner may read (0600).
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// A bearer token for one service's API: 32 random bytes, hex-encoded.
fn random_token() -> String {
    let bytes: [u8; API_TOKEN_BYTES] = rand::random();
    hex::encode(bytes)
}

/// A password the nats-server configuration parser reads as a string (a letter prefix:
/// an environment value is parsed like a configuration value).
fn random_password() -> String {
    let bytes: [u8; 18] = rand::random();
    format!("sp-{}", hex::encode(bytes))
}

fn password_variable(user: &str) -> String {
    format!(
        "STOCKPILE_NATS_{}_PASSWORD",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .context("finding a free port on 127.0.0.1")?
        .port())
}

/// NATS flags for a process connecting as `user`.
fn nats_flags(url: &str, user: &str, files: &RunFiles) -> (Vec<String>, Vec<(String, String)>) {
    (
        vec![
            "--nats-url".into(),
            url.into(),
            "--nats-user".into(),
            user.into(),
        ],
        vec![(
            "STOCKPILE_NATS_PASSWORD".into(),
            files.passwords[user].clone(),
        )],
    )
}

fn nats_config(url: &str, user: &str, files: &RunFiles) -> NatsConfig {
    NatsConfig {
        url: url.into(),
        user: Some(user.into()),
        password: Some(files.passwords[user].clone()),
        client_name: Some(format!("stockpile-run-{user}")),
        ..Default::default()
    }
}

/// Waits until `what` holds, failing with `process`'s log after [`START_TIMEOUT`].
async fn wait_until(
    what: &str,
    timeout: Duration,
    process: Option<&mut Process>,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut process = process;
    while !ready() {
        if let Some(process) = process.as_deref_mut()
            && !process.is_running()
        {
            anyhow::bail!(
                "{} stopped while waiting for {what}; its log ({}):\n{}",
                process.name,
                process.log_path().display(),
                process.log_tail(LOG_TAIL_LINES)
            );
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

fn read_addr(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

async fn bring_up_and_seed(
    config: &LaunchConfig,
    files: &RunFiles,
    system: &mut System,
) -> anyhow::Result<(u8, u64, String)> {
    let bin = |name: &str| config.bin_dir.join(name);

    // 1. nats-server.
    let (port, http_port) = (free_port()?, free_port()?);
    let mut env = vec![
        ("STOCKPILE_NATS_PORT".to_string(), port.to_string()),
        (
            "STOCKPILE_NATS_HTTP_PORT".to_string(),
            http_port.to_string(),
        ),
        (
            "STOCKPILE_NATS_STORE".to_string(),
            config.dir.join("nats").display().to_string(),
        ),
    ];
    env.extend(
        files
            .passwords
            .iter()
            .map(|(user, password)| (password_variable(user), password.clone())),
    );
    let nats_conf = config.deploy_dir.join("single.conf");
    let nats = system.start(
        "nats-server",
        &config.nats_server,
        vec!["-c".into(), nats_conf.display().to_string()],
        &env,
        &files.logs,
    )?;
    let url = format!("nats://127.0.0.1:{port}");
    wait_until(
        "nats-server to accept connections",
        START_TIMEOUT,
        Some(nats),
        || TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
    )
    .await?;
    println!(
        "nats-server   {url} (JetStream, store {})",
        config.dir.join("nats").display()
    );

    // 2. The sequencer, and the streams it creates.
    let (mut args, env) = nats_flags(&url, "sequencer", files);
    args.extend([
        "--trust".into(),
        files.trust.display().to_string(),
        "--log-key".into(),
        files.log_key.display().to_string(),
        "--demo-event-time".into(),
    ]);
    system.start(
        "sequencer",
        &bin("stockpile-sequencer"),
        args,
        &env,
        &files.logs,
    )?;
    let admin = async_nats::jetstream::new(
        stockpile_nats::connect(&nats_config(&url, "admin", files)).await?,
    );
    let deadline = Instant::now() + START_TIMEOUT;
    while admin
        .get_stream(stockpile_nats::topology::LEDGER_STREAM)
        .await
        .is_err()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sequencer did not create the streams; see {}",
            files.logs.join("sequencer.log").display()
        );
        tokio::time::sleep(POLL).await;
    }
    println!(
        "sequencer     signing checkpoints as {}",
        files.trust.display()
    );

    // 3. The projector: its consumer created as admin, then the replica itself.
    stockpile_nats::topology::ensure_projector_consumer(&admin, "main").await?;
    let projector_addr = config.dir.join("projector.addr");
    let (mut args, env) = nats_flags(&url, "projector", files);
    args.extend([
        "--replica".into(),
        "main".into(),
        "--trust".into(),
        files.trust.display().to_string(),
        "--store".into(),
        config.dir.join("views").display().to_string(),
        "--listen".into(),
        config.dashboard.to_string(),
        "--addr-file".into(),
        projector_addr.display().to_string(),
        "--state-name".into(),
        config.state_name.clone(),
        // Written by the verification below; the dashboard shows its verdict.
        "--verification-report".into(),
        config.dir.join("verify.json").display().to_string(),
    ]);
    let projector = system.start(
        "projector",
        &bin("stockpile-projector"),
        args,
        &env,
        &files.logs,
    )?;
    wait_until(
        "the projector's API",
        START_TIMEOUT,
        Some(projector),
        || read_addr(&projector_addr).is_some(),
    )
    .await?;
    let dashboard = read_addr(&projector_addr).context("the projector's address")?;

    // 4. The emitting services, each with its user, its roles' keys and its API token.
    let mut services = BTreeMap::new();
    for (service, roles) in SERVICES {
        let (token_file, token) = &files.tokens[service];
        let addr_file = config.dir.join(format!("{service}.addr"));
        let (mut args, env) = nats_flags(&url, service, files);
        args.extend([
            "--origin".into(),
            ScenarioKeys::new(config.dataset, config.seed).origin,
            "--outbox".into(),
            config
                .dir
                .join(format!("{service}.outbox"))
                .display()
                .to_string(),
            "--addr-file".into(),
            addr_file.display().to_string(),
            "--token-file".into(),
            token_file.display().to_string(),
            "--http-rate-per-second".into(),
            DEMO_HTTP_RATE_PER_SECOND.to_string(),
            "--http-rate-burst".into(),
            DEMO_HTTP_RATE_PER_SECOND.to_string(),
        ]);
        for role in roles {
            args.extend([
                "--key".into(),
                format!("{role}={}", files.keys[role].display()),
            ]);
        }
        let process = system.start(
            service,
            &bin(&format!("stockpile-{service}")),
            args,
            &env,
            &files.logs,
        )?;
        wait_until(
            &format!("the {service} service"),
            START_TIMEOUT,
            Some(process),
            || read_addr(&addr_file).is_some(),
        )
        .await?;
        let addr = read_addr(&addr_file).context("a service address")?;
        println!("{service:<13} http://{addr}/v1/events");
        services.insert(
            service,
            seed::Endpoint {
                addr,
                token: token.clone(),
            },
        );
    }

    // 5. The scenario, through the services' HTTP APIs.
    let scenario = ScenarioConfig {
        seed: config.seed,
        dataset: config.dataset,
        min_entries: config.min_entries,
        checkpoint_every: 0,
    };
    println!(
        "Seeding the {} demo scenario (seed {}) through the services' APIs…",
        dataset_name(config.dataset),
        config.seed
    );
    let seeded = tokio::task::spawn_blocking({
        let services = services.clone();
        move || seed::seed(&scenario, &services)
    })
    .await
    .context("the seeding task failed")??;
    println!(
        "Posted {} events in {:.1} s ({:.0} events/s).",
        seeded.events,
        seeded.took.as_secs_f64(),
        seeded.events as f64 / seeded.took.as_secs_f64().max(0.001)
    );
    if seeded.retried > 0 {
        println!(
            "  ({} requests sent again after the services asked to wait: 429 or 503)",
            seeded.retried
        );
    }

    // 6. Everything sequenced, checkpointed and folded.
    let entries = seeded.events;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let size = stockpile_nats::ledger::ledger_size(&admin)
            .await
            .unwrap_or(0);
        let covered = match stockpile_nats::checkpoints::latest_checkpoint(&admin).await {
            Ok(Some(stored)) => stored.unverified_body().map(|c| c.size).unwrap_or(0),
            _ => 0,
        };
        let folded = projector_entries(&dashboard).await;
        if size >= entries && covered >= entries && folded >= entries {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the system did not settle: ledger {size}, checkpoint {covered}, projector {folded} of {entries} entries; logs in {}",
            files.logs.display()
        );
        tokio::time::sleep(POLL).await;
    }

    // 7. The inspector verifies the live ledger.
    let verify_exit = verify(&url, files, &config.dir).await?;
    println!();
    println!("Dashboard     http://{dashboard}/");
    println!("API           http://{dashboard}/openapi.json (views, Article 7 reports, proofs)");
    let tokens_dir = config.dir.join("tokens");
    println!(
        "API tokens    {}/<service>.token (e.g. curl -H \"Authorization: Bearer $(cat {})\" http://{}/v1/status)",
        tokens_dir.display(),
        files.tokens["depot"].0.display(),
        services["depot"].addr
    );
    println!("Logs          {}", files.logs.display());
    Ok((verify_exit, entries, dashboard))
}

/// Entries the projector has folded (0 while it does not answer).
async fn projector_entries(addr: &str) -> u64 {
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut response = agent
            .get(&format!("http://{addr}/v1/summary"))
            .call()
            .ok()?;
        let body = response.body_mut().read_to_string().ok()?;
        let summary: serde_json::Value = serde_json::from_str(&body).ok()?;
        summary["as_of"]["entries"].as_u64()
    })
    .await
    .ok()
    .flatten()
    .unwrap_or(0)
}

/// `stockpile verify --nats` as the inspector: the summary printed, the JSON report kept
/// in the run directory. Returns its exit code.
async fn verify(url: &str, files: &RunFiles, dir: &Path) -> anyhow::Result<u8> {
    let base = vec![
        "stockpile".to_string(),
        "verify".into(),
        "--nats".into(),
        url.into(),
        "--nats-user".into(),
        "inspector".into(),
        "--nats-password".into(),
        files.passwords["inspector"].clone(),
        "--trust".into(),
        files.trust.display().to_string(),
    ];
    let report_path = dir.join("verify.json");
    tokio::task::spawn_blocking(move || {
        let mut json_args = base.clone();
        json_args.push("--json".into());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        stockpile_cli::run(os_args(json_args), &mut out, &mut err);
        // Whole or not at all: the dashboard may read it at any moment.
        let partial = report_path.with_extension("partial");
        fs::write(&partial, &out)
            .and_then(|()| fs::rename(&partial, &report_path))
            .with_context(|| format!("writing {}", report_path.display()))?;
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        println!();
        println!("stockpile verify --nats … (as the inspector):");
        Ok(stockpile_cli::run(os_args(base), &mut out, &mut err))
    })
    .await
    .context("the verifier failed")?
}

fn os_args(args: Vec<String>) -> Vec<std::ffi::OsString> {
    args.into_iter().map(Into::into).collect()
}

pub fn dataset_name(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::UsLike => "U.S.-like",
        Dataset::FinlandLike => "Finland-like",
        Dataset::BelarusLike => "Belarus-like",
    }
}

/// Whether a TCP address is free to listen on.
pub fn address_free(addr: SocketAddr) -> bool {
    addr.port() == 0 || TcpListener::bind(addr).is_ok()
}
