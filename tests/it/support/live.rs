//! A live system for tests: a nats-server, a sequencer, a scenario published part by
//! part, and projector replicas started as the deployment runs them (consumer created by
//! admin, the projector as the `projector` user).

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use stockpile_ledger::trust::TrustRoot;
use stockpile_nats::topology::submit_subject;
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioKeys, Submission};
use stockpile_views::fold::ViewFold;

use crate::support::nats::NatsServer;
use crate::support::system::{
    Service, binary, http, jetstream_as, nats_args, runtime, start_sequencer, wait_for_addr_file,
    wait_for_checkpoint, wait_for_ledger_size, wait_for_stream,
};

/// How long a projector may take to catch up with a test ledger (debug build, 2 cores).
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// A nats-server, a sequencer and a scenario to publish, part by part.
pub struct Live {
    pub nats: NatsServer,
    pub dir: tempfile::TempDir,
    pub sequencer: Service,
    pub rt: tokio::runtime::Runtime,
    pub js: async_nats::jetstream::Context,
    pub keys: ScenarioKeys,
    pub trust: PathBuf,
    pub submissions: Vec<Submission>,
    pub published: usize,
}

impl Live {
    pub fn start(seed: u64, min_entries: u64) -> Live {
        let nats = NatsServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ScenarioConfig {
            seed,
            dataset: Dataset::FinlandLike,
            min_entries,
            checkpoint_every: 0,
        };
        let submissions: Vec<_> = stockpile_scenario::submissions(&config).collect();
        let keys = ScenarioKeys::new(config.dataset, config.seed);
        let sequencer = start_sequencer(
            &nats,
            dir.path(),
            "main",
            &keys.trust_root().to_json(),
            &keys.log,
            &[],
        );
        let rt = runtime();
        let js = rt.block_on(jetstream_as(&nats, "admin"));
        rt.block_on(wait_for_stream(&js, &[&sequencer]));
        let trust = dir.path().join("trust-main.json");
        Live {
            nats,
            dir,
            sequencer,
            rt,
            js,
            keys,
            trust,
            submissions,
            published: 0,
        }
    }

    /// Publishes the next `count` submissions (all that are left with `usize::MAX`) and
    /// waits until they are sequenced and covered by a checkpoint.
    pub fn publish(&mut self, count: usize) -> u64 {
        let end = self
            .submissions
            .len()
            .min(self.published.saturating_add(count));
        let batch = &self.submissions[self.published..end];
        self.rt.block_on(async {
            for submission in batch {
                self.js
                    .send_publish(
                        submit_subject("depot"),
                        PublishMessage::build().payload(submission.bytes.clone()),
                    )
                    .await
                    .expect("queue")
                    .await
                    .expect("stored");
            }
            wait_for_ledger_size(&self.js, end as u64, &[&self.sequencer]).await;
            wait_for_checkpoint(&self.js, end as u64, &[&self.sequencer]).await;
        });
        self.published = end;
        end as u64
    }

    /// The views digest of a fold of the whole ledger, computed here from LEDGER.
    pub fn expected_digest(&self) -> (u64, String) {
        let trust = TrustRoot::parse_json(&self.keys.trust_root().to_json()).expect("trust");
        let mut fold = ViewFold::new(trust.origin.as_str(), &trust.ledger_authority_keys());
        self.rt
            .block_on(stockpile_nats::ledger::read_ledger(
                &self.js,
                0,
                |message| {
                    fold.apply(&message.entry)
                        .map_err(|error| anyhow::anyhow!("{error:?}"))?;
                    Ok(())
                },
            ))
            .expect("fold the ledger");
        (
            fold.entries(),
            stockpile_views::digest::views_digest(&fold).to_hex(),
        )
    }

    /// Creates replica `replica`'s consumer as admin with `stockpile-projector
    /// --create-consumer`, then starts the replica as the `projector` user.
    pub fn projector(&self, replica: &str, env: &[(&str, &str)]) -> LiveProjector {
        self.projector_with(replica, env, &["--state-name", "Republic of Testland"])
    }

    /// [`Live::projector`] with other arguments than the default State name.
    pub fn projector_with(
        &self,
        replica: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> LiveProjector {
        let (mut args, envs) = nats_args(&self.nats.config_for("admin"));
        args.extend([
            "--create-consumer".into(),
            "--replica".into(),
            replica.into(),
        ]);
        let mut create = Service::start(
            &format!("create-consumer-{replica}"),
            binary("stockpile-projector"),
            args,
            envs,
            self.dir.path(),
        );
        assert_eq!(
            create.wait_exit(Duration::from_secs(30)),
            Some(0),
            "{}",
            create.log_tail()
        );
        let store = self.dir.path().join(format!("views-{replica}"));
        let addr_file = self.dir.path().join(format!("projector-{replica}.addr"));
        let (mut args, mut envs) = nats_args(&self.nats.config_for("projector"));
        args.extend([
            "--replica".into(),
            replica.into(),
            "--addr-file".into(),
            addr_file.display().to_string(),
            "--trust".into(),
            self.trust.display().to_string(),
            "--store".into(),
            store.display().to_string(),
        ]);
        args.extend(extra.iter().map(|arg| arg.to_string()));
        envs.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let service = Service::start(
            &format!("projector-{replica}"),
            binary("stockpile-projector"),
            args,
            envs,
            self.dir.path(),
        );
        LiveProjector {
            service,
            addr_file,
            store,
        }
    }
}

pub struct LiveProjector {
    pub service: Service,
    pub addr_file: PathBuf,
    pub store: PathBuf,
}

impl LiveProjector {
    pub fn addr(&self) -> String {
        wait_for_addr_file(&self.addr_file, &self.service)
    }

    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = http(&self.addr(), "GET", path, None);
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {body}"));
        (status, value)
    }

    /// Waits until the views hold `entries` entries; returns the summary.
    pub fn wait_for_entries(&self, entries: u64) -> serde_json::Value {
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            // The address file is rewritten at each start: read it afresh.
            if let Ok(addr) = fs::read_to_string(&self.addr_file)
                && let Ok(stream) = std::net::TcpStream::connect(addr.trim())
            {
                drop(stream);
                let (status, summary) = self.get_json("/v1/summary");
                if status == 200 && summary["as_of"]["entries"] == entries {
                    return summary;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the projector did not reach {entries} entries:\n{}",
                self.service.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A figure from `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let (status, text) = http(&self.addr(), "GET", "/metrics", None);
        assert_eq!(status, 200, "{text}");
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|value| value.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }
}
