//! Training, hermetically: a small generated image set with a learnable pattern, tiny
//! teacher and student configs. Each method must learn well above chance, hint training
//! must lower its loss, and a resumed run must equal an uninterrupted one.

use std::path::{Path, PathBuf};

use std::sync::Mutex;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use fitnets::data::Augment;
use fitnets::data::Splits;
use fitnets::method::{self, KdSettings, Method, Teacher, evaluate};
use fitnets::model::regressor::regressor_shape;
use fitnets::model::{Net, NetConfig, Views, count};
use fitnets::run::dir::RunDir;
use fitnets::train::batch::Batcher;
use fitnets::train::fit::fit;
use fitnets::train::loss::{cross_entropy, kd_loss, lambda_at, soft_cross_entropy};
use fitnets::train::phase::{Objective, Phase, Trainee};
use fitnets::train::workers::Workers;

mod common;
use common::{pattern_dataset, schedule};

type B = Autodiff<Flex>;
type Inner = Flex;

/// The backend's random generator is global to the process: tests that seed it and
/// draw from it (initialization, dropout) take turns, or they would draw each other's
/// numbers and lose their reproducibility.
static BACKEND_RNG: Mutex<()> = Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    BACKEND_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn splits() -> Splits {
    Splits::new(&pattern_dataset(1400, 1), pattern_dataset(300, 2), 200, 3, None).unwrap()
}

const TEACHER: &str = include_str!("fixtures/train-teacher.toml");

const STUDENT: &str = include_str!("fixtures/train-student.toml");

