//! Memory planning: the schedule of steps and the exact activation arena it needs.
//!
//! Execution fuses a conv or fully connected layer with a maxout that follows it, so the
//! `pieces` times larger pre-maxout tensor never exists, and a conv (with or without
//! maxout) with a max pooling that follows it when the pooling windows tile the image
//! (stride equal to the kernel, no padding), so the unpooled tensor never exists either.
//! Each step reads its input from one end of the arena and writes its output at the
//! other end; a conv step keeps its packed input columns ([`crate::ops::fast`]) in
//! between. A flatten moves nothing. The input tensor starts at the front. So a step
//! needs `input + scratch + output` bytes and the arena is the largest such sum, which is
//! what [`arena_bytes`] returns: inference with one byte less fails with
//! [`crate::RunError::ArenaTooSmall`], never with a panic.
//!
//! Everything here works on a validated [`Model`] and is plain `core`, so a firmware
//! `build.rs` can size its static arena at build time.

use crate::format::{DecodeError, Layers, Model};
use crate::ops::fast::{self, Fused};
use crate::ops::{Conv2d, FullyConnected, Layer, Op, Window};
use crate::tensor::Shape;

/// What one step executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOp<'a> {
    /// One layer on its own.
    Single(Op<'a>),
    /// A conv whose output goes straight through maxout.
    ConvMaxout(Conv2d<'a>, u16),
    /// A fully connected layer whose output goes straight through maxout.
    FullyConnectedMaxout(FullyConnected<'a>, u16),
    /// A conv, then maxout over `pieces` (1: none), then max pooling whose windows tile
    /// the maxout output (stride equal to the kernel, no padding).
    ConvMaxoutPool(Conv2d<'a>, u16, Window),
}

/// One step of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    pub op: StepOp<'a>,
    pub input: Shape,
    pub output: Shape,
}

impl Step<'_> {
    /// True when the step only reinterprets its input (flatten).
    pub fn is_alias(&self) -> bool {
        matches!(self.op, StepOp::Single(Op::Flatten))
    }

    /// How many of the model's layers this step runs.
    pub fn layers(&self) -> usize {
        match self.op {
            StepOp::Single(_) => 1,
            StepOp::ConvMaxout(..) | StepOp::FullyConnectedMaxout(..) => 2,
            StepOp::ConvMaxoutPool(_, pieces, _) => {
                if pieces > 1 {
                    3
                } else {
                    2
                }
            }
        }
    }

    /// Arena bytes this step needs while it runs.
    pub fn arena_bytes(&self) -> u64 {
        let input = self.input.len() as u64;
        if self.is_alias() { input } else { input + self.scratch_bytes() + self.output.len() as u64 }
    }

    /// The fused conv kernel's view of this step, for the steps it runs: every conv.
    pub fn fused(&self) -> Option<Fused<'_>> {
        let (conv, pieces, pool) = match self.op {
            StepOp::Single(Op::Conv2d(conv)) => (conv, 1, None),
            StepOp::ConvMaxout(conv, pieces) => (conv, pieces, None),
            StepOp::ConvMaxoutPool(conv, pieces, pool) => (conv, pieces, Some((pool.kernel_h, pool.kernel_w))),
            _ => return None,
        };
        let (height, width) = conv.window.output_size(self.input.height, self.input.width)?;
        let conv_output = Shape::new(height, width, conv.bias.len() as u16);
        Some(Fused { conv, pieces, pool, input: self.input, conv_output, output: self.output })
    }

    /// Bytes between input and output: the fast kernels' scratch words (the conv
    /// kernel's channel table and columns, the dense kernel's packed input), plus 3 so
    /// that they can start on a 4-byte boundary wherever the arena starts.
    pub fn scratch_bytes(&self) -> u64 {
        let words = match self.op {
            StepOp::Single(Op::FullyConnected(_)) | StepOp::FullyConnectedMaxout(..) => {
                Some(fast::dense_scratch_words(self.input.len()))
            }
            _ => self.fused().map(|f| f.scratch_words()),
        };
        words.map_or(0, |w| 4 * w as u64 + 3)
    }
}

/// The model's steps in order, with conv/fully connected + maxout fused.
pub fn steps<'a>(model: &Model<'a>) -> Steps<'a> {
    Steps { layers: model.layers(), pending: None, fuse: true }
}

