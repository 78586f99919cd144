//! RFC 6962 Merkle tree hashing, streaming roots, and inclusion and consistency proofs.
//!
//! The ledger's leaves are the exact stored entry bytes; the tree over them is the RFC 6962
//! tree (restated by RFC 9162), so C2SP checkpoints, witnesses and offline proofs work
//! unchanged. This module holds only the math: it takes hashes and returns hashes or typed
//! verdicts, with no storage behind it.
//!
//! - [`leaf_hash`], [`node_hash`], [`EMPTY_ROOT`]: the hashes, with distinct prefixes so a
//!   leaf can never pass for an interior node.
//! - [`CompactRange`]: the root of a growing tree in O(log n) memory, for a verifier that
//!   streams millions of entries.
//! - [`MerkleTree`]: an in-memory tree that answers roots and proofs for any past size in
//!   O(log n) hash operations.
//! - [`verify_inclusion`], [`verify_consistency`]: RFC 9162 §2.1.3.2 and §2.1.4.2, with every
//!   edge case of transparency.md §2.3 rejected.

use crate::hash::Hash32;
use crate::limits::PROOF_HASHES_MAX;

/// Prefix of a leaf hash (RFC 6962 §2.1).
pub const LEAF_HASH_PREFIX: u8 = 0x00;

/// Prefix of an interior node hash (RFC 6962 §2.1).
pub const NODE_HASH_PREFIX: u8 = 0x01;

/// Root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash32 = Hash32([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// A tree of `u64` size is at most 64 levels tall; this bounds every walk over levels.
const LEVELS_MAX: usize = 64;

/// Root of the empty tree (same as [`EMPTY_ROOT`]).
pub fn empty_root() -> Hash32 {
    EMPTY_ROOT
}

/// `SHA-256(0x00 ‖ data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    Hash32::digest_parts(&[&[LEAF_HASH_PREFIX], data])
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    hash_children(left.as_bytes(), right.as_bytes())
}

/// The node hash over children of any length; the RFC 6962 test vectors use short ones.
fn hash_children(left: &[u8], right: &[u8]) -> Hash32 {
    Hash32::digest_parts(&[&[NODE_HASH_PREFIX], left, right])
}

/// Largest power of two strictly less than `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    /// More proof hashes than any `u64`-sized tree can need.
    #[error("proof has {len} hashes, more than the limit of {max}")]
    ProofTooLarge { len: usize, max: usize },
    /// The proof has hashes left over once the path reached the root.
    #[error("proof of {len} hashes is too long for these sizes")]
    ProofTooLong { len: usize },
    /// The proof ended before the path reached the root.
    #[error("proof of {len} hashes is too short for these sizes")]
    ProofTooShort { len: usize },
    /// The proof leads to a different (new, or only) root than the one given.
    #[error("root mismatch: expected {expected}, computed {computed}")]
    RootMismatch { expected: Hash32, computed: Hash32 },
    /// A consistency proof leads to a different old root than the one given.
    #[error("old root mismatch: expected {expected}, computed {computed}")]
    OldRootMismatch { expected: Hash32, computed: Hash32 },
    /// Consistency from size 0: an empty tree is a prefix of anything, so a proof library
    /// that accepted it would accept an empty proof for any sizes (transparency-dev PR #140).
    #[error("consistency proofs from an empty tree are not accepted")]
    ConsistencyFromEmpty,
    /// The old size is larger than the new one.
    #[error("old size {first} is larger than new size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    /// Equal sizes take an empty proof (RFC 9162).
    #[error("equal sizes {size} need an empty proof, got {len} hashes")]
    EqualSizesNonEmptyProof { size: u64, len: usize },
    /// Equal sizes with different roots: the log forked.
    #[error("equal sizes {size} with different roots {first_root} and {second_root}")]
    EqualSizesDifferentRoots {
        size: u64,
        first_root: Hash32,
        second_root: Hash32,
    },
    /// Different sizes and no proof at all.
    #[error("empty consistency proof between different sizes {first} and {second}")]
    EmptyProof { first: u64, second: u64 },
}

/// Checks that `leaf_hash` is at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2; transparency.md §2.1).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash32,
    proof: &[Hash32],
    root: &Hash32,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    if proof.len() > PROOF_HASHES_MAX {
        return Err(ProofError::ProofTooLarge {
            len: proof.len(),
            max: PROOF_HASHES_MAX,
        });
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if s == 0 {
            return Err(ProofError::ProofTooLong { len: proof.len() });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            // Right-edge nodes with no sibling are promoted: skip those levels. The loop
            // stops at f == 0, so a hostile input cannot make it spin (transparency.md §2.3).
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    // Without this, a proof could verify for several sizes (certificate-transparency-rfcs #100).
    if s != 0 {
        return Err(ProofError::ProofTooShort { len: proof.len() });
    }
    if r != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed: r,
        });
    }
    Ok(())
}