fn temp_run(name: &str) -> RunDir {
    let dir: PathBuf = std::env::temp_dir().join(format!("fitnets-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    RunDir::create(&dir).unwrap()
}

fn test_accuracy(net: &Net<Inner>, splits: &Splits) -> f64 {
    evaluate(net, &splits.test, &splits.batcher(Augment::default()), Views::PLAIN, &Default::default()).0
}

fn trained_teacher(splits: &Splits) -> Net<Inner> {
    use burn::module::AutodiffModule as _;
    let config = NetConfig::parse(TEACHER).unwrap();
    let run = temp_run("teacher");
    let (net, _) = method::train_on_labels::<B>(
        &config,
        splits,
        &schedule(4, 7),
        &run,
        "teacher",
        &Workers::one(Default::default()),
    )
    .unwrap();
    std::fs::remove_dir_all(run.path()).unwrap();
    net.valid()
}

#[test]
fn every_method_learns_and_hints_lower_their_loss() {
    use burn::module::AutodiffModule as _;
    let _rng = rng_lock();
    let splits = splits();
    let teacher = trained_teacher(&splits);
    let teacher_accuracy = test_accuracy(&teacher, &splits);
    assert!(teacher_accuracy > 0.8, "teacher {teacher_accuracy}");
    let teacher_config = NetConfig::parse(TEACHER).unwrap();
    let student_config = NetConfig::parse(STUDENT).unwrap();
    for method in [Method::Scratch, Method::Kd, Method::Hints] {
        let run = temp_run(method.name());
        let (net, hint_history, history) = method::train_student::<B>(
            &student_config,
            method,
            Teacher { net: &teacher, config: &teacher_config, views: Views::PLAIN },
            &splits,
            &schedule(4, 11),
            Some(&schedule(3, 11)),
            KdSettings::default(),
            &run,
            &Workers::one(Default::default()),
        )
        .unwrap();
        let accuracy = test_accuracy(&net.valid(), &splits);
        // Chance is 25%.
        assert!(accuracy > 0.6, "{method:?}: {accuracy}");
        assert_eq!(history.len(), 4);
        if method == Method::Hints {
            assert_eq!(hint_history.len(), 3);
            let (first, last) = (hint_history[0].train_loss, hint_history[2].train_loss);
            assert!(last < 0.8 * first, "hint loss {first} -> {last}");
            assert!(hint_history[2].valid_loss < hint_history[0].valid_loss);
        }
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let rows = metrics.lines().count() - 1;
        assert_eq!(rows, if method == Method::Hints { 7 } else { 4 }, "{metrics}");
        std::fs::remove_dir_all(run.path()).unwrap();
    }
}

/// All trainable values of a network, in order.
fn values(net: &Net<B>) -> Vec<f32> {
    let mut out = Vec::new();
    for layer in &net.layers {
        if let fitnets::model::net::Layer::Conv(c) = layer {
            out.extend(c.conv.weight.val().into_data().iter::<f32>());
        }
        if let fitnets::model::net::Layer::Dense(d) = layer {
            out.extend(d.linear.weight.val().into_data().iter::<f32>());
        }
    }
    out
}

#[test]
fn initial_weights_depend_only_on_the_seed_set_before_building() {
    let _rng = rng_lock();
    let config = NetConfig::parse(STUDENT).unwrap();
    let device = Default::default();
    let seed = |seed| <B as burn::tensor::backend::Backend>::seed(&device, seed);
    seed(7);
    let a = Net::<B>::new(&config, &device).unwrap();
    // What a training phase does before the first forward pass: seed for its epoch, draw.
    seed(8);
    let _ = Tensor::<B, 1>::random([5], burn::tensor::Distribution::Default, &device);
    seed(7);
    let b = Net::<B>::new(&config, &device).unwrap();
    assert_eq!(values(&a), values(&b));
    seed(9);
    let c = Net::<B>::new(&config, &device).unwrap();
    assert_ne!(values(&a), values(&c));
}

#[test]
fn resumed_training_equals_uninterrupted_training() {
    let _rng = rng_lock();
    let splits = splits();
    let config = NetConfig::parse(STUDENT).unwrap();
    let device = Default::default();
    let batcher = splits.batcher(Augment { shift: 1, ..Augment::default() });
    let schedule = schedule(3, 5);
    let train = |run: &RunDir, stop_after| {
        <B as burn::tensor::backend::Backend>::seed(&device, 99);
        let model = Trainee { net: Net::<B>::new(&config, &device).unwrap(), regressor: None };
        let phase = Phase {
            name: "student",
            schedule: &schedule,
            train: &splits.train,
            valid: &splits.valid,
            batcher: &batcher,
            run,
            stop_after,
        };
        fit(&phase, model, &Objective::Labels, &Workers::one(device)).unwrap()
    };
    let straight_run = temp_run("straight");
    let (straight, straight_history) = train(&straight_run, None);
    let pieces_run = temp_run("pieces");
    let (_, partial) = train(&pieces_run, Some(1));
    assert_eq!(partial.len(), 1);
    let (resumed, resumed_history) = train(&pieces_run, None);
    assert_eq!(values(&straight.net), values(&resumed.net));
    let losses = |h: &[fitnets::train::phase::EpochMetrics]| h.iter().map(|m| m.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&straight_history), losses(&resumed_history));
    let rows = |run: &RunDir| std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count();
    assert_eq!(rows(&straight_run), rows(&pieces_run));
    std::fs::remove_dir_all(straight_run.path()).unwrap();
    std::fs::remove_dir_all(pieces_run.path()).unwrap();
}

fn tensor(values: &[f32], shape: [usize; 2]) -> Tensor<Inner, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
}

#[test]
fn kd_loss_matches_hand_computed_values() {
    // One image, two classes. Student logits (0, ln 3): P_S = (1/4, 3/4).
    let ln3 = 3f32.ln();
    let student = tensor(&[0.0, ln3], [1, 2]);
    let labels =
        Tensor::<Inner, 1, burn::tensor::Int>::from_data(TensorData::new(vec![1i64], [1]), &Default::default());
    let ce: f32 = cross_entropy(student.clone(), labels.clone()).into_scalar();
    assert!((ce - (4f32 / 3.0).ln()).abs() < 1e-6, "{ce}");
    // τ = 1, teacher logits (0, 0): P_T = (1/2, 1/2); H = -(ln 1/4 + ln 3/4) / 2.
    let teacher = tensor(&[0.0, 0.0], [1, 2]);
    let soft: f32 = soft_cross_entropy(student.clone(), teacher.clone(), 1.0).into_scalar();
    let expected = -((0.25f32).ln() + (0.75f32).ln()) / 2.0;
    assert!((soft - expected).abs() < 1e-6, "{soft} vs {expected}");
    // τ = 2 divides the logits: P_S^τ = softmax(0, ln 3 / 2) = (1/(1+√3), √3/(1+√3)).
    let s3 = 3f32.sqrt();
    let soft2: f32 = soft_cross_entropy(student.clone(), teacher.clone(), 2.0).into_scalar();
    let expected2 = -((1.0 / (1.0 + s3)).ln() + (s3 / (1.0 + s3)).ln()) / 2.0;
    assert!((soft2 - expected2).abs() < 1e-6, "{soft2} vs {expected2}");
    // The KD objective: H(y, P_S) + λ H(P_T^τ, P_S^τ), no τ² factor.
    let kd: f32 = kd_loss(student, teacher, labels, 4.0, 2.0).into_scalar();
    assert!((kd - (ce + 4.0 * expected2)).abs() < 1e-5, "{kd}");
}

