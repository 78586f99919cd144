//! (a) raw JetStream async publish of submission-sized messages: the store's limit that
//! end-to-end ingest is compared with.

use crate::BenchContext;
use crate::report::{Report, section};

pub async fn run(_report: &mut Report, _context: &BenchContext) -> anyhow::Result<()> {
    section("(a) raw JetStream async publish");
    anyhow::bail!("not written yet")
}
