//! Conv2d + maxout (+ max pooling) in one pass, with two output channels and two pixels
//! per inner loop and 16-bit packed arithmetic ([`super::packed`]).
//!
//! For each output cell the kernel first copies the input windows it needs into
//! *columns* in the scratch buffer: `x - input_zero_point` as 16-bit values, padding as
//! 0 (which adds nothing, exactly as the reference skips it), in the order of the
//! weights' inner axes `(ky, kx, i)`. Each run of 4 values `v0 v1 v2 v3` is stored as two
//! words `(v0, v2)` and `(v1, v3)`, the lanes that `SXTB16` and `SXTB16 ROR #8` make of 4
//! weight bytes, so one weight word and two column words feed two `SMLAD`s. The last
//! `K % 4` values get one word each (lane 0). Pixels are paired and a pair's columns are
//! interleaved run by run (`x` even, `x` odd, `y` even, `y` odd; then the tails as
//! `x`, `y`), so the inner loop walks both with one pointer and keeps its four
//! accumulators, two pointers into the weights and the loaded words in registers.
//!
//! Then, per pair of conv channels, it accumulates `bias + dot(column, weights)` for the
//! pixels, and:
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
use crate::ops::{Conv2d, Window};
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
    fn window_len(&self) -> usize {
        usize::from(self.conv.window.kernel_h)
            * usize::from(self.conv.window.kernel_w)
            * usize::from(self.input.channels)
    }

    /// Words of one packed column.
    fn column_words(&self) -> usize {
        let k = self.window_len();
        k / 4 * 2 + k % 4
    }

    /// Conv pixels whose columns exist at once: the pool window, or two neighbours.
    fn pixels(&self) -> usize {
        self.pool.map_or(2, |(h, w)| usize::from(h) * usize::from(w))
    }

    /// Scratch words the kernel needs (columns).
    pub fn scratch_words(&self) -> usize {
        self.pixels() * self.column_words()
    }
}

/// Runs `step` from `input` into `output`, using `scratch` (at least
/// [`Fused::scratch_words`] words) for the columns.
pub fn conv_maxout_pool(step: &Fused<'_>, input: &[i8], output: &mut [i8], scratch: &mut [u32]) {
    let words = step.column_words();
    let pixels = step.pixels();
    let scratch = &mut scratch[..pixels * words];
    let out = step.output;
    match step.pool {
        Some((ph, pw)) => {
            let (ph, pw) = (usize::from(ph), usize::from(pw));
            for oy in 0..usize::from(out.height) {
                for ox in 0..usize::from(out.width) {
                    fill_group(step, input, scratch, |p| (oy * ph + p / pw, ox * pw + p % pw));
                    let cell = out.index(oy, ox, 0);
                    channels(step, scratch, words, &mut output[cell..cell + usize::from(out.channels)], None);
                }
            }
        }
        None => {
            let width = usize::from(out.width);
            for oy in 0..usize::from(out.height) {
                let mut ox = 0;
                while ox < width {
                    let pair = width - ox >= 2;
                    let used = if pair { 2 } else { 1 };
                    fill_group(step, input, &mut scratch[..used * words], |p| (oy, ox + p));
                    let units = usize::from(out.channels);
                    let cell = out.index(oy, ox, 0);
                    let (first, rest) = output[cell..].split_at_mut(units);
                    let second = if pair { Some(&mut rest[..units]) } else { None };
                    channels(step, &scratch[..used * words], words, first, second);
                    ox += used;
                }
            }
        }
    }
}

/// Packs the windows of the conv pixels `at(0)`, `at(1)`, … into `scratch` (one column
/// each, `scratch.len() / column_words` pixels): pairs interleaved, an odd last pixel
/// alone.
#[inline(always)]
fn fill_group(step: &Fused<'_>, input: &[i8], scratch: &mut [u32], at: impl Fn(usize) -> (usize, usize)) {
    let words = step.column_words();
    let pixels = scratch.len() / words;
    if !usize::from(step.input.channels).is_multiple_of(4) {
        // The value-by-value path ORs lanes in.
        scratch.fill(0);
    }
    let (pairs, single) = scratch.split_at_mut(pixels / 2 * 2 * words);
    for (i, region) in pairs.chunks_exact_mut(2 * words).enumerate() {
        for slot in 0..2 {
            let (y, x) = at(2 * i + slot);
            fill_column(step, input, y, x, region, slot, 2);
        }
    }
    if !single.is_empty() {
        let (y, x) = at(pixels - 1);
        fill_column(step, input, y, x, single, 0, 1);
    }
}

