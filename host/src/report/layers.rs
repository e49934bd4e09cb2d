//! The student per layer, as the device runs it: one row per step of `shared`'s plan (a
//! conv or fully connected layer fused with its maxout is one step, since the pre-maxout
//! tensor never exists), with its shapes, parameters, MACs, bytes and arena.

use fitnets_shared::ops::{Conv2d, FullyConnected, Op, Window};
use fitnets_shared::plan::{self, StepOp};
use fitnets_shared::{Model, Shape};

use crate::inspect;

/// One step of the int8 student.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRow {
    /// What runs: `conv 3x3 + maxout 2`, `max pool 2x2/2`, …
    pub op: String,
    pub input: Shape,
    pub output: Shape,
    /// Weights and biases.
    pub params: u64,
    /// Bytes of the step's constants in the blob: `i8` weights, `i32` biases and
    /// multipliers, `i8` shifts.
    pub weight_bytes: u64,
    pub macs: u64,
    /// Bytes of the `i8` output tensor.
    pub activation_bytes: u64,
    /// Arena bytes while the step runs: its input and output side by side (the input
    /// alone for a flatten, which moves nothing).
    pub arena_bytes: u64,
}

/// Every step of `model`, in order.
pub fn steps(model: &Model<'_>) -> anyhow::Result<Vec<StepRow>> {
    let summaries = inspect::layers(model)?;
    let mut layer = 0;
    let mut rows = Vec::new();
    for step in plan::steps(model) {
        let step = step?;
        let covered = &summaries[layer..layer + step.layers()];
        layer += step.layers();
        rows.push(StepRow {
            op: describe(&step.op),
            input: step.input,
            output: step.output,
            params: covered.iter().map(|l| l.params).sum(),
            weight_bytes: weight_bytes(&step.op),
            macs: covered.iter().map(|l| l.macs).sum(),
            activation_bytes: step.output.len() as u64,
            arena_bytes: step.arena_bytes(),
        });
    }
    Ok(rows)
}

/// Index of the step that sets the arena (the first of equals).
pub fn peak(rows: &[StepRow]) -> Option<usize> {
    rows.iter().enumerate().max_by(|a, b| a.1.arena_bytes.cmp(&b.1.arena_bytes).then(b.0.cmp(&a.0))).map(|(i, _)| i)
}

fn conv_bytes(conv: &Conv2d<'_>) -> u64 {
    (conv.weights.len() + 4 * conv.bias.len() + 4 * conv.requant.multipliers.len() + conv.requant.shifts.len()) as u64
}

fn dense_bytes(fc: &FullyConnected<'_>) -> u64 {
    (fc.weights.len() + 4 * fc.bias.len() + 4 * fc.requant.multipliers.len() + fc.requant.shifts.len()) as u64
}

fn weight_bytes(op: &StepOp<'_>) -> u64 {
    match op {
        StepOp::ConvMaxout(conv, _) | StepOp::ConvMaxoutPool(conv, ..) | StepOp::Single(Op::Conv2d(conv)) => {
            conv_bytes(conv)
        }
        StepOp::FullyConnectedMaxout(fc, _) | StepOp::Single(Op::FullyConnected(fc)) => dense_bytes(fc),
        StepOp::Single(_) => 0,
    }
}

fn window(w: &Window) -> String {
    let stride = if (w.stride_h, w.stride_w) == (1, 1) {
        String::new()
    } else if w.stride_h == w.stride_w {
        format!("/{}", w.stride_h)
    } else {
        format!("/{}x{}", w.stride_h, w.stride_w)
    };
    format!("{}x{}{stride}", w.kernel_h, w.kernel_w)
}

fn describe(op: &StepOp<'_>) -> String {
    match op {
        StepOp::ConvMaxout(conv, pieces) => format!("conv {} + maxout {pieces}", window(&conv.window)),
        StepOp::ConvMaxoutPool(conv, 1, pool) => format!("conv {} + max pool {}", window(&conv.window), window(pool)),
        StepOp::ConvMaxoutPool(conv, pieces, pool) => {
            format!("conv {} + maxout {pieces} + max pool {}", window(&conv.window), window(pool))
        }
        StepOp::FullyConnectedMaxout(_, pieces) => format!("dense + maxout {pieces}"),
        StepOp::Single(Op::Conv2d(conv)) => format!("conv {}", window(&conv.window)),
        StepOp::Single(Op::FullyConnected(_)) => "dense".into(),
        StepOp::Single(Op::Maxout { pieces }) => format!("maxout {pieces}"),
        StepOp::Single(Op::MaxPool2d(w)) => format!("max pool {}", window(w)),
        StepOp::Single(Op::AvgPool2d(w)) => format!("avg pool {}", window(w)),
        StepOp::Single(Op::GlobalAvgPool(_)) => "global avg pool".into(),
        StepOp::Single(Op::Flatten) => "flatten".into(),
    }
}

/// `HxWxC`.
pub fn shape(s: Shape) -> String {
    format!("{}x{}x{}", s.height, s.width, s.channels)
}
