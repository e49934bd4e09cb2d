//! Batch norm followed by maxout over plain `f32` slices, NCHW: forward and backward.
//!
//! For each channel `c` of `z` (`[N, C, H, W]`, `C = units * pieces`):
//! `ẑ = (z − μ_c) / √(σ²_c + ε)` and `y = γ_c ẑ + β_c`, then maxout keeps, for each unit
//! `g`, the largest of its pieces `g*k .. g*k+k` and remembers which one won. In training
//! `μ` and `σ²` are the batch's own (biased) statistics over `N*H*W` values; in inference
//! they are the running ones.
//!
//! The backward step of training mode follows the statistics too: with `d` the gradient
//! that reaches the winning piece (zero elsewhere) and `M = N*H*W`,
//! `dβ_c = Σ d`, `dγ_c = Σ d ẑ` and `dz = γ_c / (M √(σ²_c + ε)) · (M d − dβ_c − ẑ dγ_c)`.
//!
//! burn's own batch norm on burn-flex walks its broadcasts and reductions element by
//! element through strided views: with it (and burn's conv, which it then needed) the
//! MNIST teacher with batch norm trained about 6x slower than without; with this kernel
//! after the fused conv, about 1.5x (`docs/benchmarks.md`). Statistics are summed in
//! `f64`; channels (statistics) and planes (everything else) are spread over rayon's
//! threads.

use rayon::prelude::*;

/// The shape of a batch norm + maxout: `images` maps of `channels` planes of `plane`
/// values, `channels = units * pieces`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormGeometry {
    pub images: usize,
    pub channels: usize,
    pub plane: usize,
    pub pieces: usize,
    pub epsilon: f64,
}

impl NormGeometry {
    /// The geometry of an input `[N, C, H, W]`; `None` unless `pieces` divides `C` and
    /// fits a `u8` winner index.
    pub fn new(input: [usize; 4], pieces: usize, epsilon: f64) -> Option<NormGeometry> {
        let [images, channels, h, w] = input;
        if pieces == 0 || pieces > usize::from(u8::MAX) || channels % pieces != 0 || images * h * w == 0 {
            return None;
        }
        Some(NormGeometry { images, channels, plane: h * w, pieces, epsilon })
    }

    pub fn units(&self) -> usize {
        self.channels / self.pieces
    }

    /// Values per channel: `N*H*W`.
    fn count(&self) -> usize {
        self.images * self.plane
    }
}

/// A training-mode forward pass: the output, the batch's statistics and what the
/// backward step needs.
#[derive(Debug)]
pub struct Trained {
    /// `[N, units, H, W]`.
    pub output: Vec<f32>,
    /// The batch's mean and biased variance per channel (for the running statistics).
    pub mean: Vec<f32>,
    pub variance: Vec<f32>,
    pub state: State,
}

/// What [`backward`] needs of a training-mode pass.
#[derive(Debug)]
pub struct State {
    /// `ẑ`, `[N, C, H, W]`.
    pub normalized: Vec<f32>,
    /// `1 / √(σ² + ε)` per channel.
    pub inverse_std: Vec<f32>,
    /// The winning piece of each output.
    pub winners: Vec<u8>,
}

/// Where channel `c` of image `n` lies in an `[N, C, H, W]` slice.
fn plane(g: &NormGeometry, n: usize, c: usize) -> std::ops::Range<usize> {
    let start = (n * g.channels + c) * g.plane;
    start..start + g.plane
}

/// Maxout over the pieces of `y` (`[N, C, H, W]`): `[N, units, H, W]` and the winners.
fn maxout(g: &NormGeometry, y: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let units = g.units();
    let mut output = vec![0f32; g.images * units * g.plane];
    let mut winners = vec![0u8; output.len()];
    let planes = output.par_chunks_mut(g.plane).zip(winners.par_chunks_mut(g.plane));
    planes.enumerate().for_each(|(k, (output, winners))| {
        let (n, unit) = (k / units, k % units);
        output.copy_from_slice(&y[plane(g, n, unit * g.pieces)]);
        for piece in 1..g.pieces {
            let values = &y[plane(g, n, unit * g.pieces + piece)];
            for ((out, winner), &v) in output.iter_mut().zip(winners.iter_mut()).zip(values) {
                // The first of equal pieces wins, as in burn's `max_dim`.
                if v > *out {
                    *out = v;
                    *winner = piece as u8;
                }
            }
        }
    });
    (output, winners)
}

