//! The maxout convolution of [`super::conv`] as dense matrices, one per kernel row, for
//! large windows over small maps.
//!
//! A conv whose window covers most of its input (the MNIST teacher's 8x8 windows over
//! 9x9 maps, its 5x5 windows over 3x3 maps padded by 3) makes im2col copy each input
//! value up to `kh*kw` times, in rows a few values long, and col2im add them back: on
//! the teacher that copying took about as long as the arithmetic. Here the conv is a
//! few large matrix products over the whole batch instead.
//!
//! Images are taken row-major across the batch (`[H, N, W*C]`: input row `y` of every
//! image, channels last), and so are the pre-maxout values (`[H', N, W'*O]`). Kernel row
//! `ki` links output row `oy` to input row `y = oy*sh + ki - pt`, through one matrix
//! `B_ki` (`[W*C, W'*O]`; entry `(x, c), (ox, o)` is the weight that output `(oy, ox)` of
//! channel `o` gives input `(y, x, c)`, zero where the window does not reach), the same
//! for every output row. With stride 1 the output rows whose input row exists form one
//! range, and their rows of every image are one block of both tensors, so each pass is
//! one product per kernel row (with a larger stride, one per kernel row and output row):
//!
//! - forward: `Z[oy..] += X[y..] · B_ki`, then the bias and maxout;
//! - backward: `dB_ki = X[y..]ᵀ · dZ[oy..]`, folded back onto the weights it was spread
//!   from; `db = Σ dZ`; `dX[y..] += dZ[oy..] · B_kiᵀ`.
//!
//! Rows of the input that a window cannot reach are never multiplied; what is left of
//! the zeros is the columns it cannot reach, so a kernel row does `W / kw` times
//! im2col's multiplications at most (the teacher's second conv: 0.91 times). That pays
//! where windows are large against the map: [`worth_it`] decides. The matrices are
//! `kh` times smaller than one per output row would be (the teacher's second conv: 10.6
//! MB instead of 69), which is what writing them and the products' packing cost.

use std::sync::Mutex;

use super::geometry::ConvGeometry;
use super::matmul::matmul_rows;

/// Largest total of matrix values this path builds.
pub const MAX_MATRIX: usize = 1 << 26;

/// Whether `g` runs faster as dense matrices than through im2col: the input is at most
/// 1.5 windows and the matrices stay under [`MAX_MATRIX`] values. Measured on the
/// teacher: its 5x5 conv over 3x3 maps runs 3.3x faster this way (fwd + bwd, batch
/// 128) and its 8x8 conv over 9x9 maps gains too (see `docs/benchmarks.md`).
pub fn worth_it(g: &ConvGeometry) -> bool {
    let [_, h, w] = g.input;
    2 * h * w <= 3 * g.kernel[0] * g.kernel[1] && g.kernel[0].saturating_mul(matrix_len(g)) <= MAX_MATRIX
}

/// Values of one kernel row's matrix: `W*C` rows of `W'*O`.
fn matrix_len(g: &ConvGeometry) -> usize {
    [g.input[0], g.output[1], g.outputs].into_iter().fold(g.input[2], usize::saturating_mul)
}

/// The output rows `oy` whose input row `oy*sh + ki - pt` lies inside the image, and
/// the input row of the first.
fn rows_of(g: &ConvGeometry, ki: usize) -> (std::ops::Range<usize>, usize) {
    let (h, sh, pt) = (g.input[1], g.stride[0], g.pad_before[0]);
    // Smallest oy with oy*sh + ki >= pt; largest with oy*sh + ki - pt < h, plus one.
    let lo = pt.saturating_sub(ki).div_ceil(sh);
    let hi = if h + pt > ki { (h + pt - ki - 1) / sh + 1 } else { 0 };
    let range = lo.min(g.output[0])..hi.min(g.output[0]).max(lo.min(g.output[0]));
    (range.clone(), (range.start * sh + ki).saturating_sub(pt))
}

/// Runs `f(oy, y, count)` for the blocks of output rows that kernel row `ki` links to
/// input rows: `count` output rows from `oy`, input rows from `y`, one block with
/// stride 1 (consecutive in both tensors), one row per block otherwise.
fn for_each_block(g: &ConvGeometry, ki: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (range, y) = rows_of(g, ki);
    if range.is_empty() {
        return;
    }
    if g.stride[0] == 1 {
        f(range.start, y, range.len());
    } else {
        for (i, oy) in range.enumerate() {
            f(oy, y + i * g.stride[0], 1);
        }
    }
}