/// Packs conv pixel `(y, x)`'s window into `column`, which holds `lanes` (1 or 2)
/// pixels' columns interleaved; this one is number `slot`. Not inlined: one copy serves
/// both loops, which keeps the firmware's flash down at the cost of a call per pixel.
#[inline(never)]
fn fill_column(step: &Fused<'_>, input: &[i8], y: usize, x: usize, column: &mut [u32], slot: usize, lanes: usize) {
    let Window { kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, .. } = step.conv.window;
    let shape = step.input;
    let channels = usize::from(shape.channels);
    let zero_point = step.conv.input_zero_point;
    let y0 = (y * usize::from(stride_h)) as isize - pad_top as isize;
    let x0 = (x * usize::from(stride_w)) as isize - pad_left as isize;
    let inside = |y: isize, x: isize| y >= 0 && x >= 0 && y < shape.height as isize && x < shape.width as isize;
    if channels.is_multiple_of(4) {
        // Every cell is a whole number of 4-value runs: two words per input word.
        let zp = splat(zero_point as i16);
        let mut words = column.chunks_exact_mut(2 * lanes);
        for ky in 0..kernel_h as isize {
            for kx in 0..kernel_w as isize {
                let (yy, xx) = (y0 + ky, x0 + kx);
                if inside(yy, xx) {
                    let at = shape.index(yy as usize, xx as usize, 0);
                    for (four, run) in input[at..at + channels].chunks_exact(4).zip(&mut words) {
                        let w = u32::from_le_bytes([four[0] as u8, four[1] as u8, four[2] as u8, four[3] as u8]);
                        run[2 * slot] = ssub16(sxtb16(w), zp);
                        run[2 * slot + 1] = ssub16(sxtb16_ror8(w), zp);
                    }
                } else {
                    for run in (&mut words).take(channels / 4) {
                        run[2 * slot] = 0;
                        run[2 * slot + 1] = 0;
                    }
                }
            }
        }
    } else {
        // Runs of 4 straddle cells (few input channels, as a first layer): value by value,
        // into words the caller zeroed.
        let blocks = step.window_len() / 4;
        let mut k = 0;
        for ky in 0..kernel_h as isize {
            for kx in 0..kernel_w as isize {
                let (yy, xx) = (y0 + ky, x0 + kx);
                let at = inside(yy, xx).then(|| shape.index(yy as usize, xx as usize, 0));
                for i in 0..channels {
                    let v = at.map_or(0, |at| i32::from(input[at + i]) - zero_point);
                    let lane = u32::from(v as i16 as u16);
                    if k / 4 < blocks {
                        // (v0, v2) then (v1, v3): position 0 and 2 in the first word.
                        let word = k / 4 * 2 * lanes + 2 * slot + (k % 2);
                        column[word] |= lane << (16 * ((k % 4) / 2));
                    } else {
                        column[blocks * 2 * lanes + (k - blocks * 4) * lanes + slot] = lane;
                    }
                    k += 1;
                }
            }
        }
    }
}

