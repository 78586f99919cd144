//! (c) Ed25519 batch verification, (d) `stockpile verify` and its peak memory, (f)
//! inclusion proofs: the figures that need no server.

use crate::BenchContext;
use crate::report::{Report, section};

pub fn signatures(_report: &mut Report, _context: &BenchContext) -> anyhow::Result<()> {
    section("(c) Ed25519 batch verification, all cores");
    anyhow::bail!("not written yet")
}

pub fn verify(_report: &mut Report, _context: &BenchContext) -> anyhow::Result<()> {
    section("(d) stockpile verify on an export");
    anyhow::bail!("not written yet")
}

pub fn proofs(_report: &mut Report, _context: &BenchContext) -> anyhow::Result<()> {
    section("(f) inclusion-proof generation");
    anyhow::bail!("not written yet")
}
