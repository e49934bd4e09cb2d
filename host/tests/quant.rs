//! Quantization and export, hermetically: a tiny model trained on generated images is
//! folded, calibrated, quantized, encoded, decoded and run with `shared`'s kernels; the
//! float model must match burn's, the int8 model must agree with the float one, every
//! calibration option must work, an overflowing layer must be refused with its numbers,
//! and the command line must carry it all end to end and fail clearly on bad input.

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule as _, Param, RunningState};
use burn::tensor::{Tensor, TensorData};
use fitnets::data::Splits;
use fitnets::data::{Augment, Dataset, Normalization};
use fitnets::method;
use fitnets::model::net::Layer;
use fitnets::model::{Net, NetConfig};
use fitnets::quant::calibrate::{Calibration, DEFAULT_PERCENTILE, calibrate};
use fitnets::quant::eval::{agreement, evaluate_int8, float_model_predictions, net_predictions};
use fitnets::quant::export::{Export, ExportOptions, export};
use fitnets::quant::extract::float_model;
use fitnets::quant::float::{Affine, AffineKind, FloatLayer, FloatModel, normalize};
use fitnets::quant::overflow::Overflow;
use fitnets::quant::quantize::{UnitScales, quantize};
use fitnets::quant::scheme::Range;
use fitnets::run::dir::RunDir;
use fitnets_shared::format::encode::LayerSpec;
use fitnets_shared::ops::Window;
use fitnets_shared::{Model, plan};
use fitnets_tests::SplitMix;

mod common;
use common::{pattern_dataset, schedule};

/// The backend's random generator is global to the process: tests that draw from it
/// (initialization, training) take turns, so that each stays reproducible.
static BACKEND_RNG: Mutex<()> = Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    BACKEND_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh temporary directory, removed when dropped; `name` shows in its path.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("fitnets-quant-{name}-")).tempdir().unwrap()
}

const STUDENT: &str = include_str!("fixtures/quant-student.toml");

/// A trained tiny student, its float model and its data, shared by the tests.
struct Trained {
    float: FloatModel,
    splits: Splits,
    /// burn's own predictions on the test split.
    burn_test: Vec<u16>,
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let _rng = rng_lock();
        let splits = Splits::new(&pattern_dataset(1000, 1), pattern_dataset(300, 2), 200, 3, None).unwrap();
        let config = NetConfig::parse(STUDENT).unwrap();
        let run = temp_dir("trained");
        let run = RunDir::open(run.path()).unwrap();
        let device = Default::default();
        let (net, _) = method::train_on_labels::<Autodiff<Flex>>(
            &config,
            &splits,
            &schedule(3, 11),
            &run,
            "student",
            &fitnets::train::workers::Workers::one(device),
        )
        .unwrap();
        let net: Net<Flex> = net.valid();
        let float = float_model(&net, &config).unwrap();
        let burn_test = net_predictions(&net, &splits.test, &splits.info.normalization, &device);
        Trained { float, splits, burn_test }
    })
}

fn options(calibration: Calibration) -> ExportOptions {
    ExportOptions { calibration, images: 400, seed: 5, unit_scales: UnitScales::PerChannel }
}

fn labels(n: usize) -> Vec<String> {
    (0..n).map(|c| format!("class{c}")).collect()
}

