//! Fully connected (+ maxout) on a packed 16-bit input, two output channels per inner
//! loop.
//!
//! The input vector is packed once into the scratch as the conv kernel packs a column
//! ([`super::conv`]): `x - input_zero_point` in 16-bit lanes, each run of 4 values as the
//! words `(v0, v2)` and `(v1, v3)`, a last short run padded with zeros. Each weight word
//! then gives two `SMLAD`s after two `SXTB16`s, and the input words, loaded once per run,
//! serve two channels. Requantization uses [`super::scale`], maxout keeps the largest
//! requantized piece, as the reference does. Integer sums are exact in any order.

use super::packed::{smlad, splat, ssub16, sxtb16, sxtb16_ror8};
use super::scale;
use crate::ops::FullyConnected;

/// Scratch words [`fully_connected_maxout`] needs for `in_features` inputs.
pub fn dense_scratch_words(in_features: usize) -> usize {
    in_features.div_ceil(4) * 2
}

/// Fully connected from `input` into `output`, followed by maxout over `pieces` adjacent
/// units (1: none); `scratch` holds at least [`dense_scratch_words`] words.
pub fn fully_connected_maxout(
    fc: &FullyConnected<'_>,
    pieces: u16,
    input: &[i8],
    output: &mut [i8],
    scratch: &mut [u32],
) {
    let k = input.len();
    let packed = &mut scratch[..dense_scratch_words(k)];
    pack(input, fc.input_zero_point, packed);
    let channels = fc.bias.len();
    let pieces = usize::from(pieces);
    let weights = fc.weights.0;
    let mut best = i8::MIN;
    let mut o = 0;
    while o < channels {
        let pair = o + 1 < channels;
        let wa = &weights[o * k..(o + 1) * k];
        let wb = if pair { &weights[(o + 1) * k..(o + 2) * k] } else { wa };
        let accs = dot_1x2(packed, wa, wb, [fc.bias.get(o), if pair { fc.bias.get(o + 1) } else { 0 }]);
        for (c, acc) in (o..channels).zip(accs) {
            let constants = scale::channel(0, fc.requant.multipliers.get(c), fc.requant.shifts.get(c));
            best = best.max(fc.output.finish(scale::requantize(acc, &constants)));
            if (c + 1).is_multiple_of(pieces) {
                output[c / pieces] = best;
                best = i8::MIN;
            }
        }
        o += 2;
    }
}

/// Packs `input - zero_point` into runs of 4 values as `(v0, v2), (v1, v3)`.
fn pack(input: &[i8], zero_point: i32, packed: &mut [u32]) {
    let zp = splat(zero_point as i16);
    let (whole, rest) = input.split_at(input.len() / 4 * 4);
    let (runs, last) = packed.split_at_mut(whole.len() / 2);
    for (four, run) in whole.chunks_exact(4).zip(runs.chunks_exact_mut(2)) {
        let w = u32::from_le_bytes([four[0] as u8, four[1] as u8, four[2] as u8, four[3] as u8]);
        run[0] = ssub16(sxtb16(w), zp);
        run[1] = ssub16(sxtb16_ror8(w), zp);
    }
    if !rest.is_empty() {
        let mut lanes = [0i16; 4];
        for (lane, &v) in lanes.iter_mut().zip(rest) {
            *lane = (i32::from(v) - zero_point) as i16;
        }
        let pair = |a: i16, b: i16| u32::from(a as u16) | u32::from(b as u16) << 16;
        last[0] = pair(lanes[0], lanes[2]);
        last[1] = pair(lanes[1], lanes[3]);
    }
}

/// `bias + dot(input, weights)` for two channels; `weights[1]` may repeat `weights[0]`.
fn dot_1x2(packed: &[u32], wa: &[u8], wb: &[u8], bias: [i32; 2]) -> [i32; 2] {
    let blocks = wa.len() / 4;
    let (runs, last) = packed.split_at(blocks * 2);
    let [mut a0, mut a1] = runs_1x2(runs, &wa[..blocks * 4], &wb[..blocks * 4], bias);
    if !wa.len().is_multiple_of(4) {
        let word = |w: &[u8]| {
            let mut bytes = [0u8; 4];
            bytes[..w.len()].copy_from_slice(w);
            u32::from_le_bytes(bytes)
        };
        let (u, v) = (word(&wa[blocks * 4..]), word(&wb[blocks * 4..]));
        a0 = smlad(last[1], sxtb16_ror8(u), smlad(last[0], sxtb16(u), a0));
        a1 = smlad(last[1], sxtb16_ror8(v), smlad(last[0], sxtb16(v), a1));
    }
    [a0, a1]
}

/// The whole runs of [`dot_1x2`].
#[cfg(not(fitnets_dsp))]
fn runs_1x2(runs: &[u32], wa: &[u8], wb: &[u8], [mut a0, mut a1]: [i32; 2]) -> [i32; 2] {
    for ((x, u), v) in runs.chunks_exact(2).zip(wa.chunks_exact(4)).zip(wb.chunks_exact(4)) {
        let u = u32::from_le_bytes([u[0], u[1], u[2], u[3]]);
        let v = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
        a0 = smlad(x[1], sxtb16_ror8(u), smlad(x[0], sxtb16(u), a0));
        a1 = smlad(x[1], sxtb16_ror8(v), smlad(x[0], sxtb16(v), a1));
    }
    [a0, a1]
}

/// [`runs_1x2`] as one `asm!` loop on a DSP core. Per 4 inputs: one `LDRD` of the packed
/// input, one weight word per channel, 4 `SXTB16`, 4 `SMLAD` and the loop test: 13
/// instructions for 8 MACs.
#[cfg(fitnets_dsp)]
fn runs_1x2(runs: &[u32], wa: &[u8], wb: &[u8], [mut a0, mut a1]: [i32; 2]) -> [i32; 2] {
    let blocks = wa.len() / 4;
    // The loop reads 2 words of `runs` and 4 bytes of each weight row per block.
    assert!(runs.len() >= 2 * blocks && wb.len() >= 4 * blocks);
    if blocks == 0 {
        return [a0, a1];
    }
    let start = wa.as_ptr();
    // SAFETY: `start + 4 * blocks` is the end of `wa[..4 * blocks]`.
    let end = unsafe { start.add(4 * blocks) };
    // SAFETY: the loop reads `wa[..4 * blocks]`, `wb[..4 * blocks]` (LDR, any alignment on
    // a Cortex-M4/M7) and `runs[..2 * blocks]` (LDRD, word-aligned since `runs` is a
    // `u32` slice), in bounds by the assert above; it writes no memory and no stack, only
    // the registers declared and the flags.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldrd {x0}, {x1}, [{p}], #8",
            "ldr {u}, [{qa}], #4",
            "sxtb16 {t}, {u}",
            "sxtb16 {u}, {u}, ror #8",
            "smlad {a0}, {x0}, {t}, {a0}",
            "smlad {a0}, {x1}, {u}, {a0}",
            "ldr {u}, [{qb}], #4",
            "sxtb16 {t}, {u}",
            "sxtb16 {u}, {u}, ror #8",
            "smlad {a1}, {x0}, {t}, {a1}",
            "smlad {a1}, {x1}, {u}, {a1}",
            "cmp {qa}, {end}",
            "bne 2b",
            p = inout(reg) runs.as_ptr() => _,
            qa = inout(reg) start => _,
            qb = inout(reg) wb.as_ptr() => _,
            end = in(reg) end,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            u = out(reg) _,
            t = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    [a0, a1]
}
