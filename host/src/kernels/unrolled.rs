//! The maxout convolution of [`super::conv`] as one dense matrix per layer, for large
//! windows over small maps.
//!
//! A conv whose window covers most of its input (the MNIST teacher's 8x8 windows over
//! 9x9 maps, its 5x5 windows over 3x3 maps padded by 3) makes im2col copy each input
//! value up to `kh*kw` times, in rows a few values long, and col2im add them back: on
//! the teacher that copying took about as long as the arithmetic. Here the weights are
//! laid out once per batch as the conv's matrix `D` (`[O*P, C*H*W]`, `P = H'*W'`
//! output positions; entry `(o, p), (c, y, x)` is the weight that output position `p` of
//! channel `o` gives input value `(c, y, x)`, zero where the window does not reach), and
//! each pass is one large matrix product over the whole batch:
//!
//! - forward: `Z = X · Dᵀ` (`[N, O*P]`), plus the bias, then maxout;
//! - backward: `dD = dZᵀ · X`, folded back onto the weights it was spread from,
//!   `db = Σ dZ`, `dX = dZ · D`.
//!
//! It does `H*W / (kh*kw)` times the multiplications of im2col (zeros included), which
//! pays only where that ratio is small: [`worth_it`] decides. `D` and the scratch for
//! `dD` are kept between batches, per geometry (the teacher's second conv: 96 MB each),
//! so that `D`'s zeros are written once and only its weights each batch.

use std::sync::Mutex;

use super::conv::{ConvGeometry, matmul, maxout, spread};

/// Largest `D` (values) this path builds: two of them (`D` and `dD`) live during a
/// backward pass.
pub const MAX_MATRIX: usize = 1 << 26;

/// Whether `g` runs faster as one dense matrix than through im2col: the matrix does at
/// most 1.5 times im2col's multiplications (the input is at most 1.5 windows) and
/// stays under [`MAX_MATRIX`] values. Measured on the teacher (batch 128): its 5x5 conv
/// over 3x3 maps (0.36 times the multiplications) runs 3.3x faster this way, fwd + bwd;
/// with its 8x8 conv over 9x9 maps too (1.27 times) a teacher epoch trains 7 % faster
/// (3 alternated pairs of 3,200-image epochs).
pub fn worth_it(g: &ConvGeometry) -> bool {
    let [_, h, w] = g.input;
    2 * h * w <= 3 * g.kernel[0] * g.kernel[1] && g.outputs * g.positions() * g.input_len() <= MAX_MATRIX
}

/// For every output row `o*P + p` of `D` and every input channel and kernel row whose
/// window row falls inside the input, calls `f(at, weight, len)`: the `len` entries of
/// `D` from `at` on (consecutive input columns) hold the `len` weights from `weight` on
/// (consecutive kernel columns). These runs are all of `D`'s nonzero entries.
fn for_each_run(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize)) {
    let [c, h, w] = g.input;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [pt, pl] = g.pad_before;
    let [oh, ow] = g.output;
    let columns = g.input_len();
    for o in 0..g.outputs {
        for oy in 0..oh {
            for ox in 0..ow {
                let row = (o * g.positions() + oy * ow + ox) * columns;
                // Kernel columns whose input column `ox * sw + kj - pl` is inside `0..w`.
                let first = pl.saturating_sub(ox * sw);
                let end = kw.min((w + pl).saturating_sub(ox * sw));
                if first >= end {
                    continue;
                }
                let x = ox * sw + first - pl;
                for ch in 0..c {
                    for ki in 0..kh {
                        let Some(y) = (oy * sh + ki).checked_sub(pt).filter(|&y| y < h) else { continue };
                        f(row + (ch * h + y) * w + x, ((o * c + ch) * kh + ki) * kw + first, end - first);
                    }
                }
            }
        }
    }
}

/// Buffers kept between batches, by geometry: `D` (whose zeros, the same for every
/// batch, are written only once) and the scratch for `dD` (fully overwritten).
static POOL: Mutex<Vec<(ConvGeometry, bool, Vec<f32>)>> = Mutex::new(Vec::new());

