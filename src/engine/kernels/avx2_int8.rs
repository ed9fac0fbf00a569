//! The AVX2 int8 kernel: int8 weights × int8 activations on CPUs without VNNI (AWS Lambda's
//! x86_64 hosts hide AVX-512 and AVX-VNNI), and the AVX2 quantizer the AVX-VNNI kernel shares.
//!
//! Activations are quantized exactly as for VNNI (per row and group, 8 bits,
//! `reference::quantize_rows`), so this kernel gives the VNNI spec's bits, `linear_rows_q8`.
//! Both operands are widened to int16 and multiplied with `vpmaddwd` (pairs of k → int32):
//! exact at 8 bits. The alternative, `vpmaddubsw` on u8 × s8 pairs, saturates int16 unless the
//! activations have 7 bits: that is `Isa::Avx2Int7` (`avxvnni::linear_rows_7bit`, quantized
//! here with 63 levels), faster and the default on AVX2, at half the activation resolution.
//! Measured on the goldens (`tests/parity.rs`, groups of 64 with smoothed inputs, 2026-12-01),
//! cosine to sentence-transformers, mean / min: 8 bits 0.99968 / 0.99919 (mixed) and 0.99964 /
//! 0.99898 (test20); symmetric 7 bits 0.99935 / 0.99895 and 0.99919 / 0.99664. An asymmetric
//! 7-bit scheme (zero point per group) was not tried; GELU's outputs, which have hardly any
//! sign, are quantized above its floor instead (`quantize_rows_above`, `Floor`): with them,
//! 0.99928 / 0.99858 and 0.99913 / 0.99651 (2026-12-02).
//!
//! The quad panels hold each column's four k in one 32-bit lane; sign-extended to int16 (once
//! per step, shared by all rows of the tile), they are two `vpmaddwd` lanes, k (0, 1) and (2, 3),
//! joined once per group. Activations are kept as int16 too (`QuantizedRows::wide`), so a row's
//! four k are one `vpbroadcastq` from memory.

use std::arch::x86_64::*;

use super::{Epilogue, Linear, QuantizedRows, Weights, PANEL, QUAD};

/// Rows per tile: 4 int32 accumulators per row, plus four weight vectors and the broadcast,
/// fit the 16 ymm registers at 2 rows; 3 and 4 measured alike, spills and all.
const TILE: usize = 4;

/// Quantizes the first `rows` rows of `x`, times `input_scale` if given (`Linear::input_scale`),
/// into `qr` (see `reference::quantize_rows`), in `-levels..=levels`: u8 with the offset
/// `levels + 1` for `vpdpbusd` and `vpmaddubsw`, and with `WIDE` also int16, without it, for
/// `vpmaddwd`. Scaling here, as each vector is loaded, gives the bits of scaling first.
///
/// # Safety
/// The CPU must support AVX2; `group` must be a multiple of 8 dividing `k`; `input_scale`, if
/// any, has `k` values.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn quantize_rows<const WIDE: bool>(x: &[f32], input_scale: Option<&[f32]>, k: usize, group: usize, levels: f32, rows: usize, qr: &mut QuantizedRows) {
    qr.resize(rows, k, group, levels);
    if WIDE {
        qr.wide.resize(rows * k, 0);
    }
    let groups = k / group;
    let src = x[..rows * k].as_ptr();
    let factors = input_scale.map(|s| s[..k].as_ptr());
    let load = |row: usize, i: usize| {
        let v = _mm256_loadu_ps(src.add(row * k + i));
        match factors {
            Some(f) => _mm256_mul_ps(v, _mm256_loadu_ps(f.add(i))),
            None => v,
        }
    };
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let zero = _mm_set1_epi8(qr.zero as u8 as i8);
    for r in 0..rows {
        for g in 0..groups {
            let at = r * k + g * group;
            let mut amax = _mm256_setzero_ps();
            for v in (0..group).step_by(8) {
                amax = _mm256_max_ps(amax, _mm256_and_ps(abs, load(r, g * group + v)));
            }
            let (scale, inv) = super::reference::group_scale(largest(amax), levels);
            let inv = _mm256_set1_ps(inv);
            for v in (0..group).step_by(8) {
                // Rounds to nearest even (MXCSR's default), as `round_ties_even` in the spec.
                let q = _mm256_cvtps_epi32(_mm256_mul_ps(load(r, g * group + v), inv));
                let q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
                if WIDE {
                    _mm_storeu_si128(qr.wide.as_mut_ptr().add(at + v).cast(), q16);
                }
                // |q| ≤ levels < zero ≤ 128: the byte add wraps to exactly q + zero.
                let u = _mm_add_epi8(_mm_packs_epi16(q16, q16), zero);
                _mm_storel_epi64(qr.q.as_mut_ptr().add(at + v).cast(), u);
            }
            qr.scale[r * groups + g] = scale;
        }
    }
}

