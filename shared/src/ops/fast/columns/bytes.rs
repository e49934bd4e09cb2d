//! The 8-bit column layout, for cores without the DSP extension (Cortex-M0+, the host):
//! window value `j` of the chunk's pixel `s` is byte `4 j + s`, holding `x + 128` as
//! an unsigned byte (padding holds `input_zero_point + 128`), so the inner loop loads each
//! value with one `LDRB` at an immediate offset, multiplies it by the weight with one
//! `MULS` and adds. Per channel, `bias - (input_zero_point + 128) * Σ weights` is folded
//! into the table's bias once, so every sum equals the reference's `bias + Σ (x -
//! input_zero_point) w` (padding contributes `0` either way). Partial sums may leave
//! the `i32` range where the reference's do not; they wrap, and the final sum, which the
//! decoder's accumulator bound keeps in range, is exact.
//!
//! A chunk takes one byte per value and pixel, half of the 16-bit layout's two: the
//! arena, sized for that one, holds either.

use super::super::scale::{self, Channel};
use super::{LANES, Layout};
use crate::ops::Window;
use crate::ops::fast::Fused;

/// The 8-bit layout.
#[derive(Clone, Copy, Debug)]
pub struct Bytes;

impl Layout for Bytes {
    // One `MULS` per value: padding a window to whole runs would cost more MACs than the
    // scalar tail it saves.
    const PADS_WEIGHTS: bool = false;

    fn chunk_words(step: &Fused<'_>) -> usize {
        // `LANES` bytes per value.
        step.window_len()
    }

    fn channel(step: &Fused<'_>, o: usize, weights: &[u8]) -> Channel {
        let sum = weights.iter().map(|&w| i32::from(w as i8)).fold(0i32, i32::wrapping_add);
        let offset = step.conv.input_zero_point + 128;
        let bias = step.conv.bias.get(o).wrapping_sub(offset.wrapping_mul(sum));
        let requant = &step.conv.requant;
        scale::channel(bias, requant.multipliers.get(o), requant.shifts.get(o))
    }

    #[inline(always)]
    fn fill_column(step: &Fused<'_>, input: &[i8], y: usize, x: usize, chunk: &mut [u32], slot: usize) {
        fill_column(step, input, y, x, bytemuck::cast_slice_mut(chunk), slot)
    }

    #[inline(always)]
    fn dot_4(chunk: &[u32], weights: &[u8], c: &Channel) -> [i32; LANES] {
        let values: &[u8] = bytemuck::cast_slice(chunk);
        let blocks = weights.len() / 4;
        let mut accs = blocks_4(&values[..blocks * 16], &weights[..blocks * 4], [c[0]; LANES]);
        for (&w, four) in weights[blocks * 4..].iter().zip(values[blocks * 16..].chunks_exact(LANES)) {
            let w = i32::from(w as i8);
            for (acc, &v) in accs.iter_mut().zip(four) {
                *acc = acc.wrapping_add(w * i32::from(v));
            }
        }
        accs
    }
}

/// Packs conv pixel `(y, x)`'s window into slot `slot` of `chunk`. Not inlined: one copy
/// serves both loops of the kernel.
#[inline(never)]
fn fill_column(step: &Fused<'_>, input: &[i8], y: usize, x: usize, chunk: &mut [u8], slot: usize) {
    let Window { kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, .. } = step.conv.window;
    let shape = step.input;
    let channels = usize::from(shape.channels);
    let padding = (step.conv.input_zero_point + 128) as u8;
    let y0 = (y * usize::from(stride_h)) as isize - pad_top as isize;
    let x0 = (x * usize::from(stride_w)) as isize - pad_left as isize;
    let mut cells = chunk.chunks_exact_mut(channels * LANES);
    for ky in 0..kernel_h as isize {
        let yy = y0 + ky;
        for kx in 0..kernel_w as isize {
            let Some(cell) = cells.next() else { return };
            let xx = x0 + kx;
            let cell = cell[slot..].iter_mut().step_by(LANES);
            if yy >= 0 && xx >= 0 && yy < shape.height as isize && xx < shape.width as isize {
                let at = shape.index(yy as usize, xx as usize, 0);
                for (slot, &v) in cell.zip(&input[at..at + channels]) {
                    *slot = v as u8 ^ 0x80;
                }
            } else {
                cell.for_each(|slot| *slot = padding);
            }
        }
    }
}

/// `accs + Σ_j w_j * values[4 j + s]` for each pixel `s`, over the whole blocks of 4
/// weights: 16 values and 4 weights per block, wrapping.
#[cfg(not(all(target_arch = "arm", not(fitnets_dsp))))]
#[inline(always)]
fn blocks_4(values: &[u8], weights: &[u8], mut accs: [i32; LANES]) -> [i32; LANES] {
    for (&w, four) in weights.iter().zip(values.chunks_exact(LANES)) {
        let w = i32::from(w as i8);
        for (acc, &v) in accs.iter_mut().zip(four) {
            *acc = acc.wrapping_add(w * i32::from(v));
        }
    }
    accs
}