/// For every kernel column `kj` that links output column `ox` to an input column `x`
/// inside the image, calls `f(x, ox, kj)`: `B_ki`'s rows `x*C ..` (one per channel) then
/// hold, at columns `ox*O .. (ox+1)*O`, the weights of tap `(ki, kj)`, the same for
/// every `ki`.
fn for_each_tap(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize)) {
    let w = g.input[2];
    for ox in 0..g.output[1] {
        // Kernel columns whose input column `ox * sw + kj - pl` is inside `0..w`.
        let first = g.pad_before[1].saturating_sub(ox * g.stride[1]);
        let end = g.kernel[1].min((w + g.pad_before[1]).saturating_sub(ox * g.stride[1]));
        for kj in first..end {
            f(ox * g.stride[1] + kj - g.pad_before[1], ox, kj);
        }
    }
}

/// `[N, C, H, W]` to `[H, N, W, C]`.
fn rows_last_channels(x: &[f32], [c, h, w]: [usize; 3]) -> Vec<f32> {
    let images = x.len() / (c * h * w);
    let mut out = vec![0.0f32; x.len()];
    for (n, x) in x.chunks_exact(c * h * w).enumerate() {
        for ch in 0..c {
            for y in 0..h {
                let row = &mut out[(y * images + n) * w * c..][..w * c];
                for (xx, &v) in x[(ch * h + y) * w..][..w].iter().enumerate() {
                    row[xx * c + ch] = v;
                }
            }
        }
    }
    out
}

/// The inverse of [`rows_last_channels`].
fn channels_first(x: &[f32], [c, h, w]: [usize; 3]) -> Vec<f32> {
    let images = x.len() / (c * h * w);
    let mut out = vec![0.0f32; x.len()];
    for (n, out) in out.chunks_exact_mut(c * h * w).enumerate() {
        for y in 0..h {
            let row = &x[(y * images + n) * w * c..][..w * c];
            for ch in 0..c {
                for (xx, v) in out[(ch * h + y) * w..][..w].iter_mut().enumerate() {
                    *v = row[xx * c + ch];
                }
            }
        }
    }
    out
}

/// Buffers kept between batches, by geometry: the matrices (whose zeros, the same for
/// every batch, are written only once) and the scratch for `dB` (fully overwritten).
static POOL: Mutex<Vec<(ConvGeometry, bool, Vec<f32>)>> = Mutex::new(Vec::new());

/// A kept buffer of `len` values for `g` (`matrices`, else scratch), or a new zeroed
/// one; give it back with [`give`].
fn take(g: &ConvGeometry, matrices: bool, len: usize) -> Vec<f32> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match pool.iter().position(|(k, b, v)| k == g && *b == matrices && v.len() == len) {
        Some(i) => pool.swap_remove(i).2,
        None => vec![0.0; len],
    }
}

fn give(g: &ConvGeometry, matrices: bool, buffer: Vec<f32>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    // One of each kind per geometry is enough for sequential batches.
    if !pool.iter().any(|(k, b, _)| k == g && *b == matrices) {
        pool.push((*g, matrices, buffer));
    }
}

/// The `kh` matrices `B_ki` of `weight` (`[O, C, kh, kw]`), one after the other, in a
/// kept buffer of `g`'s: each nonzero segment is one tap's weights for every output
/// channel, contiguous in [`taps_first`]'s layout.
fn matrices(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    let (c, o) = (g.input[0], g.outputs);
    let wt = taps_first(weight, g);
    let len = matrix_len(g);
    let cols = g.output[1] * o;
    let mut b = take(g, true, g.kernel[0] * len);
    for ki in 0..g.kernel[0] {
        let m = &mut b[ki * len..][..len];
        for_each_tap(g, |x, ox, kj| {
            let tap = (ki * g.kernel[1] + kj) * c;
            for ch in 0..c {
                m[(x * c + ch) * cols + ox * o..][..o].copy_from_slice(&wt[(tap + ch) * o..][..o]);
            }
        });
    }
    b
}

/// The weights `[O, C, kh, kw]` as `[kh, kw, C, O]`: for each tap and input channel,
/// every output channel's weight side by side.
fn taps_first(weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let (c, taps, o) = (g.input[0], g.kernel[0] * g.kernel[1], g.outputs);
    let mut out = vec![0.0f32; weight.len()];
    for (oc, w) in weight.chunks_exact(c * taps).enumerate() {
        for ch in 0..c {
            for t in 0..taps {
                out[(t * c + ch) * o + oc] = w[ch * taps + t];
            }
        }
    }
    out
}

