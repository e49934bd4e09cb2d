//! The maxout convolution of [`super::conv`] as dense matrices, one per output row, for
//! large windows over small maps.
//!
//! A conv whose window covers most of its input (the MNIST teacher's 8x8 windows over
//! 9x9 maps, its 5x5 windows over 3x3 maps padded by 3) makes im2col copy each input
//! value up to `kh*kw` times, in rows a few values long, and col2im add them back: on
//! the teacher that copying took about as long as the arithmetic. Here the conv is a
//! matrix product over the whole batch instead.
//!
//! Images are taken channels-last (`[N, H, W, C]`), so the input rows that the windows
//! of one output row `oy` reach, `y0 .. y0 + rows`, are one contiguous block of
//! `rows*W*C` values per image. The weights are laid out once per batch as one matrix per
//! output row, a *band* `D_oy` (`[W'*O, rows*W*C]`; entry `(ox, o), (y, x, c)` is the
//! weight that output `(oy, ox)` of channel `o` gives input value `(y0 + y, x, c)`, zero
//! where the window does not reach), and each pass is one product per band:
//!
//! - forward: `Z_oy = X_oy · D_oyᵀ` (`[N, W'*O]`, into `Z` `[N, H'*W', O]`), plus the
//!   bias, then maxout;
//! - backward: `dD_oy = dZ_oyᵀ · X_oy`, folded back onto the weights it was spread
//!   from; `db = Σ dZ`; `dX_oy += dZ_oy · D_oy` (bands overlap in the input).
//!
//! Banding skips the input rows a window cannot reach; what is left of the zeros is
//! the columns it cannot reach, so a band does `rows*W / (kh*kw)` times im2col's
//! multiplications for its row, at most `W / kw` times. That pays where windows are
//! large against the map (the teacher's second conv: 0.91 times): [`worth_it`]
//! decides. The bands and the scratch for `dD` are kept between batches, per geometry,
//! so that the zeros are written once and only the weights each batch.

use std::sync::Mutex;

use super::conv::{ConvGeometry, matmul_rows};

/// Largest total of band values this path builds.
pub const MAX_MATRIX: usize = 1 << 26;

/// Whether `g` runs faster as banded dense matrices than through im2col: the input is
/// at most 1.5 windows and the bands stay under [`MAX_MATRIX`] values. Measured on the
/// teacher: its 5x5 conv over 3x3 maps runs 3.3x faster this way (fwd + bwd, batch
/// 128) and its 8x8 conv over 9x9 maps gains too (see `docs/benchmarks.md`).
pub fn worth_it(g: &ConvGeometry) -> bool {
    let [_, h, w] = g.input;
    2 * h * w <= 3 * g.kernel[0] * g.kernel[1] && bands(g).iter().map(|b| b.len(g)).sum::<usize>() <= MAX_MATRIX
}

/// One output row of every channel and the input rows its windows reach.
#[derive(Clone, Copy, Debug)]
struct Band {
    /// The output row.
    oy: usize,
    /// The first input row it reaches and how many (0 when only padding).
    y0: usize,
    rows: usize,
    /// Where its matrix starts in the concatenation of all bands.
    at: usize,
}

impl Band {
    /// Columns of its matrix: `rows*W*C`.
    fn width(&self, g: &ConvGeometry) -> usize {
        self.rows * g.input[2] * g.input[0]
    }

    /// Values of its matrix: `W'*O` rows of [`Band::width`].
    fn len(&self, g: &ConvGeometry) -> usize {
        g.output[1] * g.outputs * self.width(g)
    }
}

fn bands(g: &ConvGeometry) -> Vec<Band> {
    let [_, h, _] = g.input;
    let mut at = 0;
    (0..g.output[0])
        .map(|oy| {
            let top = (oy * g.stride[0]) as isize - g.pad_before[0] as isize;
            let y0 = top.max(0) as usize;
            let end = (top + g.kernel[0] as isize).clamp(0, h as isize) as usize;
            let band = Band { oy, y0, rows: end.saturating_sub(y0), at };
            at += band.len(g);
            band
        })
        .collect()
}

/// For every nonzero run of `band`'s matrix, calls `f(at, weight, len)`: its `len`
/// values from `at` on (relative to the band) are the `len` channels-last weights
/// (`[O, kh, kw, C]`) from `weight` on.
fn for_each_run(g: &ConvGeometry, band: &Band, mut f: impl FnMut(usize, usize, usize)) {
    let [c, _, w] = g.input;
    let [kh, kw] = g.kernel;
    let width = band.width(g);
    for ox in 0..g.output[1] {
        // Kernel columns whose input column `ox * sw + kj - pl` is inside `0..w`.
        let first = g.pad_before[1].saturating_sub(ox * g.stride[1]);
        let end = kw.min((w + g.pad_before[1]).saturating_sub(ox * g.stride[1]));
        if first >= end {
            continue;
        }
        let x = ox * g.stride[1] + first - g.pad_before[1];
        for o in 0..g.outputs {
            let row = (ox * g.outputs + o) * width;
            for ki in 0..kh {
                let y = (band.oy * g.stride[0] + ki).checked_sub(g.pad_before[0]);
                let Some(y) = y.filter(|&y| y >= band.y0 && y < band.y0 + band.rows) else { continue };
                f(row + ((y - band.y0) * w + x) * c, ((o * kh + ki) * kw + first) * c, (end - first) * c);
            }
        }
    }
}

/// `[N, A, B]` to `[N, B, A]` (channels-first to channels-last with `A = C`,
/// `B = H*W`, and back with them swapped).
fn transpose(x: &[f32], a: usize, b: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for (x, out) in x.chunks_exact(a * b).zip(out.chunks_exact_mut(a * b)) {
        for i in 0..a {
            for j in 0..b {
                out[j * a + i] = x[i * b + j];
            }
        }
    }
    out
}

