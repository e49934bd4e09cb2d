//! The 16-bit column layout, for cores with the DSP extension: each run of 4 window
//! values `v0 v1 v2 v3` of a pixel is two words, `(v0, v2)` and `(v1, v3)` as 16-bit
//! lanes of `x - input_zero_point` (padding 0), the lanes that `SXTB16` and
//! `SXTB16 ROR #8` make of 4 weight bytes, so one weight word feeds two `SMLAD`s per
//! pixel. A chunk interleaves its four pixels run by run (pixel 0's two words, pixel 1's,
//! pixel 2's, pixel 3's; then the next run), so the inner loop walks all four with one
//! pointer, unpacks each weight word once for four pixels and keeps its four accumulators
//! in registers. A window whose length is not a multiple of 4 ends with a run padded with
//! zeros, whose weights the channel table holds unpacked.

use super::super::packed::splat;
// The plain twins of the `asm!` loops.
#[cfg(not(fitnets_dsp))]
use super::super::packed::{smlad, ssub16, sxtb16, sxtb16_ror8};
use super::super::scale::{self, Channel};
#[cfg(fitnets_dsp)]
use super::Channels;
use super::{LANES, Layout};
use crate::ops::Window;
use crate::ops::fast::Fused;

/// Words of one run of 4 values for a whole chunk: two per pixel.
const RUN_WORDS: usize = 2 * LANES;

/// The 16-bit layout.
#[derive(Clone, Copy, Debug)]
pub struct Packed;

impl Layout for Packed {
    // The `asm!` loop takes whole runs; a padded copy spares each call a tail.
    const PADS_WEIGHTS: bool = true;

    fn chunk_words(step: &Fused<'_>) -> usize {
        step.window_len().div_ceil(4) * RUN_WORDS
    }

    fn channel(step: &Fused<'_>, o: usize, _: &[u8]) -> Channel {
        let (bias, requant) = (step.conv.bias.get(o), &step.conv.requant);
        scale::channel(bias, requant.multipliers.get(o), requant.shifts.get(o))
    }

    #[inline(always)]
    fn fill_column(step: &Fused<'_>, input: &[i8], y: usize, x: usize, chunk: &mut [u32], slot: usize) {
        fill_column(step, input, y, x, chunk, slot)
    }

    /// Per 4 weights, one weight word unpacked into two and 8 `SMLAD`s, two per pixel
    /// ([`runs_4`]). `weights` is whole runs ([`Layout::PADS_WEIGHTS`]): the lanes of the
    /// window's padded last run meet zero weights.
    #[inline(always)]
    fn dot_4(chunk: &[u32], weights: &[u8], c: &Channel) -> [i32; LANES] {
        debug_assert!(weights.len().is_multiple_of(4), "the 16-bit layout takes padded weights");
        runs_4(chunk, weights, c[0])
    }

    /// [`runs_max`]: the largest of [`Packed::dot_4`]'s sums, inside the same `asm!` on a
    /// DSP core, so the four sums never leave their registers.
    #[inline(always)]
    fn dot_max(chunk: &[u32], weights: &[u8], c: &Channel) -> i32 {
        debug_assert!(weights.len().is_multiple_of(4), "the 16-bit layout takes padded weights");
        runs_max(chunk, weights, c[0])
    }

    /// On a DSP core, [`cell::pooled_cell`]: the whole cell in one `asm!`.
    #[cfg(fitnets_dsp)]
    #[inline(always)]
    fn pooled_cell(chunk: &[u32], channels: Channels<'_>, out: &mut [i8]) -> bool {
        cell::pooled_cell(chunk, channels, out);
        true
    }

