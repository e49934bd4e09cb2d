//! Memory planning: the schedule of steps and the exact activation arena it needs.
//!
//! Execution fuses a conv or fully connected layer with a maxout that follows it, so the
//! `pieces` times larger pre-maxout tensor never exists. Each step reads its input from
//! one end of the arena and writes its output at the other end; a flatten moves nothing.
//! The input tensor starts at the front. So a step needs `input + output` bytes and the
//! arena is the largest such sum, which is what [`arena_bytes`] returns: inference with
//! one byte less fails with [`crate::RunError::ArenaTooSmall`], never with a panic.
//!
//! Everything here works on a validated [`Model`] and is plain `core`, so a firmware
//! `build.rs` can size its static arena at build time.

use crate::format::{DecodeError, Layers, Model};
use crate::ops::{Conv2d, FullyConnected, Layer, Op};
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

    /// Arena bytes this step needs while it runs.
    pub fn arena_bytes(&self) -> u64 {
        let input = self.input.len() as u64;
        if self.is_alias() { input } else { input + self.output.len() as u64 }
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
pub fn unfused_arena_bytes(model: &Model<'_>) -> u32 {
    peak(model, unfused_steps(model)).unwrap_or(u32::MAX)
}

pub(crate) fn checked_arena_bytes(model: &Model<'_>) -> Option<u32> {
    peak(model, steps(model))
}

fn peak(model: &Model<'_>, steps: Steps<'_>) -> Option<u32> {
    let mut peak = model.input_shape().checked_len()? as u64;
    for step in steps {
        peak = peak.max(step.ok()?.arena_bytes());
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
        let op = match (layer.op, next.op) {
            (Op::Conv2d(conv), Op::Maxout { pieces }) => StepOp::ConvMaxout(conv, pieces),
            (Op::FullyConnected(fc), Op::Maxout { pieces }) => StepOp::FullyConnectedMaxout(fc, pieces),
            _ => {
                self.pending = Some(next);
                return Some(Ok(single));
            }
        };
        Some(Ok(Step { op, input: layer.input, output: next.output }))
    }
}
