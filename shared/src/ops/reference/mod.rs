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
