//! A maxout convolution over plain `f32` slices: forward and backward.
//!
//! One image at a time, NCHW. The windows of the input are laid out as the columns of a
//! matrix (`im2col`, `[C*kh*kw, H'*W']`), so each pass is one matrix product:
//!
//! - forward: `Z = W · cols + b` (`[O, H'*W']`), then maxout keeps, for each unit `g`,
//!   the largest of its pieces `Z[g*k .. g*k+k]` and remembers which one won;
//! - backward: the unit's gradient goes to the winning piece only (`dZ`), then
//!   `dW += dZ · colsᵀ`, `db += Σ dZ` and `dx = col2im(Wᵀ · dZ)`.
//!
//! Images are spread over rayon's threads; each thread keeps its own column buffer and
//! its own `dW`/`db`, summed at the end, so no two threads ever write the same value.
//! The columns are rebuilt in the backward pass instead of being kept: they are
//! `kh*kw` times larger than the input.

use std::cell::RefCell;

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::matmul::matmul;
use super::unrolled;

thread_local! {
    /// Each thread's work buffers (columns, pre-maxout values, their gradients), grown
    /// to the largest size asked and kept: training asks for the same sizes every batch,
    /// so after the first one nothing is allocated or zeroed. Contents are stale: every
    /// user overwrites what it reads.
    static BUFFERS: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Runs `f` with three of this thread's work buffers of at least `lens` values (stale
/// contents). A nested call on the same thread gets fresh buffers.
fn with_buffers<R>(lens: [usize; 3], f: impl FnOnce([&mut [f32]; 3]) -> R) -> R {
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            for (buffer, &len) in buffers.iter_mut().zip(&lens) {
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
            }
            let [a, b, c] = &mut *buffers;
            f([&mut a[..lens[0]], &mut b[..lens[1]], &mut c[..lens[2]]])
        }
        Err(_) => {
            let [mut a, mut b, mut c] = lens.map(|len| vec![0.0f32; len]);
            f([&mut a, &mut b, &mut c])
        }
    })
}

/// For output positions `0..n` along one axis, the range whose input coordinate
/// `o * stride + offset - pad` falls inside `0..size`.
#[inline(always)]
fn valid_range(n: usize, size: usize, stride: usize, offset: usize, pad: usize) -> std::ops::Range<usize> {
    // Smallest o with o*stride + offset >= pad.
    let lo = if offset >= pad { 0 } else { (pad - offset).div_ceil(stride) };
    // Largest o with o*stride + offset - pad < size, plus one.
    let hi = if size + pad > offset { (size + pad - offset - 1) / stride + 1 } else { 0 };
    lo.min(n)..hi.min(n).max(lo.min(n))
}

crate::multiversion! {
/// Lays the windows of one image `x` (`[C, H, W]`) out as `cols` (`[C*kh*kw, H'*W']`,
/// rows `ld` values apart), zeros where a window hangs over the padding.
pub fn im2col(g: &ConvGeometry, x: &[f32], cols: &mut [f32], ld: usize) {
    let [c, h, w] = g.input;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [pt, pl] = g.pad_before;
    let [oh, ow] = g.output;
    let n = oh * ow;
    for ch in 0..c {
        let plane = &x[ch * h * w..(ch + 1) * h * w];
        for ki in 0..kh {
            let rows = valid_range(oh, h, sh, ki, pt);
            for kj in 0..kw {
                let row = &mut cols[((ch * kh + ki) * kw + kj) * ld..][..n];
                let xs = valid_range(ow, w, sw, kj, pl);
                for oy in 0..oh {
                    let out = &mut row[oy * ow..(oy + 1) * ow];
                    if !rows.contains(&oy) {
                        out.fill(0.0);
                        continue;
                    }
                    let line = &plane[(oy * sh + ki - pt) * w..][..w];
                    out[..xs.start].fill(0.0);
                    out[xs.end..].fill(0.0);
                    if sw == 1 {
                        let first = xs.start + kj - pl;
                        out[xs.clone()].copy_from_slice(&line[first..first + xs.len()]);
                    } else {
                        for ox in xs.clone() {
                            out[ox] = line[ox * sw + kj - pl];
                        }
                    }
                }
            }
        }
    }
}
}