#[test]
fn trained_model_exports_decodes_and_agrees_with_float() {
    let t = trained();
    let norm = &t.splits.info.normalization;
    // The plain float model is burn's network: the same predictions, up to float rounding.
    let float = float_model_predictions(&t.float, norm, &t.splits.test);
    let float_accuracy = fitnets::quant::eval::Evaluation::new(float.clone(), &t.splits.test, 4).accuracy;
    assert!(agreement(&float, &t.burn_test) >= 0.99, "float model vs burn: {}", agreement(&float, &t.burn_test));
    assert!(float_accuracy > 0.6, "the tiny model did not learn: {float_accuracy}");

    let exported = export(&t.float, norm, &labels(4), &t.splits.train, &options(Calibration::MinMax)).unwrap();
    let model = Model::from_bytes(&exported.blob).unwrap();
    assert_eq!(model.name(), "tiny-fitnet");
    assert_eq!(model.labels().collect::<Vec<_>>(), ["class0", "class1", "class2", "class3"]);
    assert_eq!(exported.arena_bytes, plan::arena_bytes(&model));
    assert_eq!(exported.calibration_images, 400);
    assert!(exported.agreement >= 0.95, "calibration agreement {}", exported.agreement);
    // conv1 (+ maxout), pool, conv2 (ReLU fused), pool, flatten, fully connected.
    assert_eq!(model.layer_count(), 7);

    let int8 = evaluate_int8(&model, &t.splits.test).unwrap();
    let agree = agreement(&int8.predictions, &float);
    assert!(agree >= 0.95, "int8 and float agree on {agree}");
    assert!((int8.accuracy - float_accuracy).abs() <= 0.03, "int8 {} vs float {float_accuracy}", int8.accuracy);
    assert_eq!(int8.confusion.iter().flatten().sum::<u64>(), t.splits.test.len() as u64);

    // The int8 logits, dequantized, follow the float logits within a few output steps.
    let out = model.output_quant();
    let mut arena = vec![0u8; exported.arena_bytes as usize];
    for i in 0..20 {
        let image = t.splits.test.image(i);
        let mut x = vec![0f32; image.len()];
        normalize(image, norm, &mut x);
        let float_logits = t.float.forward(&x, |_, _| {});
        let prediction = fitnets_shared::run(&model, image, &mut arena).unwrap();
        for (&q, &f) in prediction.logits.iter().zip(&float_logits) {
            let dequantized = out.scale * (f32::from(q) - f32::from(out.zero_point));
            assert!((dequantized - f).abs() <= 8.0 * out.scale, "image {i}: int8 {dequantized} vs float {f}");
        }
    }
}

#[test]
fn shared_unit_scales_give_each_maxout_unit_one_requantization_and_keep_the_accuracy() {
    let t = trained();
    let norm = &t.splits.info.normalization;
    let own = export(&t.float, norm, &labels(4), &t.splits.train, &options(Calibration::MinMax)).unwrap();
    let shared_options = ExportOptions { unit_scales: UnitScales::Shared, ..options(Calibration::MinMax) };
    let shared = export(&t.float, norm, &labels(4), &t.splits.train, &shared_options).unwrap();
    // conv1 has 2 maxout pieces: each unit's pieces share multiplier and shift only when
    // asked to; the other layers (no maxout) are untouched.
    let unit_pairs = |export: &Export| -> Vec<bool> {
        let LayerSpec::Conv2d { affine, .. } = &export.quantized.spec.layers[0] else { panic!("conv1 first") };
        (0..affine.shifts.len())
            .step_by(2)
            .map(|o| (affine.multipliers[o], affine.shifts[o]) == (affine.multipliers[o + 1], affine.shifts[o + 1]))
            .collect()
    };
    assert!(unit_pairs(&shared).iter().all(|&same| same));
    assert!(!unit_pairs(&own).iter().all(|&same| same), "per-channel scales happened to coincide");
    assert_eq!(own.quantized.spec.layers[2], shared.quantized.spec.layers[2]);
    // The kernels see it, and the int8 model stays as accurate on this data.
    let model = Model::from_bytes(&shared.blob).unwrap();
    let first = plan::steps(&model).next().unwrap().unwrap();
    assert!(first.fused().is_some_and(|f| f.units_share_scale()));
    let own_accuracy = evaluate_int8(&Model::from_bytes(&own.blob).unwrap(), &t.splits.test).unwrap().accuracy;
    let shared_accuracy = evaluate_int8(&model, &t.splits.test).unwrap().accuracy;
    assert!((own_accuracy - shared_accuracy).abs() <= 0.02, "{own_accuracy} vs {shared_accuracy}");
}

#[test]
fn every_calibration_option_exports_within_the_minmax_range() {
    let t = trained();
    let norm = &t.splits.info.normalization;
    let sample = t.splits.train.sample(400, 5);
    let minmax = calibrate(&t.float, norm, &sample.images, Calibration::MinMax).unwrap();
    let float = float_model_predictions(&t.float, norm, &t.splits.test);
    for calibration in [Calibration::Percentile(99.9), Calibration::Percentile(DEFAULT_PERCENTILE), Calibration::Mse] {
        let ranges = calibrate(&t.float, norm, &sample.images, calibration).unwrap();
        for (r, m) in ranges.iter().zip(&minmax) {
            assert!(r.min >= m.min - 1e-6 && r.max <= m.max + 1e-6, "{calibration}: {r:?} outside {m:?}");
            assert!(r.max > 0.2 * m.max, "{calibration}: {r:?} clips most of {m:?}");
        }
        let exported = export(&t.float, norm, &labels(4), &t.splits.train, &options(calibration)).unwrap();
        let model = Model::from_bytes(&exported.blob).unwrap();
        let int8 = evaluate_int8(&model, &t.splits.test).unwrap();
        let agree = agreement(&int8.predictions, &float);
        assert!(agree >= 0.93, "{calibration}: int8 and float agree on {agree}");
    }
}