/// Checks that the tree of `size1` leaves with root `root1` is a prefix of the tree of
/// `size2` leaves with root `root2` (RFC 9162 §2.1.4.2; transparency.md §2.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash32,
    root2: &Hash32,
    proof: &[Hash32],
) -> Result<(), ProofError> {
    if size1 == 0 {
        return Err(ProofError::ConsistencyFromEmpty);
    }
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder {
            first: size1,
            second: size2,
        });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::EqualSizesNonEmptyProof {
                size: size1,
                len: proof.len(),
            });
        }
        if root1 != root2 {
            return Err(ProofError::EqualSizesDifferentRoots {
                size: size1,
                first_root: *root1,
                second_root: *root2,
            });
        }
        return Ok(());
    }
    if proof.len() > PROOF_HASHES_MAX {
        return Err(ProofError::ProofTooLarge {
            len: proof.len(),
            max: PROOF_HASHES_MAX,
        });
    }
    // RFC 9162 step 1: with different sizes an empty proof never verifies, even when the
    // prepended root1 would make the path non-empty (certificate-transparency-rfcs #326).
    let Some((first, tail)) = proof.split_first() else {
        return Err(ProofError::EmptyProof {
            first: size1,
            second: size2,
        });
    };
    // When size1 is a power of two the old tree is one complete subtree of the new one, so
    // the proof omits its root and the verifier puts `root1` in front.
    let (start, rest) = if size1.is_power_of_two() {
        (*root1, proof)
    } else {
        (*first, tail)
    };
    let mut f = size1 - 1;
    let mut s = size2 - 1;
    // Skip the levels where the old tree's last node is a right child; f becomes even within
    // 64 shifts.
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = start;
    let mut sr = start;
    for c in rest {
        if s == 0 {
            return Err(ProofError::ProofTooLong { len: proof.len() });
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::ProofTooShort { len: proof.len() });
    }
    if fr != *root1 {
        return Err(ProofError::OldRootMismatch {
            expected: *root1,
            computed: fr,
        });
    }
    if sr != *root2 {
        return Err(ProofError::RootMismatch {
            expected: *root2,
            computed: sr,
        });
    }
    Ok(())
}

/// Why a tree could not answer a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The requested size is larger than the tree.
    #[error("size {size} is beyond the tree's {tree_size} leaves")]
    SizeBeyondTree { size: u64, tree_size: u64 },
    /// The leaf index is not below the requested size.
    #[error("leaf index {index} is not below size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    /// Consistency proofs start at size 1 (see [`ProofError::ConsistencyFromEmpty`]).
    #[error("no consistency proof from an empty tree")]
    ConsistencyFromEmpty,
    /// The old size is larger than the new one.
    #[error("old size {first} is larger than new size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    /// A saved compact range whose node count does not match its size.
    #[error("compact range of size {size} needs {expected} nodes, got {found}")]
    CompactRangeShape {
        size: u64,
        expected: usize,
        found: usize,
    },
}

