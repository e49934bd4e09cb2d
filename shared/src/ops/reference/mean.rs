//! Global average pooling as TFLite converts it: `MEAN` over height and width with its
//! own output quantization (TFLite's integer mean kernel).
//!
//! With `(M, shift)` representing `in_scale / out_scale` and `N = height * width`:
//! `k = min(floor(log2 N), 32, 31 + shift)`, `M' = (M << k) / N` (64-bit, truncating),
//! `shift' = shift - k`; then each channel's `sum(x) - input_zp * N` is requantized
//! with `(M', shift')`, offset by the output zero point and clamped. Accumulator bound:
//! see [`Mean`].

use crate::ops::Mean;
use crate::quant::multiply_by_quantized_multiplier;
use crate::tensor::Shape;

/// The effective multiplier and shift for `cells` values (the `M'`, `shift'` above).
pub fn effective_multiplier(multiplier: i32, shift: i32, cells: u32) -> (i32, i32) {
    let log2 = 31 - cells.max(1).leading_zeros() as i32;
    let k = log2.min(32).min(31 + shift).max(0);
    let scaled = (i64::from(multiplier) << k) / i64::from(cells.max(1));
    (scaled as i32, shift - k)
}

/// `output[c]` = requantized mean of channel `c` over the whole `in_shape` image.
pub fn global_avg_pool(mean: &Mean, input: &[i8], in_shape: Shape, output: &mut [i8]) {
    let cells = usize::from(in_shape.height) * usize::from(in_shape.width);
    let channels = usize::from(in_shape.channels);
    let (multiplier, shift) = effective_multiplier(mean.multiplier, mean.shift, cells as u32);
    for (c, out) in output.iter_mut().enumerate().take(channels) {
        let mut sum = 0i32;
        for cell in 0..cells {
            sum += i32::from(input[cell * channels + c]);
        }
        let acc = sum - mean.input_zero_point * cells as i32;
        *out = mean.output.finish(multiply_by_quantized_multiplier(acc, multiplier, shift));
    }
}
