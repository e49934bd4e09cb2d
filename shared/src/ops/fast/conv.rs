//! Conv2d + maxout (+ max pooling) in one pass, with four pixels per inner loop and
//! 16-bit packed arithmetic ([`super::packed`]).
//!
//! Before the first pixel the kernel decodes each conv channel's bias, requantization
//! constants and last weights once into a table at the start of the scratch
//! ([`super::scale`]). Then, for
//! each output cell, it copies the input windows it needs into *columns* in the rest of
//! the scratch: `x - input_zero_point` as 16-bit values, padding as 0 (which adds
//! nothing, exactly as the reference skips it), in the order of the weights' inner axes
//! `(ky, kx, i)`. Each run of 4 values `v0 v1 v2 v3` is stored as two words `(v0, v2)` and
//! `(v1, v3)`, the lanes that `SXTB16` and `SXTB16 ROR #8` make of 4 weight bytes, so one
//! weight word feeds two `SMLAD`s per pixel. A window whose length is not a multiple of
//! 4 ends with a run padded with zeros. Pixels go in *chunks* of four, interleaved run by
//! run (pixel 0's two words, pixel 1's, pixel 2's, pixel 3's; then the next run), so the
//! inner loop walks all four with one pointer, unpacks each weight word once for four
//! pixels and keeps its four accumulators in registers. A last chunk with fewer pixels
//! repeats its last pixel.
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
//! after requantization (pieces have their own multipliers). The pre-maxout tensor and
//! the pre-pooling tensor never exist: only the columns and the final output.
//!
//! Integer sums are exact in any order: the accumulator bound checked on decode
//! ([`Conv2d`]) holds for every partial sum.

use super::packed::{smlad, splat, ssub16, sxtb16, sxtb16_ror8};
use super::scale::{self, CHANNEL_WORDS, Channel};
use crate::ops::{Conv2d, Window};
use crate::tensor::Shape;

/// Pixels per inner loop.
const LANES: usize = 4;
/// Words of one run of 4 values for a whole chunk: two per pixel.
const RUN_WORDS: usize = 2 * LANES;

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
    fn window_len(&self) -> usize {
        usize::from(self.conv.window.kernel_h)
            * usize::from(self.conv.window.kernel_w)
            * usize::from(self.input.channels)
    }

    /// Words of one chunk's columns: runs of 4 values, the last one padded.
    fn chunk_words(&self) -> usize {
        self.window_len().div_ceil(4) * RUN_WORDS
    }

    /// Conv pixels whose columns exist at once: the pool window, or one chunk.
    fn pixels(&self) -> usize {
        self.pool.map_or(LANES, |(h, w)| usize::from(h) * usize::from(w))
    }

    /// Scratch words the kernel needs: the channel table and the columns.
    pub fn scratch_words(&self) -> usize {
        usize::from(self.conv_output.channels) * CHANNEL_WORDS + self.pixels().div_ceil(LANES) * self.chunk_words()
    }
}

/// Runs `step` from `input` into `output`, using `scratch` (at least
/// [`Fused::scratch_words`] words) for the channel table and the columns.
pub fn conv_maxout_pool(step: &Fused<'_>, input: &[i8], output: &mut [i8], scratch: &mut [u32]) {
    let (table, columns) = scratch.split_at_mut(usize::from(step.conv_output.channels) * CHANNEL_WORDS);
    let table: &mut [Channel] = bytemuck::cast_slice_mut(table);
    fill_table(step, table);
    let pixels = step.pixels();
    let columns = &mut columns[..pixels.div_ceil(LANES) * step.chunk_words()];
    let out = step.output;
    let units = usize::from(out.channels);
    match step.pool {
        Some((ph, pw)) => {
            let (ph, pw) = (usize::from(ph), usize::from(pw));
            for oy in 0..usize::from(out.height) {
                for ox in 0..usize::from(out.width) {
                    fill(step, input, columns, pixels, |p| (oy * ph + p / pw, ox * pw + p % pw));
                    let cell = out.index(oy, ox, 0);
                    pooled_channels(step, table, columns, &mut output[cell..cell + units]);
                }
            }
        }
        None => {
            // Chunks of four pixels in raster order, across rows: output cells are
            // consecutive in the same order.
            let (width, cells) = (usize::from(out.width), out.len() / units);
            for first in (0..cells).step_by(LANES) {
                let n = (cells - first).min(LANES);
                fill(step, input, columns, n, |p| ((first + p) / width, (first + p) % width));
                pixel_channels(step, table, columns, n, &mut output[first * units..(first + n) * units]);
            }
        }
    }
}

