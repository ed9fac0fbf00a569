//! The AVX-VNNI kernel: the VEX-encoded, 256-bit `vpdpbusd` of Alder Lake and later Intel cores
//! and of AMD Zen 5, which some hosts expose without AVX-512. The same design as `vnni` at half
//! the width: activations quantized by `avx2_int8::quantize_rows` (the VNNI spec, 8 bits) as
//! the unsigned operand, with the offset 128, the quad panels' 32-byte halves loaded as they are
//! (each 32-bit lane four consecutive k of one column), and the `128 · Σ w` the offset adds
//! removed by starting each group's sum at `-128 · Σ w` (the snapshot's column sums). The result
//! is `reference::linear_rows_q8` to the bit.
//!
//! The same tiles run on plain AVX2 for 7-bit activations (`linear_rows_7bit`, `Isa::Avx2Int7`),
//! with `vpmaddubsw` + `vpmaddwd` in place of `vpdpbusd`: 3 vector ops per 4 k and 8 columns
//! where `avx2_int8` spends 4, the faster int8 kernel without VNNI. Inputs quantized above a
//! floor to 6 bits without a sign (`Floor`, GELU's outputs) take `linear_rows_pairs`: two
//! steps' `vpmaddubsw` pair sums added in int16, then one `vpmaddwd`, 5 ops per 8 k where 7
//! bits take 6.

use std::arch::x86_64::*;

use super::avx2_int8::{scale_into, store, Group};
use super::{Epilogue, Linear, QuantizedRows, Weights, PANEL};

/// Rows per tile: 6 for `vpdpbusd` (12 accumulators, two weight vectors and the broadcast fit
/// the 16 ymm registers); 4 for `vpmaddubsw`, whose products and the vector of ones need
/// registers too: at 6 rows the compiler spilled accumulators to the stack, and 4 rows measured
/// 1.03–1.06× faster on 300 mixed texts (CPU time, runs alternated per batch, Xeon under
/// avx2-only, 2026-12-02).
const fn tile_rows(mode: u8) -> usize {
    if mode == VNNI {
        6
    } else {
        4
    }
}

// How `tile_at` forms each four-k dot product (a const parameter; enums cannot be one yet):
/// `vpdpbusd` (AVX-VNNI).
const VNNI: u8 = 0;
/// `vpmaddubsw` pairs, `vpmaddwd` by ones, `vpaddd`: exact for 7-bit activations, whose offset
/// 64 keeps the unsigned operand ≤ 127, so a pair of u8 × s8 products cannot saturate int16
/// (2 · 127 · 128 < 32767).
const MADDUBS: u8 = 1;
/// `vpdpbusd` emulated by widening bytes to int16: exact for 8 bits, to test without VNNI.
#[cfg(test)]
const EMULATED: u8 = 2;
/// As `MADDUBS`, 8 k at a time: the two steps' `vpmaddubsw` pair sums added in int16, then one
/// `vpmaddwd`. Exact for 6-bit activations without a sign (`Floor`): each pair sum is at most
/// 2 · 63 · 128 in magnitude, two of them under 32767.
const PAIRS: u8 = 3;

/// `out = epilogue(x · W + b)` for the first `rows` rows, from their quantized form `qr`.
///
/// # Safety
/// The CPU must support AVX2, FMA and AVX-VNNI; `Linear::forward` has checked every slice's
/// length and that the weights are int8 with a group that is a multiple of 4; `qr` comes from
/// `avx2_int8::quantize_rows`.
#[target_feature(enable = "avx2,fma,avxvnni")]
pub(super) unsafe fn linear_rows(lin: &Linear, qr: &QuantizedRows, rows: usize, epi: Epilogue, out: &mut [f32]) {
    tiles::<VNNI>(lin, qr, rows, epi, out)
}

