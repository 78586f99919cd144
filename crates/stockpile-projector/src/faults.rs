//! Crash injection for the tests that prove a crash anywhere leaves a view that catches
//! up exactly: the projector aborts (no unwinding, no flush, no goodbye to NATS) at a
//! named point of its N-th batch.
//!
//! Set by the environment variable [`CRASH_VARIABLE`] as `<point>@<batch>`, e.g.
//! `after-write@3`. Unset in production; reading it costs one lookup at start-up.

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable holding the crash plan.
pub const CRASH_VARIABLE: &str = "STOCKPILE_PROJECTOR_CRASH";

/// Where in the handling of a batch to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The batch is committed in sled's memory, not flushed, not acknowledged.
    AfterWrite,
    /// The batch is committed and acknowledged to the consumer, but not flushed: the
    /// consumer is ahead of the store (the window a wrong order of steps would open).
    AfterAckBeforeFlush,
    /// Committed and flushed, not acknowledged: the batch will be delivered again.
    AfterFlush,
    /// Committed, flushed and acknowledged.
    AfterAck,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 4] = [
        CrashPoint::AfterWrite,
        CrashPoint::AfterAckBeforeFlush,
        CrashPoint::AfterFlush,
        CrashPoint::AfterAck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterWrite => "after-write",
            CrashPoint::AfterAckBeforeFlush => "after-ack-before-flush",
            CrashPoint::AfterFlush => "after-flush",
            CrashPoint::AfterAck => "after-ack",
        }
    }
}

/// Abort at `point` of batch number `batch` (1-based, counting batches applied since
/// start-up).
#[derive(Debug)]
pub struct CrashPlan {
    pub point: CrashPoint,
    pub batch: u64,
    applied: AtomicU64,
}

impl CrashPlan {
    /// The plan in [`CRASH_VARIABLE`], if any; a malformed value is an error, not ignored.
    pub fn from_env() -> anyhow::Result<Option<CrashPlan>> {
        match std::env::var(CRASH_VARIABLE) {
            Ok(value) => CrashPlan::parse(&value).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(error) => anyhow::bail!("{CRASH_VARIABLE}: {error}"),
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<CrashPlan> {
        let (point, batch) = text
            .split_once('@')
            .ok_or_else(|| anyhow::anyhow!("{CRASH_VARIABLE} must be <point>@<batch>"))?;
        let point = CrashPoint::ALL
            .into_iter()
            .find(|known| known.name() == point)
            .ok_or_else(|| {
                let names: Vec<&str> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
                anyhow::anyhow!("{CRASH_VARIABLE}: unknown point {point:?}; points: {names:?}")
            })?;
        let batch = batch
            .parse()
            .ok()
            .filter(|batch| *batch > 0)
            .ok_or_else(|| anyhow::anyhow!("{CRASH_VARIABLE}: batch must be a number from 1"))?;
        Ok(CrashPlan {
            point,
            batch,
            applied: AtomicU64::new(0),
        })
    }

    /// Counts a batch applied.
    pub fn batch_applied(&self) {
        self.applied.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the plan says to stop at `point` now.
    pub fn due(&self, point: CrashPoint) -> bool {
        self.point == point && self.applied.load(Ordering::SeqCst) == self.batch
    }

    /// Aborts the process if due at `point`.
    pub fn at(&self, point: CrashPoint) {
        if self.due(point) {
            eprintln!("stockpile-projector: crash injected {}", point.name());
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_bad_ones_are_refused() {
        let plan = CrashPlan::parse("after-flush@2").unwrap();
        assert_eq!((plan.point, plan.batch), (CrashPoint::AfterFlush, 2));
        plan.batch_applied();
        assert!(!plan.due(CrashPoint::AfterFlush));
        plan.batch_applied();
        assert!(plan.due(CrashPoint::AfterFlush));
        assert!(!plan.due(CrashPoint::AfterAck));
        for bad in ["after-flush", "nowhere@1", "after-ack@0", "after-ack@x"] {
            assert!(CrashPlan::parse(bad).is_err(), "{bad}");
        }
    }
}