/// The channel table: bias, requantization constants and unpacked last weights of each
/// conv channel.
fn fill_table(step: &Fused<'_>, table: &mut [Channel]) {
    let conv = &step.conv;
    let k = step.window_len();
    for (o, (c, weights)) in table.iter_mut().zip(conv.weights.0.chunks_exact(k)).enumerate() {
        let mut last = [0u8; 4];
        let rest = &weights[k / 4 * 4..];
        last[..rest.len()].copy_from_slice(rest);
        let last = u32::from_le_bytes(last);
        let (bias, requant) = (conv.bias.get(o), &conv.requant);
        *c = scale::channel(bias, requant.multipliers.get(o), requant.shifts.get(o), [sxtb16(last), sxtb16_ror8(last)]);
    }
}

/// Packs the windows of the conv pixels `at(0)`, …, `at(pixels - 1)` into the chunks of
/// `columns`. The empty slots of a last chunk that is not full get the last pixel's
/// window again: a pooled maximum is unchanged by a repeated pixel, and an unpooled
/// step ignores their sums.
#[inline(always)]
fn fill(step: &Fused<'_>, input: &[i8], columns: &mut [u32], pixels: usize, at: impl Fn(usize) -> (usize, usize)) {
    if !usize::from(step.input.channels).is_multiple_of(4) {
        // The value-by-value path ORs lanes in.
        columns.fill(0);
    }
    let words = step.chunk_words();
    for p in 0..pixels.div_ceil(LANES) * LANES {
        let (y, x) = at(p.min(pixels - 1));
        let chunk = p / LANES * words;
        fill_column(step, input, y, x, &mut columns[chunk..chunk + words], p % LANES);
    }
}

/// Packs conv pixel `(y, x)`'s window into slot `slot` of `chunk`. Not inlined: one copy
/// serves both loops, which keeps the firmware's flash down at the cost of a call per
/// pixel.
#[inline(never)]
fn fill_column(step: &Fused<'_>, input: &[i8], y: usize, x: usize, chunk: &mut [u32], slot: usize) {
    let Window { kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, .. } = step.conv.window;
    let shape = step.input;
    let channels = usize::from(shape.channels);
    let zero_point = step.conv.input_zero_point;
    let y0 = (y * usize::from(stride_h)) as isize - pad_top as isize;
    let x0 = (x * usize::from(stride_w)) as isize - pad_left as isize;
    let inside = |y: isize, x: isize| y >= 0 && x >= 0 && y < shape.height as isize && x < shape.width as isize;
    if channels.is_multiple_of(4) {
        // Every cell is a whole number of runs: two words per input word.
        let zp = splat(zero_point as i16);
        let lane = 2 * slot.min(LANES - 1);
        let cell_words = channels / 4 * RUN_WORDS;
        let mut cells = chunk.chunks_exact_mut(cell_words);
        for ky in 0..kernel_h as isize {
            for kx in 0..kernel_w as isize {
                let Some(cell) = cells.next() else { return };
                let (yy, xx) = (y0 + ky, x0 + kx);
                if inside(yy, xx) {
                    let at = shape.index(yy as usize, xx as usize, 0);
                    for (four, run) in input[at..at + channels].chunks_exact(4).zip(cell.chunks_exact_mut(RUN_WORDS)) {
                        let w = u32::from_le_bytes([four[0] as u8, four[1] as u8, four[2] as u8, four[3] as u8]);
                        run[lane] = ssub16(sxtb16(w), zp);
                        run[lane + 1] = ssub16(sxtb16_ror8(w), zp);
                    }
                } else {
                    for run in cell.chunks_exact_mut(RUN_WORDS) {
                        run[lane] = 0;
                        run[lane + 1] = 0;
                    }
                }
            }
        }
    } else {
        // Runs straddle cells (few input channels, as a first layer): value by value,
        // into words the caller zeroed; padding cells stay zero.
        let mut k = 0;
        for ky in 0..kernel_h as isize {
            for kx in 0..kernel_w as isize {
                let (yy, xx) = (y0 + ky, x0 + kx);
                if !inside(yy, xx) {
                    k += channels;
                    continue;
                }
                let at = shape.index(yy as usize, xx as usize, 0);
                for &v in &input[at..at + channels] {
                    let lane = u32::from((i32::from(v) - zero_point) as i16 as u16);
                    // (v0, v2) then (v1, v3): positions 0 and 2 in the first word.
                    chunk[k / 4 * RUN_WORDS + 2 * slot + k % 2] |= lane << (16 * (k % 4 / 2));
                    k += 1;
                }
            }
        }
    }
}