/// A model whose first tensor is its normalized input: a 1x1 conv of weight 1.
fn identity_model(side: usize) -> FloatModel {
    let conv = Affine {
        label: "layer 0 (identity)".into(),
        kind: AffineKind::Conv(Window::valid(1, 1, 1, 1)),
        weights: vec![1.0],
        bias: vec![0.0],
        pieces: 1,
        relu: false,
    };
    let dense = Affine {
        label: "layer 1 (fc)".into(),
        kind: AffineKind::Dense,
        weights: vec![0.01; 2 * side * side],
        bias: vec![0.0; 2],
        pieces: 1,
        relu: false,
    };
    FloatModel::new("identity", [side, side, 1], 2, vec![FloatLayer::Affine(conv), FloatLayer::Affine(dense)]).unwrap()
}

#[test]
fn calibration_options_find_the_expected_ranges() {
    let plain = Normalization { mean: vec![0.0], std: vec![1.0] };
    let model = identity_model(16);
    let first = |pixels: &[u8], calibration| calibrate(&model, &plain, pixels, calibration).unwrap()[0];
    // Every pixel value once: the identity tensor is uniform over [0, 1].
    let uniform: Vec<u8> = (0..=255).collect();
    let check = |got: Range, min: (f32, f32), max: (f32, f32), what: &str| {
        assert!(got.min >= min.0 && got.min <= min.1, "{what}: min {got:?}");
        assert!(got.max >= max.0 && got.max <= max.1, "{what}: max {got:?}");
    };
    check(first(&uniform, Calibration::MinMax), (0.0, 0.0), (1.0, 1.0), "uniform minmax");
    check(first(&uniform, Calibration::Percentile(99.0)), (0.0, 0.02), (0.98, 0.995), "uniform p99");
    check(first(&uniform, Calibration::Percentile(100.0)), (0.0, 0.0), (0.999, 1.0), "uniform p100");
    check(first(&uniform, Calibration::Mse), (0.0, 0.0), (0.95, 1.0), "uniform mse");
    // Dark pixels (up to 0.1) and one outlier at 1.0 in 204,800 values: percentile clips
    // the outlier; MSE clips part of the way, where the outlier's clipping error equals
    // the rounding error a wider grid spreads over every other value; min/max keeps it.
    let mut dark: Vec<u8> = (0..256 * 800).map(|i| (i % 26) as u8).collect();
    dark[100] = 255;
    let dark_range = |c| calibrate(&model, &plain, &dark, c).unwrap()[0];
    check(dark_range(Calibration::MinMax), (0.0, 0.0), (1.0, 1.0), "dark minmax");
    check(dark_range(Calibration::Percentile(99.9)), (0.0, 0.0), (0.09, 0.11), "dark p99.9");
    check(dark_range(Calibration::Mse), (0.0, 0.0), (0.7, 0.9), "dark mse");
}

#[test]
fn calibration_names_parse() {
    let check = |text: &str, expected: Result<Calibration, &str>| match (text.parse::<Calibration>(), expected) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
        (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{text}: {e}"),
        (got, want) => panic!("{text}: got {got:?}, expected {want:?}"),
    };
    check("minmax", Ok(Calibration::MinMax));
    check("mse", Ok(Calibration::Mse));
    check("percentile", Ok(Calibration::Percentile(DEFAULT_PERCENTILE)));
    check("percentile:99.9", Ok(Calibration::Percentile(99.9)));
    check("percentile:101", Err("must be in (50, 100]"));
    check("percentile:x", Err("not a percentile"));
    check("entropy", Err("unknown calibration `entropy`"));
}

