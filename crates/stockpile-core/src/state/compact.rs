//! Compact storage for what the state keeps per lot, site, shipment and event.
//!
//! The state is a streaming fold: its memory must follow the number of lots, sites and
//! institutions, not the length of the ledger. Where the domain forces it to remember
//! something of every event (an event id a correction may name, a shipment id a receipt
//! may name), it keeps a small fixed-size record and no `String`:
//!
//! - [`Fingerprint`]: the first 128 bits of SHA-256 of an id. Event ids, shipment ids and
//!   certificate ids are remembered by fingerprint only. Two of n different ids share a
//!   fingerprint with probability about n² / 2¹²⁹: 10⁻²¹ for a billion ids. Such a
//!   collision would make the second id look like a duplicate (and be refused) or make a
//!   reference to it resolve to the other event; it is treated as impossible.
//! - Handles ([`LotIx`], [`SiteIx`], [`InstIx`], [`ShipIx`]): 32-bit indices into the
//!   interned tables, in the order the state first accepted each id.
//! - [`Table`]: id → handle → item, for lots, sites and institutions (a few hundred).
//! - [`FpMap`]: fingerprint → small `Copy` value, kept as one sorted array plus a small
//!   map of recent insertions, merged from time to time: about the size of an entry per
//!   entry, where a `BTreeMap` costs about 1.6 times that.
//! - [`Names`]: an arena of ids that must stay printable after their event (the id of a
//!   closed shipment and of its receipt): a length byte plus the id's bytes each.

use crate::limits::STATE_NAME_BYTES_MAX;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Index;

/// The first 128 bits of SHA-256 of an id, as four big-endian words, so that the derived
/// order is the numeric order and the first word spreads uniformly.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fingerprint([u32; 4]);

/// Hashes as its first 64 bits, which are as uniform as any hash of them would be.
impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from(self.0[0]) << 32 | u64::from(self.0[1]));
    }
}