/// The root of a growing tree, kept in O(log n) memory.
///
/// Holds the roots of the complete subtrees that cover the leaves so far, one per set bit
/// of the size, largest (leftmost) first. Pushing a leaf merges equal-sized subtrees like a
/// binary counter carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<Hash32>,
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// Rebuilds a range saved with [`CompactRange::size`] and [`CompactRange::nodes`].
    pub fn from_parts(size: u64, nodes: Vec<Hash32>) -> Result<CompactRange, TreeError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(TreeError::CompactRangeShape {
                size,
                expected,
                found: nodes.len(),
            });
        }
        Ok(CompactRange { size, nodes })
    }

    /// Number of leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Roots of the complete subtrees covering the leaves, largest first.
    pub fn nodes(&self) -> &[Hash32] {
        &self.nodes
    }

    /// Appends the leaf with hash `leaf_hash`.
    pub fn push(&mut self, leaf_hash: Hash32) {
        // Reaching 2^64 leaves would take 2^64 hash operations; this is not an input case.
        assert!(self.size < u64::MAX, "compact range is full");
        let mut node = leaf_hash;
        let mut carry = self.size;
        while carry & 1 == 1 {
            // Invariant: one node per set bit of size, so a set bit has its node.
            let Some(left) = self.nodes.pop() else {
                unreachable!("compact range lost a node for size {}", self.size)
            };
            node = node_hash(&left, &node);
            carry >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// Root of the tree of the leaves pushed so far.
    pub fn root(&self) -> Hash32 {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return EMPTY_ROOT;
        };
        // Subtrees shrink left to right, so folding from the right rebuilds the RFC 6962
        // split: each left subtree is the largest power of two below the remaining size.
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// An in-memory tree that answers roots and proofs for any size up to its own.
///
/// `levels[h][i]` is the root of the complete subtree over leaves `i·2^h .. (i+1)·2^h`;
/// level 0 holds the leaf hashes. That is about two hashes (64 bytes) per leaf, and lets
/// every root, audit path and consistency proof be assembled from O(log n) stored nodes
/// plus at most one incomplete right-edge subtree, so O(log n) hash operations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash32>>,
}

impl MerkleTree {
    /// The empty tree.
    pub fn new() -> MerkleTree {
        MerkleTree::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Hash of the leaf at `index`, if present.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash32> {
        let leaves = self.levels.first()?;
        usize::try_from(index)
            .ok()
            .and_then(|i| leaves.get(i))
            .copied()
    }

    /// Appends a leaf by its hash and returns its index.
    pub fn push(&mut self, leaf_hash: Hash32) -> u64 {
        let index = self.size();
        let mut node = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(node);
            // An odd count means the new node has no right sibling yet: nothing completes.
            if nodes.len() % 2 == 1 {
                break;
            }
            node = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            level += 1;
        }
        index
    }

    /// Appends a leaf by its data (hashed with [`leaf_hash`]) and returns its index.
    pub fn push_data(&mut self, data: &[u8]) -> u64 {
        self.push(leaf_hash(data))
    }

    /// Root of the current tree.
    pub fn root(&self) -> Hash32 {
        self.range_hash(0, self.size())
    }

    /// Root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash32, TreeError> {
        self.check_size(size)?;
        Ok(self.range_hash(0, size))
    }

    /// Audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962 §2.1.1),
    /// from the leaf's sibling up to the root's child.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexBeyondSize { index, size });
        }
        // Walk down from the root over the subtree [lo, hi) holding the leaf, taking the
        // other half at each split. Each step at least halves the power of two of the split,
        // so there are at most 64 steps.
        let mut path = Vec::new();
        let (mut lo, mut hi) = (0, size);
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if index < lo + k {
                path.push(self.range_hash(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.range_hash(lo, lo + k));
                lo += k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// Consistency proof from the first `size1` leaves to the first `size2` (RFC 6962
    /// §2.1.2); empty when the sizes are equal.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash32>, TreeError> {
        self.check_size(size2)?;
        if size1 == 0 {
            return Err(TreeError::ConsistencyFromEmpty);
        }
        if size1 > size2 {
            return Err(TreeError::SizesOutOfOrder {
                first: size1,
                second: size2,
            });
        }
        // SUBPROOF(m, D[lo:hi], whole), unrolled: lo < size1 ≤ hi holds throughout, and
        // `whole` says the subtree is still the whole old tree, whose root the verifier has.
        let mut path = Vec::new();
        let (mut lo, mut hi) = (0, size2);
        let mut whole = true;
        while size1 != hi {
            let k = split_point(hi - lo);
            if size1 <= lo + k {
                path.push(self.range_hash(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.range_hash(lo, lo + k));
                lo += k;
                whole = false;
            }
        }
        if !whole {
            path.push(self.range_hash(lo, hi));
        }
        path.reverse();
        Ok(path)
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        let tree_size = self.size();
        if size > tree_size {
            return Err(TreeError::SizeBeyondTree { size, tree_size });
        }
        Ok(())
    }

    /// MTH of leaves `start..end`, where `start` is a multiple of the largest power of two
    /// not above `end - start`, as every subtree of the RFC 6962 recursion is.
    ///
    /// Such a range splits into complete, aligned subtrees of decreasing size, one per set
    /// bit of its length, each stored in `levels`; folding them from the right gives the
    /// RFC 6962 hash.
    fn range_hash(&self, start: u64, end: u64) -> Hash32 {
        let len = end - start;
        if len == 0 {
            return EMPTY_ROOT;
        }
        debug_assert!(start.is_multiple_of(1 << (63 - len.leading_zeros())));
        let mut parts = [Hash32::ZERO; LEVELS_MAX];
        let mut count = 0;
        let mut offset = start;
        for level in (0..LEVELS_MAX).rev() {
            let width = 1u64 << level;
            if len & width != 0 {
                // In bounds: start..end is within the tree, and the subtree is complete.
                parts[count] = self.levels[level][(offset >> level) as usize];
                count += 1;
                offset += width;
            }
        }
        let mut parts = parts[..count].iter().rev();
        let Some(last) = parts.next() else {
            unreachable!("a non-empty range has at least one subtree")
        };
        parts.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    /// transparency.md §5.1: leaf inputs 0..7 of the reference tree.
    const LEAF_INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// transparency.md §5.1: roots for sizes 0..=8, hex and base64.
    const ROOTS: [(&str, &str); 9] = [
        (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        ),
        (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
        ),
        (
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
        ),
        (
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc=",
        ),
        (
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ),
        (
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
        ),
        (
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
        ),
        (
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=",
        ),
        (
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
        ),
    ];

    /// transparency.md §5.1 `NodeHashes()`, level by level.
    const NODE_HASHES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];

    fn h(hex_text: &str) -> Hash32 {
        Hash32::from_hex(hex_text).unwrap()
    }

    fn b(base64_text: &str) -> Hash32 {
        Hash32::from_slice(&STANDARD.decode(base64_text).unwrap()).unwrap()
    }

    fn reference_tree() -> MerkleTree {
        let mut tree = MerkleTree::new();
        for input in LEAF_INPUTS {
            tree.push_data(&hex::decode(input).unwrap());
        }
        tree
    }

    #[test]
    fn hasher_unit_values() {
        assert_eq!(EMPTY_ROOT, Hash32::digest(b""));
        assert_eq!(empty_root(), h(ROOTS[0].0));
        assert_eq!(
            leaf_hash(b""),
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            leaf_hash(b"L123456"),
            h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        );
        assert_eq!(
            hash_children(b"N123", b"N456"),
            h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
        );
        let (left, right) = (leaf_hash(b"a"), leaf_hash(b"b"));
        assert_eq!(
            node_hash(&left, &right),
            hash_children(left.as_bytes(), right.as_bytes())
        );
        // The prefixes keep a leaf from passing for a node over the same 64 bytes.
        let mut joined = left.0.to_vec();
        joined.extend_from_slice(&right.0);
        assert_ne!(leaf_hash(&joined), node_hash(&left, &right));
    }

    #[test]
    fn reference_tree_roots() {
        let tree = reference_tree();
        let mut range = CompactRange::new();
        for (size, (hex_root, base64_root)) in ROOTS.iter().enumerate() {
            let size = size as u64;
            let root = tree.root_at(size).unwrap();
            assert_eq!(root.to_hex(), *hex_root, "size {size}");
            assert_eq!(root.to_base64(), *base64_root, "size {size}");
            assert_eq!(range.size(), size);
            assert_eq!(range.root(), root, "size {size}");
            if let Some(leaf) = tree.leaf_hash(size) {
                range.push(leaf);
            }
        }
        assert_eq!(tree.root(), h(ROOTS[8].0));
        assert_eq!(
            tree.root_at(9),
            Err(TreeError::SizeBeyondTree {
                size: 9,
                tree_size: 8
            })
        );
    }

    #[test]
    fn reference_tree_node_hashes() {
        let tree = reference_tree();
        assert_eq!(tree.levels.len(), NODE_HASHES.len());
        for (level, expected) in NODE_HASHES.iter().enumerate() {
            let expected: Vec<Hash32> = expected.iter().map(|x| h(x)).collect();
            assert_eq!(tree.levels[level], expected, "level {level}");
        }
    }

    struct InclusionVector {
        index: u64,
        size: u64,
        leaf: Hash32,
        proof: Vec<Hash32>,
        root: Hash32,
    }

    /// transparency-dev/merkle `testdata/inclusion/<n>/happy-path.json`.
    fn inclusion_json_vectors() -> Vec<InclusionVector> {
        let v = |index, size, leaf, proof: &[&str], root| InclusionVector {
            index,
            size,
            leaf: b(leaf),
            proof: proof.iter().map(|p| b(p)).collect(),
            root: b(root),
        };
        vec![
            v(
                0,
                1,
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                &[],
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            ),
            v(
                0,
                8,
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                &[
                    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
                ],
                "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            ),
            v(
                5,
                8,
                "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=",
                &[
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                    "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
                "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            ),
            v(
                2,
                3,
                "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
                &["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="],
                "rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc=",
            ),
            v(
                1,
                5,
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                &[
                    "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                ],
                "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
            ),
        ]
    }

    #[test]
    fn inclusion_happy_paths_and_wrong_leaves() {
        let tree = reference_tree();
        for (n, v) in inclusion_json_vectors().iter().enumerate() {
            assert_eq!(
                verify_inclusion(v.index, v.size, &v.leaf, &v.proof, &v.root),
                Ok(()),
                "inclusion/{n}"
            );
            assert_eq!(tree.inclusion_proof(v.index, v.size).unwrap(), v.proof);
            assert_eq!(tree.leaf_hash(v.index), Some(v.leaf));
            // wrong-leaf.json: the same proof for another leaf must fail on the root.
            let wrong = leaf_hash(b"WrongLeaf");
            assert!(
                matches!(
                    verify_inclusion(v.index, v.size, &wrong, &v.proof, &v.root),
                    Err(ProofError::RootMismatch { expected, .. }) if expected == v.root
                ),
                "inclusion/{n} wrong leaf"
            );
            for other in 0..8 {
                if other != v.index {
                    let other_leaf = tree.leaf_hash(other).unwrap();
                    assert!(
                        verify_inclusion(v.index, v.size, &other_leaf, &v.proof, &v.root).is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn inclusion_hex_vectors_with_one_based_leaves() {
        // proof/verify_test.go `inclusionProofs` (leaf numbered from 1).
        let vectors: [(u64, u64, &[&str]); 4] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                3,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                2,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let tree = reference_tree();
        for (leaf, size, proof) in vectors {
            let index = leaf - 1;
            let proof: Vec<Hash32> = proof.iter().map(|p| h(p)).collect();
            let leaf_hash = leaf_hash(&hex::decode(LEAF_INPUTS[index as usize]).unwrap());
            let root = h(ROOTS[size as usize].0);
            assert_eq!(
                verify_inclusion(index, size, &leaf_hash, &proof, &root),
                Ok(())
            );
            assert_eq!(tree.inclusion_proof(index, size).unwrap(), proof);
        }
    }

    #[test]
    fn consistency_hex_vectors() {
        // proof/verify_test.go `consistencyProofs`.
        let inclusion_1_8 = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        let vectors: [(u64, u64, &[&str]); 5] = [
            (1, 8, &inclusion_1_8),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (1, 1, &[]),
        ];
        let tree = reference_tree();
        for (size1, size2, proof) in vectors {
            let proof: Vec<Hash32> = proof.iter().map(|p| h(p)).collect();
            let (root1, root2) = (h(ROOTS[size1 as usize].0), h(ROOTS[size2 as usize].0));
            assert_eq!(
                verify_consistency(size1, size2, &root1, &root2, &proof),
                Ok(()),
                "({size1}, {size2})"
            );
            assert_eq!(tree.consistency_proof(size1, size2).unwrap(), proof);
        }
    }

    #[test]
    fn consistency_json_vectors() {
        // transparency-dev/merkle `testdata/consistency/<n>/happy-path.json`.
        let vectors: [(u64, u64, &str, &[&str], &str); 5] = [
            (
                1,
                1,
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                &[],
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            ),
            (
                1,
                8,
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                &[
                    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
                ],
                "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            ),
            (
                6,
                8,
                "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
                &[
                    "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                    "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
                "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            ),
            (
                2,
                5,
                "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
                &[
                    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                    "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                ],
                "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
            ),
            (
                6,
                7,
                "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
                &[
                    "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                    "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
                    "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
                ],
                "3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=",
            ),
        ];
        let tree = reference_tree();
        for (n, (size1, size2, root1, proof, root2)) in vectors.into_iter().enumerate() {
            let proof: Vec<Hash32> = proof.iter().map(|p| b(p)).collect();
            let (root1, root2) = (b(root1), b(root2));
            assert_eq!(
                verify_consistency(size1, size2, &root1, &root2, &proof),
                Ok(()),
                "consistency/{n}"
            );
            assert_eq!(tree.consistency_proof(size1, size2).unwrap(), proof);
            if size1 != size2 {
                assert!(
                    verify_consistency(size1, size2, &root2, &root1, &proof).is_err(),
                    "consistency/{n} swapped roots"
                );
            }
        }
    }

    #[test]
    fn inclusion_edge_cases_are_rejected() {
        let tree = reference_tree();
        let root = tree.root_at(5).unwrap();
        let leaf = tree.leaf_hash(1).unwrap();
        let proof = tree.inclusion_proof(1, 5).unwrap();
        assert_eq!(verify_inclusion(1, 5, &leaf, &proof, &root), Ok(()));
        // Index at or beyond the size, before any hashing.
        for (index, size) in [(5, 5), (6, 5), (0, 0), (u64::MAX, u64::MAX)] {
            assert_eq!(
                verify_inclusion(index, size, &leaf, &proof, &root),
                Err(ProofError::IndexBeyondSize { index, size })
            );
        }
        let mut long = proof.clone();
        long.push(root);
        assert_eq!(
            verify_inclusion(1, 5, &leaf, &long, &root),
            Err(ProofError::ProofTooLong { len: 4 })
        );
        assert_eq!(
            verify_inclusion(1, 5, &leaf, &proof[..2], &root),
            Err(ProofError::ProofTooShort { len: 2 })
        );
        assert_eq!(
            verify_inclusion(1, 5, &leaf, &[], &root),
            Err(ProofError::ProofTooShort { len: 0 })
        );
        let huge = vec![leaf; PROOF_HASHES_MAX + 1];
        assert_eq!(
            verify_inclusion(0, u64::MAX, &leaf, &huge, &root),
            Err(ProofError::ProofTooLarge {
                len: PROOF_HASHES_MAX + 1,
                max: PROOF_HASHES_MAX
            })
        );
        // A single-leaf tree: the leaf is the root, and any proof element is too many.
        assert_eq!(verify_inclusion(0, 1, &leaf, &[], &leaf), Ok(()));
        assert_eq!(
            verify_inclusion(0, 1, &leaf, &[leaf], &node_hash(&leaf, &leaf)),
            Err(ProofError::ProofTooLong { len: 1 })
        );
        // Largest sizes terminate: 64 hashes for the last leaf of a 2^64 - 1 tree.
        let path = vec![leaf; 63];
        assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &leaf, &path, &root).is_err());
        let path = vec![leaf; PROOF_HASHES_MAX];
        assert!(verify_inclusion(0, u64::MAX, &leaf, &path, &root).is_err());
        assert_eq!(
            tree.inclusion_proof(5, 5),
            Err(TreeError::IndexBeyondSize { index: 5, size: 5 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 9),
            Err(TreeError::SizeBeyondTree {
                size: 9,
                tree_size: 8
            })
        );
    }

    #[test]
    fn consistency_edge_cases_are_rejected() {
        let tree = reference_tree();
        let roots: Vec<Hash32> = (0..=8).map(|s| tree.root_at(s).unwrap()).collect();
        let proof = tree.consistency_proof(6, 8).unwrap();
        assert_eq!(
            verify_consistency(6, 8, &roots[6], &roots[8], &proof),
            Ok(())
        );

        // first == 0: an empty proof once verified against anything.
        assert_eq!(
            verify_consistency(0, 8, &roots[0], &roots[8], &[]),
            Err(ProofError::ConsistencyFromEmpty)
        );
        assert_eq!(
            verify_consistency(0, 0, &roots[0], &roots[0], &[]),
            Err(ProofError::ConsistencyFromEmpty)
        );
        assert_eq!(
            tree.consistency_proof(0, 3),
            Err(TreeError::ConsistencyFromEmpty)
        );
        // first > second.
        assert_eq!(
            verify_consistency(8, 6, &roots[8], &roots[6], &proof),
            Err(ProofError::SizesOutOfOrder {
                first: 8,
                second: 6
            })
        );
        assert_eq!(
            tree.consistency_proof(8, 6),
            Err(TreeError::SizesOutOfOrder {
                first: 8,
                second: 6
            })
        );
        // Equal sizes: only an empty proof with equal roots.
        assert_eq!(verify_consistency(5, 5, &roots[5], &roots[5], &[]), Ok(()));
        assert_eq!(
            verify_consistency(5, 5, &roots[5], &roots[5], &[roots[5]]),
            Err(ProofError::EqualSizesNonEmptyProof { size: 5, len: 1 })
        );
        assert_eq!(
            verify_consistency(5, 5, &roots[5], &roots[6], &[]),
            Err(ProofError::EqualSizesDifferentRoots {
                size: 5,
                first_root: roots[5],
                second_root: roots[6]
            })
        );
        assert_eq!(tree.consistency_proof(5, 5), Ok(Vec::new()));
        // Empty proof between different sizes, power of two or not.
        for size1 in [4, 6] {
            assert_eq!(
                verify_consistency(size1, 8, &roots[size1 as usize], &roots[8], &[]),
                Err(ProofError::EmptyProof {
                    first: size1,
                    second: 8
                })
            );
        }
        // Too long, too short, too large.
        let mut long = proof.clone();
        long.push(roots[8]);
        assert_eq!(
            verify_consistency(6, 8, &roots[6], &roots[8], &long),
            Err(ProofError::ProofTooLong { len: 4 })
        );
        assert_eq!(
            verify_consistency(6, 8, &roots[6], &roots[8], &proof[..2]),
            Err(ProofError::ProofTooShort { len: 2 })
        );
        let huge = vec![roots[1]; PROOF_HASHES_MAX + 1];
        assert_eq!(
            verify_consistency(3, u64::MAX, &roots[3], &roots[8], &huge),
            Err(ProofError::ProofTooLarge {
                len: PROOF_HASHES_MAX + 1,
                max: PROOF_HASHES_MAX
            })
        );
        // Both roots are checked, with evidence.
        assert_eq!(
            verify_consistency(6, 8, &roots[5], &roots[8], &proof),
            Err(ProofError::OldRootMismatch {
                expected: roots[5],
                computed: roots[6]
            })
        );
        assert_eq!(
            verify_consistency(6, 8, &roots[6], &roots[7], &proof),
            Err(ProofError::RootMismatch {
                expected: roots[7],
                computed: roots[8]
            })
        );
        // Hostile extreme sizes terminate.
        let path = vec![roots[1]; PROOF_HASHES_MAX];
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &roots[1], &roots[2], &path).is_err());
        assert!(verify_consistency(1 << 63, u64::MAX, &roots[1], &roots[2], &path).is_err());
    }

    #[test]
    fn consistency_from_one_to_two() {
        // google/trillian PR #246: a historic bug; the proof is the second leaf alone.
        let tree = reference_tree();
        let (root1, root2) = (tree.root_at(1).unwrap(), tree.root_at(2).unwrap());
        let proof = tree.consistency_proof(1, 2).unwrap();
        assert_eq!(proof, vec![tree.leaf_hash(1).unwrap()]);
        assert_eq!(verify_consistency(1, 2, &root1, &root2, &proof), Ok(()));
        assert!(verify_consistency(1, 2, &root2, &root1, &proof).is_err());
        assert!(verify_consistency(1, 2, &root1, &root2, &[]).is_err());
        assert!(verify_consistency(1, 2, &root1, &root2, &[root1]).is_err());
    }

    #[test]
    fn consistency_proof_does_not_verify_for_other_tree_heights() {
        // certificate-transparency-rfcs PR #100: without the final sn == 0 check, the
        // (1, 8) proof also verified for taller trees (9..=16 and beyond). Sizes of the same
        // height (5..=8) give the proof the same shape, so only the root tells them apart;
        // that is why a checkpoint signs the size and the root together.
        let tree = reference_tree();
        let proof = tree.consistency_proof(1, 8).unwrap();
        let (root1, root8) = (tree.root_at(1).unwrap(), tree.root_at(8).unwrap());
        for size2 in 2..=40 {
            let verdict = verify_consistency(1, size2, &root1, &root8, &proof);
            assert_eq!(verdict.is_ok(), (5..=8).contains(&size2), "size2 {size2}");
        }
    }

    #[test]
    fn every_bit_flip_of_the_reference_proofs_fails() {
        let tree = reference_tree();
        let leaf = tree.leaf_hash(5).unwrap();
        let root = tree.root();
        let inclusion = tree.inclusion_proof(5, 8).unwrap();
        let consistency = tree.consistency_proof(6, 8).unwrap();
        let root6 = tree.root_at(6).unwrap();
        for element in 0..3 {
            for bit in 0..256 {
                let mut bad = inclusion.clone();
                bad[element].0[bit / 8] ^= 1 << (bit % 8);
                assert!(verify_inclusion(5, 8, &leaf, &bad, &root).is_err());
                let mut bad = consistency.clone();
                bad[element].0[bit / 8] ^= 1 << (bit % 8);
                assert!(verify_consistency(6, 8, &root6, &root, &bad).is_err());
            }
        }
    }

    fn naive_root(leaves: &[Hash32]) -> Hash32 {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    /// PATH(m, D[n]) exactly as RFC 6962 §2.1.1 writes it.
    fn naive_path(m: usize, leaves: &[Hash32]) -> Vec<Hash32> {
        if leaves.len() <= 1 {
            return Vec::new();
        }
        let k = split_point(leaves.len() as u64) as usize;
        let (mut path, sibling) = if m < k {
            (naive_path(m, &leaves[..k]), naive_root(&leaves[k..]))
        } else {
            (naive_path(m - k, &leaves[k..]), naive_root(&leaves[..k]))
        };
        path.push(sibling);
        path
    }

    /// SUBPROOF(m, D[n], b) exactly as RFC 6962 §2.1.2 writes it.
    fn naive_subproof(m: usize, leaves: &[Hash32], whole: bool) -> Vec<Hash32> {
        let n = leaves.len();
        if m == n {
            return if whole {
                Vec::new()
            } else {
                vec![naive_root(leaves)]
            };
        }
        let k = split_point(n as u64) as usize;
        let (mut proof, sibling) = if m <= k {
            (
                naive_subproof(m, &leaves[..k], whole),
                naive_root(&leaves[k..]),
            )
        } else {
            (
                naive_subproof(m - k, &leaves[k..], false),
                naive_root(&leaves[..k]),
            )
        };
        proof.push(sibling);
        proof
    }

    fn leaves(count: u64, salt: u64) -> Vec<Hash32> {
        (0..count)
            .map(|i| leaf_hash(&[salt.to_be_bytes(), i.to_be_bytes()].concat()))
            .collect()
    }

    #[test]
    fn tree_matches_naive_rfc_definitions_exhaustively() {
        let all = leaves(40, 7);
        let mut tree = MerkleTree::new();
        for leaf in &all {
            tree.push(*leaf);
        }
        for size in 0..=all.len() {
            let prefix = &all[..size];
            assert_eq!(tree.root_at(size as u64).unwrap(), naive_root(prefix));
            for index in 0..size {
                assert_eq!(
                    tree.inclusion_proof(index as u64, size as u64).unwrap(),
                    naive_path(index, prefix),
                    "PATH({index}, {size})"
                );
            }
            for size1 in 1..=size {
                assert_eq!(
                    tree.consistency_proof(size1 as u64, size as u64).unwrap(),
                    naive_subproof(size1, prefix, true),
                    "PROOF({size1}, {size})"
                );
            }
        }
    }

    #[test]
    fn compact_range_saves_and_restores() {
        let mut range = CompactRange::new();
        for leaf in leaves(13, 1) {
            range.push(leaf);
        }
        assert_eq!(range.nodes().len(), 3);
        let restored = CompactRange::from_parts(range.size(), range.nodes().to_vec()).unwrap();
        assert_eq!(restored, range);
        assert_eq!(
            CompactRange::from_parts(12, range.nodes().to_vec()),
            Err(TreeError::CompactRangeShape {
                size: 12,
                expected: 2,
                found: 3
            })
        );
        assert_eq!(CompactRange::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn tile_sized_tree_agrees_with_compact_range() {
        // 70,000 leaves: the tlog-tiles example size, with partial tiles at three levels.
        let mut tree = MerkleTree::new();
        let mut range = CompactRange::new();
        for (i, leaf) in leaves(70_000, 2).into_iter().enumerate() {
            tree.push(leaf);
            range.push(leaf);
            if i % 4_999 == 0 {
                assert_eq!(range.root(), tree.root());
            }
        }
        assert_eq!(range.root(), tree.root());
        let root = tree.root();
        for index in [0, 1, 255, 256, 65_535, 65_536, 69_999] {
            let proof = tree.inclusion_proof(index, 70_000).unwrap();
            let leaf = tree.leaf_hash(index).unwrap();
            assert_eq!(
                verify_inclusion(index, 70_000, &leaf, &proof, &root),
                Ok(())
            );
        }
        for size1 in [1, 256, 65_536, 69_888, 69_999] {
            let proof = tree.consistency_proof(size1, 70_000).unwrap();
            let root1 = tree.root_at(size1).unwrap();
            assert_eq!(
                verify_consistency(size1, 70_000, &root1, &root, &proof),
                Ok(())
            );
        }
    }

    #[test]
    fn ten_million_leaves_when_slow_tests_are_enabled() {
        // Slow tests run under `STOCKPILE_SLOW_TESTS=1` (style.md §6); no timing asserted.
        if std::env::var_os("STOCKPILE_SLOW_TESTS").is_none() {
            return;
        }
        const SIZE: u64 = 10_000_000;
        let mut tree = MerkleTree::new();
        let mut range = CompactRange::new();
        for i in 0..SIZE {
            let leaf = leaf_hash(&i.to_be_bytes());
            tree.push(leaf);
            range.push(leaf);
        }
        let root = tree.root();
        assert_eq!(root, range.root());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = 1 + x % SIZE;
            let index = (x >> 20) % size;
            let proof = tree.inclusion_proof(index, size).unwrap();
            let leaf = tree.leaf_hash(index).unwrap();
            let root_at = tree.root_at(size).unwrap();
            assert_eq!(
                verify_inclusion(index, size, &leaf, &proof, &root_at),
                Ok(())
            );
            let proof = tree.consistency_proof(size, SIZE).unwrap();
            assert_eq!(
                verify_consistency(size, SIZE, &root_at, &root, &proof),
                Ok(())
            );
        }
    }

    /// transparency-dev/merkle's corruptions of an inclusion proof; all must fail.
    fn assert_inclusion_corruptions_fail(
        index: u64,
        size: u64,
        leaf: &Hash32,
        proof: &[Hash32],
        root: &Hash32,
        bit: usize,
    ) {
        let fails = |i: u64, s: u64, l: &Hash32, p: &[Hash32], r: &Hash32, what: &str| {
            assert!(
                verify_inclusion(i, s, l, p, r).is_err(),
                "{what}: index {index} size {size}"
            );
        };
        for element in 0..proof.len() {
            let mut bad = proof.to_vec();
            bad[element].0[bit / 8] ^= 1 << (bit % 8);
            fails(index, size, leaf, &bad, root, "bit flip");
        }
        if index > 0 {
            fails(index - 1, size, leaf, proof, root, "index - 1");
        }
        fails(index + 1, size, leaf, proof, root, "index + 1");
        fails(index ^ 2, size, leaf, proof, root, "index ^ 2");
        fails(index, size * 2, leaf, proof, root, "size * 2");
        fails(index, size / 2, leaf, proof, root, "size / 2");
        fails(
            index,
            size,
            &leaf_hash(b"WrongLeaf"),
            proof,
            root,
            "wrong leaf",
        );
        fails(index, size, leaf, proof, &EMPTY_ROOT, "empty root");
        let mut extended = proof.to_vec();
        extended.push(*root);
        fails(index, size, leaf, &extended, root, "trailing root");
        let mut prepended = vec![*root];
        prepended.extend_from_slice(proof);
        fails(index, size, leaf, &prepended, root, "preceding root");
        if let Some((_, shorter)) = proof.split_last() {
            fails(index, size, leaf, shorter, root, "removed component");
        }
        if proof.len() > 1 {
            let mut inserted = vec![proof[0], *leaf];
            inserted.extend_from_slice(&proof[1..]);
            fails(index, size, leaf, &inserted, root, "inserted component");
        }
    }

    /// transparency-dev/merkle's corruptions of a consistency proof; all must fail.
    fn assert_consistency_corruptions_fail(
        size1: u64,
        size2: u64,
        root1: &Hash32,
        root2: &Hash32,
        proof: &[Hash32],
        bit: usize,
    ) {
        let fails = |s1: u64, s2: u64, r1: &Hash32, r2: &Hash32, p: &[Hash32], what: &str| {
            assert!(
                verify_consistency(s1, s2, r1, r2, p).is_err(),
                "{what}: {size1} -> {size2}"
            );
        };
        for element in 0..proof.len() {
            let mut bad = proof.to_vec();
            bad[element].0[bit / 8] ^= 1 << (bit % 8);
            fails(size1, size2, root1, root2, &bad, "bit flip");
        }
        fails(size1 - 1, size2, root1, root2, proof, "size1 - 1");
        fails(size1 + 1, size2, root1, root2, proof, "size1 + 1");
        fails(size1 ^ 2, size2, root1, root2, proof, "size1 ^ 2");
        fails(size1, size2 * 2, root1, root2, proof, "size2 * 2");
        fails(size1, size2 / 2, root1, root2, proof, "size2 / 2");
        let wrong = leaf_hash(b"WrongRoot");
        fails(size1, size2, &wrong, root2, proof, "wrong root1");
        fails(size1, size2, root1, &wrong, proof, "wrong root2");
        fails(size1, size2, root2, root1, proof, "swapped roots");
        fails(size1, size2, root1, root2, &[], "empty proof");
        for extra in [*root1, *root2] {
            let mut extended = proof.to_vec();
            extended.push(extra);
            fails(size1, size2, root1, root2, &extended, "trailing root");
            let mut prepended = vec![extra];
            prepended.extend_from_slice(proof);
            fails(size1, size2, root1, root2, &prepended, "preceding root");
        }
        if let Some((_, shorter)) = proof.split_last() {
            fails(size1, size2, root1, root2, shorter, "removed component");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn generated_proofs_verify_and_corruptions_fail(
            leaf_count in 1u64..=300,
            salt in any::<u64>(),
            size_seed in any::<u64>(),
            bit in 0usize..256,
        ) {
            let all = leaves(leaf_count, salt);
            let mut tree = MerkleTree::new();
            let mut range = CompactRange::new();
            prop_assert_eq!(range.root(), tree.root_at(0).unwrap());
            for leaf in &all {
                tree.push(*leaf);
                range.push(*leaf);
                prop_assert_eq!(range.size(), tree.size());
                prop_assert_eq!(range.root(), tree.root_at(tree.size()).unwrap());
            }
            let size = 1 + size_seed % leaf_count;
            let root = tree.root_at(size).unwrap();
            for index in 0..size {
                let proof = tree.inclusion_proof(index, size).unwrap();
                let leaf = all[index as usize];
                prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));
                assert_inclusion_corruptions_fail(index, size, &leaf, &proof, &root, bit);
            }
            for size1 in 1..=size {
                let proof = tree.consistency_proof(size1, size).unwrap();
                let root1 = tree.root_at(size1).unwrap();
                prop_assert_eq!(verify_consistency(size1, size, &root1, &root, &proof), Ok(()));
                if size1 < size {
                    assert_consistency_corruptions_fail(size1, size, &root1, &root, &proof, bit);
                }
            }
        }
    }
}