/// Every conv channel of the pixels whose columns are in `columns` (`words` each):
/// reduced over them by max (pooling, `second` is `None`, all columns are one output
/// cell) or one output cell per column (`first`, and `second` when there are two).
/// Not inlined, like [`fill_column`].
#[inline(never)]
fn channels(step: &Fused<'_>, columns: &[u32], words: usize, first: &mut [i8], mut second: Option<&mut [i8]>) {
    let conv = &step.conv;
    let k = step.window_len();
    let weights = conv.weights.0;
    let conv_channels = usize::from(step.conv_output.channels);
    let pieces = usize::from(step.pieces);
    let pooled = step.pool.is_some();
    let mut best = [i8::MIN; 2];
    let mut unit = 0;
    let mut push = |o: usize, q: [i8; 2], first: &mut [i8], second: &mut Option<&mut [i8]>| {
        best = [best[0].max(q[0]), best[1].max(q[1])];
        if (o + 1).is_multiple_of(pieces) {
            first[unit] = best[0];
            if let Some(second) = second.as_deref_mut() {
                second[unit] = best[1];
            }
            best = [i8::MIN; 2];
            unit += 1;
        }
    };
    let requant = |o: usize, acc: i32| conv.output.finish(conv.requant.apply(o, acc));
    let mut o = 0;
    while o < conv_channels {
        let pair = conv_channels - o >= 2;
        let w0 = &weights[o * k..(o + 1) * k];
        let w1 = if pair { &weights[(o + 1) * k..(o + 2) * k] } else { w0 };
        let bias = [conv.bias.get(o), if pair { conv.bias.get(o + 1) } else { 0 }];
        // acc[pixel][channel] for up to two pixels at a time; `top` is the pooled max.
        let mut top = [i32::MIN; 2];
        let mut accs = [[0i32; 2]; 2];
        let (pairs, single) = columns.split_at(columns.len() / (2 * words) * 2 * words);
        let groups = pairs.chunks_exact(2 * words).map(Some).chain((!single.is_empty()).then_some(None));
        for group in groups {
            accs = match group {
                Some(pair) => dot_2x2(pair, [w0, w1], k, bias),
                None => [dot_1x2(single, [w0, w1], k, bias), [i32::MIN; 2]],
            };
            if pooled {
                top = [top[0].max(accs[0][0]).max(accs[1][0]), top[1].max(accs[0][1]).max(accs[1][1])];
            }
        }
        // Only what exists is requantized: a missing second pixel holds no accumulator.
        let two = second.is_some();
        let q = |c: usize| -> [i8; 2] {
            match (pooled, two) {
                (true, _) => [requant(o + c, top[c]), 0],
                (false, true) => [requant(o + c, accs[0][c]), requant(o + c, accs[1][c])],
                (false, false) => [requant(o + c, accs[0][c]), 0],
            }
        };
        push(o, q(0), first, &mut second);
        if pair {
            push(o + 1, q(1), first, &mut second);
        }
        o += if pair { 2 } else { 1 };
    }
}

/// `bias[c] + dot(column, weights[c])` for two pixels and two channels (the second
/// channel may repeat the first; its result is then ignored). `k` values per window.
/// Zipped iterators, so the loop has no bounds checks and keeps its pointers in
/// registers: per 4 values, 2 weight words, 2 + 2 column words, 4 `SXTB16`, 8 `SMLAD`.
/// Not inlined, so that the caller's live values do not crowd the loop's registers.
#[inline(never)]
fn dot_2x2(pair: &[u32], weights: [&[u8]; 2], k: usize, bias: [i32; 2]) -> [[i32; 2]; 2] {
    let blocks = k / 4;
    let (runs, tails) = pair[..2 * (blocks * 2 + k % 4)].split_at(blocks * 4);
    let (wa, ta) = weights[0][..k].split_at(blocks * 4);
    let (wb, tb) = weights[1][..k].split_at(blocks * 4);
    #[cfg(fitnets_dsp)]
    let ((mut a00, mut a10), (mut a01, mut a11)) =
        (runs_2x1(runs, wa, bias[0], bias[0]), runs_2x1(runs, wb, bias[1], bias[1]));
    #[cfg(not(fitnets_dsp))]
    let [[mut a00, mut a01], [mut a10, mut a11]] = [bias, bias];
    #[cfg(not(fitnets_dsp))]
    for (c, (u, v)) in runs.chunks_exact(4).zip(wa.chunks_exact(4).zip(wb.chunks_exact(4))) {
        let (x0, x1, y0, y1) = (c[0], c[1], c[2], c[3]);
        let u = u32::from_le_bytes([u[0], u[1], u[2], u[3]]);
        let (u02, u13) = (sxtb16(u), sxtb16_ror8(u));
        a00 = smlad(x1, u13, smlad(x0, u02, a00));
        a10 = smlad(y1, u13, smlad(y0, u02, a10));
        let v = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
        let (v02, v13) = (sxtb16(v), sxtb16_ror8(v));
        a01 = smlad(x1, v13, smlad(x0, v02, a01));
        a11 = smlad(y1, v13, smlad(y0, v02, a11));
    }
    for ((xy, &u), &v) in tails.chunks_exact(2).zip(ta).zip(tb) {
        let (x, y) = (i32::from(xy[0] as i16), i32::from(xy[1] as i16));
        let (u, v) = (i32::from(u as i8), i32::from(v as i8));
        a00 += x * u;
        a01 += x * v;
        a10 += y * u;
        a11 += y * v;
    }
    [[a00, a01], [a10, a11]]
}