/// A hasher for fingerprints only: it keeps the 64 bits a [`Fingerprint`] writes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, bits: u64) {
        self.0 = bits;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Fingerprint`; folds anything else in rather than ignore it.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }
}

impl Fingerprint {
    pub fn of(id: &str) -> Fingerprint {
        let digest = Sha256::digest(id.as_bytes());
        let word = |i: usize| {
            u32::from_be_bytes([
                digest[4 * i],
                digest[4 * i + 1],
                digest[4 * i + 2],
                digest[4 * i + 3],
            ])
        };
        Fingerprint([word(0), word(1), word(2), word(3)])
    }

    /// The 16 bytes: the first 16 bytes of SHA-256 of the id.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(self.0) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        bytes
    }

    /// The top `bits` bits (at most 32) of the fingerprint.
    fn top(&self, bits: u32) -> usize {
        debug_assert!(bits <= 32);
        (u64::from(self.0[0]) >> (32 - bits)) as usize
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:08x}{b:08x}{c:08x}{d:08x}")
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(super) struct $name(pub(super) u32);
    };
}

handle!(
    /// A declared lot: an index into the state's lot table.
    LotIx
);
handle!(
    /// A registered site.
    SiteIx
);
handle!(
    /// An authorised institution.
    InstIx
);
handle!(
    /// A shipment, open or closed: an index into the shipment records.
    ShipIx
);

/// Converts a length into a 32-bit handle; tables of lots, sites or shipments never come
/// near 4 billion entries (a ledger has fewer events than that, by far).
pub(super) fn handle_of(len: usize) -> u32 {
    u32::try_from(len).expect("a state table holds fewer than 2^32 entries")
}

/// Most spare capacity, as a fraction of the length, that [`reserve_tight`] leaves in a
/// vector that grows with the ledger.
const SPARE_FRACTION: usize = 8;
/// Smallest growth step, in elements.
const GROWTH_MIN: usize = 64;

/// Makes room for `additional` more elements, growing by 1/`SPARE_FRACTION` of the length
/// at a time instead of doubling: the records kept per shipment or event then cost about
/// their size, not up to twice it. Each step may copy the vector, which adds up to
/// `SPARE_FRACTION` + 1 copies of every element over its life.
pub(super) fn reserve_tight<T>(items: &mut Vec<T>, additional: usize) {
    if items.capacity() - items.len() < additional {
        let step = (items.len() / SPARE_FRACTION).max(GROWTH_MIN);
        items.reserve_exact(additional.max(step));
    }
}

/// Id → handle → item, for the few hundred lots, sites and institutions. Iteration is
/// in id order; handles follow the order of insertion.
#[derive(Clone, PartialEq, Eq)]
pub struct Table<T> {
    by_id: BTreeMap<String, u32>,
    ids: Vec<String>,
    items: Vec<T>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            by_id: BTreeMap::new(),
            ids: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id).map(|ix| &self.items[*ix as usize])
    }

    /// Every item with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.by_id
            .iter()
            .map(|(id, ix)| (id.as_str(), &self.items[*ix as usize]))
    }

    /// Every item with its id and handle, in id order.
    pub(super) fn iter_with_ix(&self) -> impl Iterator<Item = (&str, u32, &T)> {
        self.by_id
            .iter()
            .map(|(id, ix)| (id.as_str(), *ix, &self.items[*ix as usize]))
    }

    pub(super) fn ix(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Adds `item` under a new id and returns its handle.
    pub(super) fn insert(&mut self, id: &str, item: T) -> u32 {
        let ix = handle_of(self.items.len());
        let previous = self.by_id.insert(id.to_string(), ix);
        assert!(previous.is_none(), "id {id:?} interned twice");
        self.ids.push(id.to_string());
        self.items.push(item);
        ix
    }

    pub(super) fn at(&self, ix: u32) -> &T {
        &self.items[ix as usize]
    }

    pub(super) fn at_mut(&mut self, ix: u32) -> &mut T {
        &mut self.items[ix as usize]
    }

    /// The item at `ix`, if the handle is taken (a handle planned for a new item is not).
    pub(super) fn try_at(&self, ix: u32) -> Option<&T> {
        self.items.get(ix as usize)
    }

    pub(super) fn id(&self, ix: u32) -> &str {
        &self.ids[ix as usize]
    }

    /// Every item with its handle, in handle order.
    pub(super) fn items(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items
            .iter()
            .enumerate()
            .map(|(ix, item)| (ix as u32, item))
    }

    /// The handle the next insertion will get.
    pub(super) fn next_ix(&self) -> u32 {
        handle_of(self.items.len())
    }
}

impl<T> Index<&str> for Table<T> {
    type Output = T;

    fn index(&self, id: &str) -> &T {
        self.get(id)
            .unwrap_or_else(|| panic!("no entry for id {id:?}"))
    }
}

/// Items in handle order, each with its id.
impl<T: fmt::Debug> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.ids.iter().zip(&self.items))
            .finish()
    }
}

/// Recent insertions kept aside before a merge, at least...
const RECENT_MIN: usize = 4096;
/// ...and at most this fraction of the sorted part: merging costs the size of the sorted
/// part, so every entry is moved about `RECENT_SHARE` times in all.
const RECENT_SHARE: usize = 16;
/// Entries per directory slot, on average, after a merge.
const RUN_ENTRIES: usize = 8;
/// Most directory bits: 2^24 slots, enough for 128 million entries at `RUN_ENTRIES`.
const DIRECTORY_BITS_MAX: u32 = 24;

/// Fingerprint → small value, insert-only, for the records kept of every event or
/// shipment: one sorted array (an entry's own size per entry, no pointers), a directory
/// on the top bits of the fingerprint that narrows a lookup to a few entries, and a hash
/// map of recent insertions that is merged into the array once it reaches
/// 1/`RECENT_SHARE` of it.
#[derive(Clone)]
pub(crate) struct FpMap<V> {
    sorted: Vec<(Fingerprint, V)>,
    /// `sorted[directory[b]..directory[b + 1]]` holds the entries whose top `bits` bits are
    /// `b`.
    directory: Vec<u32>,
    bits: u32,
    /// Recent insertions. Its capacity is kept across merges.
    recent: HashMap<Fingerprint, V, BuildHasherDefault<FingerprintHasher>>,
}

impl<V> Default for FpMap<V> {
    fn default() -> Self {
        FpMap {
            sorted: Vec::new(),
            directory: vec![0, 0],
            bits: 0,
            recent: HashMap::default(),
        }
    }
}

impl<V: Copy> FpMap<V> {
    pub(crate) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub(crate) fn get(&self, fp: &Fingerprint) -> Option<V> {
        let slot = fp.top(self.bits);
        let run = &self.sorted[self.directory[slot] as usize..self.directory[slot + 1] as usize];
        if let Ok(at) = run.binary_search_by(|(key, _)| key.cmp(fp)) {
            return Some(run[at].1);
        }
        self.recent.get(fp).copied()
    }

    pub(crate) fn contains_key(&self, fp: &Fingerprint) -> bool {
        self.get(fp).is_some()
    }

    /// Inserts a fingerprint that is not in the map yet (callers look it up first).
    pub(crate) fn insert(&mut self, fp: Fingerprint, value: V) {
        debug_assert!(!self.contains_key(&fp), "fingerprint inserted twice");
        self.recent.insert(fp, value);
        if self.recent.len() >= RECENT_MIN.max(self.sorted.len() / RECENT_SHARE) {
            self.merge();
        }
    }

    /// The recent insertions, in fingerprint order.
    fn recent_sorted(&self) -> Vec<(Fingerprint, V)> {
        let mut recent: Vec<(Fingerprint, V)> = self.recent.iter().map(|(k, v)| (*k, *v)).collect();
        recent.sort_unstable_by_key(|(fp, _)| *fp);
        recent
    }

    /// Merges the recent insertions into the sorted array, in place from the back.
    fn merge(&mut self) {
        let recent = self.recent_sorted();
        self.recent.clear();
        let old = self.sorted.len();
        reserve_tight(&mut self.sorted, recent.len());
        self.sorted.extend_from_slice(&recent);
        let (mut i, mut j, mut k) = (old, recent.len(), self.sorted.len());
        while j > 0 {
            k -= 1;
            if i > 0 && self.sorted[i - 1].0 > recent[j - 1].0 {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = recent[j - 1];
                j -= 1;
            }
        }
        let len = handle_of(self.sorted.len());
        let mut bits = 0;
        while bits < DIRECTORY_BITS_MAX && (self.sorted.len() >> (bits + 1)) >= RUN_ENTRIES {
            bits += 1;
        }
        self.bits = bits;
        self.directory.clear();
        let mut at = 0usize;
        for slot in 0..1usize << bits {
            while at < self.sorted.len() && self.sorted[at].0.top(bits) < slot {
                at += 1;
            }
            self.directory.push(at as u32);
        }
        self.directory.push(len);
    }

    /// Every entry in fingerprint order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Fingerprint, V)> + '_ {
        let mut sorted = self.sorted.iter().copied().peekable();
        let mut recent = self.recent_sorted().into_iter().peekable();
        std::iter::from_fn(move || match (sorted.peek(), recent.peek()) {
            (Some(a), Some(b)) if a.0 < b.0 => sorted.next(),
            (Some(_), Some(_)) | (None, Some(_)) => recent.next(),
            (Some(_), None) => sorted.next(),
            (None, None) => None,
        })
    }
}

/// The entries in fingerprint order, whichever part holds them.
impl<V: Copy + fmt::Debug> fmt::Debug for FpMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Where an id starts in [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NameRef(pub(super) u32);

/// An append-only arena of ids kept as text: each a LEB128 length, then its UTF-8 bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub(super) struct Names {
    bytes: Vec<u8>,
}

impl Names {
    pub(super) fn push(&mut self, name: &str) -> NameRef {
        let at = self.bytes.len() as u64;
        assert!(
            at < STATE_NAME_BYTES_MAX,
            "the state keeps at most {STATE_NAME_BYTES_MAX} bytes of shipment names"
        );
        reserve_tight(&mut self.bytes, name.len() + 10);
        let mut len = name.len();
        loop {
            let low = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                self.bytes.push(low);
                break;
            }
            self.bytes.push(low | 0x80);
        }
        self.bytes.extend_from_slice(name.as_bytes());
        NameRef(at as u32)
    }

    pub(super) fn get(&self, name: NameRef) -> &str {
        self.read(name.0 as usize).0
    }

    /// The name at byte `at` and where the next one starts.
    fn read(&self, mut at: usize) -> (&str, usize) {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let byte = self.bytes[at];
            at += 1;
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let text = std::str::from_utf8(&self.bytes[at..at + len])
            .expect("names are pushed as str and read at their start");
        (text, at + len)
    }
}

/// The names in the order they were kept.
impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut at = 0;
        while at < self.bytes.len() {
            let (name, next) = self.read(at);
            list.entry(&name);
            at = next;
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_first_16_bytes_of_sha256() {
        let fp = Fingerprint::of("SYN-US-EV-00000001");
        let digest = Sha256::digest(b"SYN-US-EV-00000001");
        assert_eq!(fp.to_bytes()[..], digest[..16]);
        assert_eq!(format!("{fp:?}"), hex::encode(&digest[..16]));
    }

    #[test]
    fn an_fp_map_finds_every_key_across_merges_and_iterates_in_order() {
        let mut map = FpMap::default();
        let count = 3 * RECENT_MIN * RECENT_SHARE / 2;
        for i in 0..count {
            let fp = Fingerprint::of(&format!("id-{i}"));
            assert!(!map.contains_key(&fp));
            map.insert(fp, i as u32);
        }
        assert_eq!(map.len(), count);
        for i in (0..count).step_by(7) {
            assert_eq!(
                map.get(&Fingerprint::of(&format!("id-{i}"))),
                Some(i as u32)
            );
        }
        assert_eq!(map.get(&Fingerprint::of("absent")), None);
        let keys: Vec<Fingerprint> = map.iter().map(|(fp, _)| fp).collect();
        assert_eq!(keys.len(), count);
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(map.bits > 0 && map.sorted.len() > count / 2);
    }

    #[test]
    fn names_come_back_as_pushed() {
        let mut names = Names::default();
        let long = "x".repeat(300);
        let refs: Vec<NameRef> = ["", "SYN-US-SHP-000001", &long, "é"]
            .iter()
            .map(|name| names.push(name))
            .collect();
        assert_eq!(names.get(refs[1]), "SYN-US-SHP-000001");
        assert_eq!(names.get(refs[2]), long);
        assert_eq!(names.get(refs[3]), "é");
        assert_eq!(names.get(refs[0]), "");
        assert_eq!(format!("{names:?}").matches(", ").count(), 3);
    }
}
