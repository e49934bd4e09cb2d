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
//! It does `H*W / (kh*kw)` times the multiplications of im2col (zeros included), and
//! builds `D` (zeros included) twice per batch, which pays only where that ratio is
//! small: [`worth_it`] decides.

use super::conv::{ConvGeometry, matmul, maxout, spread};

/// Largest `D` (values) this path builds: two of them (`D` and `dD`) live during a
/// backward pass.
pub const MAX_MATRIX: usize = 1 << 26;

/// Whether `g` runs faster as one dense matrix than through im2col: the matrix does no
/// more multiplications than im2col (the input is no larger than a window) and stays
/// under [`MAX_MATRIX`] values. Measured on the teacher (`layer_bench`, batch 128): its
/// 5x5 conv over 3x3 maps runs 3.3x faster this way; its 8x8 conv over 9x9 maps (1.27
/// times the multiplications) ran 1.3x slower, building and zeroing a 96 MB matrix
/// twice per batch.
pub fn worth_it(g: &ConvGeometry) -> bool {
    let [_, h, w] = g.input;
    h * w <= g.kernel[0] * g.kernel[1] && g.outputs * g.positions() * g.input_len() <= MAX_MATRIX
}

/// Calls `f(row, column, weight)` for every nonzero entry of `D`: row `o*P + p`,
/// column `c*H*W + y*W + x`, and the index of the weight in `[O, C, kh, kw]`.
fn for_each_entry(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize)) {
    let [c, h, w] = g.input;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [pt, pl] = g.pad_before;
    let [oh, ow] = g.output;
    for o in 0..g.outputs {
        for oy in 0..oh {
            for ox in 0..ow {
                let row = o * g.positions() + oy * ow + ox;
                for ch in 0..c {
                    for ki in 0..kh {
                        let Some(y) = (oy * sh + ki).checked_sub(pt).filter(|&y| y < h) else { continue };
                        for kj in 0..kw {
                            let Some(x) = (ox * sw + kj).checked_sub(pl).filter(|&x| x < w) else { continue };
                            f(row, (ch * h + y) * w + x, ((o * c + ch) * kh + ki) * kw + kj);
                        }
                    }
                }
            }
        }
    }
}

/// `D` of `weight`, row-major `[O*P, C*H*W]`.
fn matrix(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let columns = g.input_len();
    let mut d = vec![0.0f32; g.outputs * g.positions() * columns];
    for_each_entry(g, |row, column, at| d[row * columns + column] = weight[at]);
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
    let mut dd = vec![0.0f32; rows * columns];
    matmul([rows, images, columns], &mut dd, false, &dz, [1, rows], x, [columns, 1], true);
    let mut dweight = vec![0.0f32; weight.len()];
    for_each_entry(g, |row, column, at| dweight[at] += dd[row * columns + column]);
    drop(dd);
    let dx = want_dx.then(|| {
        // dX [N, CHW] = dZ [N, O*P] · D [O*P, CHW]
        let d = matrix(g, weight);
        let mut dx = vec![0.0f32; x.len()];
        matmul([images, rows, columns], &mut dx, false, &dz, [rows, 1], &d, [columns, 1], true);
        dx
    });
    (dx, dweight, dbias)
}
