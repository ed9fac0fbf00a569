//! Elementwise math on f32 slices, written so the compiler vectorizes it: exp and erf are
//! polynomial (no libm calls in the loops), GELU is the exact erf form BERT uses.

use super::Isa;

/// Runs an `#[inline(always)]` body compiled for AVX-512 when `isa` has it, so the compiler's
/// vectors are 16 lanes instead of the build target's 8 (GELU and softmax were ~15% of a
/// 128-token forward at 8). Same operations in the same order: the same bits either way.
macro_rules! wide {
    ($isa:expr, $body:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512(f: impl FnOnce()) {
                f()
            }
            if matches!($isa, Isa::Avx512 | Isa::Avx512Vnni) {
                // SAFETY: those variants are only constructed on CPUs with AVX-512F.
                return unsafe { avx512(|| $body($($arg),*)) };
            }
        }
        $body($($arg),*)
    }};
}

/// e^x, relative error ~2e-7 on the range softmax and erf use (Cody–Waite reduction + degree-6
/// polynomial). Inputs below -87 flush to ~0. Every multiply-add is an FMA (`mul_add`, one
/// instruction on the x86-64-v3 and aarch64 targets): half the vector ops of a multiply and an add.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let shifted = x.mul_add(LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let p = [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0].iter().fold(1.0f32 / 720.0, |p, &c| p.mul_add(r, c));
    // n as an integer is in the low mantissa bits of `shifted`: read it with integer arithmetic,
    // which vectorizes (`n as i32` saturates, and compiled to one scalar conversion per lane).
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(n_int.wrapping_add(127) << 23)
}

/// erf(x), absolute error ≤ 1.5e-7 (Abramowitz & Stegun 7.1.26).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / 0.327_591_1f32.mul_add(a, 1.0);
    let poly = [-1.453_152, 1.421_413_8, -0.284_496_74, 0.254_829_6].iter().fold(1.061_405_4f32, |p, &c| p.mul_add(t, c)) * t;
    let y = (-poly).mul_add(exp(-a * a), 1.0);
    y.copysign(x)
}

/// A bound GELU's outputs never go below: its minimum is -0.16997 (at x ≈ -0.7518), and the
/// polynomial erf is off by ~1.5e-7 at most (`kernels::Floor`).
pub const GELU_FLOOR: f32 = -0.17;

/// GELU with the exact erf, in place: `0.5 x (1 + erf(x / √2))`.
pub fn gelu(isa: Isa, xs: &mut [f32]) {
    wide!(isa, gelu_body(xs))
}

#[inline(always)]
fn gelu_body(xs: &mut [f32]) {
    for x in xs {
        *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Lanes of the reductions below. Float addition is not associative, so a plain `.sum()` keeps
/// its loop scalar (and with it any `exp` in the loop body); eight running sums vectorize.
const LANES: usize = 8;

/// Σ f(x) over a slice, in `LANES` partial sums.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&x| f(x)).sum::<f32>()
}

/// Softmax of the first `len` values of `xs`, in place. The rest of `xs` is padding, set to 0:
/// the exps run over it at -∞ so that a row padded to whole vectors has no scalar tail, and it
/// is left out of the normalizing multiply, whose results there would be denormal (each a
/// microcode assist on Intel cores).
pub fn softmax(isa: Isa, xs: &mut [f32], len: usize) {
    wide!(isa, softmax_body(xs, len))
}

#[inline(always)]
fn softmax_body(xs: &mut [f32], len: usize) {
    xs[len..].fill(f32::NEG_INFINITY);
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    // `f32::max` also orders NaNs, a compare and a blend more per vector; scores are not NaN.
    let larger = |a: f32, b: f32| if a > b { a } else { b };
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, larger);
    for c in chunks {
        for l in 0..LANES {
            lanes[l] = larger(lanes[l], c[l]);
        }
    }
    let max = lanes.iter().copied().fold(tail, larger);
    // exp and its sum in one pass, in 16 partial sums (one AVX-512 vector).
    let mut sums = [0f32; 2 * LANES];
    let mut chunks = xs.chunks_exact_mut(2 * LANES);
    for c in &mut chunks {
        for (x, sum) in c.iter_mut().zip(&mut sums) {
            *x = exp(*x - max);
            *sum += *x;
        }
    }
    let mut total = 0f32;
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        total += *x;
    }
    let inv = 1.0 / (sums.iter().sum::<f32>() + total);
    let (row, padding) = xs.split_at_mut(len);
    for x in row {
        *x *= inv;
    }
    padding.fill(0.0);
}

/// LayerNorm over each `gamma.len()`-wide row of `xs`, in place.
pub fn layer_norm(xs: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    for row in xs.chunks_exact_mut(h) {
        let mean = lane_sum(row, |v| v) / h as f32;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0f64;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
    }

    #[test]
    fn erf_matches_reference_values() {
        // erf at a few points (Abramowitz & Stegun table 7.1).
        for (x, want) in [(0.0f32, 0.0f64), (0.5, 0.520_499_877_8), (1.0, 0.842_700_792_9), (2.0, 0.995_322_265), (-1.0, -0.842_700_792_9), (4.0, 0.999_999_984_6)] {
            assert!((erf(x) as f64 - want).abs() < 3e-7, "erf({x}) = {} want {want}", erf(x));
        }
    }

    #[test]
    fn gelu_softmax_and_layer_norm() {
        let mut g = [-3.0f32, -1.0, 0.0, 1.0, 3.0];
        gelu(Isa::Portable, &mut g);
        let want = [-0.004_049_71f32, -0.158_655_25, 0.0, 0.841_344_7, 2.995_950_4];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let mut s = [1.0f32, 2.0, 3.0, 7.0, 7.0];
        softmax(Isa::Portable, &mut s, 3);
        assert_eq!(s[3..], [0.0, 0.0]);
        let e: Vec<f64> = [1f64, 2., 3.].iter().map(|v| v.exp()).collect();
        let z: f64 = e.iter().sum();
        for (a, b) in s.iter().zip(&e) {
            assert!((*a as f64 - b / z).abs() < 1e-6);
        }
        let mut x = [1.0f32, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &[1.0, 1.0, 2.0, 1.0], &[0.0, 0.0, 0.0, 1.0], 1e-12);
        let sd = 1.25f32.sqrt();
        let want = [-1.5 / sd, -0.5 / sd, 1.0 / sd, 1.5 / sd + 1.0];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
