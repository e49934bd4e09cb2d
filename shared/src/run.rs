//! Inference: runs a validated model on raw pixels in a caller-provided arena.

use core::fmt;

use crate::format::{DecodeError, Model};
use crate::ops::fast::{self, Columns};
use crate::ops::reference as kernels;
use crate::ops::{Layer, Op};
use crate::plan::{self, Step, StepOp};

/// The result of one inference, borrowing the logits from the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prediction<'a> {
    /// The first class with the largest logit.
    pub class: u16,
    /// Quantized logits (see [`Model::output_quant`]).
    pub logits: &'a [i8],
}

/// Why an inference did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RunError {
    /// `pixels` does not have `height * width * channels` bytes.
    InputLength { expected: u32, found: u32 },
    /// The arena is smaller than [`plan::arena_bytes`].
    ArenaTooSmall { needed: u32, found: u32 },
    /// The model failed validation (never for a model from [`Model::from_bytes`]).
    Model(DecodeError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::InputLength { expected, found } => {
                write!(f, "input has {found} bytes, the model takes {expected}")
            }
            RunError::ArenaTooSmall { needed, found } => {
                write!(f, "arena has {found} bytes, the model needs {needed}")
            }
            RunError::Model(e) => write!(f, "invalid model: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RunError {}

/// Classifies one image of raw pixels (`height * width * channels` bytes, NHWC).
///
/// Uses the first [`plan::arena_bytes`] bytes of `arena` and nothing else: no heap, no
/// static state. The same model, pixels and code give the same logits on every target.
pub fn run<'a>(model: &Model<'_>, pixels: &[u8], arena: &'a mut [u8]) -> Result<Prediction<'a>, RunError> {
    run_traced(model, pixels, arena, |_, _| {})
}

/// A part of one inference, for [`run_traced`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Raw pixels to `i8` through the model's pixel table.
    Input,
    /// Step `n` of [`plan::steps`] (a flatten, which moves nothing, is not reported).
    Step(usize),
    /// The class: the first largest logit.
    Argmax,
}

/// [`run()`], calling `mark(stage, true)` just before and `mark(stage, false)` just after
/// each stage: a benchmark puts its instruction counter's markers there. With a `mark`
/// that does nothing it is `run` itself.
pub fn run_traced<'a>(
    model: &Model<'_>,
    pixels: &[u8],
    arena: &'a mut [u8],
    mark: impl FnMut(Stage, bool),
) -> Result<Prediction<'a>, RunError> {
    run_in(model, pixels, arena, Columns::NATIVE, mark)
}

/// [`run()`] with the conv kernel's column layout `columns` instead of the target's
/// own: the same logits bit for bit, which the tests check by running both on the host
/// (where `std` is on; elsewhere the target's own layout runs whatever is asked).
pub fn run_with_columns<'a>(
    model: &Model<'_>,
    pixels: &[u8],
    arena: &'a mut [u8],
    columns: Columns,
) -> Result<Prediction<'a>, RunError> {
    run_in(model, pixels, arena, columns, |_, _| {})
}

fn run_in<'a>(
    model: &Model<'_>,
    pixels: &[u8],
    arena: &'a mut [u8],
    columns: Columns,
    mut mark: impl FnMut(Stage, bool),
) -> Result<Prediction<'a>, RunError> {
    let needed = plan::arena_bytes(model);
    let found = u32::try_from(arena.len()).unwrap_or(u32::MAX);
    if found < needed {
        return Err(RunError::ArenaTooSmall { needed, found });
    }
    let input_len = model.input_shape().len();
    if pixels.len() != input_len {
        let found = u32::try_from(pixels.len()).unwrap_or(u32::MAX);
        return Err(RunError::InputLength { expected: input_len as u32, found });
    }
    let arena: &mut [i8] = bytemuck::cast_slice_mut(&mut arena[..needed as usize]);
    let total = arena.len();

    mark(Stage::Input, true);
    let table = model.pixel_table();
    let channels = usize::from(model.input_shape().channels);
    for (i, (q, &pixel)) in arena.iter_mut().zip(pixels).enumerate() {
        *q = table.get((i % channels) * 256 + usize::from(pixel));
    }
    mark(Stage::Input, false);

    // The current tensor is `len` bytes at the front (or the back) of the arena.
    let (mut at_front, mut len) = (true, input_len);
    for (n, step) in plan::steps(model).enumerate() {
        let step = step.map_err(RunError::Model)?;
        if step.is_alias() {
            continue;
        }
        let out_len = step.output.len();
        // Input at one end, output at the other, the step's scratch in between.
        let (input, scratch, output) = if at_front {
            let (lo, hi) = arena.split_at_mut(len);
            let (mid, out) = hi.split_at_mut(hi.len() - out_len);
            (&*lo, mid, out)
        } else {
            let (lo, hi) = arena.split_at_mut(total - len);
            let (out, mid) = lo.split_at_mut(out_len);
            (&*hi, mid, out)
        };
        mark(Stage::Step(n), true);
        execute(&step, input, output, bytemuck::pod_align_to_mut::<i8, u32>(scratch).1, columns);
        mark(Stage::Step(n), false);
        at_front = !at_front;
        len = out_len;
    }
    let logits: &[i8] = if at_front { &arena[..len] } else { &arena[total - len..] };
    mark(Stage::Argmax, true);
    let class = kernels::argmax(logits) as u16;
    mark(Stage::Argmax, false);
    Ok(Prediction { class, logits })
}

/// Runs one step: every conv with the fused kernel of [`fast`], the rest with the
/// reference kernels. `scratch` holds at least the step's scratch words
/// ([`Step::scratch_bytes`] less the alignment slack).
pub(crate) fn execute(step: &Step<'_>, input: &[i8], output: &mut [i8], scratch: &mut [u32], columns: Columns) {
    if let Some(fused) = step.fused() {
        return fast::conv_maxout_pool(&fused, input, output, scratch, columns);
    }
    let (in_shape, out_shape) = (step.input, step.output);
    match step.op {
        StepOp::Single(Op::FullyConnected(fc)) => fast::fully_connected_maxout(&fc, 1, input, output, scratch),
        StepOp::FullyConnectedMaxout(fc, pieces) => fast::fully_connected_maxout(&fc, pieces, input, output, scratch),
        StepOp::Single(op) => kernels::layer(&Layer { op, input: in_shape, output: out_shape }, input, output),
        StepOp::ConvMaxout(..) | StepOp::ConvMaxoutPool(..) => unreachable!("every conv step has a fused view"),
    }
}