/// Quantizes `x − floor`, clamped at 0, of the first `rows` rows into `qr`, in `0..=63`
/// without an offset (`Floor`; the spec is `reference::quantize_rows_above`).
///
/// # Safety
/// As `quantize_rows`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn quantize_rows_above(x: &[f32], floor: f32, k: usize, group: usize, rows: usize, qr: &mut QuantizedRows) {
    qr.resize_unsigned(rows, k, group);
    let groups = k / group;
    let src = x[..rows * k].as_ptr();
    let (floor, zero) = (_mm256_set1_ps(floor), _mm256_setzero_ps());
    let load = |row: usize, i: usize| {
        let v = _mm256_loadu_ps(src.add(row * k + i));
        // `max` with 0 second: a NaN difference gives 0, as `f32::max` in the spec.
        _mm256_max_ps(_mm256_sub_ps(v, floor), zero)
    };
    for r in 0..rows {
        for g in 0..groups {
            let at = r * k + g * group;
            let mut amax = _mm256_setzero_ps();
            for v in (0..group).step_by(8) {
                amax = _mm256_max_ps(amax, load(r, g * group + v));
            }
            let (scale, inv) = super::reference::group_scale(largest(amax), super::LEVELS_ABOVE_FLOOR);
            let inv = _mm256_set1_ps(inv);
            for v in (0..group).step_by(8) {
                let q = _mm256_cvtps_epi32(_mm256_mul_ps(load(r, g * group + v), inv));
                let q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
                _mm_storel_epi64(qr.q.as_mut_ptr().add(at + v).cast(), _mm_packus_epi16(q16, q16));
            }
            qr.scale[r * groups + g] = scale;
        }
    }
}

/// The largest of a vector's 8 lanes (none NaN).
#[inline(always)]
unsafe fn largest(v: __m256) -> f32 {
    let m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1)))
}

/// `out = epilogue(x · W + b)` for the first `rows` rows, from their quantized form `qr`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `Linear::forward` has checked every slice's length and
/// that the weights are int8 with an even group; `qr` comes from `quantize_rows` above.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn linear_rows(lin: &Linear, qr: &QuantizedRows, rows: usize, epi: Epilogue, out: &mut [f32]) {
    for p in 0..lin.n / PANEL {
        let mut r = 0;
        while r < rows {
            let tile = TILE.min(rows - r);
            match tile {
                4 => tile_at::<4>(lin, qr, p, r, epi, out),
                3 => tile_at::<3>(lin, qr, p, r, epi, out),
                2 => tile_at::<2>(lin, qr, p, r, epi, out),
                _ => tile_at::<1>(lin, qr, p, r, epi, out),
            }
            r += tile;
        }
    }
}