/// Training mode: normalizes `z` with its own statistics.
pub fn forward_train(g: &NormGeometry, z: &[f32], gamma: &[f32], beta: &[f32]) -> Trained {
    assert_eq!(z.len(), g.images * g.channels * g.plane, "input size");
    let count = g.count() as f64;
    // Mean, variance and 1/√(σ² + ε) per channel.
    let statistics: Vec<(f64, f64, f64)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            let values = || (0..g.images).flat_map(|n| &z[plane(g, n, c)]).map(|&v| f64::from(v));
            let mu = values().sum::<f64>() / count;
            let var = values().map(|v| (v - mu).powi(2)).sum::<f64>() / count;
            (mu, var, 1.0 / (var + g.epsilon).sqrt())
        })
        .collect();
    let mut normalized = vec![0f32; z.len()];
    let mut y = vec![0f32; z.len()];
    let planes = normalized.par_chunks_mut(g.plane).zip(y.par_chunks_mut(g.plane));
    planes.enumerate().for_each(|(k, (normalized, y))| {
        let c = k % g.channels;
        let (mu, _, inv) = statistics[c];
        let values = &z[k * g.plane..(k + 1) * g.plane];
        for ((zhat, y), &v) in normalized.iter_mut().zip(y.iter_mut()).zip(values) {
            *zhat = ((f64::from(v) - mu) * inv) as f32;
            *y = gamma[c] * *zhat + beta[c];
        }
    });
    let (output, winners) = maxout(g, &y);
    let mean = statistics.iter().map(|s| s.0 as f32).collect();
    let variance = statistics.iter().map(|s| s.1 as f32).collect();
    let inverse_std = statistics.iter().map(|s| s.2 as f32).collect();
    Trained { output, mean, variance, state: State { normalized, inverse_std, winners } }
}

/// Inference mode: normalizes `z` with the running `mean` and `variance`.
pub fn forward_inference(
    g: &NormGeometry,
    z: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    variance: &[f32],
) -> Vec<f32> {
    assert_eq!(z.len(), g.images * g.channels * g.plane, "input size");
    let mut y = vec![0f32; z.len()];
    y.par_chunks_mut(g.plane).enumerate().for_each(|(k, y)| {
        let c = k % g.channels;
        let inv = (1.0 / (f64::from(variance[c]) + g.epsilon).sqrt()) as f32;
        for (y, &v) in y.iter_mut().zip(&z[k * g.plane..(k + 1) * g.plane]) {
            *y = gamma[c] * ((v - mean[c]) * inv) + beta[c];
        }
    });
    maxout(g, &y).0
}

/// The gradients `(dz, dγ, dβ)` of a training-mode pass, from the output gradient `dy`
/// (`[N, units, H, W]`).
pub fn backward(g: &NormGeometry, state: &State, gamma: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let units = g.units();
    assert_eq!(dy.len(), g.images * units * g.plane, "output gradient size");
    let State { normalized, inverse_std, winners } = state;
    // The gradient that reaches channel `c` at value `i` of image `n`'s plane.
    let reaching = |n: usize, c: usize, i: usize| {
        let (unit, piece) = (c / g.pieces, c % g.pieces);
        let out = (n * units + unit) * g.plane + i;
        if usize::from(winners[out]) == piece { f64::from(dy[out]) } else { 0.0 }
    };
    // Σ d and Σ d ẑ per channel: dβ and dγ.
    let sums: Vec<(f64, f64)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            let (mut sum, mut sum_zhat) = (0f64, 0f64);
            for n in 0..g.images {
                let start = plane(g, n, c).start;
                for i in 0..g.plane {
                    let d = reaching(n, c, i);
                    sum += d;
                    sum_zhat += d * f64::from(normalized[start + i]);
                }
            }
            (sum, sum_zhat)
        })
        .collect();
    let count = g.count() as f64;
    let mut dz = vec![0f32; normalized.len()];
    dz.par_chunks_mut(g.plane).enumerate().for_each(|(k, dz)| {
        let (n, c) = (k / g.channels, k % g.channels);
        let (sum, sum_zhat) = sums[c];
        let scale = f64::from(gamma[c]) * f64::from(inverse_std[c]) / count;
        let normalized = &normalized[k * g.plane..(k + 1) * g.plane];
        for (i, (dz, &zhat)) in dz.iter_mut().zip(normalized).enumerate() {
            let d = reaching(n, c, i);
            *dz = (scale * (count * d - sum - f64::from(zhat) * sum_zhat)) as f32;
        }
    });
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (dz, dgamma, dbeta)
}
