//! (b) end-to-end ingest: emitter SDK → SUBMISSIONS → sequencer → LEDGER, acknowledged.

use crate::BenchContext;
use crate::report::{Report, section};

pub async fn run(_report: &mut Report, _context: &BenchContext) -> anyhow::Result<()> {
    section("(b) end-to-end ingest");
    anyhow::bail!("not written yet")
}
