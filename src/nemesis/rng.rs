//! The generator every draw of a plan comes from: splitmix64, a few lines kept here so that no
//! crate update changes a plan.

use std::time::Duration;

use crate::spec::Range;

/// splitmix64 (Steele, Lea and Flood, 2014): a 64-bit state stepped by a constant and mixed.
/// Small, fast, and good enough for drawing faults; kept here so no crate update changes a
/// plan.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (> 0), every one as likely: draws that would favour the low
    /// numbers are drawn again.
    pub(super) fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        // 2^64 mod n: the draws below it are the excess of the last, partial round.
        let excess = n.wrapping_neg() % n;
        loop {
            let x = self.next();
            if x >= excess {
                return (x % n) as usize;
            }
        }
    }

    /// A number from `lo` to `hi`, both included.
    pub(super) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below((hi - lo + 1) as usize) as u64
    }

    pub(super) fn coin(&mut self) -> bool {
        self.below(2) == 0
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Fisher–Yates.
    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// A duration of `range`, in whole milliseconds unless the range holds none.
    pub(super) fn duration(&mut self, range: Range) -> Duration {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (lo, hi) = (ms(range.min + Duration::from_nanos(999_999)), ms(range.max));
        if lo > hi {
            return range.min;
        }
        Duration::from_millis(self.between(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_is_the_published_one() {
        let mut rng = Rng(0);
        assert_eq!(
            [rng.next(), rng.next(), rng.next()],
            [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]
        );
    }

    #[test]
    fn draws_stay_in_range_and_reach_both_ends() {
        let mut rng = Rng(42);
        let draws: Vec<u64> = (0..1000).map(|_| rng.between(5, 9)).collect();
        assert!(draws.iter().all(|d| (5..=9).contains(d)));
        assert!(draws.contains(&5) && draws.contains(&9));
        let range = Range::new(Duration::from_millis(1500), Duration::from_millis(1502));
        assert!((0..100).all(|_| (range.min..=range.max).contains(&rng.duration(range))));
        let tiny = Range::exactly(Duration::from_nanos(1500));
        assert_eq!(rng.duration(tiny), tiny.min, "a range that holds no whole millisecond");
        let mut items = [1, 2, 3, 4, 5];
        rng.shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, [1, 2, 3, 4, 5]);
    }
}