#[test]
fn lambda_is_annealed_linearly_from_four_to_one() {
    assert_eq!(lambda_at(0, 7, 4.0, 1.0), 4.0);
    assert_eq!(lambda_at(3, 7, 4.0, 1.0), 2.5);
    assert_eq!(lambda_at(6, 7, 4.0, 1.0), 1.0);
    assert_eq!(lambda_at(0, 1, 4.0, 1.0), 4.0);
}

fn config(path: &str) -> NetConfig {
    NetConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap()
}

#[test]
fn stronger_teacher_configs_have_their_documented_sizes() {
    // The paper's teacher with a 48-unit third layer: 1200*96 weights and 96 biases,
    // on a 5x5 map, and a 192 -> 10 dense layer.
    let wide = config("configs/mnist-teacher-wide.toml");
    assert_eq!(count::totals(&wide).unwrap(), (418_474, 2_709_504 + 18_874_368 + 2_880_000 + 1_920));
    // Five 3x3 ReLU convs at 28, 28, 14, 14 and 7 pixels, then 128x3x3 -> 10.
    let cnn = config("configs/mnist-teacher-cnn.toml");
    let macs = 784 * 32 * 9 + 784 * 32 * 288 + 196 * 64 * 288 + 196 * 64 * 576 + 49 * 128 * 576 + 1152 * 10;
    assert_eq!(count::totals(&cnn).unwrap(), (150_378, macs));
    // Both teach the FitNet: the wide one through the paper's 5x5 regressor, the CNN
    // through a 1x1 one (its 64x7x7 hint is the guided layer's size).
    let fitnet = config("configs/mnist-fitnet.toml");
    let shape = regressor_shape(&fitnet, &wide).unwrap();
    assert_eq!((shape.kernel, shape.units, shape.in_channels), ([5, 5], 48, 16));
    assert!(!regressor_shape(&fitnet, &wide).unwrap().relu, "maxout is its own nonlinearity");
    let shape = regressor_shape(&fitnet, &cnn).unwrap();
    assert_eq!((shape.kernel, shape.padding, shape.units, shape.in_channels), ([1, 1], [0, 0], 64, 16));
    // The hint layer's nonlinearity is a ReLU: so is the regressor's.
    assert_eq!((shape.pieces, shape.relu), (1, true));
    assert_eq!(cnn.shapes().unwrap()[shape.hint], [64, 7, 7]);
}

