//! What several test files share: generators of arbitrary configs for property tests
//! and corpora.

#![allow(dead_code)] // each test file uses part of it

use std::fmt::Write as _;

use std::path::Path;
use std::process::Command;

use fitnets::data::{Augment, Dataset};
use fitnets::train::schedule::{OptimizerKind, Schedule};
use fitnets_tests::SplitMix;
use proptest::prelude::*;

/// A number a user might write: mostly small, sometimes zero, negative or enormous.
fn number() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..6,
        2 => 6i64..40,
        1 => Just(-1i64),
        1 => prop::sample::select(vec![1_000_000i64, 1_000_000_000, 1 << 62, i64::MAX, 4096, 65_537]),
    ]
}

#[derive(Clone, Debug)]
enum Layer {
    Conv { units: i64, pieces: i64, kernel: i64, stride: i64, padding: Result<i64, &'static str>, relu: bool },
    Pool { kernel: i64, stride: Option<i64>, padding: i64, ceil: bool },
    Dropout { p: f64 },
    Dense { units: i64, pieces: i64 },
}

fn layer() -> impl Strategy<Value = Layer> {
    let padding = prop_oneof![number().prop_map(Ok), prop::sample::select(vec!["same", "valid", "full"]).prop_map(Err)];
    prop_oneof![
        4 => (number(), number(), number(), number(), padding, any::<bool>()).prop_map(
            |(units, pieces, kernel, stride, padding, relu)| Layer::Conv { units, pieces, kernel, stride, padding, relu }
        ),
        2 => (number(), prop::option::of(number()), number(), any::<bool>())
            .prop_map(|(kernel, stride, padding, ceil)| Layer::Pool { kernel, stride, padding, ceil }),
        1 => prop_oneof![Just(0.0), Just(0.5), Just(1.0), Just(-0.1), Just(f64::NAN)].prop_map(|p| Layer::Dropout { p }),
        2 => (number(), number()).prop_map(|(units, pieces)| Layer::Dense { units, pieces }),
    ]
}

/// A layer as a user editing a preset would write it: mostly sensible sizes, now and
/// then one out of range.
fn plausible_layer() -> impl Strategy<Value = Layer> {
    let small = |lo: i64, hi: i64| prop_oneof![9 => lo..=hi, 1 => number()];
    let padding = prop_oneof![
        3 => (0i64..3).prop_map(Ok),
        1 => prop::sample::select(vec!["same", "valid"]).prop_map(Err),
    ];
    prop_oneof![
        4 => (small(1, 6), small(1, 3), small(1, 3), small(1, 2), padding, any::<bool>()).prop_map(
            |(units, pieces, kernel, stride, padding, relu)| Layer::Conv { units, pieces, kernel, stride, padding, relu }
        ),
        2 => (small(1, 3), prop::option::of(small(1, 2)), small(0, 1), any::<bool>())
            .prop_map(|(kernel, stride, padding, ceil)| Layer::Pool { kernel, stride, padding, ceil }),
        1 => prop_oneof![Just(0.0), Just(0.5)].prop_map(|p| Layer::Dropout { p }),
        1 => (small(1, 8), small(1, 2)).prop_map(|(units, pieces)| Layer::Dense { units, pieces }),
    ]
}

/// Configs as TOML text: half of them wild (any size, anywhere), half plausible.
pub fn config() -> impl Strategy<Value = String> {
    let wild = (
        [number(), number(), number()],
        number(),
        prop::collection::vec(layer(), 0..6),
        prop::option::of(0usize..6),
        any::<bool>(),
    );
    let plausible = (
        [4i64..13, 4i64..13, 1i64..4],
        prop_oneof![9 => 2i64..11, 1 => number()],
        prop::collection::vec(plausible_layer(), 0..6),
        prop::option::of(0usize..6),
        prop_oneof![9 => Just(true), 1 => Just(false)],
    );
    prop_oneof![wild, plausible].prop_map(|(input, classes, layers, named, last_dense)| {
        let mut text =
            format!("name = \"p\"\ninput = [{}, {}, {}]\nclasses = {classes}\n", input[0], input[1], input[2]);
        if let Some(i) = named {
            let _ = writeln!(text, "hint = \"l{i}\"\nguided = \"l{i}\"");
        }
        for (i, layer) in layers.iter().enumerate() {
            let _ = writeln!(text, "[[layers]]\nname = \"l{i}\"");
            match layer {
                Layer::Conv { units, pieces, kernel, stride, padding, relu } => {
                    let _ = writeln!(
                        text,
                        "type = \"conv\"\nunits = {units}\npieces = {pieces}\nkernel = {kernel}\nstride = {stride}"
                    );
                    let _ = match padding {
                        Ok(p) => writeln!(text, "padding = {p}"),
                        Err(name) => writeln!(text, "padding = \"{name}\""),
                    };
                    if *relu {
                        let _ = writeln!(text, "activation = \"relu\"");
                    }
                }
                Layer::Pool { kernel, stride, padding, ceil } => {
                    let _ =
                        writeln!(text, "type = \"max_pool\"\nkernel = {kernel}\npadding = {padding}\nceil = {ceil}");
                    if let Some(s) = stride {
                        let _ = writeln!(text, "stride = {s}");
                    }
                }
                Layer::Dropout { p } => {
                    let p = if p.is_nan() { "nan".to_string() } else { format!("{p:?}") };
                    let _ = writeln!(text, "type = \"dropout\"\np = {p}");
                }
                Layer::Dense { units, pieces } => {
                    let _ = writeln!(text, "type = \"dense\"\nunits = {units}\npieces = {pieces}");
                }
            }
        }
        if last_dense {
            let _ = writeln!(text, "[[layers]]\ntype = \"dense\"\nunits = {classes}");
        }
        text
    })
}

pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// A small IDX set in `dir`: `train` and `test` images of `h`x`w`x`c`, labels cycling
/// over `classes`, each class a brighter band at its own rows. `seed` varies the pixels.
pub fn write_idx(dir: &Path, (train, test): (u32, u32), [h, w, c]: [u32; 3], classes: u8, seed: u8) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let pixels = (h * w * c) as usize;
        let mut images = Vec::with_capacity(n as usize * pixels);
        let mut labels = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            let label = (i % usize::from(classes)) as u8;
            labels.push(label);
            for p in 0..pixels {
                let row = p / (w * c) as usize;
                let band = row % usize::from(classes) == usize::from(label);
                let noise = ((i * 31 + p * 7 + usize::from(seed)) % 40) as u8;
                images.push(if band { 180 + noise } else { noise });
            }
        }
        let dims: Vec<u32> = if c == 1 { vec![n, h, w] } else { vec![n, h, w, c] };
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), idx(&dims, &images)).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[n], &labels)).unwrap();
    }
}