/// Quantized rows `r..r + R` (local to `qr`) × panel `p`, stored at output row `r`.
#[inline(always)]
unsafe fn tile_at<const R: usize>(lin: &Linear, qr: &QuantizedRows, p: usize, r: usize, epi: Epilogue, out: &mut [f32]) {
    let Weights::I8 { q, scales, group, .. } = lin.weights else { unreachable!("checked by the caller") };
    let (k, n) = (lin.k, lin.n);
    let groups = k / group;
    let panel = q.as_ptr().add(p * k * PANEL);
    let a = qr.wide.as_ptr().add(r * k);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for g in 0..groups {
        // Per row, columns 0–3, 4–7, 8–11, 12–15: two int32 lanes per column, k pairs (0, 1)
        // and (2, 3) of each step.
        let mut parts = [[_mm256_setzero_si256(); 4]; R];
        for t in (g * group..(g + 1) * group).step_by(QUAD) {
            let w: [__m256i; 4] = std::array::from_fn(|j| _mm256_cvtepi8_epi16(_mm_loadu_si128(panel.add(t * PANEL + 16 * j).cast())));
            for (i, part) in parts.iter_mut().enumerate() {
                let av = _mm256_set1_epi64x(a.add(i * k + t).cast::<i64>().read_unaligned());
                for (part, w) in part.iter_mut().zip(&w) {
                    *part = _mm256_add_epi32(*part, _mm256_madd_epi16(*w, av));
                }
            }
        }
        // `vphaddd` joins each column's two lanes, in the order columns 0 1 4 5 | 2 3 6 7, and
        // `vpermq` restores 0–7.
        let sums: [[__m256i; 2]; R] = std::array::from_fn(|i| {
            let [a, b, c, d] = parts[i];
            let join = |x, y| _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(x, y));
            [join(a, b), join(c, d)]
        });
        scale_into(&mut acc, &sums, qr, scales, Group { p, groups, r, g });
    }
    store(lin, &acc, p, r, n, epi, out);
}

/// `acc += (sum · row scale) · column scale`, in the spec's order, for group `g` of rows `r..`
/// of panel `p`.
#[inline(always)]
pub(super) unsafe fn scale_into<const R: usize>(acc: &mut [[__m256; 2]; R], sums: &[[__m256i; 2]; R], qr: &QuantizedRows, scales: &[f32], at: Group) {
    let Group { p, groups, r, g } = at;
    let sw = scales.as_ptr().add((p * groups + g) * PANEL);
    let (sw0, sw1) = (_mm256_loadu_ps(sw), _mm256_loadu_ps(sw.add(8)));
    for (i, (acc, sum)) in acc.iter_mut().zip(sums).enumerate() {
        let sa = _mm256_set1_ps(qr.scale[(r + i) * groups + g]);
        acc[0] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sum[0]), sa), sw0, acc[0]);
        acc[1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sum[1]), sa), sw1, acc[1]);
    }
}

/// Where a group's sums belong: panel `p`, quantized rows from `r`, group `g` of `groups`.
#[derive(Clone, Copy)]
pub(super) struct Group {
    pub p: usize,
    pub groups: usize,
    pub r: usize,
    pub g: usize,
}

/// Stores `acc + bias (+ residual)` for R rows from output row `row` on, panel `p`.
#[inline(always)]
pub(super) unsafe fn store<const R: usize>(
    lin: &Linear,
    acc: &[[__m256; 2]; R],
    p: usize,
    row: usize,
    n: usize,
    epi: Epilogue,
    out: &mut [f32],
) {
    let col = p * PANEL;
    let b0 = _mm256_loadu_ps(lin.bias.as_ptr().add(col));
    let b1 = _mm256_loadu_ps(lin.bias.as_ptr().add(col + 8));
    for (i, acc) in acc.iter().enumerate() {
        let at = (row + i) * n + col;
        let (mut v0, mut v1) = (_mm256_add_ps(acc[0], b0), _mm256_add_ps(acc[1], b1));
        if let Epilogue::Residual(res) = epi {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res.as_ptr().add(at)));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res.as_ptr().add(at + 8)));
        }
        _mm256_storeu_ps(out.as_mut_ptr().add(at), v0);
        _mm256_storeu_ps(out.as_mut_ptr().add(at + 8), v1);
    }
}
