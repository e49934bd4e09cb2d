//! Reference int8 kernels: plain loops that follow TFLite's reference kernels rule by
//! rule (see each file's header), never optimized. Optimized twins must match them bit
//! for bit.
//!
//! All tensors are NHWC with a batch of one. Every kernel takes the validated
//! parameters of [`crate::ops`] and slices whose lengths match the shapes given
//! (`input.len() == in_shape.len()`, `output.len() == out_shape.len()`); those
//! preconditions are established by [`crate::format::Model`] and [`crate::run()`].

mod argmax;
mod conv;
mod fully_connected;
mod maxout;
mod mean;
mod pool;

pub use argmax::argmax;
pub use conv::{conv2d, conv2d_maxout};
pub use fully_connected::{fully_connected, fully_connected_maxout};
pub use maxout::maxout;
pub use mean::{effective_multiplier, global_avg_pool};
pub use pool::{avg_pool2d, max_pool2d};

use crate::ops::{Layer, Op};

/// Runs one validated layer, unfused, with the reference kernels: `input` holds
/// `layer.input` and `output` receives `layer.output`.
pub fn layer(layer: &Layer<'_>, input: &[i8], output: &mut [i8]) {
    let (in_shape, out_shape) = (layer.input, layer.output);
    match layer.op {
        Op::Conv2d(conv) => conv2d(&conv, input, in_shape, output, out_shape),
        Op::FullyConnected(fc) => fully_connected(&fc, input, output),
        Op::Maxout { pieces } => maxout(pieces, input, in_shape, output),
        Op::MaxPool2d(window) => max_pool2d(&window, input, in_shape, output, out_shape),
        Op::AvgPool2d(window) => avg_pool2d(&window, input, in_shape, output, out_shape),
        Op::GlobalAvgPool(mean) => global_avg_pool(&mean, input, in_shape, output),
        Op::Flatten => output.copy_from_slice(input),
    }
}
