//! A small deterministic mutator for the smoke test: bit flips, byte changes, interesting
//! values, truncations, duplications, insertions, deletions and splices with another
//! seed, driven by a seeded SplitMix64 so that a failing case replays from its seed.

/// SplitMix64: tiny, seedable, good enough to choose mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..bound`; `bound` must be positive.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// Values that often sit on a parser's boundaries.
const INTERESTING: [u8; 10] = [0x00, 0x01, 0x0a, 0x20, 0x2b, 0x30, 0x7f, 0x80, 0xfe, 0xff];

/// Applies 1 to 4 random mutations to `input`; `other` is a second seed to splice from.
pub fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(10) {
            0 | 1 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            2 if len > 0 => {
                let at = rng.below(len);
                data[at] = rng.next_u64() as u8;
            }
            3 if len > 0 => {
                let at = rng.below(len);
                data[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            4 => {
                let keep = rng.below(len + 1);
                data.truncate(keep);
            }
            5 if len > 0 => {
                // Duplicate a slice in place.
                let start = rng.below(len);
                let end = start + 1 + rng.below((len - start).min(64));
                let copy = data[start..end].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, copy);
            }
            6 if len > 0 => {
                let start = rng.below(len);
                let end = start + 1 + rng.below((len - start).min(64));
                data.drain(start..end);
            }
            7 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..count).map(|_| rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            8 if !other.is_empty() => {
                // Splice: our head, the other seed's tail.
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            _ if len >= 2 => {
                // Copy a byte within the input (moves separators and lengths around).
                let from = rng.below(len);
                let to = rng.below(len);
                data[to] = data[from];
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }
    data
}
