//! The read model of the stockpile ledger: compliance views, the Article 7 report and a
//! canonical digest of the views, all computed from ledger entries folded in order.
//!
//! Pure, like `stockpile-core`: no I/O, no clock, no network, no database. A projector
//! service reads entries from the ledger, hands their bytes to [`fold::ViewFold::apply`],
//! and persists and serves what the functions here compute; the verifier's fold of the
//! same entries gives the same compliance state, and [`digest::views_digest`] lets an
//! incrementally maintained view be compared with a rebuild.
//!
//! # Layout
//! - [`fold`]: [`fold::ViewFold`], the chain-checked fold of entries into the
//!   compliance state and the records the views need beyond it (lot histories, refused
//!   transfers, destructions, consumption, flags…).
//! - [`views`]: the serializable views of domain.md §5 (stockpile, lot, retained,
//!   destruction progress, transfer register, in transit, material balance, flags), each
//!   naming the ledger position it reflects.
//! - [`article7`]: the Article 7 report for a calendar year (cover page, Forms B, D, F,
//!   G, H) and its JSON, CSV and HTML renderings.
//! - [`digest`]: the canonical JSON encoding and the SHA-256 digest of all views at a
//!   position.
//! - [`query`]: views by name and the answer to a query (shared by the projector's API
//!   and `stockpile query`).
//! - [`series`]: time series for charts (held stock over time, destruction since EIF
//!   against the Article 4 deadline), bounded in length.
//! - [`render`]: CSV and HTML escaping shared by the renderings (and the dashboard).
//!
//! # Invariants
//! - Nothing here reads a clock: "today" is a parameter, or the date of the last entry
//!   folded.
//! - Views are computed from the fold alone; a view as of an earlier index is a fold
//!   stopped there (see [`fold`] on snapshots).
//! - No floating-point number appears in a view, so the canonical encoding is exact.

pub mod article7;
pub mod digest;
pub mod fold;
pub mod query;
pub mod render;
pub mod series;
pub mod views;