crate::multiversion! {
/// The adjoint of [`im2col`]: adds each column entry (rows `ld` values apart) back onto
/// the input position it was read from. `dx` is overwritten.
pub fn col2im(g: &ConvGeometry, cols: &[f32], ld: usize, dx: &mut [f32]) {
    let [c, h, w] = g.input;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [pt, pl] = g.pad_before;
    let [oh, ow] = g.output;
    let n = oh * ow;
    dx.fill(0.0);
    for ch in 0..c {
        let plane = &mut dx[ch * h * w..(ch + 1) * h * w];
        for ki in 0..kh {
            let rows = valid_range(oh, h, sh, ki, pt);
            for kj in 0..kw {
                let row = &cols[((ch * kh + ki) * kw + kj) * ld..][..n];
                let xs = valid_range(ow, w, sw, kj, pl);
                for oy in rows.clone() {
                    let line = &mut plane[(oy * sh + ki - pt) * w..][..w];
                    let src = &row[oy * ow..(oy + 1) * ow];
                    if sw == 1 {
                        let first = xs.start + kj - pl;
                        for (d, s) in line[first..first + xs.len()].iter_mut().zip(&src[xs.clone()]) {
                            *d += s;
                        }
                    } else {
                        for ox in xs.clone() {
                            line[ox * sw + kj - pl] += src[ox];
                        }
                    }
                }
            }
        }
    }
}
}

/// Images per matrix product: enough that the product has at least this many columns,
/// so that packing the weights is paid over many positions.
const MIN_COLUMNS: usize = 512;

/// How many images [`forward`] and [`backward`] put side by side in one product.
fn images_per_product(g: &ConvGeometry) -> usize {
    MIN_COLUMNS.div_ceil(g.positions()).max(1)
}

/// Forward pass over a batch: `x` is `[N, C, H, W]`, `weight` `[O, C, kh, kw]`, `bias`
/// `[O]`. Returns the output `[N, O/k, H', W']` and the winning piece of every output
/// value (`0..k`, the first of equal ones; all 0 without maxout), which [`backward`]
/// needs. Through im2col ([`columns_forward`]), or as one dense matrix where that is
/// faster ([`unrolled::worth_it`]).
pub fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<u8>) {
    if unrolled::worth_it(g) { unrolled::forward(g, x, weight, bias) } else { columns_forward(g, x, weight, bias) }
}

/// [`forward`] through im2col, whatever the geometry.
pub fn columns_forward(g: &ConvGeometry, x: &[f32], weight: &[f32], bias: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let (k, n, o) = (g.window(), g.positions(), g.outputs);
    let images = x.len() / g.input_len();
    assert_eq!(x.len(), images * g.input_len());
    assert_eq!(weight.len(), o * k);
    assert_eq!(bias.len(), o);
    assert!(g.pieces <= usize::from(u8::MAX));
    let mut y = vec![0.0; images * g.output_len()];
    let mut winners = vec![0u8; images * g.output_len()];
    let step = images_per_product(g);
    y.par_chunks_mut(step * g.output_len())
        .zip(winners.par_chunks_mut(step * g.output_len()))
        .zip(x.par_chunks(step * g.input_len()))
        .for_each(|((y, won), x)| {
            let count = x.len() / g.input_len();
            let ld = count * n;
            with_buffers([k * ld, o * ld, 0], |[cols, z, _]| {
                // im2col writes every entry of cols [K, count*N].
                for (i, x) in x.chunks_exact(g.input_len()).enumerate() {
                    im2col(g, x, &mut cols[i * n..], ld);
                }
                // Z [O, count*N] = W [O, K] · cols [K, count*N]
                matmul([o, k, ld], z, false, weight, [k, 1], cols, [ld, 1], false);
                let outputs = y.chunks_exact_mut(g.output_len()).zip(won.chunks_exact_mut(g.output_len()));
                for (i, (y, won)) in outputs.enumerate() {
                    maxout(&z[i * n..], ld, bias, g.pieces, n, y, won);
                }
            });
        });
    (y, winners)
}

crate::multiversion! {
/// `y[u, p] = max_j (z[u*k + j, p] + bias[u*k + j])` for each unit `u` (rows of `z`
/// `ld` apart, `n` positions); `won` records `j`, the first of equal pieces.
pub(super) fn maxout(z: &[f32], ld: usize, bias: &[f32], pieces: usize, n: usize, y: &mut [f32], won: &mut [u8]) {
    for (unit, (y, won)) in y.chunks_exact_mut(n).zip(won.chunks_exact_mut(n)).enumerate() {
        let b = bias[unit * pieces];
        y.iter_mut().zip(&z[unit * pieces * ld..][..n]).for_each(|(y, z)| *y = z + b);
        won.fill(0);
        for piece in 1..pieces {
            let row = &z[(unit * pieces + piece) * ld..][..n];
            let b = bias[unit * pieces + piece];
            for ((y, w), &v) in y.iter_mut().zip(won.iter_mut()).zip(row) {
                let v = v + b;
                if v > *y {
                    *y = v;
                    *w = piece as u8;
                }
            }
        }
    }
}
}

