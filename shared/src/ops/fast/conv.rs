//! Conv2d + maxout (+ max pooling) in one pass, four pixels per inner loop.
//!
//! Before the first pixel the kernel decodes each conv channel's bias, requantization
//! constants and anything its column layout needs once into a table at the start of the
//! scratch ([`super::scale`]). Then, for each output cell, it copies the input windows it
//! needs into *columns* in the rest of the scratch, in the order of the weights' inner
//! axes `(ky, kx, i)`, four pixels to a *chunk*, laid out as the [`Layout`] says
//! ([`super::columns`]: 16-bit lanes for the DSP extension, bytes elsewhere). A last
//! chunk with fewer pixels repeats its last pixel.
//!
//! The pixels of one output cell: the pool window (in as many chunks as it needs), or,
//! without pooling, four pixels in raster order (one output cell each). Per conv
//! channel the kernel accumulates `bias + dot(column, weights)` for them, and:
//! - **with pooling** takes the largest accumulator over the pool window and requantizes
//!   only that. Requantization is non-decreasing in the accumulator (multipliers are
//!   `>= 0`, every rounding step is monotonic, the clamp too), so the requantized maximum
//!   equals the maximum of the requantized values that the reference pools, bit for bit;
//! - **without pooling** requantizes each pixel's accumulator.
//!
//! Maxout then keeps the largest requantized piece of each unit, as the reference does,
//! after requantization (pieces have their own multipliers), or, when every unit's
//! pieces share one multiplier and shift ([`Fused::units_share_scale`], what export's
//! shared unit scales give), the largest accumulator, requantized once: the same value
//! by the same monotonicity. The output stage (zero point, clamp) is non-decreasing
//! too, so it runs once per unit, on the largest requantized value. The pre-maxout
//! tensor and the pre-pooling tensor never exist: only the columns and the final output.
//!
//! Integer sums are exact in any order: the accumulator bound checked on decode
//! ([`Conv2d`]) holds for every partial sum of the reference's order, and a layout whose
//! partial sums may leave it wraps back into the exact final sum.

use super::columns::{Bytes, Channels, Columns, LANES, Layout, Packed};
use super::scale::{self, CHANNEL_WORDS, Channel};
use crate::ops::Conv2d;
use crate::tensor::Shape;
/// The step [`conv_maxout_pool`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fused<'a> {
    pub conv: Conv2d<'a>,
    /// Maxout pieces (1: no maxout).
    pub pieces: u16,
    /// Max pooling after maxout, as `(kernel_h, kernel_w)`, windows not overlapping
    /// (stride equal to the kernel) and without padding.
    pub pool: Option<(u16, u16)>,
    /// The conv's input.
    pub input: Shape,
    /// The conv's output (before maxout and pooling).
    pub conv_output: Shape,
    /// What the step writes (after maxout and pooling).
    pub output: Shape,
}

impl Fused<'_> {
    /// Values in one window: `kernel_h * kernel_w * in_channels`.
    pub(super) fn window_len(&self) -> usize {
        usize::from(self.conv.window.kernel_h)
            * usize::from(self.conv.window.kernel_w)
            * usize::from(self.input.channels)
    }

    /// Conv pixels whose columns exist at once: the pool window, or one chunk.
    fn pixels(&self) -> usize {
        self.pool.map_or(LANES, |(h, w)| usize::from(h) * usize::from(w))
    }

    /// Whether the pieces of every maxout unit share one requantization (multiplier and
    /// shift), as export makes them when asked to. Then the largest accumulator of a
    /// unit's pieces, requantized once, is the largest of their requantized values (the
    /// same monotonic function of each), and the kernel requantizes once per unit.
    pub fn units_share_scale(&self) -> bool {
        let pieces = usize::from(self.pieces);
        let requant = &self.conv.requant;
        let channels = usize::from(self.conv_output.channels);
        pieces > 1
            && (0..channels).step_by(pieces).all(|first| {
                (first + 1..first + pieces).all(|o| {
                    requant.multipliers.get(o) == requant.multipliers.get(first)
                        && requant.shifts.get(o) == requant.shifts.get(first)
                })
            })
    }

    /// Values per channel as the inner loops see them: the window, padded to a whole
    /// number of runs of 4.
    pub(super) fn padded_window_len(&self) -> usize {
        self.window_len().div_ceil(4) * 4
    }

    /// Scratch words the kernel needs: the channel table, the weights padded to whole
    /// runs when the window is not (`padded_window_len`), and the columns in the largest
    /// layout, so that every target plans the same arena.
    pub fn scratch_words(&self) -> usize {
        let channels = usize::from(self.conv_output.channels);
        let padded = if self.window_len().is_multiple_of(4) { 0 } else { channels * self.padded_window_len() / 4 };
        channels * CHANNEL_WORDS + padded + self.pixels().div_ceil(LANES) * Packed::chunk_words(self)
    }
}