#[test]
fn paper_configs_have_the_papers_sizes() {
    let teacher = config("configs/mnist-teacher.toml");
    let fitnet = config("configs/mnist-fitnet.toml");
    // Computed by hand from the layer shapes (see the configs' notes): the teacher's
    // convs 64*96*21*21 + 3072*96*8*8 + 1200*48*5*5 MACs and a 96 -> 10 dense layer.
    assert_eq!(count::totals(&teacher).unwrap(), (359_866, 2_709_504 + 18_874_368 + 1_440_000 + 960));
    // Batch norm adds a scale and a shift to each of the 96 + 96 + 48 conv channels and
    // no MACs (it folds into the convs).
    let teacher_bn = config("configs/mnist-teacher-bn.toml");
    assert_eq!(count::totals(&teacher_bn).unwrap(), (359_866 + 480, count::totals(&teacher).unwrap().1));
    let fitnet_bn = config("configs/mnist-fitnet-bn.toml");
    assert_eq!(count::totals(&fitnet_bn).unwrap(), (26_226 + 352, 5_947_032));
    // 225,792 + 3,612,672 + 2 * 903,168 + 169,344 + 127,008 + 5,880 MACs.
    assert_eq!(count::totals(&fitnet).unwrap(), (26_226, 5_947_032));
    // The regressor follows the rule: 16x7x7 guided, 48x3x3 hint: 5x5 valid, 2 pieces.
    let shape = regressor_shape(&fitnet, &teacher).unwrap();
    assert_eq!(
        (shape.kernel, shape.padding, shape.units, shape.pieces, shape.in_channels),
        ([5, 5], [0, 0], 48, 2, 16)
    );
    assert_eq!(teacher.shapes().unwrap()[shape.hint], [48, 3, 3]);
    assert_eq!(fitnet.shapes().unwrap()[shape.guided], [16, 7, 7]);

    // CIFAR-10 (Table 5): parameters within 10% of the paper's. Every FitNet's guided
    // layer (its middle stage pooled, 8x8) maps onto the teacher's 192x7x7 hint (its
    // 2nd conv pooled, rounding up) with a 2x2 valid regressor of 2 pieces.
    let within_10_percent = |net: &NetConfig, paper: f64| {
        let (params, _) = count::totals(net).unwrap();
        let ratio = params as f64 / paper;
        assert!((0.9..=1.1).contains(&ratio), "{}: {params} parameters, the paper's {paper}", net.name);
    };
    let teacher = config("configs/cifar-teacher.toml");
    within_10_percent(&teacher, 9e6);
    for (path, paper, guided_channels) in [
        ("configs/cifar-fitnet1.toml", 250e3, 32),
        ("configs/cifar-fitnet2.toml", 862e3, 80),
        ("configs/cifar-fitnet3.toml", 1.6e6, 80),
        ("configs/cifar-fitnet4.toml", 2.5e6, 80),
    ] {
        let fitnet = config(path);
        within_10_percent(&fitnet, paper);
        let shape = regressor_shape(&fitnet, &teacher).unwrap();
        assert_eq!(
            (shape.kernel, shape.padding, shape.units, shape.pieces, shape.in_channels),
            ([2, 2], [0, 0], 192, 2, guided_channels),
            "{path}"
        );
        assert_eq!(teacher.shapes().unwrap()[shape.hint], [192, 7, 7]);
        assert_eq!(fitnet.shapes().unwrap()[shape.guided], [guided_channels, 8, 8], "{path}");
    }
}

#[test]
fn regressor_override_pads_to_the_hint_size() {
    let mut student = NetConfig::parse(STUDENT).unwrap();
    let teacher = NetConfig::parse(TEACHER).unwrap();
    // Guided 4x12x12 against hint 12x6x6: the rule gives a 7x7 valid kernel.
    let shape = regressor_shape(&student, &teacher).unwrap();
    assert_eq!((shape.kernel, shape.padding), ([7, 7], [0, 0]));
    // A 9x9 kernel maps 12 to 6 with one row of padding on each side.
    student.regressor = Some(fitnets::model::config::RegressorConfig { kernel: Some(9), pieces: Some(1) });
    let shape = regressor_shape(&student, &teacher).unwrap();
    assert_eq!((shape.kernel, shape.padding, shape.pieces), ([9, 9], [1, 1], 1));
    let check = |kernel, needle: &str| {
        let mut student = student.clone();
        student.regressor = Some(fitnets::model::config::RegressorConfig { kernel: Some(kernel), pieces: None });
        let err = regressor_shape(&student, &teacher).unwrap_err().to_string();
        assert!(err.contains(needle), "kernel {kernel}: {err}");
    };
    check(8, "cannot map");
    check(3, "too small");
}

#[test]
fn bad_configs_are_clear_errors() {
    let check = |text: &str, needle: &str| {
        let err = format!("{:#}", NetConfig::parse(text).unwrap_err());
        assert!(err.contains(needle), "{needle:?} not in {err}");
    };
    check("name = 'x'\ninput = [8, 8, 1]\nclasses = 3\nlayers = []", "no layers");
    check(
        &STUDENT
            .replace("units = 4\n\"#", "units = 5\n\"#")
            .replace("[[layers]]\ntype = \"dense\"\nunits = 4", "[[layers]]\ntype = \"dense\"\nunits = 5"),
        "last layer must be dense with 4 units",
    );
    check(&STUDENT.replace("guided = \"conv2\"", "guided = \"nope\""), "no layer is named `nope`");
    check(&STUDENT.replacen("kernel = 3", "kernel = 30", 1), "larger than the (padded) input");
    check(&STUDENT.replacen("pieces = 2", "pieces = 2\nactivation = \"relu\"", 1), "maxout takes no activation");
    check(&STUDENT.replacen("type = \"conv\"", "type = \"deconv\"", 1), "deconv");
}