/// Forward pass over a batch, as [`super::conv::forward`].
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let [c, _, w] = g.input;
    let (o, p) = (g.outputs, g.positions());
    let images = x.len() / g.input_len();
    let (wc, cols) = (w * c, g.output[1] * o);
    let xr = rows_last_channels(x, g.input);
    let b = matrices(g, weight);
    // Z [H', N, W'*O].
    let mut z = vec![0.0f32; images * p * o];
    for ki in 0..g.kernel[0] {
        let bk = &b[ki * matrix_len(g)..][..matrix_len(g)];
        for_each_block(g, ki, |oy, y, count| {
            let (dst, lhs) = (&mut z[oy * images * cols..], &xr[y * images * wc..]);
            matmul_rows([count * images, wc, cols], dst, cols, true, lhs, [wc, 1], bk, [cols, 1], true);
        });
    }
    give(g, true, b);
    let (units, pieces) = (g.units(), g.pieces);
    let [oh, ow] = g.output;
    let mut y = vec![0.0f32; images * g.output_len()];
    let mut winners = vec![0u8; images * g.output_len()];
    for oy in 0..oh {
        for n in 0..images {
            let zrow = &z[(oy * images + n) * cols..][..cols];
            let (y, won) = (&mut y[n * g.output_len()..], &mut winners[n * g.output_len()..]);
            for (ox, z) in zrow.chunks_exact(o).enumerate() {
                let at = oy * ow + ox;
                for u in 0..units {
                    // The first of equal pieces wins, as in the im2col path.
                    let mut best = (z[u * pieces] + bias[u * pieces], 0);
                    for j in 1..pieces {
                        let v = z[u * pieces + j] + bias[u * pieces + j];
                        if v > best.0 {
                            best = (v, j);
                        }
                    }
                    y[u * p + at] = best.0;
                    won[u * p + at] = best.1 as u8;
                }
            }
        }
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
    let [c, _, w] = g.input;
    let [kh, kw] = g.kernel;
    let (o, p) = (g.outputs, g.positions());
    let images = x.len() / g.input_len();
    let (units, pieces) = (g.units(), g.pieces);
    let [oh, ow] = g.output;
    let (wc, cols) = (w * c, ow * o);
    // dZ [H', N, W'*O]: each unit's gradient to its winning piece.
    let mut dz = vec![0.0f32; images * p * o];
    for (n, (dy, won)) in dy.chunks_exact(g.output_len()).zip(winners.chunks_exact(g.output_len())).enumerate() {
        for u in 0..units {
            for oy in 0..oh {
                let row = &mut dz[(oy * images + n) * cols..][..cols];
                for ox in 0..ow {
                    let at = oy * ow + ox;
                    row[ox * o + u * pieces + usize::from(won[u * p + at])] = dy[u * p + at];
                }
            }
        }
    }
    let mut dbias = vec![0.0f32; o];
    for dz in dz.chunks_exact(o) {
        dbias.iter_mut().zip(dz).for_each(|(b, d)| *b += d);
    }
    let xr = rows_last_channels(x, g.input);
    // dB_ki [W*C, W'*O] = X[y..]ᵀ · dZ[oy..], folded onto the weights in `taps_first`'s
    // layout, `[kh, kw, C, O]`.
    let mut dwt = vec![0.0f32; weight.len()];
    let mut db = take(g, false, matrix_len(g));
    for ki in 0..kh {
        let mut any = false;
        for_each_block(g, ki, |oy, y, count| {
            let (lhs, rhs) = (&xr[y * images * wc..], &dz[oy * images * cols..]);
            matmul_rows([wc, count * images, cols], &mut db, cols, any, lhs, [1, wc], rhs, [cols, 1], true);
            any = true;
        });
        if !any {
            continue;
        }
        for_each_tap(g, |x, ox, kj| {
            let tap = (ki * kw + kj) * c;
            for ch in 0..c {
                let from = &db[(x * c + ch) * cols + ox * o..][..o];
                dwt[(tap + ch) * o..][..o].iter_mut().zip(from).for_each(|(w, d)| *w += d);
            }
        });
    }
    give(g, false, db);
    // `[kh, kw, C, O]` back to `[O, C, kh, kw]`.
    let dweight = {
        let taps = kh * kw;
        let mut out = vec![0.0f32; dwt.len()];
        for (oc, out) in out.chunks_exact_mut(c * taps).enumerate() {
            for ch in 0..c {
                for t in 0..taps {
                    out[ch * taps + t] = dwt[(t * c + ch) * o + oc];
                }
            }
        }
        out
    };
    let dx = want_dx.then(|| {
        // dX[y..] [count*N, W*C] += dZ[oy..] [count*N, W'*O] · B_kiᵀ
        let b = matrices(g, weight);
        let mut dxr = vec![0.0f32; x.len()];
        for ki in 0..kh {
            let bk = &b[ki * matrix_len(g)..][..matrix_len(g)];
            for_each_block(g, ki, |oy, y, count| {
                let (dst, lhs) = (&mut dxr[y * images * wc..], &dz[oy * images * cols..]);
                matmul_rows([count * images, cols, wc], dst, wc, true, lhs, [cols, 1], bk, [1, cols], true);
            });
        }
        give(g, true, b);
        channels_first(&dxr, g.input)
    });
    (dx, dweight, dbias)
}
