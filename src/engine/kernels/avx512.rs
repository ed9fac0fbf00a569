//! The AVX-512 micro-kernel: up to 12 rows × 32 columns (two panels) in 24 zmm accumulators.
//! Each step of k widens 32 weights once (int8 → i32 → f32, times the group's scales; int8
//! from quad panels, one byte shuffle per k) and issues one FMA per accumulator with its x
//! value broadcast from memory, so the loop is FMA-bound rather than issue-bound (the AVX2
//! kernel spends ~2.5 instructions per FMA).
//! Measured on the Zen 5 build machine: ONNX Runtime's AVX-512 f32 kernels ran a 128-token forward at ~150
//! GFLOPS where the AVX2 kernel reached ~80. Per row, the arithmetic and its order are those of
//! the AVX2 kernel, so both give the same bits.

use std::arch::x86_64::*;

use super::{Epilogue, Linear, Weights, PANEL, QUAD};

/// # Safety
/// The CPU must support AVX-512F and BW; `Linear::forward` has checked every slice's length.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn linear_rows(lin: &Linear, x: &[f32], rows: usize, epi: Epilogue, out: &mut [f32]) {
    let panels = lin.n / PANEL;
    let mut p = 0;
    while p < panels {
        let pair = p + 1 < panels;
        let mut r = 0;
        while r < rows {
            let left = rows - r;
            let tile = match left {
                12.. => 12,
                8..=11 => 8,
                4..=7 => 4,
                2..=3 => 2,
                _ => 1,
            };
            match (pair, tile) {
                (true, 12) => tile_at::<12, 2>(lin, p, r, x, epi, out),
                (true, 8) => tile_at::<8, 2>(lin, p, r, x, epi, out),
                (true, 4) => tile_at::<4, 2>(lin, p, r, x, epi, out),
                (true, 2) => tile_at::<2, 2>(lin, p, r, x, epi, out),
                (true, _) => tile_at::<1, 2>(lin, p, r, x, epi, out),
                (false, 12) => tile_at::<12, 1>(lin, p, r, x, epi, out),
                (false, 8) => tile_at::<8, 1>(lin, p, r, x, epi, out),
                (false, 4) => tile_at::<4, 1>(lin, p, r, x, epi, out),
                (false, 2) => tile_at::<2, 1>(lin, p, r, x, epi, out),
                (false, _) => tile_at::<1, 1>(lin, p, r, x, epi, out),
            }
            r += tile;
        }
        p += if pair { 2 } else { 1 };
    }
}

/// Rows `r..r + R` × panels `p..p + P`, bias and residual added, stored.
#[inline(always)]
unsafe fn tile_at<const R: usize, const P: usize>(lin: &Linear, p: usize, r: usize, x: &[f32], epi: Epilogue, out: &mut [f32]) {
    let (k, n) = (lin.k, lin.n);
    let a = x.as_ptr().add(r * k);
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    match lin.weights {
        Weights::F32(w) => {
            for t in 0..k {
                let wv: [__m512; P] = std::array::from_fn(|j| _mm512_loadu_ps(w.as_ptr().add((p + j) * k * PANEL + t * PANEL)));
                fma_rows(&mut acc, a, k, t, &wv);
            }
        }
        Weights::I8 { q, scales, group, .. } => {
            let groups = k / group;
            let top: [__m512i; QUAD] = std::array::from_fn(|i| _mm512_broadcast_i32x4(_mm_loadu_si128(TOP_BYTE[i].as_ptr().cast())));
            for g in 0..groups {
                let s: [__m512; P] = std::array::from_fn(|j| {
                    _mm512_mul_ps(_mm512_loadu_ps(scales.as_ptr().add(((p + j) * groups + g) * PANEL)), _mm512_set1_ps(TOP_BYTE_SCALE))
                });
                for t in (g * group..(g + 1) * group).step_by(QUAD) {
                    // One 64-byte load per panel holds four k of its 16 columns (quad panels),
                    // a column per 32-bit lane; a shuffle per k picks its bytes (`TOP_BYTE`).
                    let raw: [__m512i; P] = std::array::from_fn(|j| _mm512_loadu_si512(q.as_ptr().add((p + j) * k * PANEL + t * PANEL).cast()));
                    macro_rules! step {
                        ($i:literal) => {{
                            let wv: [__m512; P] = std::array::from_fn(|j| {
                                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_shuffle_epi8(raw[j], top[$i])), s[j])
                            });
                            fma_rows(&mut acc, a, k, t + $i, &wv);
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
    for (i, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let col = (p + j) * PANEL;
            let at = (r + i) * n + col;
            let mut v = _mm512_add_ps(*v, _mm512_loadu_ps(lin.bias.as_ptr().add(col)));
            if let Epilogue::Residual(res) = epi {
                v = _mm512_add_ps(v, _mm512_loadu_ps(res.as_ptr().add(at)));
            }
            _mm512_storeu_ps(out.as_mut_ptr().add(at), v);
        }
    }
}

/// `vpshufb` masks that move byte i of each 32-bit lane to its top byte and clear the rest: the
/// lane becomes `w · 2^24`, exactly, so `cvt(lane) · (scale · 2^-24)` is `w · scale` to the bit
/// (both factors scaled by powers of two; no weight scale comes near f32's subnormals). One
/// shuffle per k; measured as fast as the plain panels' `vpmovsxbd` here (2026-12-01).
const TOP_BYTE: [[u8; 16]; QUAD] = {
    let mut t = [[0x80u8; 16]; QUAD];
    let mut i = 0;
    while i < QUAD {
        let mut b = 3;
        while b < 16 {
            t[i][b] = (b - 3 + i) as u8;
            b += 4;
        }
        i += 1;
    }
    t
};
/// Undoes `TOP_BYTE`'s `2^24`.
const TOP_BYTE_SCALE: f32 = 1.0 / (1u32 << 24) as f32;

#[inline(always)]
unsafe fn fma_rows<const R: usize, const P: usize>(acc: &mut [[__m512; P]; R], a: *const f32, k: usize, t: usize, w: &[__m512; P]) {
    for (i, row) in acc.iter_mut().enumerate() {
        let av = _mm512_set1_ps(*a.add(i * k + t));
        for (acc, w) in row.iter_mut().zip(w) {
            *acc = _mm512_fmadd_ps(av, *w, *acc);
        }
    }
}
