//! Fuzzes `Model::from_bytes`: it must never panic, and a model it accepts must run:
//! inference in an arena of exactly `plan::arena_bytes` bytes succeeds (class in range,
//! one logit per class) and one byte less gives `RunError::ArenaTooSmall`.
//!
//! Each input is tried as is and again with its trailing CRC-32 recomputed, so that
//! mutations get past the checksum and reach the header and layer validation.
#![no_main]

use fitnets_shared::format::{CRC_LEN, CRC32, MAX_LABEL_LEN, PREFIX_LEN};
use fitnets_shared::ops::Op;
use fitnets_shared::plan::{self, StepOp};
use fitnets_shared::{Model, RunError};
use libfuzzer_sys::fuzz_target;

/// Models whose arena is larger than this are validated but not run (a valid model may
/// ask for up to 4 GiB; allocating that would only measure the allocator).
const MAX_ARENA: usize = 1 << 20;
/// Likewise for models whose inference would take more than about this many
/// multiply-adds or comparisons, so that one input cannot stall the fuzzer.
const MAX_WORK: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= PREFIX_LEN + CRC_LEN {
        let mut blob = data.to_vec();
        let covered = blob.len() - CRC_LEN;
        let crc = CRC32.checksum(&blob[..covered]);
        blob[covered..].copy_from_slice(&crc.to_le_bytes());
        check(&blob);
    }
});

fn check(blob: &[u8]) {
    let Ok(model) = Model::from_bytes(blob) else { return };

    let classes = usize::from(model.classes());
    let mut labels = 0;
    for label in model.labels() {
        assert!(label.len() <= MAX_LABEL_LEN, "label of {} bytes", label.len());
        labels += 1;
    }
    assert_eq!(labels, classes, "one label per class");
    let mut layers = 0;
    for layer in model.layers() {
        if let Err(e) = layer {
            panic!("layer {layers} of a decoded model fails: {e:?}");
        }
        layers += 1;
    }
    assert_eq!(layers, usize::from(model.layer_count()));

    let needed = plan::arena_bytes(&model);
    assert!(needed < u32::MAX, "a decoded model's arena fits a u32");
    assert!(needed <= plan::unfused_arena_bytes(&model), "fusion never needs more arena");
    let needed = needed as usize;
    if needed > MAX_ARENA || work(&model) > MAX_WORK {
        return;
    }

    let input_len = model.input_shape().len();
    let zeros = vec![0u8; input_len];
    let cyclic: Vec<u8> = blob.iter().copied().cycle().take(input_len).collect();
    let mut arena = vec![0u8; needed];
    for pixels in [&zeros, &cyclic] {
        match fitnets_shared::run(&model, pixels, &mut arena) {
            Ok(prediction) => {
                assert!(usize::from(prediction.class) < classes, "class {} of {classes}", prediction.class);
                assert_eq!(prediction.logits.len(), classes, "one logit per class");
            }
            Err(e) => panic!("inference on a decoded model fails: {e:?}"),
        }
        match fitnets_shared::run(&model, pixels, &mut arena[..needed - 1]) {
            Err(RunError::ArenaTooSmall { needed: n, found }) => {
                assert_eq!((n as usize, found as usize), (needed, needed - 1));
            }
            other => panic!("an arena one byte short gives {other:?}"),
        }
    }
}

/// A rough count of the inner-loop operations inference performs.
fn work(model: &Model<'_>) -> u64 {
    plan::steps(model)
        .map(|step| {
            let step = step.expect("steps of a decoded model are valid");
            let (input, output) = (step.input.len() as u64, step.output.len() as u64);
            let cells = u64::from(step.output.height) * u64::from(step.output.width);
            let inner = match step.op {
                StepOp::Single(Op::Conv2d(conv)) | StepOp::ConvMaxout(conv, _) => cells * conv.weights.len() as u64,
                StepOp::ConvMaxoutPool(conv, _, pool) => cells * u64::from(pool.area()) * conv.weights.len() as u64,
                StepOp::Single(Op::FullyConnected(fc)) | StepOp::FullyConnectedMaxout(fc, _) => fc.weights.len() as u64,
                StepOp::Single(Op::MaxPool2d(window) | Op::AvgPool2d(window)) => output * u64::from(window.area()),
                StepOp::Single(Op::Maxout { .. } | Op::GlobalAvgPool(_) | Op::Flatten) => input,
            };
            inner + input + output
        })
        .sum()
}