/// Buffers kept between batches, by geometry: the bands (whose zeros, the same for
/// every batch, are written only once) and the scratch for `dD` (fully overwritten).
static POOL: Mutex<Vec<(ConvGeometry, bool, Vec<f32>)>> = Mutex::new(Vec::new());

/// A kept buffer of `len` values for `g` (`bands`, else scratch), or a new zeroed one;
/// give it back with [`give`].
fn take(g: &ConvGeometry, bands: bool, len: usize) -> Vec<f32> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match pool.iter().position(|(k, b, v)| k == g && *b == bands && v.len() == len) {
        Some(i) => pool.swap_remove(i).2,
        None => vec![0.0; len],
    }
}

fn give(g: &ConvGeometry, bands: bool, buffer: Vec<f32>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    // One of each kind per geometry is enough for sequential batches.
    if !pool.iter().any(|(k, b, _)| k == g && *b == bands) {
        pool.push((*g, bands, buffer));
    }
}

/// The bands of `weight` (`[O, C, kh, kw]`), concatenated, in a kept buffer of `g`'s.
fn matrices(g: &ConvGeometry, bands: &[Band], weight: &[f32]) -> Vec<f32> {
    let wt = transpose(weight, g.input[0], g.kernel[0] * g.kernel[1]);
    let mut d = take(g, true, bands.iter().map(|b| b.len(g)).sum());
    for band in bands {
        let m = &mut d[band.at..][..band.len(g)];
        for_each_run(g, band, |at, from, len| m[at..at + len].copy_from_slice(&wt[from..from + len]));
    }
    d
}

/// Forward pass over a batch, as [`super::conv::forward`].
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let [c, h, w] = g.input;
    let (o, p, hwc) = (g.outputs, g.positions(), g.input_len());
    let images = x.len() / hwc;
    let bands = bands(g);
    let xt = transpose(x, c, h * w);
    let d = matrices(g, &bands, weight);
    // Z [N, P, O]; band oy fills positions oy*W' .. (oy+1)*W' of every image.
    let mut z = vec![0.0f32; images * p * o];
    let cols = g.output[1] * o;
    for band in &bands {
        let k = band.width(g);
        let (dst, lhs) = (&mut z[band.oy * cols..], &xt[band.y0 * w * c..]);
        matmul_rows([images, k, cols], dst, p * o, false, lhs, [hwc, 1], &d[band.at..], [1, k], true);
    }
    give(g, true, d);
    let (units, pieces) = (g.units(), g.pieces);
    let mut y = vec![0.0f32; images * g.output_len()];
    let mut winners = vec![0u8; images * g.output_len()];
    let outputs = y.chunks_exact_mut(g.output_len()).zip(winners.chunks_exact_mut(g.output_len()));
    for ((y, won), z) in outputs.zip(z.chunks_exact(p * o)) {
        for (at, z) in z.chunks_exact(o).enumerate() {
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
    let [c, h, w] = g.input;
    let [kh, kw] = g.kernel;
    let (o, p, hwc) = (g.outputs, g.positions(), g.input_len());
    let images = x.len() / hwc;
    let (units, pieces) = (g.units(), g.pieces);
    // dZ [N, P, O]: each unit's gradient to its winning piece.
    let mut dz = vec![0.0f32; images * p * o];
    let per_image = dy.chunks_exact(g.output_len()).zip(winners.chunks_exact(g.output_len()));
    for ((dy, won), dz) in per_image.zip(dz.chunks_exact_mut(p * o)) {
        for u in 0..units {
            for at in 0..p {
                dz[at * o + u * pieces + usize::from(won[u * p + at])] = dy[u * p + at];
            }
        }
    }
    let mut dbias = vec![0.0f32; o];
    for dz in dz.chunks_exact(o) {
        dbias.iter_mut().zip(dz).for_each(|(b, d)| *b += d);
    }
    let bands = bands(g);
    let xt = transpose(x, c, h * w);
    let cols = g.output[1] * o;
    // dD_oy [W'*O, rows*W*C] = dZ_oyᵀ [W'*O, N] · X_oy [N, rows*W*C], folded onto the
    // channels-last weights.
    let mut dwt = vec![0.0f32; weight.len()];
    let mut dd = take(g, false, bands.iter().map(|b| b.len(g)).max().unwrap_or(0));
    for band in &bands {
        let k = band.width(g);
        let (lhs, rhs) = (&dz[band.oy * cols..], &xt[band.y0 * w * c..]);
        matmul_rows([cols, images, k], &mut dd, k, false, lhs, [1, p * o], rhs, [hwc, 1], true);
        for_each_run(g, band, |at, to, len| {
            dwt[to..to + len].iter_mut().zip(&dd[at..at + len]).for_each(|(w, d)| *w += d);
        });
    }
    give(g, false, dd);
    let dweight = transpose(&dwt, kh * kw, c);
    let dx = want_dx.then(|| {
        // dX_oy [N, rows*W*C] += dZ_oy [N, W'*O] · D_oy [W'*O, rows*W*C]
        let d = matrices(g, &bands, weight);
        let mut dxt = vec![0.0f32; x.len()];
        for band in &bands {
            let k = band.width(g);
            let (dst, lhs) = (&mut dxt[band.y0 * w * c..], &dz[band.oy * cols..]);
            matmul_rows([images, cols, k], dst, hwc, true, lhs, [p * o, 1], &d[band.at..], [k, 1], true);
        }
        give(g, true, d);
        transpose(&dxt, h * w, c)
    });
    (dx, dweight, dbias)
}
