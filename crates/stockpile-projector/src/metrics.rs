//! The projector's Prometheus metrics, served at `/metrics`.
//!
//! Each projector owns its recorder (not the process-global one), so that several
//! projectors in one process — tests do that — keep their figures apart.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `stockpile_projector_applied_entries` | gauge | entries folded into the views |
//! | `stockpile_projector_ledger_entries` | gauge | entries in LEDGER when last looked at |
//! | `stockpile_projector_lag_entries` | gauge | the difference: how far the views are behind |
//! | `stockpile_projector_batch_entries` | histogram | entries per applied batch |
//! | `stockpile_projector_apply_seconds` | histogram | time to fold, write and flush a batch |
//! | `stockpile_projector_gap_entries_total` | counter | entries read by direct get because the consumer had skipped them |
//! | `stockpile_projector_checkpoints_verified` | gauge | signed checkpoints verified and held |
//! | `stockpile_projector_checkpoints_refused_total` | counter | checkpoints that did not verify |
//! | `stockpile_projector_rebuilds_total` | counter | rebuilds swapped in |
//! | `stockpile_projector_read_errors_total` | counter | failed reads of the ledger (NATS away) |

use std::time::Duration;

use metrics::{Recorder as _, with_local_recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const APPLIED: &str = "stockpile_projector_applied_entries";
const LEDGER: &str = "stockpile_projector_ledger_entries";
const LAG: &str = "stockpile_projector_lag_entries";
const BATCH: &str = "stockpile_projector_batch_entries";
const APPLY_SECONDS: &str = "stockpile_projector_apply_seconds";
const GAP: &str = "stockpile_projector_gap_entries_total";
const CHECKPOINTS_VERIFIED: &str = "stockpile_projector_checkpoints_verified";
const CHECKPOINTS_REFUSED: &str = "stockpile_projector_checkpoints_refused_total";
const REBUILDS: &str = "stockpile_projector_rebuilds_total";
const READ_ERRORS: &str = "stockpile_projector_read_errors_total";

/// Histogram buckets of batch sizes (entries), up to the batch limit.
const BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0];
/// Histogram buckets of batch apply times (seconds).
const APPLY_BUCKETS: &[f64] = &[0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// The recorder and its renderer.
pub struct ProjectorMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl ProjectorMetrics {
    pub fn new() -> ProjectorMetrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(BATCH.into()), BATCH_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Full(APPLY_SECONDS.into()), APPLY_BUCKETS)
            })
            // Constant, non-empty bucket lists: the builder cannot refuse them.
            .expect("valid histogram buckets")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = ProjectorMetrics { recorder, handle };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        let recorder = &self.recorder;
        for (name, help) in [
            (APPLIED, "entries folded into the views"),
            (LEDGER, "entries in LEDGER when last looked at"),
            (LAG, "ledger entries not yet in the views"),
            (CHECKPOINTS_VERIFIED, "signed checkpoints verified and held"),
        ] {
            recorder.describe_gauge(name.into(), None, help.into());
        }
        for (name, help) in [
            (GAP, "entries read by direct get that the consumer skipped"),
            (CHECKPOINTS_REFUSED, "checkpoints that did not verify"),
            (REBUILDS, "rebuilds swapped in"),
            (READ_ERRORS, "failed reads of the ledger"),
        ] {
            recorder.describe_counter(name.into(), None, help.into());
        }
        recorder.describe_histogram(BATCH.into(), None, "entries per applied batch".into());
        recorder.describe_histogram(
            APPLY_SECONDS.into(),
            Some(metrics::Unit::Seconds),
            "seconds to fold, write and flush a batch".into(),
        );
    }

    /// A batch of `entries` applied in `took`.
    pub fn batch_applied(&self, entries: u64, took: Duration) {
        with_local_recorder(&self.recorder, || {
            metrics::histogram!(BATCH).record(entries as f64);
            metrics::histogram!(APPLY_SECONDS).record(took.as_secs_f64());
        });
    }

    /// Where the views and the ledger stand.
    pub fn positions(&self, applied: u64, ledger: u64) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!(APPLIED).set(applied as f64);
            metrics::gauge!(LEDGER).set(ledger as f64);
            metrics::gauge!(LAG).set(ledger.saturating_sub(applied) as f64);
        });
    }

    pub fn gap_filled(&self, entries: u64) {
        with_local_recorder(&self.recorder, || metrics::counter!(GAP).increment(entries));
    }

    pub fn checkpoints_verified(&self, held: usize) {
        with_local_recorder(&self.recorder, || {
            metrics::gauge!(CHECKPOINTS_VERIFIED).set(held as f64);
        });
    }

    pub fn checkpoint_refused(&self) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!(CHECKPOINTS_REFUSED).increment(1);
        });
    }

    pub fn rebuilt(&self) {
        with_local_recorder(&self.recorder, || metrics::counter!(REBUILDS).increment(1));
    }

    pub fn read_failed(&self) {
        with_local_recorder(&self.recorder, || {
            metrics::counter!(READ_ERRORS).increment(1)
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

impl Default for ProjectorMetrics {
    fn default() -> Self {
        ProjectorMetrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_recorded_are_the_figures_rendered() {
        let metrics = ProjectorMetrics::new();
        metrics.positions(90, 100);
        metrics.batch_applied(64, Duration::from_millis(3));
        metrics.checkpoint_refused();
        let text = metrics.render();
        assert!(
            text.contains("stockpile_projector_lag_entries 10"),
            "{text}"
        );
        assert!(
            text.contains("stockpile_projector_applied_entries 90"),
            "{text}"
        );
        assert!(
            text.contains("stockpile_projector_batch_entries_bucket{le=\"64\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("stockpile_projector_checkpoints_refused_total 1"),
            "{text}"
        );
        // Another projector's recorder is separate.
        assert!(
            !ProjectorMetrics::new()
                .render()
                .contains("stockpile_projector_lag_entries 10")
        );
    }
}
