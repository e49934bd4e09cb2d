//! Inference on random valid models: never panics, needs exactly the planned arena,
//! and equals a plain layer-by-layer execution (no fusion, no arena) bit for bit, with
//! either column layout of the conv kernel.

use fitnets_shared::format::encode::encode;
use fitnets_shared::ops::fast::Columns;
use fitnets_shared::ops::reference as k;
use fitnets_shared::{Model, RunError, plan, run, run_with_columns};
use fitnets_tests::{SplitMix, model, paper_fitnet, random_arch, share_maxout_scales, tiny};
use proptest::prelude::*;

/// Layer by layer with fresh buffers: the plainest possible execution.
fn run_unfused(model: &Model<'_>, pixels: &[u8]) -> Vec<i8> {
    let channels = usize::from(model.input_shape().channels);
    let table = model.pixel_table();
    let x: Vec<i8> =
        pixels.iter().enumerate().map(|(i, &p)| table.get((i % channels) * 256 + usize::from(p))).collect();
    fitnets_tests::run_layers(model, &x)
}

fn check_model(blob: &[u8], pixel_seed: u64) {
    let model = Model::from_bytes(blob).unwrap();
    let needed = plan::arena_bytes(&model) as usize;
    let mut rng = SplitMix(pixel_seed);
    let pixels: Vec<u8> = (0..model.input_shape().len()).map(|_| rng.range(0, 255) as u8).collect();
    let expected = run_unfused(&model, &pixels);

    // Arena contents must not matter: start from garbage.
    let mut arena = vec![0xA5u8; needed];
    let prediction = run(&model, &pixels, &mut arena).unwrap();
    assert_eq!(prediction.logits, expected.as_slice());
    assert_eq!(usize::from(prediction.class), k::argmax(&expected));
    // Both column layouts of the conv kernel, whichever this target runs natively.
    for columns in [Columns::Packed, Columns::Bytes] {
        let mut arena = vec![0x3Cu8; needed];
        let prediction = run_with_columns(&model, &pixels, &mut arena, columns).unwrap();
        assert_eq!(prediction.logits, expected.as_slice(), "{columns:?}");
    }

    // A larger arena gives the same answer; one byte less is an error, not a panic.
    let mut big = vec![0x5Au8; needed + 13];
    assert_eq!(run(&model, &pixels, &mut big).unwrap().logits, expected.as_slice());
    let mut short = vec![0u8; needed - 1];
    assert_eq!(
        run(&model, &pixels, &mut short).unwrap_err(),
        RunError::ArenaTooSmall { needed: needed as u32, found: needed as u32 - 1 }
    );
    let err = run(&model, &pixels[1..], &mut arena).unwrap_err();
    assert!(matches!(err, RunError::InputLength { .. }), "{err:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..Default::default() })]

    #[test]
    fn random_models_run_exactly_as_planned(arch_seed in any::<u64>(), weight_seed in any::<u64>(), pixel_seed in any::<u64>()) {
        let (input, arch, classes) = random_arch(arch_seed);
        let mut spec = model("random", input, &arch, classes, weight_seed);
        let blob = encode(&spec).unwrap_or_else(|e| panic!("{arch:?}: {e}"));
        check_model(&blob, pixel_seed);
        // The same model with one requantization per maxout unit: the kernels' other path.
        share_maxout_scales(&mut spec);
        let blob = encode(&spec).unwrap_or_else(|e| panic!("{arch:?}, scales shared: {e}"));
        check_model(&blob, pixel_seed);
    }
}

#[test]
fn paper_fitnet_with_shared_unit_scales_runs_as_planned() {
    let mut spec = paper_fitnet(3);
    check_model(&encode(&spec).unwrap(), 5);
    share_maxout_scales(&mut spec);
    check_model(&encode(&spec).unwrap(), 5);
}

#[test]
fn tiny_model_runs_as_planned() {
    check_model(&encode(&tiny(1)).unwrap(), 1);
}

/// The arena of the paper's MNIST FitNet (28x28x1; 3x3 maxout convs 16-16 | pool |
/// 16-16 | pool | 12-12, 2 pieces; dense to 10). Fused, the largest step is the second
/// conv with its maxout and pooling: 28x28x16 in; the scratch, which holds the
/// bias, requantization constants and last weights of the 32 conv channels (32 bytes
/// each) and the packed
/// columns of one 2x2 pool window (4 pixels, 3x3x16 = 144 values in 72 words each), plus
/// 3 bytes of alignment slack; 14x14x16 out. Unfused, a conv writes 28x28x32 pieces next to its 28x28x16
/// input.
#[test]
fn paper_fitnet_arena() {
    let blob = encode(&paper_fitnet(5)).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    assert_eq!(plan::arena_bytes(&model), 28 * 28 * 16 + (32 * 32 + 4 * 72 * 4 + 3) + 14 * 14 * 16);
    assert_eq!(plan::unfused_arena_bytes(&model), 28 * 28 * 16 + 28 * 28 * 32);
    println!(
        "paper FitNet: arena {} bytes fused, {} unfused",
        plan::arena_bytes(&model),
        plan::unfused_arena_bytes(&model)
    );
    check_model(&blob, 9);
}

/// The fixtures are calibrated: on random images their logits spread over the int8
/// range instead of sticking to its ends, and the predicted class varies. Without this,
/// a test comparing two executions could pass on saturated, uninformative logits.
#[test]
fn fixture_logits_are_informative() {
    for spec in [tiny(1), paper_fitnet(5)] {
        let blob = encode(&spec).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let mut arena = vec![0u8; plan::arena_bytes(&model) as usize];
        let mut rng = SplitMix(11);
        let (mut saturated, mut total) = (0, 0);
        let mut classes = std::collections::BTreeSet::new();
        for _ in 0..32 {
            let pixels: Vec<u8> = (0..model.input_shape().len()).map(|_| rng.range(0, 255) as u8).collect();
            let prediction = run(&model, &pixels, &mut arena).unwrap();
            saturated += prediction.logits.iter().filter(|&&v| v == 127 || v == -128).count();
            total += prediction.logits.len();
            classes.insert(prediction.class);
        }
        assert!(saturated * 10 < total, "{}: {saturated} of {total} logits saturated", spec.name);
        assert!(classes.len() >= 2, "{}: always class {classes:?}", spec.name);
    }
}