/// Input 8x8x1, one fully connected layer whose ±1 weights cancel on a flat image.
fn cancelling_model() -> FloatModel {
    let dense = Affine {
        label: "layer 0 (fc)".into(),
        kind: AffineKind::Dense,
        weights: (0..2 * 64).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect(),
        bias: vec![1e-5, 1e-5],
        pieces: 1,
        relu: false,
    };
    FloatModel::new("cancelling", [8, 8, 1], 2, vec![FloatLayer::Affine(dense)]).unwrap()
}

#[test]
fn an_accumulator_that_could_overflow_is_refused_with_its_numbers() {
    let model = cancelling_model();
    let norm = Normalization { mean: vec![0.5], std: vec![0.25] };
    // Calibrated on flat images, the output range is 1e-5 wide: the requantization
    // shift is 12 and 64 · 127 · 128 no longer fits an i32 shifted left by 12.
    let flat = vec![128u8; 64 * 4];
    let ranges = calibrate(&model, &norm, &flat, Calibration::MinMax).unwrap();
    let err = quantize(&model, &norm, &ranges, &labels(2), UnitScales::PerChannel).unwrap_err();
    let overflow = err.downcast_ref::<Overflow>().unwrap_or_else(|| panic!("not an overflow: {err:#}"));
    assert_eq!(overflow.layer, "layer 0 (fc)");
    assert_eq!((overflow.channel, overflow.sum_abs_weights, overflow.shift), (0, 64 * 127, 12));
    assert_eq!(overflow.bound, 64 * 127 * overflow.max_input + overflow.bias);
    assert_eq!(overflow.limit, i64::from(i32::MAX >> 12));
    assert!(overflow.bound > overflow.limit);
    let message = err.to_string();
    assert!(message.contains("layer 0 (fc)") && message.contains("overflow"), "{message}");
    assert!(message.contains(&overflow.bound.to_string()) && message.contains("524287"), "{message}");

    // Calibrated on varied images, the same layer has a wide range and exports.
    let mut rng = SplitMix(9);
    let varied: Vec<u8> = (0..64 * 16).map(|_| rng.below(256) as u8).collect();
    let ranges = calibrate(&model, &norm, &varied, Calibration::MinMax).unwrap();
    quantize(&model, &norm, &ranges, &labels(2), UnitScales::PerChannel).unwrap();
}

const EVERYTHING: &str = include_str!("fixtures/quant-everything.toml");

fn tensor1(values: Vec<f32>) -> Tensor<Flex, 1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), &Default::default())
}

#[test]
fn float_model_matches_burn_with_batch_norm_maxout_ceil_pooling_and_a_dense_after_a_map() {
    let config = NetConfig::parse(EVERYTHING).unwrap();
    let device = Default::default();
    let mut net = {
        let _rng = rng_lock();
        <Flex as burn::tensor::backend::Backend>::seed(&device, 3);
        Net::<Flex>::new(&config, &device).unwrap()
    };
    let mut rng = SplitMix(17);
    let mut draw = |n: usize, lo: f32, hi: f32| -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * (rng.unit() + 1.0) / 2.0).collect()
    };
    let Layer::Conv(conv) = &mut net.layers[0] else { panic!("layer 0 is a conv") };
    let norm = conv.norm.as_mut().unwrap();
    norm.gamma = Param::from_tensor(tensor1(draw(6, 0.5, 2.0)));
    norm.beta = Param::from_tensor(tensor1(draw(6, -0.5, 0.5)));
    norm.running_mean = RunningState::new(tensor1(draw(6, -0.3, 0.3)));
    norm.running_var = RunningState::new(tensor1(draw(6, 0.2, 3.0)));

    let float = float_model(&net, &config).unwrap();
    // Dropout is gone: conv (BN folded), pool, conv, dense, dense.
    assert_eq!(float.layers().len(), 5);
    let normalization = Normalization { mean: vec![0.4, 0.6], std: vec![0.3, 0.2] };
    let images: Vec<u8> = (0..6 * 9 * 9 * 2).map(|_| (rng.below(256)) as u8).collect();
    let data =
        Dataset { images, labels: vec![0; 6], height: 9, width: 9, channels: 2, classes: 3, name: "random".into() };
    let batcher = fitnets::train::batch::Batcher { normalization: normalization.clone(), augment: Augment::default() };
    let burn_logits: Vec<f32> =
        net.forward(batcher.images::<Flex>(&data, &[0, 1, 2, 3, 4, 5], None, &device)).into_data().to_vec().unwrap();
    for i in 0..6 {
        let mut x = vec![0f32; 9 * 9 * 2];
        normalize(data.image(i), &normalization, &mut x);
        let ours = float.forward(&x, |_, _| {});
        for (a, b) in ours.iter().zip(&burn_logits[i * 3..(i + 1) * 3]) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "image {i}: {ours:?} vs {:?}", &burn_logits[i * 3..]);
        }
    }
}

