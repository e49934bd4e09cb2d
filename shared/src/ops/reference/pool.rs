//! Max and average pooling, TFLite `reference_integer_ops::MaxPool` / `AveragePool`.
//!
//! Both look only at the cells of a window that lie inside the image: padding cells
//! are skipped, never taken as the zero point. Input and output share one
//! quantization. Average pooling sums the raw int8 values (`|sum| <= 128 * area`,
//! checked on decode to fit an `i32`) and divides by the number `n` of in-image cells,
//! rounding half away from zero: `sum > 0 ? (sum + n/2) / n : (sum - n/2) / n` with
//! truncating division.

use crate::ops::Window;
use crate::tensor::Shape;

/// Visits the in-image cells of output cell `(oy, ox)`'s window.
#[inline(always)]
fn for_each_cell(window: &Window, in_shape: Shape, oy: usize, ox: usize, mut visit: impl FnMut(usize)) {
    let y0 = (oy * usize::from(window.stride_h)) as isize - (window.pad_top as isize);
    let x0 = (ox * usize::from(window.stride_w)) as isize - (window.pad_left as isize);
    let y_lo = y0.max(0) as usize;
    let x_lo = x0.max(0) as usize;
    let y_hi = (y0 + (window.kernel_h as isize)).min(in_shape.height as isize) as usize;
    let x_hi = (x0 + (window.kernel_w as isize)).min(in_shape.width as isize) as usize;
    for y in y_lo..y_hi {
        for x in x_lo..x_hi {
            visit(in_shape.index(y, x, 0));
        }
    }
}

pub fn max_pool2d(window: &Window, input: &[i8], in_shape: Shape, output: &mut [i8], out_shape: Shape) {
    let channels = usize::from(in_shape.channels);
    for oy in 0..usize::from(out_shape.height) {
        for ox in 0..usize::from(out_shape.width) {
            for c in 0..channels {
                let mut best = i8::MIN;
                for_each_cell(window, in_shape, oy, ox, |base| best = best.max(input[base + c]));
                output[out_shape.index(oy, ox, c)] = best;
            }
        }
    }
}

pub fn avg_pool2d(window: &Window, input: &[i8], in_shape: Shape, output: &mut [i8], out_shape: Shape) {
    let channels = usize::from(in_shape.channels);
    for oy in 0..usize::from(out_shape.height) {
        for ox in 0..usize::from(out_shape.width) {
            for c in 0..channels {
                let (mut sum, mut n) = (0i32, 0i32);
                for_each_cell(window, in_shape, oy, ox, |base| {
                    sum += i32::from(input[base + c]);
                    n += 1;
                });
                // n >= 1: a sane window always overlaps the image.
                let avg = if sum > 0 { (sum + n / 2) / n } else { (sum - n / 2) / n };
                output[out_shape.index(oy, ox, c)] = avg.clamp(-128, 127) as i8;
            }
        }
    }
}