/// [`blocks_4`] as one `asm!` loop on ARMv6-M: the four accumulators live in high
/// registers (`r8`, `r10`, `r11`, `r12`), which `ADD` and `MOV` reach but Thumb-1 `asm!`
/// operands cannot name, so they come in and go out through `accs` in memory; the low
/// registers hold the two pointers, the end, the weight and the value. Per block of 4
/// weights: 4 × (`LDRB` + `SXTB` of the weight, then `LDRB`, `MULS`, `ADD` per pixel),
/// 56 instructions for 16 MACs, unrolled by two blocks with 4 instructions of loop.
#[cfg(all(target_arch = "arm", not(fitnets_dsp)))]
#[inline(always)]
fn blocks_4(values: &[u8], weights: &[u8], mut accs: [i32; LANES]) -> [i32; LANES] {
    let blocks = weights.len() / 4;
    // The loop reads 16 bytes of `values` and 4 of `weights` per block.
    assert!(values.len() >= 16 * blocks);
    if blocks == 0 {
        return accs;
    }
    let start = weights.as_ptr();
    // SAFETY: `start + 4 * blocks` is the end of `weights[..4 * blocks]`, in bounds.
    let end = unsafe { start.add(4 * blocks) };
    // SAFETY: the loop reads `weights[..4 * blocks]` and `values[..16 * blocks]` with
    // byte loads, in bounds by the assert above, and reads then writes the four words of
    // `accs` (word-aligned, an `[i32; 4]`); it touches no other memory and no stack,
    // only the registers declared and the flags.
    unsafe {
        core::arch::asm!(
            "ldr {x}, [{a}, #0]", "mov r8, {x}",
            "ldr {x}, [{a}, #4]", "mov r10, {x}",
            "ldr {x}, [{a}, #8]", "mov r11, {x}",
            "ldr {x}, [{a}, #12]", "mov r12, {x}",
            // Two blocks per iteration (offsets up to 31, what `LDRB` reaches); an odd
            // count enters at the second with the pointers one block back.
            "subs {w}, {end}, {q}",
            "lsrs {w}, {w}, #3",
            "bcc 2f",
            "subs {q}, #4",
            "subs {p}, #16",
            "b 3f",
            "2:",
            "ldrb {w}, [{q}, #0]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #0]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #1]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #2]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #3]", "muls {x}, {w}, {x}", "add r12, {x}",
            "ldrb {w}, [{q}, #1]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #4]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #5]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #6]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #7]", "muls {x}, {w}, {x}", "add r12, {x}",
            "ldrb {w}, [{q}, #2]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #8]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #9]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #10]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #11]", "muls {x}, {w}, {x}", "add r12, {x}",
            "ldrb {w}, [{q}, #3]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #12]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #13]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #14]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #15]", "muls {x}, {w}, {x}", "add r12, {x}",
            "3:",
            "ldrb {w}, [{q}, #4]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #16]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #17]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #18]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #19]", "muls {x}, {w}, {x}", "add r12, {x}",
            "ldrb {w}, [{q}, #5]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #20]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #21]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #22]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #23]", "muls {x}, {w}, {x}", "add r12, {x}",
            "ldrb {w}, [{q}, #6]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #24]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #25]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #26]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #27]", "muls {x}, {w}, {x}", "add r12, {x}",
            "ldrb {w}, [{q}, #7]",
            "sxtb {w}, {w}",
            "ldrb {x}, [{p}, #28]", "muls {x}, {w}, {x}", "add r8, {x}",
            "ldrb {x}, [{p}, #29]", "muls {x}, {w}, {x}", "add r10, {x}",
            "ldrb {x}, [{p}, #30]", "muls {x}, {w}, {x}", "add r11, {x}",
            "ldrb {x}, [{p}, #31]", "muls {x}, {w}, {x}", "add r12, {x}",
            "adds {q}, #8",
            "adds {p}, #32",
            "cmp {q}, {end}",
            "bne 2b",
            "mov {x}, r8", "str {x}, [{a}, #0]",
            "mov {x}, r10", "str {x}, [{a}, #4]",
            "mov {x}, r11", "str {x}, [{a}, #8]",
            "mov {x}, r12", "str {x}, [{a}, #12]",
            a = in(reg) accs.as_mut_ptr(),
            p = inout(reg) values.as_ptr() => _,
            q = inout(reg) start => _,
            end = in(reg) end,
            w = out(reg) _,
            x = out(reg) _,
            out("r8") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            options(nostack),
        );
    }
    accs
}
