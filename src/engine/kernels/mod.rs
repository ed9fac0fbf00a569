//! The numeric core: `y = x · W + b` over panel-packed weights, and the elementwise math
//! (LayerNorm, GELU, softmax) around it.
//!
//! Weights are `[k, n]` matrices cut into 16-column panels stored k-major: f32 with 16 values
//! per k (`snapshot::Layout::Panels`), or int8 with each column's four consecutive k together
//! (`Layout::QuadPanels`, the operand of `vpdpbusd`) and one f32 scale per `group` rows of k and
//! output column. The quad layout spared the int8-activation kernels an in-register transpose:
//! 1.15× on AVX-VNNI and on AVX2's 7-bit kernel, 1.03× on AVX-512 VNNI, and cost the kernels
//! that widen int8 weights one k at a time (f32 activations on AVX2, 8-bit `vpmaddwd`) ~1.12×
//! (CPU time on 160 mixed texts, Xeon with AVX-512 VNNI, 2026-12-01).
//!
//! Two ways to multiply int8 weights:
//! - f32 activations (`reference`, `avx2`, `avx512`): the micro-kernel widens int8 to f32 in
//!   registers and multiplies with f32 FMAs, so int8 costs accuracy only through the weights
//!   (group-32 scales keep mean cosine ≥ 0.9998 to fp32; per-channel scales lost ~4× more).
//! - int8 activations (`vnni` on AVX-512 VNNI, `avxvnni` on AVX-VNNI, `avx2_int8` on plain
//!   AVX2): each row is quantized per group of the weights' group (64 in the shipped snapshot)
//!   and multiplied with `vpdpbusd` (four times the multiply-adds of an FMA per instruction) or,
//!   without VNNI, `vpmaddwd`; each group's integer sums are rescaled once. Groups of 64 keep
//!   accuracy because model-prep smooths the inputs of the QKV and feed-forward matmuls
//!   (`LinearRef::input_scale`): on the goldens, mean cosine 0.9996–0.9997 / min 0.9990 to
//!   sentence-transformers (groups of 32 without smoothing: 0.9995–0.9996 / 0.9983; one scale
//!   per row: min 0.9877). Plain AVX2's default is 7-bit activations (`Isa::Avx2Int7`,
//!   `vpmaddubsw` in the `avxvnni` design), and GELU's outputs 6 bits above its floor, two
//!   steps of k per `vpmaddwd` (`Floor`): mean 0.9991–0.9993, min 0.9965–0.9986 (7 bits
//!   throughout: 0.9992–0.9994 / 0.9966–0.9989; at 32 without smoothing 0.9990–0.9993 /
//!   0.9956–0.9986), for ~1.2–1.3× the 8-bit kernel's matmul speed (~1.05–1.1× on a whole
//!   batch: Zen 3, 2026-12-01), and the floor ~1.08× more (Xeon, 2026-12-02).
//!
//! `reference` is the spec and the portable path; the best kernel the CPU has is chosen once at
//! start-up (`Isa::detect`, or `--kernels`), and each is tested against the spec. The f32-
//! activation kernels give the same bits; the int8-activation kernels give their own spec's
//! bits, all three the same.

pub mod math;
mod reference;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_int8;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avxvnni;
#[cfg(target_arch = "x86_64")]
mod vnni;

use std::cell::RefCell;

/// Output columns per panel (two AVX2 vectors, one AVX-512 vector).
pub const PANEL: usize = crate::engine::snapshot::PANEL_WIDTH;
/// Consecutive k per column in the int8 weights' quad panels (`pack_quad_panels`).
pub const QUAD: usize = 4;
/// Rows of x per micro-tile of the portable and AVX2 kernels (AVX-512 takes up to 12).
pub const TILE_ROWS: usize = 6;

/// A weight matrix `[k, n]` in panel layout.
#[derive(Clone, Copy)]
pub enum Weights<'a> {
    /// In panel layout (`pack_panels`).
    F32(&'a [f32]),
    /// `q` in quad-panel layout (`pack_quad_panels`); `scales` and `sums` (`group_sums`)
    /// `[k / group, n]` in panel layout; the group is a multiple of `QUAD`.
    I8 { q: &'a [i8], scales: &'a [f32], sums: &'a [i32], group: usize },
}

/// A fully connected layer's parameters, borrowed from the snapshot:
/// `y = (x ⊙ input_scale) · W + b`.
#[derive(Clone, Copy)]
pub struct Linear<'a> {
    pub weights: Weights<'a>,
    pub bias: &'a [f32],
    /// `[k]` factors every row of x is multiplied by first (model-prep's smoothing), if any.
    pub input_scale: Option<&'a [f32]>,
    /// A bound the inputs never go below, if known (GELU's outputs), for kernels that quantize
    /// `x − floor` without a sign (`Isa::Avx2Int7`). It bounds x itself, so a layer with an
    /// input scale leaves it unused.
    pub floor: Option<Floor<'a>>,
    pub k: usize,
    pub n: usize,
}

