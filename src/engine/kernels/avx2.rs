//! The AVX2+FMA micro-kernel: a tile of up to 6 rows × 16 columns held in 12 ymm accumulators.
//! Each step of k widens 16 weights (int8 → i32 → f32, times the group's scales) once and
//! broadcasts one x value per row into two FMAs, so the widening is shared by all rows of the
//! tile. int8 weights come in quad panels: two 32-byte loads hold four k of 16 columns, which
//! shuffles regroup by k (`BY_K`) for `vpmovsxbd`. That costs ~1.12× against the plain panels'
//! one `vpmovsxbd` per k (measured), the price of the layout the int8-activation kernels want.
//! Results are stored with bias (and residual) added.

use std::arch::x86_64::*;

use super::{Epilogue, Linear, Weights, PANEL, QUAD, TILE_ROWS};

/// # Safety
/// The CPU must support AVX2 and FMA; `Linear::forward` has checked every slice's length.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn linear_rows(lin: &Linear, x: &[f32], rows: usize, epi: Epilogue, out: &mut [f32]) {
    let (k, n) = (lin.k, lin.n);
    for p in 0..n / PANEL {
        let mut r = 0;
        while r < rows {
            let tile = TILE_ROWS.min(rows - r);
            let a = x.as_ptr().add(r * k);
            let acc = match tile {
                6 => tile_acc::<6>(lin, p, a),
                5 => widen(tile_acc::<5>(lin, p, a)),
                4 => widen(tile_acc::<4>(lin, p, a)),
                3 => widen(tile_acc::<3>(lin, p, a)),
                2 => widen(tile_acc::<2>(lin, p, a)),
                _ => widen(tile_acc::<1>(lin, p, a)),
            };
            let b0 = _mm256_loadu_ps(lin.bias.as_ptr().add(p * PANEL));
            let b1 = _mm256_loadu_ps(lin.bias.as_ptr().add(p * PANEL + 8));
            for (i, acc) in acc.iter().enumerate().take(tile) {
                let at = (r + i) * n + p * PANEL;
                let (mut v0, mut v1) = (_mm256_add_ps(acc[0], b0), _mm256_add_ps(acc[1], b1));
                if let Epilogue::Residual(res) = epi {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res.as_ptr().add(at)));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res.as_ptr().add(at + 8)));
                }
                _mm256_storeu_ps(out.as_mut_ptr().add(at), v0);
                _mm256_storeu_ps(out.as_mut_ptr().add(at + 8), v1);
            }
            r += tile;
        }
    }
}

#[inline(always)]
unsafe fn widen<const R: usize>(acc: [[__m256; 2]; R]) -> [[__m256; 2]; TILE_ROWS] {
    let mut out = [[_mm256_setzero_ps(); 2]; TILE_ROWS];
    out[..R].copy_from_slice(&acc);
    out
}

/// Accumulates `x[R rows, k] · panel p` without bias.
#[inline(always)]
unsafe fn tile_acc<const R: usize>(lin: &Linear, p: usize, a: *const f32) -> [[__m256; 2]; R] {
    let k = lin.k;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    match lin.weights {
        Weights::F32(w) => {
            let wp = w.as_ptr().add(p * k * PANEL);
            for t in 0..k {
                let w0 = _mm256_loadu_ps(wp.add(t * PANEL));
                let w1 = _mm256_loadu_ps(wp.add(t * PANEL + 8));
                fma_rows(&mut acc, a, k, t, w0, w1);
            }
        }
        Weights::I8 { q, scales, group, .. } => {
            let wp = q.as_ptr().add(p * k * PANEL);
            let sp = scales.as_ptr().add(p * (k / group) * PANEL);
            let by_k = _mm256_loadu_si256(BY_K.as_ptr().cast());
            let lanes = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            for g in 0..k / group {
                let s0 = _mm256_loadu_ps(sp.add(g * PANEL));
                let s1 = _mm256_loadu_ps(sp.add(g * PANEL + 8));
                for t in (g * group..(g + 1) * group).step_by(QUAD) {
                    // Each 32-bit lane holds one column's four k (quad panels); regrouped so
                    // that qword i holds k i of the 8 columns, ready for `vpmovsxbd`.
                    let split = |raw: __m256i| {
                        let v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(raw, by_k), lanes);
                        let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
                        [lo, _mm_unpackhi_epi64(lo, lo), hi, _mm_unpackhi_epi64(hi, hi)]
                    };
                    let w0 = split(_mm256_loadu_si256(wp.add(t * PANEL).cast()));
                    let w1 = split(_mm256_loadu_si256(wp.add(t * PANEL + 32).cast()));
                    macro_rules! step {
                        ($i:literal) => {{
                            let lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(w0[$i]));
                            let hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(w1[$i]));
                            fma_rows(&mut acc, a, k, t + $i, _mm256_mul_ps(lo, s0), _mm256_mul_ps(hi, s1));
                        }};
                    }
                    step!(0);
                    step!(1);
                    step!(2);
                    step!(3);
                }
            }
        }
    }
    acc
}

/// Within each 128-bit lane (four columns' four k), bytes regrouped by k: `4i + c` from `4c + i`.
const BY_K: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut b = 0;
    while b < 32 {
        let (i, c) = ((b % 16) / 4, b % 4);
        t[b] = (4 * c + i) as u8;
        b += 1;
    }
    t
};

#[inline(always)]
unsafe fn fma_rows<const R: usize>(acc: &mut [[__m256; 2]; R], a: *const f32, k: usize, t: usize, w0: __m256, w1: __m256) {
    for (i, acc) in acc.iter_mut().enumerate() {
        let av = _mm256_broadcast_ss(&*a.add(i * k + t));
        acc[0] = _mm256_fmadd_ps(av, w0, acc[0]);
        acc[1] = _mm256_fmadd_ps(av, w1, acc[1]);
    }
}
