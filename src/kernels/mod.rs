//! The numeric core: `y = x · W + b` over panel-packed weights, and the elementwise math
//! (LayerNorm, GELU, softmax) around it.
//!
//! Weights are `[k, n]` matrices cut into 16-column panels stored k-major (see
//! `snapshot::Layout::Panels`), either f32 or int8 with one f32 scale per `group` rows of k and
//! output column. The micro-kernel widens int8 to f32 in registers and multiplies with f32 FMAs:
//! activations stay f32, so int8 costs accuracy only through the weights (group-32 scales keep
//! mean cosine ≥ 0.9998 to fp32; per-channel scales lost ~4× more), while a weight byte is read
//! instead of four. Integer arithmetic was measured and set aside for now: without VNNI,
//! int8×int8 products cost as many instructions per multiply-add as f32 FMA; with VNNI they are
//! faster, but int8 activations (per token, symmetric) took all-MiniLM-L6-v2 to mean cosine
//! 0.9977 / min 0.9877 against fp32 (SmoothQuant-style rescaling: min 0.991–0.993), under the
//! 0.995 bar. 16-bit activations (`vpdpwssd`) are the candidate that keeps the accuracy.
//!
//! `reference` is the spec and the portable path; `avx512` (AVX-512F) or `avx2` (AVX2+FMA) is
//! chosen once at start-up from what the CPU has, and each is tested against the spec.

pub mod math;
mod reference;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Output columns per panel (two AVX2 vectors, one AVX-512 vector).
pub const PANEL: usize = crate::snapshot::PANEL_WIDTH;
/// Rows of x per micro-tile of the portable and AVX2 kernels (AVX-512 takes up to 12).
pub const TILE_ROWS: usize = 6;

/// A weight matrix `[k, n]` in panel layout.
#[derive(Clone, Copy)]
pub enum Weights<'a> {
    F32(&'a [f32]),
    /// `scales` is `[k / group, n]` in panel layout.
    I8 { q: &'a [i8], scales: &'a [f32], group: usize },
}

/// A fully connected layer's parameters, borrowed from the snapshot.
#[derive(Clone, Copy)]
pub struct Linear<'a> {
    pub weights: Weights<'a>,
    pub bias: &'a [f32],
    pub k: usize,
    pub n: usize,
}

/// What happens to `x · W + b` before it is stored.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    None,
    Gelu,
    /// Adds a `[m, n]` residual.
    Residual(&'a [f32]),
}

/// The matmul implementations this build can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The best implementation this CPU supports.
    pub fn detect() -> Isa {
        Isa::available().pop().unwrap_or(Isa::Portable)
    }

    /// Every implementation this CPU can run, best last.
    pub fn available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut isas = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            isas.push(Isa::Avx2Fma);
            if is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
        }
        isas
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => "avx2+fma",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512f",
        }
    }
}