// ---- The command line, end to end ----

/// An IDX file of `u8` elements.
fn idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        bytes.extend((d as u32).to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

fn write_idx_set(dir: &Path, train: &Dataset, test: &Dataset) {
    for (prefix, set) in [("train", train), ("t10k", test)] {
        let images = idx(&[set.len(), set.height, set.width], &set.images);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[set.len()], &set.labels)).unwrap();
    }
}

fn fitnets(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fitnets")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn cli_trains_exports_and_evaluates_a_blob_and_names_bad_input() {
    let dir = temp_dir("cli");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    write_idx_set(&dir.path().join("data"), &pattern_dataset(800, 4), &pattern_dataset(150, 5));
    std::fs::write(dir.path().join("student.toml"), STUDENT).unwrap();
    let (data, run, blob, config) = (path("data"), path("run"), path("student.fnet"), path("student.toml"));
    let data_args = ["--data", &data, "--valid", "200"];

    let mut train = vec!["train", "student", "--method", "scratch", "--config", &config];
    train.extend(["--run", &run, "--epochs", "2", "--batch", "32", "--optimizer", "adam", "--lr", "3e-3"]);
    train.extend(data_args);
    let (ok, _, stderr) = fitnets(&train);
    assert!(ok, "{stderr}");

    let mut export = vec!["export", &run, "-o", &blob, "--calibration", "percentile:99.9"];
    export.extend(["--calibration-images", "300"]);
    export.extend(data_args);
    let (ok, stdout, stderr) = fitnets(&export);
    assert!(ok, "{stderr}");
    let bytes = std::fs::read(&blob).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    // Data from --data: the labels are the class numbers.
    assert_eq!(model.labels().collect::<Vec<_>>(), ["0", "1", "2", "3"]);
    for needle in [
        "percentile:99.9 calibration on 300 training images",
        "layer 0 (conv1)",
        "layer 5 (logits)",
        &format!("{} bytes, arena {} bytes", bytes.len(), plan::arena_bytes(&model)),
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in\n{stdout}");
    }

    // A blob needs only the test set: no --valid to repeat.
    let (ok, stdout, stderr) = fitnets(&["eval", &blob, "--float", &run, "--data", &data]);
    assert!(ok, "{stderr}");
    for needle in ["tiny-fitnet (int8,", "test accuracy", "on 150 images", "true\\pred", "identical predictions on"] {
        assert!(stdout.contains(needle), "{needle:?} not in\n{stdout}");
    }

    // Bad input: each error names the file and the fault.
    let check = |args: &[&str], needles: &[&str]| {
        let (ok, _, stderr) = fitnets(args);
        assert!(!ok, "{args:?} succeeded");
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: {needle:?} not in {stderr}");
        }
    };
    let missing = path("no-such-run");
    check(&["export", &missing, "-o", &path("x.fnet"), "--data", &data], &["no-such-run", "is not a run directory"]);
    std::fs::create_dir_all(dir.path().join("unfinished")).unwrap();
    std::fs::copy(dir.path().join("run/run.json"), dir.path().join("unfinished/run.json")).unwrap();
    check(&["export", &path("unfinished"), "-o", &path("x.fnet"), "--data", &data], &["no final model"]);
    check(&["export", &run, "-o", &path("x.fnet"), "--calibration", "entropy"], &["unknown calibration"]);
    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x40;
    std::fs::write(path("corrupt.fnet"), &corrupt).unwrap();
    check(
        &["eval", &path("corrupt.fnet"), "--data", &data],
        &["corrupt.fnet is not a valid model", "checksum mismatch"],
    );
    check(&["eval", &path("missing.fnet"), "--data", &data], &["reading", "missing.fnet"]);
    check(&["eval", &run, "--float", &run, "--data", &data], &["--float compares a blob with a run"]);
}