/// `linear_rows` on AVX2 alone, for activations quantized to 7 bits (levels 63): `vpmaddubsw`
/// then `vpmaddwd` take the place of `vpdpbusd`, the same four k per lane.
///
/// # Safety
/// As `linear_rows`, with AVX2 and FMA only, and `qr` quantized with `LEVELS_7`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn linear_rows_7bit(lin: &Linear, qr: &QuantizedRows, rows: usize, epi: Epilogue, out: &mut [f32]) {
    tiles::<MADDUBS>(lin, qr, rows, epi, out)
}

/// `linear_rows_7bit` for activations quantized above a floor (`Floor`,
/// `avx2_int8::quantize_rows_above`): two steps of k per `vpmaddwd`.
///
/// # Safety
/// As `linear_rows_7bit`, with a group that is a multiple of 8 and `qr` from
/// `quantize_rows_above`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn linear_rows_pairs(lin: &Linear, qr: &QuantizedRows, rows: usize, epi: Epilogue, out: &mut [f32]) {
    tiles::<PAIRS>(lin, qr, rows, epi, out)
}

/// `linear_rows` with `vpdpbusd` emulated in AVX2, so CPUs without AVX-VNNI (and QEMU, which
/// lacks it) still test the quad-panel loads and offsets around it.
///
/// # Safety
/// As `linear_rows`, with AVX2 and FMA only.
#[cfg(test)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn linear_rows_emulated(lin: &Linear, qr: &QuantizedRows, rows: usize, epi: Epilogue, out: &mut [f32]) {
    tiles::<EMULATED>(lin, qr, rows, epi, out)
}

#[inline(always)]
unsafe fn tiles<const MODE: u8>(lin: &Linear, qr: &QuantizedRows, rows: usize, epi: Epilogue, out: &mut [f32]) {
    for p in 0..lin.n / PANEL {
        let mut r = 0;
        while r < rows {
            let tile = tile_rows(MODE).min(rows - r);
            match tile {
                6 => tile_at::<6, MODE>(lin, qr, p, r, epi, out),
                5 => tile_at::<5, MODE>(lin, qr, p, r, epi, out),
                4 => tile_at::<4, MODE>(lin, qr, p, r, epi, out),
                3 => tile_at::<3, MODE>(lin, qr, p, r, epi, out),
                2 => tile_at::<2, MODE>(lin, qr, p, r, epi, out),
                _ => tile_at::<1, MODE>(lin, qr, p, r, epi, out),
            }
            r += tile;
        }
    }
}

/// Each 32-bit lane of `sum` plus the four u8 × s8 products of its bytes (`vpdpbusd`).
#[inline(always)]
unsafe fn dot<const MODE: u8>(sum: __m256i, u: __m256i, s: __m256i, ones: __m256i) -> __m256i {
    match MODE {
        VNNI => _mm256_dpbusd_avx_epi32(sum, u, s),
        MADDUBS => _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones)),
        _ => {
            // EMULATED. Widened to int16 (u zero-, s sign-extended), `vpmaddwd` sums byte pairs
            // exactly, and `vphaddd` joins the pairs of each dword (both within 128-bit lanes,
            // as the bytes are).
            let zero = _mm256_setzero_si256();
            let lo = _mm256_madd_epi16(_mm256_unpacklo_epi8(u, zero), _mm256_srai_epi16::<8>(_mm256_unpacklo_epi8(zero, s)));
            let hi = _mm256_madd_epi16(_mm256_unpackhi_epi8(u, zero), _mm256_srai_epi16::<8>(_mm256_unpackhi_epi8(zero, s)));
            _mm256_add_epi32(sum, _mm256_hadd_epi32(lo, hi))
        }
    }
}