    /// On a DSP core, [`cell::pixel_chunk`]: the whole chunk in one `asm!`.
    #[cfg(fitnets_dsp)]
    #[inline(always)]
    fn pixel_chunk(chunk: &[u32], channels: Channels<'_>, units: usize, cells: usize, out: &mut [i8]) -> bool {
        cell::pixel_chunk(chunk, channels, units, cells, out);
        true
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
    if channels.is_multiple_of(4) {
        // Every cell is a whole number of runs, and the cells of one kernel row follow
        // each other in the chunk as their pixels do in the input (NHWC): a row that lies
        // inside the image is one unpacking, two words per input word.
        let zp = splat(zero_point as i16);
        let lane = 2 * slot.min(LANES - 1);
        let cell_words = channels / 4 * RUN_WORDS;
        let row_words = usize::from(kernel_w) * cell_words;
        let (height, width) = (shape.height as isize, shape.width as isize);
        for (ky, row) in chunk.chunks_exact_mut(row_words).take(usize::from(kernel_h)).enumerate() {
            let yy = y0 + ky as isize;
            let row_inside = yy >= 0 && yy < height;
            if row_inside && x0 >= 0 && x0 + kernel_w as isize <= width {
                let at = shape.index(yy as usize, x0 as usize, 0);
                unpack_runs(&input[at..at + usize::from(kernel_w) * channels], &mut row[lane..], zp);
                continue;
            }
            for (kx, cell) in row.chunks_exact_mut(cell_words).enumerate() {
                let xx = x0 + kx as isize;
                if row_inside && xx >= 0 && xx < width {
                    let at = shape.index(yy as usize, xx as usize, 0);
                    unpack_runs(&input[at..at + channels], &mut cell[lane..], zp);
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
        // each into its 16-bit lane. Value `k` goes to run `k / 4`, word `k % 2` of the
        // slot's two, half `k % 4 / 2` (little-endian: the low half is lane 0), so within
        // a run the slot's halfwords are taken in the order 0, 2, 1, 3; kept as a running
        // position, without dividing or multiplying per value.
        const ORDER: [usize; 4] = [0, 2, 1, 3];
        let lanes: &mut [u16] = bytemuck::cast_slice_mut(chunk);
        let (mut run, mut phase) = (4 * slot, 0);
        let mut put = |value: i32| {
            lanes[run + ORDER[phase]] = value as u16;
            phase += 1;
            if phase == 4 {
                (run, phase) = (run + 2 * RUN_WORDS, 0);
            }
        };
        let (height, width) = (shape.height as isize, shape.width as isize);
        for ky in 0..kernel_h as isize {
            let yy = y0 + ky;
            let row_inside = yy >= 0 && yy < height;
            if channels == 1 && row_inside && x0 >= 0 && x0 + kernel_w as isize <= width {
                // One value per cell (a grayscale input), the whole row inside the image.
                let at = shape.index(yy as usize, x0 as usize, 0);
                for &v in &input[at..at + usize::from(kernel_w)] {
                    put(i32::from(v) - zero_point);
                }
                continue;
            }
            for kx in 0..kernel_w as isize {
                let xx = x0 + kx;
                if row_inside && xx >= 0 && xx < width {
                    let at = shape.index(yy as usize, xx as usize, 0);
                    for &v in &input[at..at + channels] {
                        put(i32::from(v) - zero_point);
                    }
                } else {
                    for _ in 0..channels {
                        put(0);
                    }
                }
            }
        }
    }
}

/// Unpacks `values` (a multiple of 4) run by run into `runs`, less the zero point `zp`
/// in both lanes: for each run of 4, the words `(v0, v2)` and `(v1, v3)` at `runs[0]` and
/// `runs[1]`, then `RUN_WORDS` further.
#[cfg(not(fitnets_dsp))]
#[inline(always)]
fn unpack_runs(values: &[i8], runs: &mut [u32], zp: u32) {
    for (four, run) in values.chunks_exact(4).zip(runs.chunks_mut(RUN_WORDS)) {
        let w = u32::from_le_bytes([four[0] as u8, four[1] as u8, four[2] as u8, four[3] as u8]);
        run[0] = ssub16(sxtb16(w), zp);
        run[1] = ssub16(sxtb16_ror8(w), zp);
    }
}

// The loop below steps `RUN_WORDS` words as 32 bytes.
#[cfg(fitnets_dsp)]
const _: () = assert!(RUN_WORDS * 4 == 32);

/// [`unpack_runs`] as one `asm!` loop: per run, one `LDR` (any alignment on a
/// Cortex-M4/M7), two `SXTB16`, two `SSUB16` and one `STRD`, then the loop test.
#[cfg(fitnets_dsp)]
#[inline(always)]
fn unpack_runs(values: &[i8], runs: &mut [u32], zp: u32) {
    let n = values.len() / 4;
    if n == 0 {
        return;
    }
    // The loop writes words `8 i` and `8 i + 1` of `runs` for each run `i < n`.
    assert!(runs.len() >= RUN_WORDS * (n - 1) + 2);
    let start = values.as_ptr();
    // SAFETY: `start + 4 * n` is the end of `values[..4 * n]`, in bounds.
    let end = unsafe { start.add(4 * n) };
    // SAFETY: the loop reads `values[..4 * n]` (word loads, any alignment on a DSP core)
    // and writes `runs[8 i]` and `runs[8 i + 1]` for `i < n` (doubleword stores,
    // word-aligned as `runs` is a `u32` slice), all in bounds by the assert above; it
    // touches no stack, only the registers declared and the flags.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {w}, [{s}], #4",
            "sxtb16 {a}, {w}",
            "sxtb16 {b}, {w}, ror #8",
            "ssub16 {a}, {a}, {zp}",
            "ssub16 {b}, {b}, {zp}",
            "strd {a}, {b}, [{d}], #32",
            "cmp {s}, {end}",
            "bne 2b",
            s = inout(reg) start => _,
            d = inout(reg) runs.as_mut_ptr() => _,
            end = in(reg) end,
            zp = in(reg) zp,
            w = out(reg) _,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack),
        );
    }
}

/// The whole runs of [`Packed::dot_4`], from `init` in every accumulator: per 4 weights
/// (the whole blocks of `weights`), one weight word unpacked into two and 8 `SMLAD`s, two
/// per pixel, over the runs at the start of `runs`.
#[cfg(not(fitnets_dsp))]
#[inline(always)]
fn runs_4(runs: &[u32], weights: &[u8], init: i32) -> [i32; LANES] {
    let mut accs = [init; LANES];
    for (run, w) in runs.chunks_exact(RUN_WORDS).zip(weights.chunks_exact(4)) {
        let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let (w02, w13) = (sxtb16(w), sxtb16_ror8(w));
        for (acc, pixel) in accs.iter_mut().zip(run.chunks_exact(2)) {
            *acc = smlad(pixel[1], w13, smlad(pixel[0], w02, *acc));
        }
    }
    accs
}

/// The largest of [`runs_4`]'s sums.
#[cfg(not(fitnets_dsp))]
#[inline(always)]
fn runs_max(runs: &[u32], weights: &[u8], init: i32) -> i32 {
    let [a, b, c, d] = runs_4(runs, weights, init);
    a.max(b).max(c.max(d))
}

/// The `asm!` loop of [`runs_4`] and [`runs_max`] on a DSP core: the compiler's version
/// spills (r6 and r7 are not available to it), this one keeps all 11 values in
/// registers. Unrolled by two blocks, the loop test once per 32 MACs. Per 4 weights: one
/// weight word, 2 `SXTB16`, 4 `LDRD`s of the interleaved columns and 8 `SMLAD`s, 15
/// instructions for 16 MACs, and the loop test (2) once per two blocks. Every
/// accumulator starts from the bias in `a0`; no block: done. Two blocks per iteration;
/// an odd count enters at the second.
#[cfg(fitnets_dsp)]
macro_rules! runs_loop {
    () => {
        concat!(
            "mov {a1}, {a0}\n",
            "mov {a2}, {a0}\n",
            "mov {a3}, {a0}\n",
            "subs {u}, {end}, {q}\n",
            "beq 4f\n",
            "tst {u}, #4\n",
            "bne 3f\n",
            "2:\n",
            "ldr {u}, [{q}], #4\n",
            "sxtb16 {t}, {u}\n",
            "sxtb16 {u}, {u}, ror #8\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a0}, {x0}, {t}, {a0}\n",
            "smlad {a0}, {x1}, {u}, {a0}\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a1}, {x0}, {t}, {a1}\n",
            "smlad {a1}, {x1}, {u}, {a1}\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a2}, {x0}, {t}, {a2}\n",
            "smlad {a2}, {x1}, {u}, {a2}\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a3}, {x0}, {t}, {a3}\n",
            "smlad {a3}, {x1}, {u}, {a3}\n",
            "3:\n",
            "ldr {u}, [{q}], #4\n",
            "sxtb16 {t}, {u}\n",
            "sxtb16 {u}, {u}, ror #8\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a0}, {x0}, {t}, {a0}\n",
            "smlad {a0}, {x1}, {u}, {a0}\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a1}, {x0}, {t}, {a1}\n",
            "smlad {a1}, {x1}, {u}, {a1}\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a2}, {x0}, {t}, {a2}\n",
            "smlad {a2}, {x1}, {u}, {a2}\n",
            "ldrd {x0}, {x1}, [{p}], #8\n",
            "smlad {a3}, {x0}, {t}, {a3}\n",
            "smlad {a3}, {x1}, {u}, {a3}\n",
            "cmp {q}, {end}\n",
            "bne 2b\n",
            "4:\n",
        )
    };
}

#[cfg(fitnets_dsp)]
mod cell;

/// The operands of [`runs_loop`], from `runs`, `weights` (whole blocks) and `init`,
/// after the checks that make the loop's reads safe. Gives `(p, q, end)`.
#[cfg(fitnets_dsp)]
#[inline(always)]
fn runs_operands(runs: &[u32], weights: &[u8]) -> (*const u32, *const u8, *const u8) {
    let blocks = weights.len() / 4;
    // The loop reads 8 words of `runs` and 4 bytes of `weights` per block.
    assert!(runs.len() >= RUN_WORDS * blocks);
    let start = weights.as_ptr();
    // SAFETY: `start + 4 * blocks` is within `weights` or one past its last byte.
    let end = unsafe { start.add(4 * blocks) };
    (runs.as_ptr(), start, end)
}

/// [`runs_loop`]'s four sums.
#[cfg(fitnets_dsp)]
#[inline(always)]
fn runs_4(runs: &[u32], weights: &[u8], init: i32) -> [i32; LANES] {
    let (p, q, end) = runs_operands(runs, weights);
    let (a0, a1, a2, a3);
    // SAFETY: the loop reads `weights[..4 * blocks]` (LDR, any alignment on a Cortex-M4/M7)
    // and `runs[..8 * blocks]` (LDRD, word-aligned since `runs` is a `u32` slice), both
    // in bounds by `runs_operands`' assert; it writes no memory and no stack, only the
    // registers declared and the flags.
    unsafe {
        core::arch::asm!(
            runs_loop!(),
            p = inout(reg) p => _,
            q = inout(reg) q => _,
            end = in(reg) end,
            a0 = inout(reg) init => a0,
            a1 = out(reg) a1,
            a2 = out(reg) a2,
            a3 = out(reg) a3,
            u = out(reg) _,
            t = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// The largest of [`runs_loop`]'s four sums, taken in the same `asm!`.
#[cfg(fitnets_dsp)]
#[inline(always)]
fn runs_max(runs: &[u32], weights: &[u8], init: i32) -> i32 {
    let (p, q, end) = runs_operands(runs, weights);
    let top;
    // SAFETY: as in `runs_4`.
    unsafe {
        core::arch::asm!(
            runs_loop!(),
            "cmp {a0}, {a1}",
            "it lt",
            "movlt {a0}, {a1}",
            "cmp {a2}, {a3}",
            "it lt",
            "movlt {a2}, {a3}",
            "cmp {a0}, {a2}",
            "it lt",
            "movlt {a0}, {a2}",
            p = inout(reg) p => _,
            q = inout(reg) q => _,
            end = in(reg) end,
            a0 = inout(reg) init => top,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            u = out(reg) _,
            t = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    top
}