/// A tiny teacher for 8x8x1 images of 3 classes, its hint layer `pool1`.
pub const TEACHER: &str = include_str!("../fixtures/common-teacher.toml");

/// A tiny student for the same images, its guided layer `pool1`.
pub const STUDENT: &str = include_str!("../fixtures/common-student.toml");

/// Runs the `fitnets` binary: `(exit code, stdout, stderr)`.
pub fn fitnets(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fitnets")).args(args).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs `fitnets` and requires a clean refusal (exit 1 for ours, 2 for clap's) whose
/// message holds every one of `needles`.
#[track_caller]
pub fn refused(args: &[&str], needles: &[&str]) -> String {
    let (code, stdout, stderr) = fitnets(args);
    assert!(code == 1 || code == 2, "`fitnets {}` exited {code}\nstdout: {stdout}\nstderr: {stderr}", args.join(" "));
    assert!(!stderr.contains("panicked"), "`fitnets {}` panicked: {stderr}", args.join(" "));
    for needle in needles {
        assert!(stderr.contains(needle), "`fitnets {}`: no `{needle}` in\n{stderr}", args.join(" "));
    }
    stderr
}

/// Runs `fitnets` and requires success: `(stdout, stderr)`.
#[track_caller]
pub fn ok(args: &[&str]) -> (String, String) {
    let (code, stdout, stderr) = fitnets(args);
    assert_eq!(code, 0, "`fitnets {}` failed\nstdout: {stdout}\nstderr: {stderr}", args.join(" "));
    (stdout, stderr)
}

/// 12x12 grey images of 4 classes: a bright bar (vertical, horizontal, diagonal or a
/// square) at a random place, on noise.
pub fn pattern_dataset(n: usize, seed: u64) -> Dataset {
    let (h, w) = (12usize, 12usize);
    let mut rng = SplitMix(seed);
    let mut images = vec![0u8; n * h * w];
    let mut labels = vec![0u8; n];
    for i in 0..n {
        let label = rng.below(4) as u8;
        labels[i] = label;
        let image = &mut images[i * h * w..(i + 1) * h * w];
        for p in image.iter_mut() {
            *p = rng.below(60) as u8;
        }
        let (y0, x0) = (2 + rng.below(4), 2 + rng.below(4));
        for k in 0..6 {
            let (y, x) = match label {
                0 => (y0 + k, x0),
                1 => (y0, x0 + k),
                2 => (y0 + k, x0 + k),
                _ => (y0 + k / 3, x0 + k % 3),
            };
            image[y * w + x] = 200 + rng.below(55) as u8;
        }
    }
    Dataset { images, labels, height: h, width: w, channels: 1, classes: 4, name: "patterns".into() }
}

/// How the pattern sets train in seconds: Adam from 3e-3 to 3e-4, batches of 32.
pub fn schedule(epochs: usize, seed: u64) -> Schedule {
    Schedule {
        epochs,
        batch_size: 32,
        optimizer: OptimizerKind::Adam,
        learning_rate: 3e-3,
        final_learning_rate: 3e-4,
        seed,
        augment: Augment::default(),
    }
}
