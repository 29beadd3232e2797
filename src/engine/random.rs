//! Seeded randomness for `spec.execution`: the same seed gives the same order and intervals, so a
//! run can be replayed exactly. ChaCha8 is value-stable across versions of its crate.
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// A generator for one purpose of one iteration, independent of the others.
fn rng(seed: u64, iteration: u32, purpose: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream((u64::from(iteration) << 8) | purpose);
    r
}

/// A uniform draw from `0..n` (n > 0), without modulo bias worth caring about at these sizes.
fn below(r: &mut ChaCha8Rng, n: u64) -> u64 {
    ((u128::from(r.next_u64()) * u128::from(n)) >> 64) as u64
}

/// The order in which an iteration's experiments start: a seeded Fisher–Yates shuffle of `0..n`.
pub fn permutation(n: usize, seed: u64, iteration: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut r = rng(seed, iteration, 1);
    for i in (1..n).rev() {
        let j = below(&mut r, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// Seconds to wait after `iteration` before the next: `min`, or a seeded pick in `[min, max]`.
pub fn interval(min: u32, max: Option<u32>, seed: u64, iteration: u32) -> u64 {
    match max {
        Some(max) if max > min => {
            let span = u64::from(max - min) + 1;
            u64::from(min) + below(&mut rng(seed, iteration, 2), span)
        }
        _ => u64::from(min),
    }
}

/// A seed for a run whose engine gives none: derived from the engine UID, the run and the time, and
/// kept below 2^63 so it fits the CRD's int64.
pub fn pick_seed(uid: &str, run_id: i64, now_nanos: i128) -> u64 {
    let digest = Sha256::digest(format!("{uid}/{run_id}/{now_nanos}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes) >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_and_permutations_are_complete() {
        for seed in [0, 1, 42, u64::MAX >> 1] {
            for it in 1..5 {
                let p = permutation(7, seed, it);
                assert_eq!(p, permutation(7, seed, it));
                let mut sorted = p.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..7).collect::<Vec<_>>());
                let i = interval(5, Some(9), seed, it);
                assert!((5..=9).contains(&i));
                assert_eq!(i, interval(5, Some(9), seed, it));
            }
        }
        assert_eq!(interval(5, None, 3, 1), 5);
        assert_eq!(interval(5, Some(2), 3, 1), 5, "max below min means min");
        let orders: std::collections::BTreeSet<Vec<usize>> =
            (0..20).map(|s| permutation(5, s, 1)).collect();
        assert!(orders.len() > 5, "different seeds give different orders");
        assert!(pick_seed("u", 1, 7) < (1 << 63));
    }
}