/// Runs `step` from `input` into `output` with the `columns` layout, using `scratch` (at
/// least [`Fused::scratch_words`] words) for the channel table and the columns. A
/// target compiles the layouts it can be asked for: its native one, and both where `std`
/// is on (the host's tests); another falls back to the native one.
pub fn conv_maxout_pool(step: &Fused<'_>, input: &[i8], output: &mut [i8], scratch: &mut [u32], columns: Columns) {
    let all = cfg!(feature = "std");
    match columns {
        Columns::Packed if all || Columns::NATIVE == Columns::Packed => run::<Packed>(step, input, output, scratch),
        Columns::Bytes if all || Columns::NATIVE == Columns::Bytes => run::<Bytes>(step, input, output, scratch),
        _ if Columns::NATIVE == Columns::Packed => run::<Packed>(step, input, output, scratch),
        _ => run::<Bytes>(step, input, output, scratch),
    }
}

/// [`conv_maxout_pool`] in layout `L`.
fn run<L: Layout>(step: &Fused<'_>, input: &[i8], output: &mut [i8], scratch: &mut [u32]) {
    let channels = usize::from(step.conv_output.channels);
    let (table, columns) = scratch.split_at_mut(channels * CHANNEL_WORDS);
    let table: &mut [Channel] = bytemuck::cast_slice_mut(table);
    fill_table::<L>(step, table);
    // The inner loops take whole runs of 4 weights: a window that is not (a first layer
    // of 1 to 3 channels, say) gets its weights copied once, padded with zeros, which
    // meet whatever the columns hold past the window and add nothing.
    let (k, k4) = (step.window_len(), step.padded_window_len());
    let (weights, columns): (&[u8], &mut [u32]) = if k == k4 || !L::PADS_WEIGHTS {
        (step.conv.weights.0, columns)
    } else {
        let (padded, columns) = columns.split_at_mut(channels * k4 / 4);
        let padded: &mut [u8] = bytemuck::cast_slice_mut(padded);
        for (to, from) in padded.chunks_exact_mut(k4).zip(step.conv.weights.0.chunks_exact(k)) {
            to[..k].copy_from_slice(from);
            to[k..].fill(0);
        }
        (padded, columns)
    };
    let pixels = step.pixels();
    let columns = &mut columns[..pixels.div_ceil(LANES) * L::chunk_words(step)];
    let out = step.output;
    let units = usize::from(out.channels);
    let shared = step.units_share_scale();
    match step.pool {
        Some((ph, pw)) => {
            let (ph, pw) = (usize::from(ph), usize::from(pw));
            for oy in 0..usize::from(out.height) {
                for ox in 0..usize::from(out.width) {
                    fill::<L>(
                        step,
                        input,
                        columns,
                        pixels,
                        Raster { origin: (oy * ph, ox * pw), width: pw, start: (0, 0) },
                    );
                    let cell = out.index(oy, ox, 0);
                    let out = &mut output[cell..cell + units];
                    pooled_channels::<L>(step, table, weights, columns, shared, out);
                }
            }
        }
        None => {
            // Chunks of four pixels in raster order, across rows: output cells are
            // consecutive in the same order.
            let (width, cells) = (usize::from(out.width), out.len() / units);
            // The first cell's row and column, kept without dividing (no divide
            // instruction on a Cortex-M0+).
            let mut start = (0, 0);
            for first in (0..cells).step_by(LANES) {
                let n = (cells - first).min(LANES);
                fill::<L>(step, input, columns, n, Raster { origin: (0, 0), width, start });
                let out = &mut output[first * units..(first + n) * units];
                pixel_channels::<L>(step, table, weights, columns, n, shared, out);
                start.1 += LANES;
                while start.1 >= width {
                    start = (start.0 + 1, start.1 - width);
                }
            }
        }
    }
}

/// Weights per channel in the inner loops: the window, padded for a layout that pads.
fn weights_per_channel<L: Layout>(step: &Fused<'_>) -> usize {
    if L::PADS_WEIGHTS { step.padded_window_len() } else { step.window_len() }
}

/// The channel table: bias, requantization constants and what `L` needs of each conv
/// channel.
fn fill_table<L: Layout>(step: &Fused<'_>, table: &mut [Channel]) {
    let k = step.window_len();
    for (o, (c, weights)) in table.iter_mut().zip(step.conv.weights.0.chunks_exact(k)).enumerate() {
        *c = L::channel(step, o, weights);
    }
}

