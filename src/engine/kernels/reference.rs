//! The matmul spec, in plain Rust over the panel layouts: what every SIMD kernel must compute.
//! Also the portable path on CPUs without a tuned kernel (the compiler vectorizes the 16-wide
//! inner loops). Summation order per output is the SIMD kernels': k ascending; they fuse each
//! multiply-add, this does not, so results agree to rounding, not to the bit.

use super::{quad_index, Epilogue, Linear, Weights, PANEL, TILE_ROWS};
#[cfg(test)]
use super::QuantizedRows;

pub(super) fn linear_rows(lin: &Linear, x: &[f32], rows: usize, epi: Epilogue, out: &mut [f32]) {
    let (k, n) = (lin.k, lin.n);
    for p in 0..n / PANEL {
        let mut r = 0;
        while r < rows {
            let tile = TILE_ROWS.min(rows - r);
            let mut acc = [[0f32; PANEL]; TILE_ROWS];
            match lin.weights {
                Weights::F32(w) => {
                    let panel = &w[p * k * PANEL..(p + 1) * k * PANEL];
                    for t in 0..k {
                        let wk = &panel[t * PANEL..(t + 1) * PANEL];
                        for (i, acc) in acc.iter_mut().enumerate().take(tile) {
                            let a = x[(r + i) * k + t];
                            for c in 0..PANEL {
                                acc[c] += a * wk[c];
                            }
                        }
                    }
                }
                Weights::I8 { q, scales, group, .. } => {
                    let sp = &scales[p * (k / group) * PANEL..(p + 1) * (k / group) * PANEL];
                    for t in 0..k {
                        let s = &sp[(t / group) * PANEL..(t / group + 1) * PANEL];
                        let mut wk = [0f32; PANEL];
                        for c in 0..PANEL {
                            wk[c] = q[quad_index(k, p, t, c)] as f32 * s[c];
                        }
                        for (i, acc) in acc.iter_mut().enumerate().take(tile) {
                            let a = x[(r + i) * k + t];
                            for c in 0..PANEL {
                                acc[c] += a * wk[c];
                            }
                        }
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate().take(tile) {
                let row = (r + i) * n + p * PANEL;
                for c in 0..PANEL {
                    let mut v = acc[c] + lin.bias[p * PANEL + c];
                    if let Epilogue::Residual(res) = epi {
                        v += res[row + c];
                    }
                    out[row + c] = v;
                }
            }
            r += tile;
        }
    }
}

/// The scale of a group of activations whose largest magnitude is `amax`, and its inverse:
/// values map to `round(x · inv)` in `-levels..=levels` (127 for 8 bits, 63 for 7; see
/// `Isa::activation_levels`). An all-zero group gets scale 0.
pub(super) fn group_scale(amax: f32, levels: f32) -> (f32, f32) {
    if amax > 0.0 {
        (amax / levels, levels / amax)
    } else {
        (0.0, 0.0)
    }
}

#[cfg(test)]
/// Quantizes the first `rows` rows of `x` to int8 in `-levels..=levels`, one scale per row and
/// group of k, each stored plus `levels + 1` as u8 (the spec of `vnni::quantize_rows` and
/// `avx2_int8::quantize_rows`).
pub(super) fn quantize_rows(x: &[f32], k: usize, group: usize, levels: f32, rows: usize, qr: &mut QuantizedRows) {
    qr.resize(rows, k, group, levels);
    let groups = k / group;
    for r in 0..rows {
        for g in 0..groups {
            let at = r * k + g * group;
            let src = &x[at..at + group];
            let (scale, inv) = group_scale(src.iter().fold(0f32, |m, v| m.max(v.abs())), levels);
            for (q, v) in qr.q[at..at + group].iter_mut().zip(src) {
                *q = ((v * inv).round_ties_even() as i32 + qr.zero) as u8;
            }
            qr.scale[r * groups + g] = scale;
        }
    }
}

#[cfg(test)]
/// Quantizes `x − floor` (clamped at 0) of the first `rows` rows to `0..=63`, one scale per row
/// and group of k, stored as they are (`zero` 0): the spec of `avx2_int8::quantize_rows_above`
/// (see `Floor`).
pub(super) fn quantize_rows_above(x: &[f32], floor: f32, k: usize, group: usize, rows: usize, qr: &mut QuantizedRows) {
    qr.resize_unsigned(rows, k, group);
    let groups = k / group;
    for r in 0..rows {
        for g in 0..groups {
            let at = r * k + g * group;
            let above = |v: &f32| (v - floor).max(0.0);
            let src = &x[at..at + group];
            let (scale, inv) = group_scale(src.iter().map(above).fold(0f32, f32::max), super::LEVELS_ABOVE_FLOOR);
            for (q, v) in qr.q[at..at + group].iter_mut().zip(src) {
                *q = (above(v) * inv).round_ties_even() as u8;
            }
            qr.scale[r * groups + g] = scale;
        }
    }
}

#[cfg(test)]
/// int8 weights × quantized rows (the spec of `vnni::linear_rows`): per group, the exact
/// integer dot product, scaled by the row's and the column's group scales into an f32 sum.
pub(super) fn linear_rows_q8(lin: &Linear, qr: &QuantizedRows, rows: usize, epi: Epilogue, out: &mut [f32]) {
    let Weights::I8 { q, scales, group, .. } = lin.weights else { panic!("linear_rows_q8 needs int8 weights") };
    let (k, n) = (lin.k, lin.n);
    let groups = k / group;
    for p in 0..n / PANEL {
        for r in 0..rows {
            for c in 0..PANEL {
                let mut acc = 0f32;
                for g in 0..groups {
                    let dot: i32 = (g * group..(g + 1) * group)
                        .map(|t| (qr.q[r * k + t] as i32 - qr.zero) * q[quad_index(k, p, t, c)] as i32)
                        .sum();
                    let sw = scales[(p * groups + g) * PANEL + c];
                    acc = (dot as f32 * qr.scale[r * groups + g]).mul_add(sw, acc);
                }
                let at = r * n + p * PANEL + c;
                let mut v = acc + lin.bias[p * PANEL + c];
                if let Epilogue::Residual(res) = epi {
                    v += res[at];
                }
                out[at] = v;
            }
        }
    }
}
