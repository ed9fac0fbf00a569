//! The scan kernel: int8 dot products over every chunk, then exact rescoring of the best
//! candidates from the f16 copy. Knows vectors and scores only; the index decides which chunks
//! belong to which document.
//!
//! Why int8 + f16 rescoring (measured on this project's 2-vCPU EPYC, 100,000 chunks × 384, one
//! thread, `bench/search.sh`; figures in bench/results/search.md): a scan is bound by memory
//! traffic. f32 vectors are 154 MB per pass, f16 77 MB, int8 38 MB; int8 with i16 multiply-adds
//! (`vpmaddwd`, which LLVM emits for `dot_i8` under x86-64-v3) is the only one inside the 2 ms
//! target. Per-chunk scales keep the int8 score within ~0.01 of the exact cosine, so re-ranking
//! a few dozen candidate documents exactly restores the exact order (recall@10 against f32
//! search: see `tests/search.rs`). The f16 copy is read only for those candidates.

/// Quantizes a vector to int8 with one scale: `v ≈ q · scale`. Rounds to nearest; a zero vector
/// gets scale 0.
pub fn quantize(v: &[f32], out: &mut [i8]) -> f32 {
    let amax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if amax == 0.0 || !amax.is_finite() {
        out.iter_mut().for_each(|q| *q = 0);
        return 0.0;
    }
    let inv = 127.0 / amax;
    for (q, x) in out.iter_mut().zip(v) {
        *q = (x * inv).round().clamp(-127.0, 127.0) as i8;
    }
    amax / 127.0
}

/// The specification: a plain integer dot product.
pub fn dot_i8_reference(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| *x as i32 * *y as i32).sum()
}

/// The kernel the scan runs: the same sum with products widened through i16, which LLVM turns
/// into `vpmaddwd` (16 products per instruction) under the crate's x86-64-v3 baseline. Exact:
/// |x·y| ≤ 127², and pairs are summed in i32. A hand-unrolled 32-lane version measured slower
/// (70 vs 45 ms per 100k rows of 384 on a loaded 2-vCPU EPYC), so the plain form stays.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| (*x as i16 as i32) * (*y as i16 as i32)).sum()
}

/// f32 dot product of a query with an f16 row, accumulated in 16 f32 lanes.
#[inline]
pub fn dot_f16(q: &[f32], row: &[half::f16]) -> f32 {
    let mut acc = [0f32; 16];
    let mut cq = q.chunks_exact(16);
    let mut cr = row.chunks_exact(16);
    for (x, y) in (&mut cq).zip(&mut cr) {
        for i in 0..16 {
            acc[i] += x[i] * y[i].to_f32();
        }
    }
    let tail: f32 = cq.remainder().iter().zip(cr.remainder()).map(|(x, y)| x * y.to_f32()).sum();
    acc.iter().sum::<f32>() + tail
}

/// The sign bits of `v − mean`: bit `i % 64` of word `i / 64` is set when `v[i] > mean[i]`.
/// Centring first matters: MiniLM's vectors share a large common direction, and without it
/// most bits would agree for every pair.
pub fn sign_bits(v: &[f32], mean: &[f32], out: &mut [u64]) {
    out.iter_mut().for_each(|w| *w = 0);
    for (i, (x, m)) in v.iter().zip(mean).enumerate() {
        if x > m {
            out[i / 64] |= 1 << (i % 64);
        }
    }
}