impl Linear<'_> {
    /// `out[m, n] = epilogue(x[m, k] · W + b)` for rows `rows` of x and out.
    ///
    /// Panics if slice lengths disagree with the shapes — a bug in the caller, never user input.
    pub fn forward(&self, isa: Isa, x: &[f32], m: usize, epilogue: Epilogue, out: &mut [f32]) {
        assert!(x.len() >= m * self.k && out.len() >= m * self.n && self.bias.len() == self.n);
        assert!(self.n.is_multiple_of(PANEL));
        match self.weights {
            Weights::F32(w) => assert_eq!(w.len(), self.k * self.n),
            Weights::I8 { q, scales, group } => {
                assert!(group > 0 && self.k.is_multiple_of(group));
                assert_eq!(q.len(), self.k * self.n);
                assert_eq!(scales.len(), self.k / group * self.n);
            }
        }
        if let Epilogue::Residual(r) = epilogue {
            assert!(r.len() >= m * self.n);
        }
        // Row blocks keep a block of x in L2 while every panel streams past it once; a multiple
        // of 12 rows suits both micro-kernels' tiles.
        let block = (64 * 1024 / (self.k * 4)).clamp(1, 64).div_ceil(12) * 12;
        let mut r0 = 0;
        while r0 < m {
            let rows = block.min(m - r0);
            match isa {
                Isa::Portable => reference::linear_rows(self, x, r0, rows, epilogue, out),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx2Fma` is only constructed after detecting AVX2 and FMA, and the
                // shape assertions above bound every pointer the kernel forms.
                Isa::Avx2Fma => unsafe { avx2::linear_rows(self, x, r0, rows, epilogue, out) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above, with AVX-512F detected.
                Isa::Avx512 => unsafe { avx512::linear_rows(self, x, r0, rows, epilogue, out) },
            }
            if let Epilogue::Gelu = epilogue {
                math::gelu(&mut out[r0 * self.n..(r0 + rows) * self.n]);
            }
            r0 += rows;
        }
    }
}

/// Packs a row-major `[k, n]` matrix into panel layout (used by model-prep and tests).
pub fn pack_panels<T: Copy>(w: &[T], k: usize, n: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(w.len());
    pack_panels_into(w, k, n, &mut out);
    out
}

/// `pack_panels` into a reused buffer (attention packs K and V per head).
pub fn pack_panels_into<T: Copy>(w: &[T], k: usize, n: usize, out: &mut Vec<T>) {
    assert_eq!(w.len(), k * n);
    assert!(n.is_multiple_of(PANEL));
    out.clear();
    for p in 0..n / PANEL {
        for row in 0..k {
            out.extend_from_slice(&w[row * n + p * PANEL..row * n + (p + 1) * PANEL]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream (xorshift), so tests need no rand crate.
    pub(crate) fn noise(seed: u64, len: usize, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// The definition in f64, from row-major weights.
    fn naive(x: &[f32], w: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = b[j] as f64;
                for t in 0..k {
                    acc += x[i * k + t] as f64 * w[t * n + j] as f64;
                }
                out[i * n + j] = acc;
            }
        }
        out
    }

    fn quantize(w: &[f32], k: usize, n: usize, group: usize) -> (Vec<i8>, Vec<f32>, Vec<f32>) {
        let mut q = vec![0i8; k * n];
        let mut s = vec![0f32; k / group * n];
        let mut deq = vec![0f32; k * n];
        for g in 0..k / group {
            for j in 0..n {
                let amax = (0..group).map(|t| w[(g * group + t) * n + j].abs()).fold(0f32, f32::max);
                let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
                s[g * n + j] = scale;
                for t in 0..group {
                    let i = (g * group + t) * n + j;
                    q[i] = (w[i] / scale).round().clamp(-127.0, 127.0) as i8;
                    deq[i] = q[i] as f32 * scale;
                }
            }
        }
        (q, s, deq)
    }

    fn check(isa: Isa, m: usize, k: usize, n: usize) {
        let x = noise(1 + m as u64, m * k, 1.0);
        let w = noise(2 + k as u64, k * n, 0.2);
        let b = noise(3 + n as u64, n, 0.5);
        let res = noise(4, m * n, 1.0);
        let tol = |want: f64| 1e-4 * (1.0 + want.abs());

        let packed = pack_panels(&w, k, n);
        let lin = Linear { weights: Weights::F32(&packed), bias: &b, k, n };
        let mut out = vec![0f32; m * n];
        lin.forward(isa, &x, m, Epilogue::Residual(&res), &mut out);
        let want = naive(&x, &w, &b, m, k, n);
        for i in 0..m * n {
            let wv = want[i] + res[i] as f64;
            assert!((out[i] as f64 - wv).abs() < tol(wv), "{isa:?} f32 m{m} k{k} n{n} [{i}]: {} vs {wv}", out[i]);
        }

        let group = 32;
        let (q, s, deq) = quantize(&w, k, n, group);
        let (qp, sp) = (pack_panels(&q, k, n), pack_panels(&s, k / group, n));
        let lin = Linear { weights: Weights::I8 { q: &qp, scales: &sp, group }, bias: &b, k, n };
        lin.forward(isa, &x, m, Epilogue::None, &mut out);
        let want = naive(&x, &deq, &b, m, k, n);
        for i in 0..m * n {
            assert!((out[i] as f64 - want[i]).abs() < tol(want[i]), "{isa:?} i8 m{m} k{k} n{n} [{i}]");
        }
    }

    #[test]
    fn every_isa_matches_the_definition() {
        for isa in Isa::available() {
            for m in [1, 2, 5, 6, 7, 13, 50] {
                check(isa, m, 64, 32);
            }
            check(isa, 9, 384, 48);
            check(isa, 70, 1536, 16);
        }
    }

    #[test]
    fn simd_kernels_give_the_same_bits() {
        let (k, n, m) = (384, 48, 29);
        let x = noise(11, m * k, 1.0);
        let w = noise(12, k * n, 0.2);
        let (q, s, _) = quantize(&w, k, n, 32);
        let (qp, sp) = (pack_panels(&q, k, n), pack_panels(&s, k / 32, n));
        let b = noise(13, n, 0.1);
        let lin = Linear { weights: Weights::I8 { q: &qp, scales: &sp, group: 32 }, bias: &b, k, n };
        let simd: Vec<Isa> = Isa::available().into_iter().filter(|&i| i != Isa::Portable).collect();
        let outs: Vec<Vec<f32>> = simd
            .iter()
            .map(|&isa| {
                let mut out = vec![0f32; m * n];
                lin.forward(isa, &x, m, Epilogue::Gelu, &mut out);
                out
            })
            .collect();
        for o in &outs[1.min(outs.len())..] {
            assert_eq!(o, &outs[0]);
        }
    }

    #[test]
    fn isas_agree_bit_for_bit_per_row_whatever_the_batch() {
        // Batching must not change a vector: a row's result may not depend on its neighbours.
        let (k, n) = (384, 32);
        let x = noise(7, 13 * k, 1.0);
        let w = pack_panels(&noise(8, k * n, 0.2), k, n);
        let b = noise(9, n, 0.1);
        let lin = Linear { weights: Weights::F32(&w), bias: &b, k, n };
        for isa in Isa::available() {
            let mut all = vec![0f32; 13 * n];
            lin.forward(isa, &x, 13, Epilogue::Gelu, &mut all);
            for r in 0..13 {
                let mut one = vec![0f32; n];
                lin.forward(isa, &x[r * k..(r + 1) * k], 1, Epilogue::Gelu, &mut one);
                assert_eq!(one, all[r * n..(r + 1) * n], "{isa:?} row {r}");
            }
        }
    }
}