/// A kept buffer of `len` values for `g` (`matrix`: `D`, else scratch), or a new zeroed
/// one; give it back with [`give`].
fn take(g: &ConvGeometry, matrix: bool, len: usize) -> Vec<f32> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match pool.iter().position(|(k, m, v)| k == g && *m == matrix && v.len() == len) {
        Some(i) => pool.swap_remove(i).2,
        None => vec![0.0; len],
    }
}

fn give(g: &ConvGeometry, matrix: bool, buffer: Vec<f32>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    // One of each kind per geometry is enough for sequential batches.
    if !pool.iter().any(|(k, m, _)| k == g && *m == matrix) {
        pool.push((*g, matrix, buffer));
    }
}

/// `D` of `weight`, row-major `[O*P, C*H*W]`, in a kept buffer of `g`'s.
fn matrix(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let mut d = take(g, true, g.outputs * g.positions() * g.input_len());
    for_each_run(g, |at, from, len| d[at..at + len].copy_from_slice(&weight[from..from + len]));
    d
}

/// Forward pass over a batch, as [`super::conv::forward`].
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let (columns, n, rows) = (g.input_len(), g.positions(), g.outputs * g.positions());
    let images = x.len() / columns;
    let d = matrix(g, weight);
    // Z [N, O*P] = X [N, CHW] · Dᵀ [CHW, O*P]
    let mut z = vec![0.0f32; images * rows];
    matmul([images, columns, rows], &mut z, false, x, [columns, 1], &d, [1, columns], true);
    give(g, true, d);
    let mut y = vec![0.0f32; images * g.output_len()];
    let mut winners = vec![0u8; images * g.output_len()];
    let outputs = y.chunks_exact_mut(g.output_len()).zip(winners.chunks_exact_mut(g.output_len()));
    for ((y, won), z) in outputs.zip(z.chunks_exact_mut(rows)) {
        for (channel, b) in z.chunks_exact_mut(n).zip(bias) {
            channel.iter_mut().for_each(|v| *v += b);
        }
        maxout(z, n, g.pieces, n, y, won);
    }
    (y, winners)
}

/// Backward pass over a batch, as [`super::conv::backward`].
pub fn backward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    winners: &[u8],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (columns, n, rows) = (g.input_len(), g.positions(), g.outputs * g.positions());
    let images = x.len() / columns;
    let mut dz = vec![0.0f32; images * rows];
    let per_image = dy.chunks_exact(g.output_len()).zip(winners.chunks_exact(g.output_len()));
    for ((dy, won), dz) in per_image.zip(dz.chunks_exact_mut(rows)) {
        spread(dy, won, g.pieces, n, dz, n);
    }
    let mut dbias = vec![0.0f32; g.outputs];
    for dz in dz.chunks_exact(rows) {
        for (b, channel) in dbias.iter_mut().zip(dz.chunks_exact(n)) {
            *b += channel.iter().sum::<f32>();
        }
    }
    // dD [O*P, CHW] = dZᵀ [O*P, N] · X [N, CHW], folded onto the weights.
    let mut dd = take(g, false, rows * columns);
    matmul([rows, images, columns], &mut dd, false, &dz, [1, rows], x, [columns, 1], true);
    let mut dweight = vec![0.0f32; weight.len()];
    for_each_run(g, |at, to, len| {
        dweight[to..to + len].iter_mut().zip(&dd[at..at + len]).for_each(|(w, d)| *w += d);
    });
    give(g, false, dd);
    let dx = want_dx.then(|| {
        // dX [N, CHW] = dZ [N, O*P] · D [O*P, CHW]
        let d = matrix(g, weight);
        let mut dx = vec![0.0f32; x.len()];
        matmul([images, rows, columns], &mut dx, false, &dz, [rows, 1], &d, [columns, 1], true);
        give(g, true, d);
        dx
    });
    (dx, dweight, dbias)
}