/// The runs of [`dot_2x2`] for one channel, as one `asm!` loop: the compiler's version
/// of the two-channel loop spills accumulators (r6 and r7 are not available to it), this
/// one keeps all 11 values in registers. Per 4 values of both pixels: one weight word,
/// two `LDRD`s of the interleaved columns, 2 `SXTB16`, 4 `SMLAD`, and the loop test:
/// 11 instructions for 8 MACs. Returns `(acc0, acc1)` for the pair's two pixels.
#[cfg(fitnets_dsp)]
#[inline(always)]
fn runs_2x1(runs: &[u32], weights: &[u8], acc0: i32, acc1: i32) -> (i32, i32) {
    let blocks = weights.len() / 4;
    // The loop reads 4 words of `runs` and 4 bytes of `weights` per block.
    assert!(runs.len() >= 4 * blocks);
    let (mut a0, mut a1) = (acc0, acc1);
    if blocks == 0 {
        return (a0, a1);
    }
    let columns = runs.as_ptr();
    let start = weights.as_ptr();
    // SAFETY: `start + 4 * blocks` is the end of `weights`, one past its last byte.
    let end = unsafe { start.add(4 * blocks) };
    // SAFETY: the loop reads `weights[..4 * blocks]` (LDR, any alignment on a Cortex-M4/M7)
    // and `runs[..4 * blocks]` (LDRD, word-aligned since `runs` is a `u32` slice), both
    // in bounds by the assert above; it writes no memory and no stack, only the
    // registers declared and the flags.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {u}, [{q}], #4",
            "ldrd {x0}, {x1}, [{p}], #8",
            "ldrd {y0}, {y1}, [{p}], #8",
            "sxtb16 {t}, {u}",
            "sxtb16 {u}, {u}, ror #8",
            "smlad {a0}, {x0}, {t}, {a0}",
            "smlad {a1}, {y0}, {t}, {a1}",
            "smlad {a0}, {x1}, {u}, {a0}",
            "smlad {a1}, {y1}, {u}, {a1}",
            "cmp {q}, {end}",
            "bne 2b",
            p = inout(reg) columns => _,
            q = inout(reg) start => _,
            end = in(reg) end,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            u = out(reg) _,
            t = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            y0 = out(reg) _,
            y1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    (a0, a1)
}

/// [`dot_2x2`] for one pixel.
#[inline(never)]
fn dot_1x2(c0: &[u32], weights: [&[u8]; 2], k: usize, bias: [i32; 2]) -> [i32; 2] {
    let blocks = k / 4;
    let (c0, t0) = c0[..blocks * 2 + k % 4].split_at(blocks * 2);
    let (wa, ta) = weights[0][..k].split_at(blocks * 4);
    let (wb, tb) = weights[1][..k].split_at(blocks * 4);
    let [mut a0, mut a1] = bias;
    for (x, (u, v)) in c0.chunks_exact(2).zip(wa.chunks_exact(4).zip(wb.chunks_exact(4))) {
        let u = u32::from_le_bytes([u[0], u[1], u[2], u[3]]);
        let v = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
        a0 = smlad(x[1], sxtb16_ror8(u), smlad(x[0], sxtb16(u), a0));
        a1 = smlad(x[1], sxtb16_ror8(v), smlad(x[0], sxtb16(v), a1));
    }
    for ((&x, &u), &v) in t0.iter().zip(ta).zip(tb) {
        let x = i32::from(x as i16);
        a0 += x * i32::from(u as i8);
        a1 += x * i32::from(v as i8);
    }
    [a0, a1]
}