/// The model's layers one per step, nothing fused (for comparison).
pub fn unfused_steps<'a>(model: &Model<'a>) -> Steps<'a> {
    Steps { layers: model.layers(), pending: None, fuse: false }
}

/// Exact arena bytes that [`crate::run()`] needs for `model`.
pub fn arena_bytes(model: &Model<'_>) -> u32 {
    // A validated model's arena was checked to fit in a u32.
    checked_arena_bytes(model).unwrap_or(u32::MAX)
}

/// Arena bytes a layer-by-layer schedule without fusion would need.
///
/// Layer by layer with the reference kernels, which need no scratch: each layer's input
/// and output side by side.
pub fn unfused_arena_bytes(model: &Model<'_>) -> u32 {
    peak(model, unfused_steps(model), tensor_bytes).unwrap_or(u32::MAX)
}

fn checked_arena_bytes(model: &Model<'_>) -> Option<u32> {
    peak(model, steps(model), |step| step.arena_bytes())
}

impl<'a> Model<'a> {
    /// Decodes and validates a blob (see [`crate::format`] for what is checked), and
    /// checks that the arena its plan needs is addressable with `u32` sizes on every
    /// target.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>, DecodeError> {
        let model = Model::from_bytes_unplanned(bytes)?;
        checked_arena_bytes(&model).ok_or(DecodeError::TooLarge)?;
        Ok(model)
    }
}

fn tensor_bytes(step: &Step<'_>) -> u64 {
    let input = step.input.len() as u64;
    if step.is_alias() { input } else { input + step.output.len() as u64 }
}

fn peak(model: &Model<'_>, steps: Steps<'_>, bytes: fn(&Step<'_>) -> u64) -> Option<u32> {
    let mut peak = model.input_shape().checked_len()? as u64;
    for step in steps {
        peak = peak.max(bytes(&step.ok()?));
    }
    u32::try_from(peak).ok()
}

/// Iterator over a model's steps; see [`steps`].
#[derive(Clone, Debug)]
pub struct Steps<'a> {
    layers: Layers<'a>,
    pending: Option<Layer<'a>>,
    fuse: bool,
}

impl<'a> Iterator for Steps<'a> {
    type Item = Result<Step<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let layer = match self.pending.take() {
            Some(layer) => layer,
            None => match self.layers.next()? {
                Ok(layer) => layer,
                Err(e) => return Some(Err(e)),
            },
        };
        let single = Step { op: StepOp::Single(layer.op), input: layer.input, output: layer.output };
        if !self.fuse || !matches!(layer.op, Op::Conv2d(_) | Op::FullyConnected(_)) {
            return Some(Ok(single));
        }
        let next = match self.layers.next() {
            None => return Some(Ok(single)),
            Some(Err(e)) => return Some(Err(e)),
            Some(Ok(next)) => next,
        };
        let (op, output) = match (layer.op, next.op) {
            (Op::Conv2d(conv), Op::Maxout { pieces }) => match self.layers.next() {
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(after)) if tiles(&after) => {
                    let Op::MaxPool2d(pool) = after.op else { unreachable!("tiles() is only true for max pooling") };
                    (StepOp::ConvMaxoutPool(conv, pieces, pool), after.output)
                }
                after => {
                    self.pending = after.and_then(Result::ok);
                    (StepOp::ConvMaxout(conv, pieces), next.output)
                }
            },
            (Op::Conv2d(conv), Op::MaxPool2d(pool)) if tiles(&next) => {
                (StepOp::ConvMaxoutPool(conv, 1, pool), next.output)
            }
            (Op::FullyConnected(fc), Op::Maxout { pieces }) => (StepOp::FullyConnectedMaxout(fc, pieces), next.output),
            _ => {
                self.pending = Some(next);
                return Some(Ok(single));
            }
        };
        Some(Ok(Step { op, input: layer.input, output }))
    }
}

/// True for a max pooling whose windows tile its input: stride equal to the kernel, no
/// padding. Each output cell then owns its window, so the fused kernel computes every
/// conv output once.
fn tiles(layer: &Layer<'_>) -> bool {
    match layer.op {
        Op::MaxPool2d(w) => {
            w.stride_h == w.kernel_h
                && w.stride_w == w.kernel_w
                && w.pad_top == 0
                && w.pad_bottom == 0
                && w.pad_left == 0
                && w.pad_right == 0
        }
        _ => false,
    }
}