/// Bits that differ: the prefilter's distance (`popcnt`, one per word).
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Lowers `dist[i]` to the Hamming distance between `query` and row `i` of `rows` (rows of
/// `query.len()` words, one per `dist` entry), capped at `cap`. One tight loop over a run of
/// rows: called per row through a closure, the same arithmetic took 6× longer (2.7 vs 0.45 ms
/// at 147,614 rows), and the prefilter it serves was then most of a search.
pub fn hamming_rows_min(query: &[u64], rows: &[u64], cap: u16, dist: &mut [u16]) {
    let words = query.len();
    if let Ok(q) = <&[u64; 6]>::try_from(query) {
        // 384 dimensions (MiniLM): six scalar `popcnt`s per row, 1.3× the general loop's
        // speed when the bits are cached (0.37 vs 0.49 ms at 147,614 rows), level from memory.
        for (row, d) in rows.chunks_exact(6).zip(dist.iter_mut()) {
            let h: u32 = (0..6).map(|i| (row[i] ^ q[i]).count_ones()).sum();
            *d = (*d).min(h as u16).min(cap);
        }
    } else if words > 0 {
        for (row, d) in rows.chunks_exact(words).zip(dist.iter_mut()) {
            *d = (*d).min(hamming(query, row) as u16).min(cap);
        }
    }
}

/// The positions of the entries of `dist` that are at most `cut`, ascending. Checks 16 entries
/// at a time (vector compares) before looking at any one: a few percent pass.
pub fn positions_at_most(dist: &[u16], cut: u16) -> Vec<u32> {
    let mut out = Vec::new();
    for (b, block) in dist.chunks(16).enumerate() {
        if block.iter().fold(false, |any, &h| any | (h <= cut)) {
            out.extend(block.iter().enumerate().filter(|(_, &h)| h <= cut).map(|(j, _)| (b * 16 + j) as u32));
        }
    }
    out
}

/// Asks the CPU to start loading `bytes` into cache, one request per 64-byte line: for rows read
/// in an order the hardware prefetcher cannot guess (the prefilter's candidates are scattered
/// over a 57 MB section at 100k documents). Only a hint; it never faults.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is a hint that never dereferences in the language's sense and
        // cannot fault; the pointer comes from a live slice anyway.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// A query vector in every form the scan uses.
#[derive(Debug, Clone)]
pub struct QueryVector {
    pub exact: Vec<f32>,
    pub q8: Vec<i8>,
    pub scale: f32,
    /// Sign bits of the query minus the index's mean (empty when the index has none).
    pub bits: Vec<u64>,
}

impl QueryVector {
    pub fn new(v: &[f32], mean: Option<&[f32]>) -> QueryVector {
        let mut q8 = vec![0i8; v.len()];
        let scale = quantize(v, &mut q8);
        let bits = match mean {
            Some(m) => {
                let mut b = vec![0u64; super::format::bit_words(v.len())];
                sign_bits(v, m, &mut b);
                b
            }
            None => Vec::new(),
        };
        QueryVector { exact: v.to_vec(), q8, scale, bits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence (xorshift), so the test needs no dependency.
    fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn dot_i8_equals_the_reference_at_every_length_and_extreme() {
        for n in [0, 1, 15, 31, 32, 33, 64, 100, 384, 385] {
            let a: Vec<i8> = noise(n as u64, n).iter().map(|x| (x * 127.0) as i8).collect();
            let b: Vec<i8> = noise(n as u64 + 99, n).iter().map(|x| (x * 127.0) as i8).collect();
            assert_eq!(dot_i8(&a, &b), dot_i8_reference(&a, &b), "n={n}");
            let lo = vec![-127i8; n];
            assert_eq!(dot_i8(&lo, &lo), 127 * 127 * n as i32);
            assert_eq!(dot_i8(&lo, &vec![127i8; n]), -127 * 127 * n as i32);
        }
    }

    #[test]
    fn quantized_scores_stay_within_a_hundredth_of_the_exact_cosine() {
        let unit = |seed| {
            let mut v = noise(seed, 384);
            crate::engine::pooling::l2_normalize(&mut v);
            v
        };
        let mut worst = 0f32;
        for seed in 0..200 {
            let (a, b) = (unit(seed), unit(seed + 1000));
            let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let (qa, qb) = (QueryVector::new(&a, None), QueryVector::new(&b, None));
            let approx = dot_i8(&qa.q8, &qb.q8) as f32 * qa.scale * qb.scale;
            worst = worst.max((approx - exact).abs());
            let h: Vec<half::f16> = b.iter().map(|x| half::f16::from_f32(*x)).collect();
            assert!((dot_f16(&a, &h) - exact).abs() < 1e-3);
        }
        assert!(worst < 0.01, "worst int8 error {worst}");
    }

    #[test]
    fn sign_bits_and_hamming_count_the_dimensions_on_opposite_sides_of_the_mean() {
        let mean = vec![0.5f32; 130];
        let a: Vec<f32> = (0..130).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        let b = vec![1.0f32; 130];
        let (mut ba, mut bb) = (vec![0u64; 3], vec![0u64; 3]);
        sign_bits(&a, &mean, &mut ba);
        sign_bits(&b, &mean, &mut bb);
        assert_eq!(ba[0], 0x5555_5555_5555_5555);
        assert_eq!(bb[2], 0b11, "130 dimensions leave two bits in the last word");
        assert_eq!(hamming(&ba, &bb), 65);
        assert_eq!(hamming(&ba, &ba), 0);
    }

    #[test]
    fn row_distances_equal_hamming_per_row_lowered_and_capped() {
        // Six words (the fast path) and three (the general one).
        for words in [6usize, 3] {
            let word = |seed: u64, i: usize| noise(seed * 1000 + i as u64, 2).iter().fold(0u64, |w, x| (w << 32) ^ x.to_bits() as u64);
            let q: Vec<u64> = (0..words).map(|i| word(1, i)).collect();
            let rows: Vec<u64> = (0..words * 50).map(|i| word(2, i)).collect();
            let mut dist = vec![u16::MAX; 50];
            dist[7] = 3;
            hamming_rows_min(&q, &rows, 1000, &mut dist);
            for (r, row) in rows.chunks_exact(words).enumerate() {
                let want = if r == 7 { 3 } else { hamming(&q, row) as u16 };
                assert_eq!(dist[r], want, "words={words} row={r}");
            }
            hamming_rows_min(&q, &rows, 10, &mut dist);
            assert!(dist.iter().all(|&d| d <= 10), "capped");
        }
    }

    #[test]
    fn positions_at_most_finds_every_entry_at_or_under_the_cut_in_order() {
        let dist: Vec<u16> = (0..1000u32).map(|i| ((i * 7919) % 300) as u16).collect();
        for cut in [0u16, 5, 150, 299, 300] {
            let want: Vec<u32> = (0..1000).filter(|&i| dist[i as usize] <= cut).collect();
            assert_eq!(positions_at_most(&dist, cut), want, "cut={cut}");
        }
        assert!(positions_at_most(&[], 3).is_empty());
    }

    #[test]
    fn a_zero_vector_quantizes_to_zero() {
        let mut q = [1i8; 4];
        assert_eq!(quantize(&[0.0; 4], &mut q), 0.0);
        assert_eq!(q, [0; 4]);
    }
}
