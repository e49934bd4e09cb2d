//! Fully connected, TFLite `reference_integer_ops::FullyConnectedPerChannel`.
//!
//! `acc = bias[o] + sum_i (x[i] - input_zp) * w[o][i]`, then the conv's requantization
//! and clamp. Accumulator bound: see [`FullyConnected`].

use crate::ops::FullyConnected;

#[inline(always)]
fn output_at(fc: &FullyConnected<'_>, input: &[i8], o: usize) -> i8 {
    let n = input.len();
    let mut acc = fc.bias.get(o);
    for (i, &x) in input.iter().enumerate() {
        acc += (i32::from(x) - fc.input_zero_point) * i32::from(fc.weights.get(o * n + i));
    }
    fc.output.finish(fc.requant.apply(o, acc))
}

/// `output[o]` for every output unit; `input` is the flattened input vector.
pub fn fully_connected(fc: &FullyConnected<'_>, input: &[i8], output: &mut [i8]) {
    for (o, out) in output.iter_mut().enumerate() {
        *out = output_at(fc, input, o);
    }
}

/// Fully connected followed by maxout over `pieces` adjacent units, fused.
pub fn fully_connected_maxout(fc: &FullyConnected<'_>, pieces: u16, input: &[i8], output: &mut [i8]) {
    let pieces = usize::from(pieces);
    for (g, out) in output.iter_mut().enumerate() {
        *out = (0..pieces).map(|p| output_at(fc, input, g * pieces + p)).max().unwrap_or(i8::MIN);
    }
}
