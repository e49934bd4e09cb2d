//! Maxout: the maximum over `k` pieces (Goodfellow et al.), the paper's nonlinearity.
//!
//! Channel layout: an input of `G * k` channels holds the `k` pieces of unit `g` in
//! adjacent channels `g * k .. (g + 1) * k` (unit-major). A conv that feeds maxout
//! therefore produces the pieces of one unit one after another, which is what lets
//! [`super::conv2d_maxout`] keep only their maximum. Input and output share one
//! quantization, so the max is taken on the int8 values directly.

use crate::tensor::Shape;

/// `output[y, x, g] = max_p input[y, x, g * pieces + p]`; `output` has
/// `in_shape.channels / pieces` channels.
pub fn maxout(pieces: u16, input: &[i8], in_shape: Shape, output: &mut [i8]) {
    let pieces = usize::from(pieces);
    let cells = usize::from(in_shape.height) * usize::from(in_shape.width);
    let units = usize::from(in_shape.channels) / pieces;
    for cell in 0..cells {
        for g in 0..units {
            let first = (cell * units + g) * pieces;
            let mut best = input[first];
            for p in 1..pieces {
                best = best.max(input[first + p]);
            }
            output[cell * units + g] = best;
        }
    }
}