/// Every conv channel of the pixels whose columns are in `columns` (at least one chunk),
/// reduced by max into one output cell, and maxout: a pooled step's cell `out`. Not
/// inlined, like [`fill_column`].
#[inline(never)]
fn pooled_channels(step: &Fused<'_>, table: &[Channel], columns: &[u32], out: &mut [i8]) {
    let (k, pieces, words) = (step.window_len(), usize::from(step.pieces), step.chunk_words());
    let stage = step.conv.output;
    let (first, others) = columns.split_at(words);
    let units = step.conv.weights.0.chunks_exact(k * pieces).zip(table.chunks_exact(pieces));
    for ((unit_weights, unit_table), out) in units.zip(out) {
        let mut best = i8::MIN;
        for (weights, c) in unit_weights.chunks_exact(k).zip(unit_table) {
            let mut top = max_4(dot_4(first, weights, c));
            for chunk in others.chunks_exact(words) {
                top = top.max(max_4(dot_4(chunk, weights, c)));
            }
            best = best.max(stage.finish(scale::requantize(top, c)));
        }
        *out = best;
    }
}

/// Every conv channel of the four pixels of `chunk`, and maxout: the first `cells`
/// pixels' output cells, side by side in `out`. Not inlined, like [`fill_column`].
#[inline(never)]
fn pixel_channels(step: &Fused<'_>, table: &[Channel], chunk: &[u32], cells: usize, out: &mut [i8]) {
    let (k, pieces) = (step.window_len(), usize::from(step.pieces));
    let units = usize::from(step.output.channels);
    let stage = step.conv.output;
    let unit_params = step.conv.weights.0.chunks_exact(k * pieces).zip(table.chunks_exact(pieces));
    for (unit, (unit_weights, unit_table)) in unit_params.enumerate() {
        // As i32, so the running maxima stay in registers without sign extensions.
        let mut best = [i32::MIN; LANES];
        for (weights, c) in unit_weights.chunks_exact(k).zip(unit_table) {
            let accs = dot_4(chunk, weights, c);
            for (b, acc) in best.iter_mut().zip(accs) {
                *b = (*b).max(i32::from(stage.finish(scale::requantize(acc, c))));
            }
        }
        for (cell, b) in best.into_iter().enumerate().take(cells) {
            out[cell * units + unit] = b as i8;
        }
    }
}

fn max_4(accs: [i32; LANES]) -> i32 {
    accs[0].max(accs[1]).max(accs[2].max(accs[3]))
}