/// Packs the windows of the first `pixels` conv pixels of `raster` into the chunks of
/// `columns`. The empty slots of a last chunk that is not full get the last pixel's
/// window again: a pooled maximum is unchanged by a repeated pixel, and an unpooled
/// step ignores their sums.
#[inline(always)]
fn fill<L: Layout>(step: &Fused<'_>, input: &[i8], columns: &mut [u32], pixels: usize, raster: Raster) {
    let words = L::chunk_words(step);
    let Raster { origin: (y0, x0), width, start: (mut row, mut col) } = raster;
    for p in 0..pixels.div_ceil(LANES) * LANES {
        let chunk = p / LANES * words;
        L::fill_column(step, input, y0 + row, x0 + col, &mut columns[chunk..chunk + words], p % LANES);
        // The next pixel, unless this was the last (whose window fills the rest).
        if p + 1 < pixels {
            col += 1;
            if col == width {
                (row, col) = (row + 1, 0);
            }
        }
    }
}

/// Pixels in raster order over a grid `width` wide whose cell `(0, 0)` is the conv
/// pixel `origin`, from the cell `start` (row, column): a pool window, or the whole
/// output.
#[derive(Clone, Copy, Debug)]
struct Raster {
    origin: (usize, usize),
    width: usize,
    start: (usize, usize),
}

/// Every conv channel of the pixels whose columns are in `columns` (at least one chunk),
/// reduced by max into one output cell, and maxout: a pooled step's cell `out`. Not
/// inlined: one copy serves every step.
#[inline(never)]
fn pooled_channels<L: Layout>(
    step: &Fused<'_>,
    table: &[Channel],
    weights: &[u8],
    columns: &[u32],
    shared: bool,
    out: &mut [i8],
) {
    let (k, pieces, words) = (weights_per_channel::<L>(step), usize::from(step.pieces), L::chunk_words(step));
    let stage = step.conv.output;
    // Made once per call and cloned: making a `chunks_exact` divides, and a Cortex-M0+
    // has no divide instruction.
    let (first, others) = columns.split_at(words);
    let channels = Channels { weights, table, k, pieces, shared, stage };
    if others.is_empty() && L::pooled_cell(first, channels, out) {
        return;
    }
    let others = others.chunks_exact(words);
    let (mut weights, mut table) = (weights, table);
    for out in out.iter_mut() {
        // The largest requantized piece, or with shared scales ([`Fused::units_share_scale`])
        // the largest accumulator, requantized after; the output stage once per unit.
        let mut best = i32::MIN;
        let mut unit_channel = None;
        for _ in 0..pieces {
            let (w, c);
            ((w, weights), (c, table)) = (weights.split_at(k), table.split_first().expect("a table entry per channel"));
            let mut top = L::dot_max(first, w, c);
            for chunk in others.clone() {
                top = top.max(L::dot_max(chunk, w, c));
            }
            if shared {
                best = best.max(top);
                unit_channel = Some(c);
            } else {
                best = best.max(scale::requantize(top, c));
            }
        }
        if let Some(c) = unit_channel {
            best = scale::requantize(best, c);
        }
        *out = stage.finish(best);
    }
}

/// Every conv channel of the four pixels of `chunk`, and maxout: the first `cells`
/// pixels' output cells, side by side in `out`. Not inlined, like [`pooled_channels`].
#[inline(never)]
fn pixel_channels<L: Layout>(
    step: &Fused<'_>,
    table: &[Channel],
    weights: &[u8],
    chunk: &[u32],
    cells: usize,
    shared: bool,
    out: &mut [i8],
) {
    let (k, pieces) = (weights_per_channel::<L>(step), usize::from(step.pieces));
    let units = usize::from(step.output.channels);
    let stage = step.conv.output;
    if L::pixel_chunk(chunk, Channels { weights, table, k, pieces, shared, stage }, units, cells, out) {
        return;
    }
    let mut channels = weights.chunks_exact(k).zip(table);
    for unit in 0..units {
        // The running maxima: the requantized values, or with shared scales the
        // accumulators, requantized after; the output stage once per unit.
        let mut best = [i32::MIN; LANES];
        let mut unit_channel = None;
        for (weights, c) in channels.by_ref().take(pieces) {
            let accs = L::dot_4(chunk, weights, c);
            if shared {
                for (b, acc) in best.iter_mut().zip(accs) {
                    *b = (*b).max(acc);
                }
                unit_channel = Some(c);
            } else {
                for (b, acc) in best.iter_mut().zip(accs) {
                    *b = (*b).max(scale::requantize(acc, c));
                }
            }
        }
        if let Some(c) = unit_channel {
            for b in &mut best {
                *b = scale::requantize(*b, c);
            }
        }
        for (cell, b) in best.into_iter().enumerate().take(cells) {
            out[cell * units + unit] = stage.finish(b);
        }
    }
}