/// Gradients of a batch given the output gradient `dy` (`[N, O/k, H', W']`) and the
/// winners recorded by [`forward`]: `(dx, dweight, dbias)`; `dx` only when `want_dx`.
/// The same choice of method as [`forward`].
pub fn backward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    winners: &[u8],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    if unrolled::worth_it(g) {
        unrolled::backward(g, x, weight, dy, winners, want_dx)
    } else {
        columns_backward(g, x, weight, dy, winners, want_dx)
    }
}

/// [`backward`] through im2col, whatever the geometry.
pub fn columns_backward(
    g: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    winners: &[u8],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (k, n, o) = (g.window(), g.positions(), g.outputs);
    let images = x.len() / g.input_len();
    assert_eq!(dy.len(), images * g.output_len());
    assert_eq!(winners.len(), dy.len());
    let mut dx = vec![0.0f32; if want_dx { x.len() } else { 0 }];
    let threads = rayon::current_num_threads().max(1);
    let per_task = images.div_ceil(threads).max(1);
    let step = images_per_product(g);
    // Each task: a run of images, its own buffers and its own dW/db.
    let dx_chunks: Vec<&mut [f32]> = if want_dx {
        dx.chunks_mut(per_task * g.input_len()).collect()
    } else {
        (0..images.div_ceil(per_task)).map(|_| &mut [][..]).collect()
    };
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dx_chunks
        .into_par_iter()
        .enumerate()
        .map(|(task, mut dx)| {
            let first = task * per_task;
            let last = (first + per_task).min(images);
            let mut dw = vec![0.0f32; o * k];
            let mut db = vec![0.0f32; o];
            let lens = [k * n * step, if want_dx { k * n * step } else { 0 }, o * n * step];
            with_buffers(lens, |[cols, dcols, dz]| {
                for start in (first..last).step_by(step) {
                    let count = step.min(last - start);
                    let ld = count * n;
                    for i in 0..count {
                        let image = start + i;
                        let dy = &dy[image * g.output_len()..][..g.output_len()];
                        let won = &winners[image * g.output_len()..][..g.output_len()];
                        spread(dy, won, g.pieces, n, &mut dz[i * n..], ld);
                        im2col(g, &x[image * g.input_len()..][..g.input_len()], &mut cols[i * n..], ld);
                    }
                    for (row, b) in dz.chunks_exact(ld).take(o).zip(db.iter_mut()) {
                        *b += row.iter().sum::<f32>();
                    }
                    // dW [O, K] += dZ [O, count*N] · colsᵀ [count*N, K]
                    matmul([o, ld, k], &mut dw, true, dz, [ld, 1], cols, [1, ld], false);
                    if want_dx {
                        // dcols [K, count*N] = Wᵀ [K, O] · dZ [O, count*N]
                        matmul([k, o, ld], dcols, false, weight, [1, k], dz, [ld, 1], false);
                        for i in 0..count {
                            let (image, rest) = std::mem::take(&mut dx).split_at_mut(g.input_len());
                            col2im(g, &dcols[i * n..], ld, image);
                            dx = rest;
                        }
                    }
                }
            });
            (dw, db)
        })
        .collect();
    let mut dweight = vec![0.0f32; o * k];
    let mut dbias = vec![0.0f32; o];
    for (dw, db) in partial {
        dweight.iter_mut().zip(&dw).for_each(|(a, b)| *a += b);
        dbias.iter_mut().zip(&db).for_each(|(a, b)| *a += b);
    }
    (want_dx.then_some(dx), dweight, dbias)
}

crate::multiversion! {
/// The adjoint of [`maxout`]: each unit's gradient goes to its winning piece (rows of
/// `dz` `ld` apart).
pub(super) fn spread(dy: &[f32], won: &[u8], pieces: usize, n: usize, dz: &mut [f32], ld: usize) {
    for (unit, (dy, won)) in dy.chunks_exact(n).zip(won.chunks_exact(n)).enumerate() {
        for piece in 0..pieces {
            let row = &mut dz[(unit * pieces + piece) * ld..][..n];
            for ((d, &g), &w) in row.iter_mut().zip(dy).zip(won) {
                *d = if usize::from(w) == piece { g } else { 0.0 };
            }
        }
    }
}
}