/// Inputs ≥ `value`, and the bias that goes with quantizing `x − value` instead of x:
/// `bias + value · Σ_k W[k, column]`, over the dequantized int8 weights (`Floor::bias_for`).
///
/// `Isa::Avx2Int7` quantizes such inputs (GELU's outputs, the feed-forward's second matmul, a
/// third of the arithmetic) as `x − value` in 6 bits without a sign, `0..=63`: the same step
/// as 7 bits with a sign, which spend half their range on a sign GELU's outputs hardly have.
/// Two `vpmaddubsw` pair sums with 8-bit weights then fit one int16 (2 · 2 · 63 · 127 <
/// 32767), so one `vpmaddwd` serves 8 k instead of 4 (`avxvnni::linear_rows_pairs`): 5 vector
/// ops per 8 k and 8 columns of a row where 7 bits take 6. Other kernels ignore the floor.
#[derive(Clone, Copy)]
pub struct Floor<'a> {
    pub value: f32,
    pub bias: &'a [f32],
}

impl Floor<'_> {
    /// `bias + value · Σ_k W[k, column]` for int8 weights, in f64, rounded once; `None` for
    /// f32 weights, which no kernel quantizes.
    pub fn bias_for(weights: Weights, bias: &[f32], value: f32) -> Option<Vec<f32>> {
        let Weights::I8 { scales, sums, .. } = weights else { return None };
        let n = bias.len();
        // `scales` and `sums` are `[k / group, n]` in panel layout: group g of column c of
        // panel p at `(p · groups + g) · PANEL + c`.
        let groups = scales.len() / n;
        let column = |j: usize| -> f64 {
            let (p, c) = (j / PANEL, j % PANEL);
            (0..groups).map(|g| (p * groups + g) * PANEL + c).map(|i| scales[i] as f64 * sums[i] as f64).sum()
        };
        Some((0..n).map(|j| (bias[j] as f64 + value as f64 * column(j)) as f32).collect())
    }
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
    /// AVX2 with int8 activations (`avx2_int8`, `vpmaddwd`): int8 arithmetic where Lambda
    /// hides AVX-512 and VNNI; f32 weights take the `Avx2Fma` kernel.
    #[cfg(target_arch = "x86_64")]
    Avx2Int8,
    /// AVX2 with 7-bit activations (`avxvnni`'s design with `vpmaddubsw` for `vpdpbusd`): the
    /// fastest int8 arithmetic without VNNI, at a little of the 8-bit kernels' accuracy.
    #[cfg(target_arch = "x86_64")]
    Avx2Int7,
    /// AVX-VNNI (`avxvnni`, 256-bit `vpdpbusd`) with int8 activations; f32 weights take the
    /// `Avx2Fma` kernel.
    #[cfg(target_arch = "x86_64")]
    AvxVnni,
    /// AVX-512 with VNNI (and BW): int8 weights run against int8 activations (`vnni`); f32
    /// weights (attention) take the `Avx512` kernel.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Isa {
    /// The best implementation this CPU supports.
    pub fn detect() -> Isa {
        Isa::available().pop().unwrap_or(Isa::Portable)
    }

    /// The best implementation that keeps activations in f32 (the most exact that is fast).
    pub fn detect_exact() -> Isa {
        Isa::available().into_iter().rfind(|isa| !isa.quantizes_activations()).unwrap_or(Isa::Portable)
    }

    /// Every implementation this CPU can run, best last.
    pub fn available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut isas = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            isas.push(Isa::Avx2Fma);
            // BW for the int8 weights' byte shuffles: every AVX-512 CPU but Xeon Phi has it.
            let avx512 = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw");
            if avx512 {
                isas.push(Isa::Avx512);
            }
            // Integer arithmetic beats f32 FMAs at the same width: `vpmaddwd` measured ~1.75×
            // the FMA rate (issue 12), so int8 activations on AVX2 rank above f32 ones, even
            // 512-bit ones (not measured on a CPU with AVX-512 but no VNNI).
            isas.push(Isa::Avx2Int8);
            // Measured on Zen 3 (2026-12-01): `vpmaddubsw` + `vpmaddwd` on four k at once take
            // fewer vector ops per multiply-add than `vpmaddwd` on two, so 7 bits run faster.
            isas.push(Isa::Avx2Int7);
            if is_x86_feature_detected!("avxvnni") {
                isas.push(Isa::AvxVnni);
            }
            if avx512 && is_x86_feature_detected!("avx512vnni") {
                isas.push(Isa::Avx512Vnni);
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
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => "avx512vnni",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Int8 => "avx2-int8",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Int7 => "avx2-int7",
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => "avxvnni",
        }
    }

    /// The implementation called `name`, if this CPU can run it.
    pub fn by_name(name: &str) -> Option<Isa> {
        Isa::available().into_iter().find(|isa| isa.name() == name)
    }

    /// Whether int8 weights meet int8 activations (quantized per row and group of k) rather
    /// than f32 ones: faster, and a little less exact (see `vnni`).
    pub fn quantizes_activations(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if matches!(self, Isa::Avx512Vnni | Isa::AvxVnni | Isa::Avx2Int8 | Isa::Avx2Int7) {
            return true;
        }
        false
    }

    /// Whether inputs with a known floor (`Linear::floor`) are quantized above it, without a
    /// sign (see `Floor`).
    pub fn quantizes_above_floors(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Avx2Int7 {
            return true;
        }
        false
    }

    /// The kernels to compute vectors that are stored (an index) with: the same as `self` but
    /// for 7-bit activations, which only plain-AVX2 CPUs choose, replaced by the 8-bit spec that
    /// AVX2, AVX-VNNI and AVX-512 VNNI CPUs all compute to the same bits. So an index built on a
    /// Lambda-like CPU is the index built on a VNNI server.
    pub fn reproducible(self) -> Isa {
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Avx2Int7 {
            return Isa::Avx2Int8;
        }
        self
    }

    /// The largest magnitude a quantized activation takes: 127 (8 bits), or 63 (7 bits) where
    /// `vpmaddubsw` would otherwise saturate: its pairs of u8 × s8 products fit int16 only while
    /// the unsigned operand stays under 128, as 7-bit activations plus their offset 64 do
    /// (2 · 127 · 128 ≤ `i16::MAX`).
    pub fn activation_levels(self) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self == Isa::Avx2Int7 {
            return LEVELS_7;
        }
        LEVELS_8
    }
}

