//! (e) a projection rebuild and (g) query latency under load, against a real
//! nats-server and projector.

use crate::BenchContext;
use crate::report::{Report, section};

pub async fn rebuild(_report: &mut Report, _context: &BenchContext) -> anyhow::Result<()> {
    section("(e) projection rebuild");
    anyhow::bail!("not written yet")
}

pub async fn queries(_report: &mut Report, _context: &BenchContext) -> anyhow::Result<()> {
    section("(g) query latency under load");
    anyhow::bail!("not written yet")
}