#[test]
fn batches_are_normalized_nchw() {
    let data = pattern_dataset(3, 9);
    let batcher = Batcher {
        normalization: fitnets::data::Normalization { mean: vec![0.5], std: vec![0.25] },
        augment: Augment::default(),
    };
    let images = batcher.images::<Inner>(&data, &[2, 0], None, &Default::default());
    assert_eq!(images.dims(), [2, 1, 12, 12]);
    let values: Vec<f32> = images.into_data().iter::<f32>().collect();
    let expected = (f32::from(data.image(2)[13]) / 255.0 - 0.5) / 0.25;
    assert!((values[13] - expected).abs() < 1e-6);
}

#[test]
fn configs_survive_a_round_trip_through_toml() {
    // Every shipped config, so a new one is covered when it is added.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs");
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "toml"));
    assert!(paths.len() >= 8, "{paths:?}");
    for path in paths {
        let original = NetConfig::load(&path).unwrap();
        let text = toml::to_string(&original).unwrap();
        assert_eq!(NetConfig::parse(&text).unwrap(), original, "{}", path.display());
    }
}

/// The test teacher with fresh random weights.
fn untrained_teacher() -> Net<Inner> {
    let _guard = rng_lock();
    Net::<Inner>::new(&NetConfig::parse(TEACHER).unwrap(), &Default::default()).unwrap()
}

const MIRROR: Views = Views { mirror: true, shift: false };
const SHIFT: Views = Views { mirror: false, shift: true };
const BOTH: Views = Views { mirror: true, shift: true };

#[test]
fn averaged_predictions_are_means_over_the_views() {
    let net = untrained_teacher();
    let splits = splits();
    let batcher = splits.batcher(Augment::default());
    let background = batcher.normalization.background();
    let test = &splits.test;
    let (h, w, c) = (test.height, test.width, test.channels);
    let indices = [0, 5, 9];
    let device = Default::default();
    let images = batcher.images::<Inner>(test, &indices, None, &device);
    let max_diff = |a: Tensor<Inner, 2>, b: Tensor<Inner, 2>| -> f32 { (a - b).abs().max().into_scalar() };
    let plain = net.predict(images.clone(), Views::PLAIN, &background);
    assert_eq!(max_diff(plain, net.forward(images.clone())), 0.0);
    // The views as the training augmentation makes them, from the bytes: moved with
    // zeros coming in, mirrored after.
    let view = |dy: isize, dx: isize, mirror: bool| {
        let mut moved = test.subset(&indices);
        for (i, out) in moved.images.chunks_exact_mut(h * w * c).enumerate() {
            fitnets::data::augment::translate(test.image(indices[i]), h, w, c, dy, dx, out);
            if mirror {
                fitnets::data::augment::hflip(out, h, w, c);
            }
        }
        net.forward(batcher.images::<Inner>(&moved, &[0, 1, 2], None, &device))
    };
    let shifts = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)];
    let mean = |views: &[(isize, isize, bool)]| {
        let sum = views.iter().map(|&(dy, dx, m)| view(dy, dx, m)).reduce(|a, b| a + b).unwrap();
        sum / views.len() as f32
    };
    let mirror = mean(&[(0, 0, false), (0, 0, true)]);
    let shift: Vec<_> = shifts.iter().map(|&(dy, dx)| (dy, dx, false)).collect();
    let both: Vec<_> = shifts.iter().flat_map(|&(dy, dx)| [(dy, dx, false), (dy, dx, true)]).collect();
    for (views, expected) in [(MIRROR, mirror), (SHIFT, mean(&shift)), (BOTH, mean(&both))] {
        let diff = max_diff(net.predict(images.clone(), views, &background), expected);
        assert!(diff <= 1e-5, "{views:?} differ from the mean of their views by {diff}");
    }
    // The generated images are not symmetric, so mirroring changes the plain logits and
    // the shift-averaged ones...
    let mirrored = images.clone().flip([3]);
    for views in [Views::PLAIN, SHIFT] {
        let diff = max_diff(
            net.predict(images.clone(), views, &background),
            net.predict(mirrored.clone(), views, &background),
        );
        assert!(diff > 1e-3, "{views:?}");
    }
    // ...but not those averaged with mirror images: bit for bit, so a cache of them
    // serves mirrored images too.
    for views in [MIRROR, BOTH] {
        let diff = max_diff(
            net.predict(images.clone(), views, &background),
            net.predict(mirrored.clone(), views, &background),
        );
        assert_eq!(diff, 0.0, "{views:?}");
    }
}

