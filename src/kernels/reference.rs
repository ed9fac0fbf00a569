//! The matmul spec, in plain Rust over the panel layout: what every SIMD kernel must compute.
//! Also the portable path on CPUs without a tuned kernel (the compiler vectorizes the 16-wide
//! inner loops). Summation order per output is the SIMD kernels': k ascending; they fuse each
//! multiply-add, this does not, so results agree to rounding, not to the bit.

use super::{Epilogue, Linear, Weights, PANEL, TILE_ROWS};

pub(super) fn linear_rows(lin: &Linear, x: &[f32], r0: usize, rows: usize, epi: Epilogue, out: &mut [f32]) {
    let (k, n) = (lin.k, lin.n);
    for p in 0..n / PANEL {
        let mut r = r0;
        while r < r0 + rows {
            let tile = TILE_ROWS.min(r0 + rows - r);
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
                Weights::I8 { q, scales, group } => {
                    let panel = &q[p * k * PANEL..(p + 1) * k * PANEL];
                    let sp = &scales[p * (k / group) * PANEL..(p + 1) * (k / group) * PANEL];
                    for t in 0..k {
                        let s = &sp[(t / group) * PANEL..(t / group + 1) * PANEL];
                        let mut wk = [0f32; PANEL];
                        for c in 0..PANEL {
                            wk[c] = panel[t * PANEL + c] as f32 * s[c];
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