/// `bias + dot(column, weights)` for the four pixels of `chunk`; `weights` holds the `k`
/// weights of the channel `c`, whose last `k % 4` the table holds unpacked.
#[inline(always)]
fn dot_4(chunk: &[u32], weights: &[u8], c: &Channel) -> [i32; LANES] {
    let blocks = weights.len() / 4;
    let (runs, tail) = chunk.split_at(blocks * RUN_WORDS);
    let mut accs = runs_4(runs, &weights[..blocks * 4], [c[0]; LANES]);
    if !weights.len().is_multiple_of(4) {
        // The padded last run.
        let (w02, w13) = (c[6] as u32, c[7] as u32);
        for (acc, pixel) in accs.iter_mut().zip(tail[..RUN_WORDS].chunks_exact(2)) {
            *acc = smlad(pixel[1], w13, smlad(pixel[0], w02, *acc));
        }
    }
    accs
}

/// The whole runs of [`dot_4`]: per 4 weights, one weight word unpacked into two and 8
/// `SMLAD`s, two per pixel.
#[cfg(not(fitnets_dsp))]
#[inline(always)]
fn runs_4(runs: &[u32], weights: &[u8], mut accs: [i32; LANES]) -> [i32; LANES] {
    for (run, w) in runs.chunks_exact(RUN_WORDS).zip(weights.chunks_exact(4)) {
        let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let (w02, w13) = (sxtb16(w), sxtb16_ror8(w));
        for (acc, pixel) in accs.iter_mut().zip(run.chunks_exact(2)) {
            *acc = smlad(pixel[1], w13, smlad(pixel[0], w02, *acc));
        }
    }
    accs
}

/// [`runs_4`] as one `asm!` loop on a DSP core: the compiler's version spills (r6 and r7
/// are not available to it), this one keeps all 11 values in registers. Per 4 weights:
/// one weight word, 2 `SXTB16`, 4 `LDRD`s of the interleaved columns, 8 `SMLAD` and the
/// loop test: 17 instructions for 16 MACs.
#[cfg(fitnets_dsp)]
#[inline(always)]
fn runs_4(runs: &[u32], weights: &[u8], accs: [i32; LANES]) -> [i32; LANES] {
    let blocks = weights.len() / 4;
    // The loop reads 8 words of `runs` and 4 bytes of `weights` per block.
    assert!(runs.len() >= RUN_WORDS * blocks);
    let [mut a0, mut a1, mut a2, mut a3] = accs;
    if blocks == 0 {
        return accs;
    }
    let start = weights.as_ptr();
    // SAFETY: `start + 4 * blocks` is the end of `weights`, one past its last byte.
    let end = unsafe { start.add(4 * blocks) };
    // SAFETY: the loop reads `weights[..4 * blocks]` (LDR, any alignment on a Cortex-M4/M7)
    // and `runs[..8 * blocks]` (LDRD, word-aligned since `runs` is a `u32` slice), both
    // in bounds by the assert above; it writes no memory and no stack, only the
    // registers declared and the flags.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {u}, [{q}], #4",
            "sxtb16 {t}, {u}",
            "sxtb16 {u}, {u}, ror #8",
            "ldrd {x0}, {x1}, [{p}], #8",
            "smlad {a0}, {x0}, {t}, {a0}",
            "smlad {a0}, {x1}, {u}, {a0}",
            "ldrd {x0}, {x1}, [{p}], #8",
            "smlad {a1}, {x0}, {t}, {a1}",
            "smlad {a1}, {x1}, {u}, {a1}",
            "ldrd {x0}, {x1}, [{p}], #8",
            "smlad {a2}, {x0}, {t}, {a2}",
            "smlad {a2}, {x1}, {u}, {a2}",
            "ldrd {x0}, {x1}, [{p}], #8",
            "smlad {a3}, {x0}, {t}, {a3}",
            "smlad {a3}, {x1}, {u}, {a3}",
            "cmp {q}, {end}",
            "bne 2b",
            p = inout(reg) runs.as_ptr() => _,
            q = inout(reg) start => _,
            end = in(reg) end,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            u = out(reg) _,
            t = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}
