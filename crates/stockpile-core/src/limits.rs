//! Every bound of the system in one place, with the reason for it.
//!
//! Persisted and wire quantities use fixed-width integers. Units go last in names.

/// Largest serialized submission the sequencer accepts. Events are small records
/// (a destruction with many witnesses is a few KiB); the bound keeps one hostile message
/// from costing memory, and stays far below the NATS default payload limit of 1 MiB.
pub const SUBMISSION_BYTES_MAX: usize = 64 * 1024;

/// Largest serialized ledger entry: a submission plus the entry's own fields.
pub const ENTRY_BYTES_MAX: usize = SUBMISSION_BYTES_MAX + 4 * 1024;

/// Longest text field (names, reasons, justifications), in bytes.
pub const TEXT_BYTES_MAX: usize = 4 * 1024;

/// Longest identifier (event, lot, site, key ids...), in bytes.
pub const ID_BYTES_MAX: usize = 128;

/// Most entries of a repeated field in one event (witnesses, seals, counts, evidence).
/// An inventory of a large depot lists one count per lot; a few thousand lots fit.
pub const REPEATED_ITEMS_MAX: usize = 4096;

/// Most witnesses named on one destruction.
pub const WITNESSES_MAX: usize = 64;

/// Largest quantity in one event. The largest stockpiles ever declared are tens of
/// millions of units; the bound keeps sums of quantities far from u64 overflow.
pub const QUANTITY_MAX: u64 = 1_000_000_000_000;

/// Most hashes in an inclusion or consistency proof: a tree of u64 size is at most
/// 64 levels deep (transparency.md §2.3).
pub const PROOF_HASHES_MAX: usize = 64;

/// Most signature lines read from one signed note. C2SP signed-note requires accepting
/// at least 16; witnesses and key rotation rarely need more.
pub const NOTE_SIGNATURES_MAX: usize = 64;

/// Largest signed note (checkpoint with signatures) accepted, in bytes.
pub const NOTE_BYTES_MAX: usize = 16 * 1024;

/// Largest export record (an entry or a checkpoint), in bytes.
pub const EXPORT_RECORD_BYTES_MAX: usize = ENTRY_BYTES_MAX + 1024;

/// Latest Unix time in milliseconds any timestamp may carry: 9999-12-31T23:59:59.999Z,
/// the end of the calendar dates use. Beyond it date arithmetic would overflow, so a
/// hostile timestamp is refused at decoding rather than reaching the state machine.
pub const TIMESTAMP_MS_MAX: i64 = 253_402_300_799_999;

/// Tolerated gap between `occurred_at` and `recorded_at` before flag 20 ("long gap")
/// is raised: 30 days.
pub const RECORDING_GAP_FLAG_MS: i64 = 30 * 24 * 3600 * 1000;

/// Days a shipment may stay in transit before flag 12 is raised.
pub const TRANSIT_DAYS_MAX: i64 = 30;

/// Days after a destruction by which a certificate is expected (flag 18).
pub const CERTIFICATION_DAYS_MAX: i64 = 365;

/// Retained total above which flag 17 ("exceeds benchmark") is raised: the ICBL
/// considers hundreds, low thousands at most, defensible (domain.md §1.1).
pub const RETENTION_BENCHMARK_UNITS: u64 = 2_500;

/// Days within which discovered stock must be destroyed (flag 14): six months.
pub const DISCOVERED_DESTRUCTION_DAYS_MAX: i64 = 183;

/// Bytes of ids the compliance state keeps as text after their event: the id of every
/// closed shipment and of its receipt (about 40 bytes a shipment), which open
/// differences, messages and a second receipt's refusal name. Offsets into them are 32-bit
/// to keep the per-shipment record at 32 bytes (two values are reserved as markers), so
/// the state holds names of about 100 million shipments; past that it stops with an
/// assertion rather than mix up names.
pub const STATE_NAME_BYTES_MAX: u64 = u32::MAX as u64 - 1;

/// Findings kept verbatim by the verifier before it only counts them, so that a
/// thoroughly corrupted export cannot exhaust memory.
pub const FINDINGS_KEPT_MAX: usize = 10_000;

const _: () = assert!(ENTRY_BYTES_MAX > SUBMISSION_BYTES_MAX);
const _: () = assert!(EXPORT_RECORD_BYTES_MAX > ENTRY_BYTES_MAX);
const _: () = assert!(NOTE_SIGNATURES_MAX >= 16);
const _: () = assert!(WITNESSES_MAX <= REPEATED_ITEMS_MAX);
const _: () = assert!(QUANTITY_MAX.checked_mul(1 << 20).is_some());
const _: () = assert!(STATE_NAME_BYTES_MAX < u32::MAX as u64);
// Ten million shipments with the longest ids fit (two names each, each with a length of
// at most two bytes).
const _: () = assert!(STATE_NAME_BYTES_MAX > 10_000_000 * 2 * (ID_BYTES_MAX as u64 + 2));

/// Years after EIF by which Article 4 requires every stockpiled APM destroyed. The
/// Convention allows no extension (domain.md §1.1), so the deadline is fixed by the EIF.
pub const ARTICLE4_YEARS: i32 = 4;

/// Days after EIF by which the initial Article 7 report is due (domain.md §1.1); a
/// `RegimeConfigured` that states another date is refused.
pub const INITIAL_REPORT_DAYS: i64 = 180;

/// Years a retained total may stay unchanged, with no consumption, before flag 17: the
/// President engages with States that give no Article 3 information for two consecutive
/// years (domain.md §1.1).
pub const RETENTION_UNCHANGED_YEARS: i32 = 2;