#[inline(always)]
unsafe fn tile_at<const R: usize, const MODE: u8>(lin: &Linear, qr: &QuantizedRows, p: usize, r: usize, epi: Epilogue, out: &mut [f32]) {
    let Weights::I8 { q, scales, sums, group } = lin.weights else { unreachable!("checked by the caller") };
    let (k, n) = (lin.k, lin.n);
    let groups = k / group;
    let panel = q.as_ptr().add(p * k * PANEL);
    let a = qr.q.as_ptr().add(r * k);
    // The offset is 0 or a power of two (64 or 128): a shift multiplies by it (by 32, to 0).
    debug_assert!(qr.zero.count_ones() <= 1);
    let shift = _mm_cvtsi32_si128(qr.zero.trailing_zeros() as i32);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for g in 0..groups {
        // Each group's sums start at -zero · Σ w, per column.
        let column_sums = sums.as_ptr().add((p * groups + g) * PANEL);
        let start = |half: usize| {
            let s = _mm256_loadu_si256(column_sums.add(8 * half).cast());
            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sll_epi32(s, shift))
        };
        let mut dots = [[start(0), start(1)]; R];
        if MODE == PAIRS {
            for t in (g * group..(g + 1) * group).step_by(8) {
                // Columns 0–7 and 8–15 of k t..t + 4, then of t + 4..t + 8.
                let w: [__m256i; 4] = std::array::from_fn(|j| _mm256_loadu_si256(panel.add(t * PANEL + 32 * j).cast()));
                for (i, row) in dots.iter_mut().enumerate() {
                    let a0 = _mm256_set1_epi32(a.add(i * k + t).cast::<i32>().read_unaligned());
                    let a1 = _mm256_set1_epi32(a.add(i * k + t + 4).cast::<i32>().read_unaligned());
                    for (half, dot) in row.iter_mut().enumerate() {
                        let pairs = _mm256_add_epi16(_mm256_maddubs_epi16(a0, w[half]), _mm256_maddubs_epi16(a1, w[2 + half]));
                        *dot = _mm256_add_epi32(*dot, _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            scale_into(&mut acc, &dots, qr, scales, Group { p, groups, r, g });
            continue;
        }
        for t in (g * group..(g + 1) * group).step_by(4) {
            // Columns 0–7, then 8–15, four k per 32-bit lane (quad panels).
            let w0 = _mm256_loadu_si256(panel.add(t * PANEL).cast());
            let w1 = _mm256_loadu_si256(panel.add(t * PANEL + 32).cast());
            for (i, row) in dots.iter_mut().enumerate() {
                let av = _mm256_set1_epi32(a.add(i * k + t).cast::<i32>().read_unaligned());
                row[0] = dot::<MODE>(row[0], av, w0, ones);
                row[1] = dot::<MODE>(row[1], av, w1, ones);
            }
        }
        scale_into(&mut acc, &dots, qr, scales, Group { p, groups, r, g });
    }
    store(lin, &acc, p, r, n, epi, out);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{noise, q8_spec, quantize, Packed};
    use super::super::{avx2_int8, Epilogue, Isa, Linear, QuantizedRows};

    #[test]
    fn the_quad_loads_and_offsets_give_the_specs_bits_with_vpdpbusd_emulated() {
        if !Isa::available().contains(&Isa::Avx2Int8) {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        for (m, k, n) in [(1, 32, 16), (5, 384, 48), (7, 160, 80), (13, 1536, 32)] {
            let mut x = noise(51 + m as u64, m * k, 2.0);
            x[k / 3] = -70.0;
            x[(m - 1) * k..(m - 1) * k + 32].fill(0.0);
            let w = noise(52 + k as u64, k * n, 0.2);
            let b = noise(53, n, 0.1);
            let res = noise(54, m * n, 1.0);
            let (q, s, _) = quantize(&w, k, n, 32);
            let p8 = Packed::new(&q, &s, k, n, 32);
            let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
            let mut qr = QuantizedRows::default();
            let mut out = vec![0f32; m * n];
            // SAFETY: AVX2 and FMA were detected (`Avx2Int8` is available); shapes are consistent.
            unsafe {
                avx2_int8::quantize_rows::<false>(&x, None, k, 32, 127.0, m, &mut qr);
                super::linear_rows_emulated(&lin, &qr, m, Epilogue::Residual(&res), &mut out);
            }
            assert_eq!(out, q8_spec(Isa::AvxVnni, &lin, &x, m, Epilogue::Residual(&res)), "m{m} k{k} n{n}");
        }
    }
}
