//! Int8 quantization of weights: symmetric, one scale per group of input rows per output column
//! for matmul weights, one scale per row for the word-embedding table; and the smoothing that
//! lets the kernels quantize activations over the same larger groups.
//!
//! Why groups: measured on all-MiniLM-L6-v2 against fp32 (weights-only int8, f32 arithmetic),
//! per-output-channel scales gave mean cosine 0.99948 / min 0.99641 on a 76-text mix, most of
//! the loss in the FFN output projections; groups of 32 gave 0.99984 / 0.99956, for 1/8 byte of
//! scale per weight.
//!
//! Why smoothing: the int8-activation kernels rescale once per group, a sixth of the AVX2
//! 7-bit kernel's multiply work at groups of 32 (issue 12). Larger groups alone lost accuracy
//! (7-bit, groups of 64: min cosine 0.99737 on the 1,680 benchmark texts, against 0.99864 at
//! 32), because a few channels of the QKV and feed-forward inputs run 10–50× larger than the
//! rest and set their group's scale. SmoothQuant divides each such input channel by a factor
//! and multiplies the weight row by it, moving the spread into the weights, which take it
//! better. On the goldens (`tests/parity.rs`), 7-bit activations in groups of 64 with
//! smoothing gave mean / min 0.99919 / 0.99664 (edge cases) and 0.99935 / 0.99895 (mixed),
//! above groups of 32 without it (0.99901 / 0.99556, 0.99928 / 0.99856), for ~6 % less CPU on
//! the AVX2 benchmark mix. Groups of 128 fell to a mean of 0.99885 on the edge cases, under the
//! 0.999 bar (simulated on the benchmark mix, `bench/results/quantization.md`: 0.99905 / 0.99781).

/// Input rows sharing a scale, the default: the int8-activation kernels rescale once per 64 k.
pub const GROUP: usize = 64;

/// SmoothQuant's migration strength: factor_j = max|x_j|^α / max|w_j|^(1-α). 0.8 simulated best
/// with 7-bit activations (0.3 to 1.0 tried with one scale per row, 0.65 and 0.8 with groups).
pub const SMOOTHING_ALPHA: f64 = 0.8;

/// The smoothing factor of each input row of `[k, n]` weights `w`, from the largest magnitude
/// `input_max` each input channel took in calibration: `max|x|^α / max|w|^(1-α)`, rounded to a
/// power of two, so that multiplying the weights by it and the input by its inverse is exact
/// in floating point (and the factor is the same on any machine whose calibration agrees to
/// within a few percent). A channel that was all zero, in inputs or weights, keeps factor 1.
pub fn smoothing(input_max: &[f32], w: &[f32], k: usize, n: usize) -> Vec<f32> {
    assert_eq!(input_max.len(), k);
    assert_eq!(w.len(), k * n);
    input_max
        .iter()
        .zip(w.chunks_exact(n))
        .map(|(&x, row)| {
            let wmax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            if !(x > 0.0 && wmax > 0.0 && x.is_finite()) {
                return 1.0;
            }
            let log2 = SMOOTHING_ALPHA * f64::from(x).log2() - (1.0 - SMOOTHING_ALPHA) * f64::from(wmax).log2();
            2f32.powi(log2.round().clamp(-16.0, 16.0) as i32)
        })
        .collect()
}

/// Quantizes `[k, n]` row-major weights; returns int8 values `[k, n]` and scales `[k / group, n]`.
pub fn quantize_groups(w: &[f32], k: usize, n: usize, group: usize) -> (Vec<i8>, Vec<f32>) {
    assert_eq!(w.len(), k * n);
    assert_eq!(k % group, 0);
    let mut q = vec![0i8; k * n];
    let mut scales = vec![0f32; k / group * n];
    for g in 0..k / group {
        for j in 0..n {
            let rows = (g * group..(g + 1) * group).map(|r| r * n + j);
            let amax = rows.clone().map(|i| w[i].abs()).fold(0f32, f32::max);
            let scale = amax / 127.0;
            scales[g * n + j] = scale;
            for i in rows {
                q[i] = quantize_one(w[i], scale);
            }
        }
    }
    (q, scales)
}

/// Quantizes each row of a `[rows, cols]` table with its own scale.
pub fn quantize_rows(w: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(w.len() / cols);
    for row in w.chunks_exact(cols) {
        let scale = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        scales.push(scale);
        q.extend(row.iter().map(|&v| quantize_one(v, scale)));
    }
    (q, scales)
}

fn quantize_one(v: f32, scale: f32) -> i8 {
    if scale == 0.0 {
        0
    } else {
        (v / scale).round().clamp(-127.0, 127.0) as i8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_round_trip_within_half_a_step() {
        let (k, n) = (64, 3);
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let (q, s) = quantize_groups(&w, k, n, 32);
        for r in 0..k {
            for j in 0..n {
                let scale = s[(r / 32) * n + j];
                let back = q[r * n + j] as f32 * scale;
                assert!((back - w[r * n + j]).abs() <= scale * 0.5 + 1e-6);
            }
        }
        assert!(q.iter().any(|&v| v == 127 || v == -127), "the largest value uses the full range");
    }

    #[test]
    fn smoothing_factors_are_powers_of_two_that_move_an_outlier_channel_into_the_weights() {
        let (k, n) = (4, 3);
        let w = [0.5, -0.25, 0.1, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.01, 0.02, -0.04];
        let input_max = [40.0, 1.0, 3.0, 0.0];
        let s = smoothing(&input_max, &w, k, n);
        // 40^0.8 / 0.5^0.2 = 19.1 → 16; 1 / 0.5^0.2 = 1.15 → 1; an all-zero row or input: 1.
        assert_eq!(s, [16.0, 1.0, 1.0, 1.0]);
        for f in smoothing(&[1e-3, 7.0, 1e6, 0.2], &[0.3; 12], k, n) {
            assert_eq!(f, 2f32.powi(f.log2() as i32), "{f} is a power of two");
        }
        assert_eq!(smoothing(&[f32::INFINITY, f32::NAN, 1.0, 1.0], &[1.0; 12], k, n)[..2], [1.0, 1.0]);
    }

    #[test]
    fn zero_rows_quantize_to_zero_without_nan() {
        let (q, s) = quantize_rows(&[0.0; 8], 4);
        assert_eq!(q, vec![0; 8]);
        assert_eq!(s, vec![0.0, 0.0]);
    }
}