/// Quantized activations span `-127..=127` (8 bits) or `-63..=63` (7 bits), or `0..=63` above
/// a floor (6 bits without a sign).
const LEVELS_8: f32 = 127.0;
const LEVELS_7: f32 = 63.0;
pub(crate) const LEVELS_ABOVE_FLOOR: f32 = 63.0;

/// Activations quantized to int8 per row and per group of k, for the int8-activation kernels.
#[derive(Default)]
pub(crate) struct QuantizedRows {
    /// `[rows, k]`: each quantized value `q` plus `zero`, unsigned: the u8 operand of `vpdpbusd`
    /// and `vpmaddubsw`, so the weights are used as they are stored. The offset adds
    /// `zero · Σ w` to each group's dot product; the kernels cancel it by starting the group's
    /// sum at `-zero · Σ w` (`Weights::I8::sums`).
    q: Vec<u8>,
    /// `levels + 1`: 128 for 8 bits, 64 for 7, so that `q + zero` spans `1..=2 · levels + 1`;
    /// 0 for values quantized above a floor, without a sign (`Isa::quantizes_above_floors`).
    zero: i32,
    /// `[rows, k / group]`: a group's values are `q · scale`.
    scale: Vec<f32>,
    /// `[rows, k]`: `q` widened to int16, for `vpmaddwd` (`avx2_int8` only).
    wide: Vec<i16>,
}

impl QuantizedRows {
    fn resize(&mut self, rows: usize, k: usize, group: usize, levels: f32) {
        self.resize_unsigned(rows, k, group);
        self.zero = levels as i32 + 1;
    }

    /// For values without a sign, stored as they are (`zero` 0).
    fn resize_unsigned(&mut self, rows: usize, k: usize, group: usize) {
        self.q.resize(rows * k, 0);
        self.zero = 0;
        self.scale.resize(rows * (k / group), 0.0);
    }
}

