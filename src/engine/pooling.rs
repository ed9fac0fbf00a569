//! Sentence vectors from token vectors: masked mean (or `[CLS]`) pooling, then L2 normalization,
//! as sentence-transformers' `Pooling` and `Normalize` modules do.

use crate::engine::snapshot::Pooling;

/// Pools one sequence's `[tokens, dim]` hidden states into `out`.
pub fn pool(hidden: &[f32], dim: usize, mode: Pooling, out: &mut [f32]) {
    let tokens = hidden.len() / dim;
    match mode {
        Pooling::Cls => out.copy_from_slice(&hidden[..dim]),
        Pooling::Mean => {
            out.fill(0.0);
            for row in hidden.chunks_exact(dim) {
                for (o, v) in out.iter_mut().zip(row) {
                    *o += v;
                }
            }
            // sentence-transformers divides by max(mask count, 1e-9).
            let inv = 1.0 / (tokens as f32).max(1e-9);
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }
}

/// Scales `v` to unit length (`v / max(‖v‖, 1e-12)`, torch's `F.normalize`).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let denom = (na * nb).sqrt();
    if denom > 0.0 {
        dot / denom
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_and_normalize() {
        let hidden = [1.0, 2.0, 3.0, 6.0];
        let mut out = [0.0; 2];
        pool(&hidden, 2, Pooling::Mean, &mut out);
        assert_eq!(out, [2.0, 4.0]);
        pool(&hidden, 2, Pooling::Cls, &mut out);
        assert_eq!(out, [1.0, 2.0]);
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0, 0.0];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0, 0.0], "a zero vector stays zero, no NaN");
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
