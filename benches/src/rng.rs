//! A small deterministic PRNG (SplitMix64) and weighted sampling, so that the corpus is the
//! same bytes for the same seed on every machine, without a crate.

/// SplitMix64: fast, passes BigCrush, one `u64` of state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for a sub-stream, independent of this one's future output.
    pub fn fork(&mut self, stream: u64) -> Rng {
        Rng(self.next_u64() ^ mix(stream.wrapping_add(0x632b_e59b_d9b4_e019)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// The SplitMix64 finaliser; also a decent 64-bit hash of an integer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Samples indices in proportion to integer weights (cumulative table + binary search).
#[derive(Debug, Clone)]
pub struct Weighted {
    cumulative: Vec<u64>,
}

impl Weighted {
    /// Weights of zero are never drawn; at least one weight must be positive.
    pub fn new(weights: impl IntoIterator<Item = u64>) -> Weighted {
        let mut total = 0u64;
        let cumulative: Vec<u64> = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        assert!(total > 0, "Weighted needs a positive weight");
        Weighted { cumulative }
    }

    /// Zipf-like weights `1 / (rank + 1)^s` over `n` items, the first the most likely.
    pub fn zipf(n: usize, s: f64) -> Weighted {
        Weighted::new((0..n).map(|k| ((1e12 / ((k + 1) as f64).powf(s)) as u64).max(1)))
    }

    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let x = rng.below(total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.range(3, 9);
            assert!((3..=9).contains(&x));
            b.range(3, 9);
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
            b.unit();
        }
    }

    #[test]
    fn weighted_follows_weights() {
        let w = Weighted::new([0, 1, 3]);
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[w.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[0], 0);
        let ratio = counts[2] as f64 / counts[1] as f64;
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn zipf_is_skewed() {
        let w = Weighted::zipf(50, 1.0);
        let mut rng = Rng::new(2);
        let mut counts = [0u32; 50];
        for _ in 0..100_000 {
            counts[w.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > 5 * counts[9]);
        assert!(counts[49] > 0);
    }
}