#[test]
fn cached_teacher_outputs_equal_a_fresh_forward_pass() {
    use fitnets::train::teacher_cache::{CachedOutput, Placements, TeacherCache};
    use rand::SeedableRng;
    let net = untrained_teacher();
    let splits = splits();
    let plain = splits.batcher(Augment::default());
    let augmented = splits.batcher(Augment { shift: 1, hflip: true, ..Augment::default() });
    let device = Default::default();
    let every = |mirrored| Placements { reach: 1, mirrored };
    // Without augmentation, one entry an image; with shifts and flips, one for each
    // placement, except that mirror-averaging teachers share theirs with the mirror.
    let cases = [
        (CachedOutput::Layers(1), Placements::IDENTITY),
        (CachedOutput::Layers(net.layers.len()), Placements::IDENTITY),
        (CachedOutput::Logits { views: Views::PLAIN }, Placements::IDENTITY),
        (CachedOutput::Logits { views: MIRROR }, Placements::IDENTITY),
        (CachedOutput::Logits { views: BOTH }, Placements::IDENTITY),
        (CachedOutput::Logits { views: Views::PLAIN }, every(true)),
        (CachedOutput::Logits { views: MIRROR }, every(false)),
        (CachedOutput::Logits { views: BOTH }, every(false)),
    ];
    for (output, placements) in cases {
        let batcher = if placements == Placements::IDENTITY { &plain } else { &augmented };
        let cache = TeacherCache::build(&net, output, &splits.train, batcher, placements, &device);
        assert_eq!(cache.placements(), placements);
        let indices = [17, 3, 1100, 3, 0, 42, 42, 42, 42, 42, 42, 5, 9, 11, 12, 13];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (images, drawn) = batcher.placed_images::<Inner>(&splits.train, &indices, Some(&mut rng), &device);
        if placements != Placements::IDENTITY {
            assert!(drawn.iter().any(|p| p.mirrored) && drawn.iter().any(|p| !p.mirrored), "{drawn:?}");
            assert!(drawn.iter().any(|p| p.dy != 0) && drawn.iter().any(|p| p.dx != 0), "{drawn:?}");
        }
        let fresh = match output {
            CachedOutput::Layers(layers) => net.forward_to(images, layers).map(),
            CachedOutput::Logits { views } => {
                let [n, c] = [indices.len(), 4];
                net.predict(images, views, &batcher.normalization.background()).reshape([n, c, 1, 1])
            }
        };
        let cached = cache.gather::<Inner>(&indices, &drawn, &device);
        assert_eq!(fresh.dims(), cached.dims());
        let diff: f32 = (fresh - cached).abs().max().into_scalar();
        assert!(diff <= 1e-5, "cached {output:?} at {placements:?} differ by {diff}");
    }
}

#[test]
fn a_batch_split_over_devices_trains() {
    // Data parallelism with the same device twice (no GPUs here): each batch is split
    // in two shards on two copies of the model. Training still learns; that the summed
    // gradients equal the whole batch's is checked in `fit`'s unit tests (the trained
    // weights themselves drift apart by rounding, which Adam amplifies).
    let _rng = rng_lock();
    let splits = splits();
    let teacher = trained_teacher(&splits);
    let config = NetConfig::parse(STUDENT).unwrap();
    let device: <B as burn::tensor::backend::BackendTypes>::Device = Default::default();
    let run = temp_run("parallel");
    let (net, _, history) = method::train_student::<B>(
        &config,
        Method::Kd,
        Teacher { net: &teacher, config: &NetConfig::parse(TEACHER).unwrap(), views: Views::PLAIN },
        &splits,
        &schedule(4, 11),
        None,
        KdSettings::default(),
        &run,
        &Workers::new(vec![device, device], None, std::time::Duration::from_secs(600)).unwrap(),
    )
    .unwrap();
    std::fs::remove_dir_all(run.path()).unwrap();
    assert_eq!(history.len(), 4);
    use burn::module::AutodiffModule as _;
    let accuracy = test_accuracy(&net.valid(), &splits);
    assert!(accuracy > 0.6, "{accuracy}");
}