thread_local! {
    /// One buffer per thread, grown to the largest row block it has quantized.
    static QUANTIZED: RefCell<QuantizedRows> = RefCell::default();
    /// One buffer per thread for a row block times the input scale.
    static SCALED: RefCell<Vec<f32>> = RefCell::default();
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
            Weights::I8 { q, scales, sums, group } => {
                assert!(group.is_multiple_of(QUAD) && group > 0 && self.k.is_multiple_of(group));
                assert_eq!(q.len(), self.k * self.n);
                assert_eq!(scales.len(), self.k / group * self.n);
                assert_eq!(sums.len(), self.k / group * self.n);
            }
        }
        if let Epilogue::Residual(r) = epilogue {
            assert!(r.len() >= m * self.n);
        }
        if let Some(scale) = self.input_scale {
            assert_eq!(scale.len(), self.k);
        }
        if let Some(floor) = self.floor {
            assert_eq!(floor.bias.len(), self.n);
        }
        // Row blocks keep a block of x in L2 while every panel streams past it once; a multiple
        // of 12 rows suits both micro-kernels' tiles.
        let (k, n) = (self.k, self.n);
        let block = (64 * 1024 / (k * 4)).clamp(1, 64).div_ceil(12) * 12;
        let mut r0 = 0;
        while r0 < m {
            let rows = block.min(m - r0);
            let out = &mut out[r0 * n..(r0 + rows) * n];
            let epilogue = match epilogue {
                Epilogue::Residual(r) => Epilogue::Residual(&r[r0 * n..(r0 + rows) * n]),
                other => other,
            };
            self.block(isa, &x[r0 * k..(r0 + rows) * k], rows, epilogue, out);
            if let Epilogue::Gelu = epilogue {
                math::gelu(isa, out);
            }
            r0 += rows;
        }
    }

    /// The floor `isa`'s kernels quantize above, if any: only theirs that do, and only without
    /// an input scale (the floor bounds x, not x times its scale). The kernels and their spec
    /// both ask here.
    fn floor_for(&self, isa: Isa) -> Option<Floor<'_>> {
        self.floor.filter(|_| isa.quantizes_above_floors() && self.input_scale.is_none())
    }

    /// `f(x ⊙ input_scale)`: with an input scale, the block is scaled into a small per-thread
    /// buffer (still in cache when the kernel reads it) rather than the whole input into another
    /// activation-sized one. The quantizing kernels scale as they quantize instead.
    fn scaled(&self, x: &[f32], f: impl FnOnce(&[f32])) {
        match self.input_scale {
            None => f(x),
            Some(scale) => SCALED.with_borrow_mut(|buf| {
                buf.resize(x.len(), 0.0);
                for (dst, src) in buf.chunks_exact_mut(self.k).zip(x.chunks_exact(self.k)) {
                    for ((d, &v), &s) in dst.iter_mut().zip(src).zip(scale) {
                        *d = v * s;
                    }
                }
                f(buf)
            }),
        }
    }

    /// One row block, `out[rows, n] = (x[rows, k] ⊙ input_scale) · W + b (+ residual)`, by
    /// `isa`'s kernel. `forward` has checked the shapes and cut x, out and any residual to
    /// exactly `rows` rows.
    fn block(&self, isa: Isa, x: &[f32], rows: usize, epilogue: Epilogue, out: &mut [f32]) {
        match isa {
            Isa::Portable => self.scaled(x, |x| reference::linear_rows(self, x, rows, epilogue, out)),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx2Fma` is only constructed after detecting AVX2 and FMA, and
            // `forward`'s shape assertions and cuts bound every pointer the kernel forms.
            Isa::Avx2Fma => self.scaled(x, |x| unsafe { avx2::linear_rows(self, x, rows, epilogue, out) }),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F and BW detected.
            Isa::Avx512 => self.scaled(x, |x| unsafe { avx512::linear_rows(self, x, rows, epilogue, out) }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => match self.weights {
                // SAFETY: `Isa::Avx512Vnni` is only constructed after detecting AVX-512F/BW
                // and VNNI; the group divides k (asserted) and is a multiple of 16.
                Weights::I8 { group, .. } if group.is_multiple_of(16) => QUANTIZED.with_borrow_mut(|qr| unsafe {
                    vnni::quantize_rows(x, self.input_scale, self.k, group, rows, qr);
                    vnni::linear_rows(self, qr, rows, epilogue, out);
                }),
                // SAFETY: AVX-512F and BW are implied by `Isa::Avx512Vnni`.
                _ => self.scaled(x, |x| unsafe { avx512::linear_rows(self, x, rows, epilogue, out) }),
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Int8 | Isa::AvxVnni | Isa::Avx2Int7 => match self.weights {
                // SAFETY: all three are only constructed after detecting AVX2 and FMA,
                // `AvxVnni` also AVX-VNNI; the group divides k (asserted) and is a multiple
                // of 8 (the quantizer's vector), hence of 4 (`vpdpbusd`) and 2 (`vpmaddwd`).
                Weights::I8 { group, .. } if group.is_multiple_of(8) => QUANTIZED.with_borrow_mut(|qr| unsafe {
                    let levels = isa.activation_levels();
                    match isa {
                        Isa::AvxVnni => {
                            avx2_int8::quantize_rows::<false>(x, self.input_scale, self.k, group, levels, rows, qr);
                            avxvnni::linear_rows(self, qr, rows, epilogue, out);
                        }
                        Isa::Avx2Int7 => match self.floor_for(isa) {
                            Some(floor) => {
                                avx2_int8::quantize_rows_above(x, floor.value, self.k, group, rows, qr);
                                avxvnni::linear_rows_pairs(&Linear { bias: floor.bias, ..*self }, qr, rows, epilogue, out);
                            }
                            None => {
                                avx2_int8::quantize_rows::<false>(x, self.input_scale, self.k, group, levels, rows, qr);
                                avxvnni::linear_rows_7bit(self, qr, rows, epilogue, out);
                            }
                        },
                        _ => {
                            avx2_int8::quantize_rows::<true>(x, self.input_scale, self.k, group, levels, rows, qr);
                            avx2_int8::linear_rows(self, qr, rows, epilogue, out);
                        }
                    }
                }),
                // SAFETY: AVX2 and FMA are implied by both variants.
                _ => self.scaled(x, |x| unsafe { avx2::linear_rows(self, x, rows, epilogue, out) }),
            },
        }
    }
}

/// Packs a row-major `[k, n]` matrix into panel layout (used by model-prep and tests).
pub fn pack_panels<T: Copy>(w: &[T], k: usize, n: usize) -> Vec<T> {
    assert_eq!(w.len(), k * n);
    assert!(n.is_multiple_of(PANEL));
    let mut out = Vec::with_capacity(w.len());
    for p in 0..n / PANEL {
        for row in 0..k {
            out.extend_from_slice(&w[row * n + p * PANEL..row * n + (p + 1) * PANEL]);
        }
    }
    out
}

/// Each group of `group` rows' sum per column of a row-major int8 `[k, n]` matrix, `[k / group,
/// n]` row-major (the snapshot's `{name}.weight_sum`, in panel layout): what an activation
/// offset adds to a group's dot product, per unit of offset.
pub fn group_sums(w: &[i8], k: usize, n: usize, group: usize) -> Vec<i32> {
    assert_eq!(w.len(), k * n);
    assert!(group > 0 && k.is_multiple_of(group));
    let mut sums = vec![0i32; k / group * n];
    for (t, row) in w.chunks_exact(n).enumerate() {
        for (sum, &v) in sums[t / group * n..][..n].iter_mut().zip(row) {
            *sum += v as i32;
        }
    }
    sums
}

/// Packs a row-major int8 `[k, n]` matrix into quad-panel layout (`snapshot::Layout::QuadPanels`):
/// 16-column panels, each holding per four k 64 bytes, column c's four k at bytes `4c..4c + 4`.
/// That is `vpdpbusd`'s operand: one 64-byte load (two 32-byte ones on AVX2) needs no shuffle.
pub fn pack_quad_panels(w: &[i8], k: usize, n: usize) -> Vec<i8> {
    assert_eq!(w.len(), k * n);
    assert!(n.is_multiple_of(PANEL) && k.is_multiple_of(QUAD));
    let mut out = vec![0; w.len()];
    for (t, row) in w.chunks_exact(n).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[quad_index(k, c / PANEL, t, c % PANEL)] = v;
        }
    }
    out
}

/// Where `pack_quad_panels` puts row t, column c (0..16) of panel p (a panel of k rows): the
/// layout's one definition, which the packer and the scalar spec both read.
#[inline(always)]
fn quad_index(k: usize, p: usize, t: usize, c: usize) -> usize {
    p * k * PANEL + (t / QUAD) * QUAD * PANEL + c * QUAD + t % QUAD
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

    /// int8 weights as the snapshot holds them: quad panels, group scales and group sums.
    pub(crate) struct Packed {
        q: Vec<i8>,
        scales: Vec<f32>,
        sums: Vec<i32>,
        group: usize,
    }

    impl Packed {
        /// From row-major `[k, n]` weights `q` and `[k / group, n]` scales `s`.
        pub(crate) fn new(q: &[i8], s: &[f32], k: usize, n: usize, group: usize) -> Packed {
            let sums = pack_panels(&group_sums(q, k, n, group), k / group, n);
            Packed { q: pack_quad_panels(q, k, n), scales: pack_panels(s, k / group, n), sums, group }
        }

        pub(crate) fn weights(&self) -> Weights<'_> {
            Weights::I8 { q: &self.q, scales: &self.scales, sums: &self.sums, group: self.group }
        }
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

    pub(super) fn quantize(w: &[f32], k: usize, n: usize, group: usize) -> (Vec<i8>, Vec<f32>, Vec<f32>) {
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
        let lin = Linear { weights: Weights::F32(&packed), bias: &b, input_scale: None, floor: None, k, n };
        let mut out = vec![0f32; m * n];
        lin.forward(isa, &x, m, Epilogue::Residual(&res), &mut out);
        let want = naive(&x, &w, &b, m, k, n);
        for i in 0..m * n {
            let wv = want[i] + res[i] as f64;
            assert!((out[i] as f64 - wv).abs() < tol(wv), "{isa:?} f32 m{m} k{k} n{n} [{i}]: {} vs {wv}", out[i]);
        }

        let group = 32;
        let (q, s, deq) = quantize(&w, k, n, group);
        let p8 = Packed::new(&q, &s, k, n, group);
        let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
        lin.forward(isa, &x, m, Epilogue::None, &mut out);
        if isa.quantizes_activations() {
            // A different definition, checked against the f64 one in its own test.
            assert_eq!(out, q8_spec(isa, &lin, &x, m, Epilogue::None), "{isa:?} i8 m{m} k{k} n{n}");
            return;
        }
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
        let p8 = Packed::new(&q, &s, k, n, 32);
        let b = noise(13, n, 0.1);
        let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
        let simd: Vec<Isa> =
            Isa::available().into_iter().filter(|&i| i != Isa::Portable && !i.quantizes_activations()).collect();
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
        let w = noise(8, k * n, 0.2);
        let packed = pack_panels(&w, k, n);
        let (q, s, _) = quantize(&w, k, n, 32);
        let p8 = Packed::new(&q, &s, k, n, 32);
        let b = noise(9, n, 0.1);
        let f32_weights = Linear { weights: Weights::F32(&packed), bias: &b, input_scale: None, floor: None, k, n };
        let i8_weights = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
        for (isa, lin) in Isa::available().into_iter().flat_map(|isa| [(isa, f32_weights), (isa, i8_weights)]) {
            let mut all = vec![0f32; 13 * n];
            lin.forward(isa, &x, 13, Epilogue::Gelu, &mut all);
            for r in 0..13 {
                let mut one = vec![0f32; n];
                lin.forward(isa, &x[r * k..(r + 1) * k], 1, Epilogue::Gelu, &mut one);
                assert_eq!(one, all[r * n..(r + 1) * n], "{isa:?} row {r}");
            }
        }
    }

    #[test]
    fn an_input_scale_gives_the_bits_of_the_input_scaled_first() {
        // 100 rows at k 384 span three row blocks of 48; the residual and GELU epilogues must
        // follow each block's rows.
        let (m, k, n) = (100, 384, 32);
        let x = noise(31, m * k, 1.0);
        let scale: Vec<f32> = (0..k).map(|c| [0.25f32, 0.5, 1.0, 2.0, 16.0][c % 5]).collect();
        let scaled: Vec<f32> = x.chunks_exact(k).flat_map(|row| row.iter().zip(&scale).map(|(v, s)| v * s)).collect();
        let w = noise(32, k * n, 0.2);
        let packed = pack_panels(&w, k, n);
        let (q, s, _) = quantize(&w, k, n, 64);
        let p8 = Packed::new(&q, &s, k, n, 64);
        let b = noise(33, n, 0.1);
        let res = noise(34, m * n, 1.0);
        for weights in [Weights::F32(&packed), p8.weights()] {
            let plain = Linear { weights, bias: &b, input_scale: None, floor: None, k, n };
            let with_scale = Linear { input_scale: Some(&scale), ..plain };
            // A floor bounds x, not x times its scale: with a scale it goes unused.
            let floor_bias = vec![0f32; n];
            let with_floor = Linear { floor: Some(Floor { value: -0.17, bias: &floor_bias }), ..with_scale };
            for isa in Isa::available() {
                for epi in [Epilogue::Residual(&res), Epilogue::Gelu] {
                    let (mut want, mut got, mut floored) = (vec![0f32; m * n], vec![0f32; m * n], vec![0f32; m * n]);
                    plain.forward(isa, &scaled, m, epi, &mut want);
                    with_scale.forward(isa, &x, m, epi, &mut got);
                    with_floor.forward(isa, &x, m, epi, &mut floored);
                    assert_eq!(got, want, "{isa:?}");
                    assert_eq!(floored, want, "{isa:?} with a floor");
                }
            }
        }
    }

    /// The int8-activation kernels' definition: rows quantized to `isa`'s levels, then
    /// multiplied, by the spec (`reference`).
    pub(super) fn q8_spec(isa: Isa, lin: &Linear, x: &[f32], m: usize, epi: Epilogue) -> Vec<f32> {
        let Weights::I8 { group, .. } = lin.weights else { unreachable!() };
        let mut qr = QuantizedRows::default();
        let mut out = vec![0f32; m * lin.n];
        match lin.floor_for(isa) {
            Some(floor) => {
                reference::quantize_rows_above(x, floor.value, lin.k, group, m, &mut qr);
                reference::linear_rows_q8(&Linear { bias: floor.bias, ..*lin }, &qr, m, epi, &mut out);
            }
            None => {
                reference::quantize_rows(x, lin.k, group, isa.activation_levels(), m, &mut qr);
                reference::linear_rows_q8(lin, &qr, m, epi, &mut out);
            }
        }
        out
    }

    #[test]
    fn quantized_activations_stay_within_their_error_bound() {
        // The spec against the f64 definition: each group of 32 activations is off by at most
        // half a step (amax / 254) per value, so |error| ≤ Σ_groups amax/254 · Σ|w| (+ rounding).
        let (m, k, n) = (7, 384, 32);
        let mut x = noise(21, m * k, 1.0);
        x[5] = 40.0; // an outlier channel costs precision in its own group only
        x[k..k + 32].fill(0.0); // an all-zero group
        let w = noise(22, k * n, 0.2);
        let b = noise(23, n, 0.1);
        let (q, s, deq) = quantize(&w, k, n, 32);
        let p8 = Packed::new(&q, &s, k, n, 32);
        let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
        let got = q8_spec(Isa::Portable, &lin, &x, m, Epilogue::None);
        let want = naive(&x, &deq, &b, m, k, n);
        for i in 0..m {
            for j in 0..n {
                let bound: f64 = (0..k / 32)
                    .map(|g| {
                        let amax = (0..32).map(|t| x[i * k + g * 32 + t].abs()).fold(0f32, f32::max) as f64;
                        let wsum: f64 = (0..32).map(|t| deq[(g * 32 + t) * n + j].abs() as f64).sum();
                        amax / 254.0 * wsum
                    })
                    .sum::<f64>()
                    + 1e-4;
                let err = (got[i * n + j] as f64 - want[i * n + j]).abs();
                assert!(err <= bound, "[{i},{j}] error {err} over bound {bound}");
            }
        }
        // Row 1 has no outlier: every output is as close as int8 activations allow.
        let row1: f64 = (0..n).map(|j| (got[n + j] as f64 - want[n + j]).abs()).fold(0.0, f64::max);
        assert!(row1 < 0.02, "row 1 max error {row1}");
    }

    #[test]
    fn int8_activation_kernels_give_the_specs_bits() {
        let quantizing: Vec<Isa> = Isa::available().into_iter().filter(|i| i.quantizes_activations()).collect();
        if quantizing.is_empty() {
            eprintln!("skipped: this CPU has no int8-activation kernel");
            return;
        }
        let shapes = [(1, 32, 16), (2, 64, 32), (3, 96, 16), (5, 384, 48), (7, 160, 80), (13, 384, 1152), (29, 1536, 32), (70, 384, 16)];
        for isa in quantizing {
            for (m, k, n) in shapes {
                let mut x = noise(31 + m as u64, m * k, 2.0);
                // An outlier channel, an all-zero group, and a group of rounding ties: its amax
                // (the kernel's levels, 127 or 63) makes the step exactly 1, so x.5 values
                // round to even.
                x[k / 2] = 60.0;
                x[(m - 1) * k..(m - 1) * k + 32].fill(0.0);
                if m > 2 {
                    x[2 * k..2 * k + 32].iter_mut().enumerate().for_each(|(t, v)| *v = t as f32 - 15.5);
                    x[2 * k + 31] = isa.activation_levels();
                }
                let w = noise(32 + k as u64, k * n, 0.2);
                let b = noise(33, n, 0.1);
                let res = noise(34, m * n, 1.0);
                let (q, s, _) = quantize(&w, k, n, 32);
                let p8 = Packed::new(&q, &s, k, n, 32);
                let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
                for epi in [Epilogue::None, Epilogue::Residual(&res)] {
                    let mut out = vec![0f32; m * n];
                    lin.forward(isa, &x, m, epi, &mut out);
                    assert_eq!(out, q8_spec(isa, &lin, &x, m, epi), "{isa:?} m{m} k{k} n{n}");
                }
                let mut gelu = vec![0f32; m * n];
                lin.forward(isa, &x, m, Epilogue::Gelu, &mut gelu);
                let mut want = q8_spec(isa, &lin, &x, m, Epilogue::None);
                math::gelu(isa, &mut want);
                assert_eq!(gelu, want, "{isa:?} gelu m{m} k{k} n{n}");
            }
        }
    }

    #[test]
    fn int8_activation_kernels_take_extreme_weights_exactly() {
        // Every weight and activation at ±127: the largest products, where a 16-bit intermediate
        // of u8 × s8 pairs would saturate (2 · 255 · 127 > i16::MAX).
        let (m, k, n) = (3, 64, 16);
        let x: Vec<f32> = (0..m * k).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
        let q: Vec<i8> = (0..k * n).map(|i| if i % 5 == 0 { -127 } else { 127 }).collect();
        let s = vec![0.01f32; k / 32 * n];
        let b = vec![0f32; n];
        let p8 = Packed::new(&q, &s, k, n, 32);
        let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
        for isa in Isa::available().into_iter().filter(|i| i.quantizes_activations()) {
            let mut out = vec![0f32; m * n];
            lin.forward(isa, &x, m, Epilogue::None, &mut out);
            assert_eq!(out, q8_spec(isa, &lin, &x, m, Epilogue::None), "{isa:?}");
        }
    }

    #[test]
    fn a_floors_bias_adds_the_floor_times_each_columns_weights() {
        let (k, n, group) = (128, 32, 64);
        let (q, s, deq) = quantize(&noise(61, k * n, 0.2), k, n, group);
        let p8 = Packed::new(&q, &s, k, n, group);
        let b = noise(62, n, 0.1);
        let got = Floor::bias_for(p8.weights(), &b, -0.17).unwrap();
        for j in 0..n {
            let want = b[j] as f64 - 0.17 * (0..k).map(|t| deq[t * n + j] as f64).sum::<f64>();
            assert!((got[j] as f64 - want).abs() < 1e-5, "column {j}: {} vs {want}", got[j]);
        }
        assert!(Floor::bias_for(Weights::F32(&deq), &b, -0.17).is_none());
    }

    #[test]
    fn inputs_above_a_floor_give_the_specs_bits_and_the_definitions_values() {
        let quantizing: Vec<Isa> = Isa::available().into_iter().filter(|i| i.quantizes_activations()).collect();
        // Rows 1, 3, 5, 13, 29: whole tiles of 4 and 6 and their remainders; k up to the
        // feed-forward's 1,536.
        let shapes = [(1, 64, 16, 64), (3, 128, 32, 32), (5, 384, 48, 64), (13, 1536, 32, 64), (29, 1536, 16, 64)];
        for (m, k, n, group) in shapes {
            // GELU's outputs, an outlier, and a group all at the floor (0 above it).
            let mut x = noise(71 + m as u64, m * k, 2.0);
            math::gelu(Isa::Portable, &mut x);
            x[k / 2] = 30.0;
            x[(m - 1) * k..(m - 1) * k + group].fill(math::GELU_FLOOR);
            assert!(x.iter().all(|&v| v >= math::GELU_FLOOR));
            let w = noise(72 + k as u64, k * n, 0.2);
            let b = noise(73, n, 0.1);
            let res = noise(74, m * n, 1.0);
            let (q, s, deq) = quantize(&w, k, n, group);
            let p8 = Packed::new(&q, &s, k, n, group);
            let fb = Floor::bias_for(p8.weights(), &b, math::GELU_FLOOR).unwrap();
            let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: Some(Floor { value: math::GELU_FLOOR, bias: &fb }), k, n };
            let want = naive(&x, &deq, &b, m, k, n);
            for &isa in &quantizing {
                for epi in [Epilogue::None, Epilogue::Residual(&res)] {
                    let mut out = vec![0f32; m * n];
                    lin.forward(isa, &x, m, epi, &mut out);
                    assert_eq!(out, q8_spec(isa, &lin, &x, m, epi), "{isa:?} m{m} k{k} n{n}");
                }
                // Each value above the floor is off by at most half a step, (amax − floor) / 126.
                let mut got = vec![0f32; m * n];
                lin.forward(isa, &x, m, Epilogue::None, &mut got);
                for i in 0..m {
                    for j in 0..n {
                        let bound: f64 = (0..k / group)
                            .map(|g| {
                                let span = (0..group).map(|t| x[i * k + g * group + t] - math::GELU_FLOOR).fold(0f32, f32::max) as f64;
                                let wsum: f64 = (0..group).map(|t| deq[(g * group + t) * n + j].abs() as f64).sum();
                                span / 126.0 * wsum
                            })
                            .sum::<f64>()
                            + 1e-4;
                        let err = (got[i * n + j] as f64 - want[i * n + j]).abs();
                        assert!(err <= bound, "{isa:?} [{i},{j}] error {err} over bound {bound}");
                    }
                }
            }
        }
    }

    #[test]
    fn inputs_above_a_floor_take_extreme_weights_exactly() {
        // Every input at its group's top (63 above the floor) and weights at ±127 in runs of 8
        // k: the two pair sums that share a `vpmaddwd` reach ±2 · 2 · 63 · 127 = ±32,004, just
        // inside int16; a saturating or 16-bit-wrapping sum would differ from the spec.
        let (m, k, n, group) = (5, 128, 32, 64);
        let x = vec![1.0f32; m * k];
        let q: Vec<i8> = (0..k * n).map(|i| if (i / n / 8 + i % n) % 2 == 0 { 127 } else { -127 }).collect();
        let s = vec![0.01f32; k / group * n];
        let b = vec![0.5f32; n];
        let p8 = Packed::new(&q, &s, k, n, group);
        let fb = Floor::bias_for(p8.weights(), &b, math::GELU_FLOOR).unwrap();
        let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: Some(Floor { value: math::GELU_FLOOR, bias: &fb }), k, n };
        for isa in Isa::available().into_iter().filter(|i| i.quantizes_activations()) {
            let mut out = vec![0f32; m * n];
            lin.forward(isa, &x, m, Epilogue::None, &mut out);
            assert_eq!(out, q8_spec(isa, &lin, &x, m, Epilogue::None), "{isa:?}");
            // Row 0, column 0: 64 weights of +127 and 64 of −127 over k, all inputs 1.
            assert!((out[0] - 0.5).abs() < 1e-3, "{isa:?}: {}", out[0]);
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_int8_falls_back_to_f32_activations_for_groups_it_cannot_quantize() {
        // The AVX2 quantizer works in 8-lane vectors; a group of 4 takes the AVX2+FMA kernel.
        for isa in Isa::available().into_iter().filter(|&i| matches!(i, Isa::Avx2Int8 | Isa::AvxVnni | Isa::Avx2Int7)) {
            let (m, k, n) = (5, 64, 32);
            let x = noise(41, m * k, 1.0);
            let w = noise(42, k * n, 0.2);
            let b = noise(43, n, 0.1);
            let (q, s, _) = quantize(&w, k, n, 4);
            let p8 = Packed::new(&q, &s, k, n, 4);
            let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
            let (mut got, mut want) = (vec![0f32; m * n], vec![0f32; m * n]);
            lin.forward(isa, &x, m, Epilogue::None, &mut got);
            lin.forward(Isa::Avx2Fma, &x, m, Epilogue::None, &mut want);
            assert_eq!(got, want, "{isa:?}");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vnni_falls_back_to_f32_activations_for_groups_it_cannot_quantize() {
        // Activation groups must be whole 16-lane vectors; a group of 8 takes the AVX-512 kernel.
        let Some(isa) = Isa::available().into_iter().find(|&i| i == Isa::Avx512Vnni) else { return };
        let (m, k, n) = (5, 64, 32);
        let x = noise(41, m * k, 1.0);
        let w = noise(42, k * n, 0.2);
        let b = noise(43, n, 0.1);
        let (q, s, _) = quantize(&w, k, n, 8);
        let p8 = Packed::new(&q, &s, k, n, 8);
        let lin = Linear { weights: p8.weights(), bias: &b, input_scale: None, floor: None, k, n };
        let (mut got, mut want) = (vec![0f32; m * n], vec![0f32; m * n]);
        lin.forward(isa, &x, m, Epilogue::None, &mut got);
        lin.forward(Isa::Avx512, &x, m, Epilogue::None, &mut want);
        assert_eq!(got, want);
    }
}
