//! Students generated for the depth sweep: on budget at every depth, stages and the
//! guided layer where the paper puts them, the regressor by the paper's rule; the sweep
//! and the teacher options it relies on, end to end on generated data.

use fitnets::model::config::LayerConfig;
use fitnets::model::generate::{self, StudentSpec, TOLERANCE};
use fitnets::model::regressor::regressor_shape;
use fitnets::model::{NetConfig, count};
use fitnets_tests::SplitMix;

const FITNET_MACS: u64 = 5_947_032;

fn spec(depth: usize, budget_macs: u64) -> StudentSpec {
    StudentSpec::sweep(depth, budget_macs, [28, 28, 1], 10)
}

#[test]
fn every_depth_hits_the_budget() {
    for budget in [FITNET_MACS, 1_000_000, 30_000_000] {
        let mut previous_width = usize::MAX;
        for depth in [3, 4, 5, 6, 7, 9, 11, 13] {
            let (config, text) = generate::student(&spec(depth, budget)).unwrap();
            let (_, macs) = count::totals(&config).unwrap();
            let off = (macs as f64 - budget as f64).abs() / budget as f64;
            assert!(off <= TOLERANCE, "depth {depth}: {macs} MACs, {:.1}% off {budget}", 100.0 * off);
            let widths: Vec<usize> = config
                .layers
                .iter()
                .filter_map(|l| match l {
                    LayerConfig::Conv { units, .. } => Some(*units),
                    _ => None,
                })
                .collect();
            assert_eq!(widths.len(), depth);
            // Deeper students are thinner at the same budget.
            let widest = *widths.iter().max().unwrap();
            assert!(widest <= previous_width, "depth {depth} is wider ({widest}) than the one before");
            previous_width = widest;
            // The TOML written for the run reads back to the same network.
            assert_eq!(NetConfig::parse(&text).unwrap(), config);
        }
    }
}

#[test]
fn stages_spread_the_layers_and_the_guided_layer_ends_the_middle_stage() {
    assert_eq!(generate::stages(3), [1, 1, 1]);
    assert_eq!(generate::stages(5), [1, 2, 2]);
    assert_eq!(generate::stages(7), [2, 2, 3]);
    assert_eq!(generate::stages(13), [4, 4, 5]);
    let teacher =
        NetConfig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/mnist-teacher.toml")))
            .unwrap();
    for depth in [3, 6, 13] {
        let (config, _) = generate::student(&spec(depth, FITNET_MACS)).unwrap();
        let shapes = config.shapes().unwrap();
        let guided = config.layer_index("pool2").unwrap();
        assert_eq!(config.guided.as_deref(), Some("pool2"));
        let [_, h, w] = shapes[guided];
        assert_eq!([h, w], [7, 7], "depth {depth}");
        // The guided layer comes after 2/3 of the convs or so, as the FitNet's 4th of 6.
        let convs_before = config.layers[..guided].iter().filter(|l| matches!(l, LayerConfig::Conv { .. })).count();
        assert_eq!(convs_before, generate::stages(depth)[0] + generate::stages(depth)[1]);
        // The paper's rule: a valid regressor with kernel N_g - N_h + 1 = 7 - 3 + 1.
        let regressor = regressor_shape(&config, &teacher).unwrap();
        assert_eq!(regressor.kernel, [5, 5]);
        assert_eq!(regressor.padding, [0, 0]);
        assert_eq!(regressor.units, 48);
    }
}

#[test]
fn impossible_students_are_clear_errors() {
    let error = generate::student(&spec(2, FITNET_MACS)).unwrap_err().to_string();
    assert!(error.contains("at least 3 conv layers"), "{error}");
    let error = generate::student(&spec(13, 10_000)).unwrap_err().to_string();
    assert!(error.contains("cannot hold 13 layers"), "{error}");
    let tiny = StudentSpec::sweep(3, FITNET_MACS, [3, 3, 1], 10);
    assert!(generate::student(&tiny).unwrap_err().to_string().contains("4x4"));
}

#[test]
fn fit_students_take_their_pieces_and_split() {
    for (pieces, split) in [(1, [1, 2, 3]), (3, [3, 2, 1]), (2, [2, 2, 2])] {
        let spec = StudentSpec { pieces, split, ..spec(6, FITNET_MACS) };
        let (config, _) = generate::student(&spec).unwrap();
        let mut per_stage = [0; 3];
        let mut stage = 0;
        for layer in &config.layers {
            match layer {
                LayerConfig::Conv { pieces: p, activation, .. } => {
                    assert_eq!(*p, pieces);
                    // One piece is a plain conv: it gets a ReLU, maxout needs none.
                    assert_eq!(*activation != Default::default(), pieces == 1, "{activation:?}");
                    per_stage[stage] += 1;
                }
                LayerConfig::MaxPool { .. } => stage += 1,
                _ => {}
            }
        }
        assert_eq!(per_stage, split, "{pieces} pieces");
        assert_eq!(config.conv_widths().len(), 6);
    }
    let wrong = StudentSpec { split: [1, 1, 2], ..spec(6, FITNET_MACS) };
    assert!(generate::student(&wrong).unwrap_err().to_string().contains("must hold the 6 conv layers"));
    let none = StudentSpec { split: [0, 3, 3], ..spec(6, FITNET_MACS) };
    assert!(generate::student(&none).is_err());
    let pieces = StudentSpec { pieces: 5, ..spec(6, FITNET_MACS) };
    assert!(generate::student(&pieces).unwrap_err().to_string().contains("pieces must be 1 to 4"));
}

/// An IDX file of `u8` elements.
fn idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        bytes.extend((d as u32).to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

/// `n` 12x12 images of 4 classes: noise with a bright 4x4 square in the class's corner.
fn write_patterns(dir: &std::path::Path, prefix: &str, n: usize, seed: u64) {
    let mut rng = SplitMix(seed);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let class = i % 4;
        let mut image: Vec<u8> = (0..144).map(|_| rng.below(100) as u8).collect();
        let (top, left) = [(1, 1), (1, 7), (7, 1), (7, 7)][class];
        for y in top..top + 4 {
            for x in left..left + 4 {
                image[y * 12 + x] = 200 + rng.below(55) as u8;
            }
        }
        images.extend(image);
        labels.push(class as u8);
    }
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), idx(&[n, 12, 12], &images)).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[n], &labels)).unwrap();
}

const TINY_TEACHER: &str = include_str!("fixtures/sweep-tiny-teacher.toml");

fn fitnets(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fitnets")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// A fresh temporary directory with `data/` (`train` generated images with `seed`, 100
/// test images) and the tiny teacher's config as `teacher.toml`.
fn tiny_data_set(name: &str, train: usize, seed: u64) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fitnets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write_patterns(&dir.join("data"), "train", train, seed);
    write_patterns(&dir.join("data"), "t10k", 100, seed + 1);
    std::fs::write(dir.join("teacher.toml"), TINY_TEACHER).unwrap();
    dir
}

#[test]
fn a_tiny_sweep_runs_end_to_end_and_resumes() {
    let dir = tiny_data_set("sweep", 600, 1);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (data, teacher, runs, config) = (path("data"), path("teacher"), path("sweep"), path("teacher.toml"));
    let common = ["--data", &data, "--valid", "100", "--batch", "32", "--optimizer", "adam", "--lr", "3e-3"];
    let mut train = vec!["train", "teacher", "--config", &config, "--run", &teacher, "--epochs", "2"];
    train.extend(common);
    let (ok, _, stderr) = fitnets(&train);
    assert!(ok, "{stderr}");

    // The students train on a sample of the teacher's training images (a CPU setting).
    let mut sweep = vec!["sweep", "--teacher", &teacher, "--budget-macs", "40000", "--depths", "3,4"];
    sweep.extend(["--student-epochs", "2", "--hint-epochs", "1", "--runs", &runs, "--subset", "300"]);
    sweep.extend(common);
    let (ok, stdout, stderr) = fitnets(&sweep);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("sweep: depth 4, hints"), "{stderr}");
    let table = std::fs::read_to_string(dir.join("sweep/table.md")).unwrap();
    assert!(stdout.ends_with(&table), "{stdout}");
    assert!(table.contains("on a seeded sample of 300 training images"), "{table}");
    assert!(table.contains("| conv layers | units per layer | parameters | MACs | scratch | kd | hints |"), "{table}");
    for depth in ["| 3 |", "| 4 |"] {
        let line = table.lines().find(|l| l.starts_with(depth)).unwrap_or_else(|| panic!("no {depth} row in {table}"));
        assert_eq!(line.matches('%').count(), 3, "{line}");
    }
    assert!(dir.join("sweep/depth-3/config.toml").exists());
    let chart = std::fs::read_to_string(dir.join("sweep/depth.svg")).unwrap();
    for text in ["conv layers", "FitNet scratch", "FitNet hints", "teacher tiny-teacher"] {
        assert!(chart.contains(text), "{text} missing from the chart");
    }
    // Every method saw the teacher's normalization and validation images, and the sample.
    let teacher_data = run_data(&dir.join("teacher"));
    for method in ["scratch", "kd", "hints"] {
        let data = run_data(&dir.join("sweep/depth-4").join(method));
        assert_eq!(data["normalization"], teacher_data["normalization"], "{method}");
        assert_eq!(data["valid_images"], 100, "{method}");
        assert_eq!(data["train_images"], 300, "{method}");
    }
    // `fitnets eval` normalizes as the run was trained, whatever the sample options.
    let kd_run = path("sweep/depth-3/kd");
    let (ok, stdout, stderr) = fitnets(&["eval", &kd_run, "--data", &data]);
    assert!(ok, "{stderr}");
    let kd_line = table.lines().find(|l| l.starts_with("| 3 |")).unwrap();
    let kd_accuracy = kd_line.trim_matches('|').split('|').nth(5).unwrap().trim();
    assert!(stdout.contains(&format!("test accuracy {kd_accuracy} on 100 images")), "{stdout} against {kd_line}");

    // Finished runs are reused: nothing is trained again.
    let (ok, stdout, stderr) = fitnets(&sweep);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("sweep: depth"), "{stderr}");
    assert_eq!(stdout, table);
    // A sweep of one depth (one process per GPU) shows every depth of the directory.
    let mut one = sweep.clone();
    one[6] = "3";
    let (ok, stdout, stderr) = fitnets(&one);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, table);

    // Two processes of one depth each at once (one per GPU) fill the same table.
    let spawn = |depth: &str| {
        let mut args = sweep.clone();
        args[6] = depth;
        std::process::Command::new(env!("CARGO_BIN_EXE_fitnets"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (five, six) = (spawn("5"), spawn("6"));
    for child in [five, six] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (ok, stdout, stderr) = fitnets(&one);
    assert!(ok, "{stderr}");
    for depth in ["| 3 |", "| 4 |", "| 5 |", "| 6 |"] {
        let line = stdout.lines().find(|l| l.starts_with(depth)).unwrap_or_else(|| panic!("no {depth} in {stdout}"));
        assert_eq!(line.matches('%').count(), 3, "{line}");
    }
    let table = stdout;

    // Another setting in the same directory is an error that shows both, not a mixed table.
    let mut other = sweep.clone();
    other[8] = "3";
    let (ok, _, stderr) = fitnets(&other);
    assert!(!ok);
    assert!(stderr.contains("holds a sweep with another setting"), "{stderr}");
    assert!(stderr.contains("trained 2 epochs") && stderr.contains("trained 3 epochs"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("sweep/table.md")).unwrap(), table);

    // A student must hold out its teacher's validation images.
    let student = path("student");
    let mut train = vec!["train", "student", "--method", "kd", "--teacher", &teacher, "--run", &student];
    train.extend(["--config", &config, "--data", &data, "--valid", "50"]);
    let (ok, _, stderr) = fitnets(&train);
    assert!(!ok);
    assert!(stderr.contains("pass the teacher's data options (--valid 100 --split-seed 1)"), "{stderr}");
    assert!(!dir.join("student").exists(), "a refused run leaves no directory");

    // A run resumes only on the data it started on.
    let mut resume = vec!["train", "student", "--method", "scratch", "--teacher", &teacher, "--resume"];
    resume.extend(["--run", &kd_run, "--config", &config, "--data", &data, "--valid", "100", "--subset", "200"]);
    let (ok, _, stderr) = fitnets(&resume);
    assert!(!ok);
    assert!(stderr.contains("was started on other data"), "{stderr}");
    assert!(stderr.contains("300 training and 100 validation") && stderr.contains("200 training"), "{stderr}");
    // ... with the network, the method and the settings it was started with.
    *resume.last_mut().unwrap() = "300";
    let (ok, _, stderr) = fitnets(&resume);
    assert!(!ok);
    assert!(stderr.contains("was started with another network config (sweep-depth3;"), "{stderr}");
    let kd_config = format!("{kd_run}/config.toml");
    resume[10] = &kd_config;
    let (ok, _, stderr) = fitnets(&resume);
    assert!(!ok);
    assert!(stderr.contains("was started with --method kd (you gave --method scratch)"), "{stderr}");
    resume[3] = "kd";
    resume[5] = &kd_run;
    let (ok, _, stderr) = fitnets(&resume);
    assert!(!ok);
    // A student run is no teacher, whatever the run was started with.
    assert!(stderr.contains(&format!("--teacher {kd_run} is a student run")), "{stderr}");
    resume[5] = &teacher;
    resume.extend(["--epochs", "5"]);
    let (ok, _, stderr) = fitnets(&resume);
    assert!(!ok);
    assert!(stderr.contains("'--resume' cannot be used with '--epochs <N>'"), "{stderr}");
    // Told what it was started with, a finished run resumes to the same result.
    resume.truncate(resume.len() - 2);
    let result = std::fs::read_to_string(dir.join("sweep/depth-3/kd/result.json")).unwrap();
    let (ok, _, stderr) = fitnets(&resume);
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("sweep/depth-3/kd/result.json")).unwrap(), result);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compare_reuses_only_runs_with_its_settings() {
    let dir = tiny_data_set("compare", 400, 5);
    let student = TINY_TEACHER.replace("tiny-teacher", "tiny-student").replace("hint =", "guided =");
    std::fs::write(dir.join("student.toml"), student).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (data, runs, teacher, student) = (path("data"), path("compare"), path("teacher.toml"), path("student.toml"));
    let mut compare = vec!["compare", "--runs", &runs, "--teacher-config", &teacher, "--student-config", &student];
    compare.extend(["--teacher-epochs", "1", "--student-epochs", "2", "--hint-epochs", "1"]);
    compare.extend(["--data", &data, "--valid", "100", "--batch", "32", "--optimizer", "adam", "--lr", "3e-3"]);
    compare.extend(["--shift", "1"]);
    let (ok, _, stderr) = fitnets(&compare);
    assert!(ok, "{stderr}");
    let table = std::fs::read_to_string(dir.join("compare/table.md")).unwrap();
    assert!(table.contains("| FitNet hints |"), "{table}");
    // The same command reuses every run: nothing trains again.
    let (ok, stdout, stderr) = fitnets(&compare);
    assert!(ok, "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("epoch 1/"), "{stdout}{stderr}");
    assert_eq!(stdout, table);
    // Another student schedule in the same directory would mix schedules in one table.
    compare[10] = "3";
    let (ok, _, stderr) = fitnets(&compare);
    assert!(!ok);
    assert!(stderr.contains("holds a run started with other settings than this command gives it"), "{stderr}");
    assert!(stderr.contains("\"epochs\":2") && stderr.contains("\"epochs\":3"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("compare/table.md")).unwrap(), table);
    // Nor are students reused once their teacher averages other views than they distilled.
    compare[10] = "2";
    let resume = ["train", "teacher", "--config", &teacher, "--run", &format!("{runs}/teacher"), "--resume"];
    let (ok, _, stderr) = fitnets(&[&resume[..], &["--shift-average", "--data", &data, "--valid", "100"]].concat());
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = fitnets(&compare);
    assert!(!ok && stderr.contains("when it classified plain; it now classifies shift-averaged"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("compare/table.md")).unwrap(), table);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The `data` object of a run's `run.json`.
fn run_data(run: &std::path::Path) -> serde_json::Value {
    run_json(run)["data"].clone()
}

#[test]
fn a_flip_averaged_teacher_evaluates_and_teaches_so() {
    let dir = tiny_data_set("flip", 400, 3);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (data, teacher, config) = (path("data"), path("teacher"), path("teacher.toml"));
    let common = ["--data", &data, "--valid", "100", "--batch", "32", "--optimizer", "adam", "--lr", "3e-3"];
    let mut train = vec!["train", "teacher", "--config", &config, "--run", &teacher, "--epochs", "2", "--flip-average"];
    train.extend(common);
    // Averaging over mirror images needs a network trained on them.
    let (ok, _, stderr) = fitnets(&train);
    assert!(!ok && stderr.contains("--hflip"), "{stderr}");
    assert!(!dir.join("teacher").exists());
    // Averaging over shifted images, on shifted ones.
    let mut shifted = train.clone();
    shifted.extend(["--hflip", "--shift-average"]);
    let (ok, _, stderr) = fitnets(&shifted);
    assert!(!ok && stderr.contains("--shift"), "{stderr}");
    assert!(!dir.join("teacher").exists());
    train.push("--hflip");
    let (ok, stdout, stderr) = fitnets(&train);
    assert!(ok, "{stderr}");
    assert_eq!(run_json(&dir.join("teacher"))["flip_average"], true);
    let trained = stdout.split("test accuracy ").nth(1).and_then(|s| s.split(',').next()).unwrap().to_string();
    // `eval` classifies as the run does and says so.
    let (ok, stdout, stderr) = fitnets(&["eval", &teacher, "--data", &data]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("test accuracy {trained} on 100 images, each averaged with its mirror image")),
        "{stdout}"
    );
    // A student distils the averaged logits, cached once.
    let student = path("student");
    let mut kd = vec!["train", "student", "--method", "kd", "--teacher", &teacher, "--run", &student];
    kd.extend(["--config", &config, "--epochs", "1"]);
    kd.extend(common);
    let (ok, _, stderr) = fitnets(&kd);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("the teacher's outputs for 300 training images computed once"), "{stderr}");
    assert!(run_json(&dir.join("student")).get("flip_average").is_none(), "a student classifies plainly");
    // Mirrored images keep those logits, so the cache serves a student trained with
    // flips alone; any other change of the image, or a teacher that does not average,
    // rules it out.
    let plain_teacher = path("plain-teacher");
    let mut plain = train.clone();
    plain[5] = &plain_teacher;
    plain.retain(|arg| *arg != "--flip-average");
    let (ok, _, stderr) = fitnets(&plain);
    assert!(ok, "{stderr}");
    let cases: [(&str, &[&str], bool); 5] = [
        (&teacher, &["--hflip"], true),
        (&teacher, &["--shift", "1"], false),
        (&teacher, &["--hflip", "--erase"], false),
        (&teacher, &["--hflip", "--crop-pad", "1"], false),
        (&plain_teacher, &["--hflip"], false),
    ];
    for (k, (teacher, augment, cached)) in cases.into_iter().enumerate() {
        let run = path(&format!("student-{k}"));
        let mut args = kd.clone();
        args[5] = teacher;
        args[7] = &run;
        args.extend(augment);
        let (ok, _, stderr) = fitnets(&args);
        assert!(ok, "{stderr}");
        assert_eq!(stderr.contains("computed once"), cached, "{teacher} {augment:?}: {stderr}");
    }
    // With more epochs to run than an image has placements, the logits of every
    // placement are computed once instead (9 translations; mirrors share them here).
    let run = path("student-shifted");
    let mut args = kd.clone();
    args[7] = &run;
    assert_eq!(args[10..12], ["--epochs", "1"]);
    args[11] = "10";
    args.extend(["--shift", "1", "--hflip"]);
    let (ok, _, stderr) = fitnets(&args);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("for 300 training images at 9 placements each computed once"), "{stderr}");
    // Views can be added to a finished run: it is evaluated again and then classifies
    // (and teaches) so; a view it was not trained for is refused and changes nothing.
    let (ok, stdout, stderr) = fitnets(&["eval", &plain_teacher, "--flip-average", "--data", &data]);
    assert!(ok, "{stderr}");
    let averaged = stdout.split("test accuracy ").nth(1).and_then(|s| s.split(" on").next()).unwrap().to_string();
    let resume = ["train", "teacher", "--config", &config, "--run", &plain_teacher, "--resume"];
    let data_options = ["--data", &data, "--valid", "100"];
    let (ok, _, stderr) = fitnets(&[&resume[..], &["--shift-average"], &data_options].concat());
    assert!(!ok && stderr.contains("--shift"), "{stderr}");
    assert!(run_json(&dir.join("plain-teacher")).get("shift_average").is_none());
    let (ok, stdout, stderr) = fitnets(&[&resume[..], &["--flip-average"], &data_options].concat());
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("test accuracy {averaged},")), "{stdout}");
    assert_eq!(run_json(&dir.join("plain-teacher"))["flip_average"], true);
    // A student records the views its teacher averaged; one that distilled the plain
    // teacher is not continued from the averaged one.
    assert_eq!(run_json(&dir.join("student-4"))["teacher_views"], serde_json::json!({"mirror": false, "shift": false}));
    let before = std::fs::read_to_string(dir.join("student-4/run.json")).unwrap();
    let (student, teacher_arg) = (path("student-4"), plain_teacher.clone());
    let again = ["train", "student", "--method", "kd", "--teacher", &teacher_arg, "--run", &student, "--resume"];
    let (ok, _, stderr) = fitnets(&[&again[..], &["--config", &config], &data_options].concat());
    assert!(!ok && stderr.contains("when it classified plain; it now classifies flip-averaged"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("student-4/run.json")).unwrap(), before);
    // Views can be removed again, only from an existing run; the student then resumes.
    let (ok, stdout, stderr) = fitnets(&["eval", &plain_teacher, "--plain", "--data", &data]);
    assert!(ok, "{stderr}");
    let plain_accuracy = stdout.split("test accuracy ").nth(1).and_then(|s| s.split(" on").next()).unwrap().to_string();
    let fresh = ["train", "teacher", "--config", &config, "--run", &path("other"), "--hflip", "--no-flip-average"];
    let (ok, _, stderr) = fitnets(&[&fresh[..], &data_options].concat());
    assert!(!ok && stderr.contains("pass --resume"), "{stderr}");
    assert!(!dir.join("other").exists());
    let (ok, stdout, stderr) = fitnets(&[&resume[..], &["--no-flip-average"], &data_options].concat());
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("test accuracy {plain_accuracy},")), "{stdout}");
    assert!(run_json(&dir.join("plain-teacher")).get("flip_average").is_none());
    let (ok, _, stderr) = fitnets(&[&again[..], &["--config", &config], &data_options].concat());
    assert!(ok, "{stderr}");
    // `--plain` classifies each image once, and says so.
    let (ok, stdout, stderr) = fitnets(&["eval", &teacher, "--plain", "--data", &data]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("on 100 images, each once (the run itself is flip-averaged)"), "{stdout}");
    // Shifted views can be asked for too; this teacher never saw shifted images, and
    // `eval` says so.
    let (ok, stdout, stderr) = fitnets(&["eval", &teacher, "--flip-average", "--shift-average", "--data", &data]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("trained without --shift"), "{stderr}");
    let views = "on 100 images, each averaged with its mirror image, its four one-pixel shifts and theirs";
    assert!(stdout.contains(views), "{stdout}");
    // A blob has no views to average over.
    for option in ["--flip-average", "--shift-average", "--plain"] {
        let (ok, _, stderr) = fitnets(&["eval", &path("model.fnet"), option, "--data", &data]);
        assert!(!ok && stderr.contains("--flip-average, --shift-average and --plain are for a run"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run's `run.json`.
fn run_json(run: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}

/// A candidate as `fit.json` records it.
#[derive(Debug)]
struct Priced {
    id: String,
    flash: u64,
    ram: u64,
    /// The estimated time plus the cost model's largest error: what the budget holds.
    ms: f64,
    pruned: Option<String>,
    /// The widest of its shape that fits (its budget depends on the target's).
    edge: bool,
}

/// `fit.json`'s candidates.
fn priced(runs: &std::path::Path) -> Vec<Priced> {
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("fit.json")).unwrap()).unwrap();
    record["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let price = &c["price"];
            Priced {
                id: c["id"].as_str().unwrap().to_string(),
                flash: price["flash_bytes"].as_u64().unwrap(),
                ram: price["ram_bytes"].as_u64().unwrap(),
                ms: price["ms_bound"].as_f64().unwrap(),
                pruned: c["pruned"].as_str().map(String::from),
                edge: c["edge"].as_bool().unwrap(),
            }
        })
        .collect()
}

/// The median of `values`, rounded down to whole KiB (the options take KiB).
fn median_kib(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2] / 1024
}

#[test]
fn a_tiny_fit_prunes_by_flash_ram_and_time_searches_resumes_and_chooses() {
    let dir = tiny_data_set("fit", 600, 3);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (data, teacher, config) = (path("data"), path("teacher"), path("teacher.toml"));
    let common = ["--data", &data, "--valid", "100", "--batch", "32", "--optimizer", "adam", "--lr", "3e-3"];
    let mut train = vec!["train", "teacher", "--config", &config, "--run", &teacher, "--epochs", "2"];
    train.extend(common);
    let (ok, _, stderr) = fitnets(&train);
    assert!(ok, "{stderr}");
    // The reference: the sweep's 3-layer student for the tiny data.
    let (_, text) = generate::student(&StudentSpec::sweep(3, 20_000, [12, 12, 1], 4)).unwrap();
    std::fs::write(dir.join("reference.toml"), text).unwrap();
    let reference = path("reference.toml");

    // Priced with room for everything: every student generated fits.
    let plan = |runs: &str, flash: &str, ram: &str, latency: Option<&str>| {
        let mut args: Vec<String> = ["fit", "--teacher", &teacher, "--runs", runs, "--core", "m4", "--mhz", "64"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--flash-kb", flash, "--ram-kb", ram, "--macs", "20000,80000,300000"].map(String::from));
        if let Some(ms) = latency {
            args.extend(["--latency-ms".into(), ms.into()]);
        }
        args.extend(common.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: &[String]| fitnets(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let dry = |args: Vec<String>| [args, vec!["--dry-run".into(), "--no-reference".into()]].concat();
    let roomy = path("roomy");
    let (ok, stdout, stderr) = run(&dry(plan(&roomy, "4096", "4096", None)));
    assert!(ok, "{stderr}");
    let all = priced(std::path::Path::new(&roomy));
    assert!(all.len() >= 20, "{} candidates", all.len());
    assert!(all.iter().all(|c| c.pruned.is_none()), "{all:?}");
    // Pricing is reproducible: the same students at the same prices, byte for byte.
    let again = path("roomy-again");
    let (ok, _, stderr) = run(&dry(plan(&again, "4096", "4096", None)));
    assert!(ok, "{stderr}");
    let record = |dir: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(std::path::Path::new(dir).join("fit.json")).unwrap()).unwrap()
    };
    assert_eq!(record(&roomy)["candidates"], record(&again)["candidates"]);
    assert!(stdout.contains("| student | conv layers |") && stdout.contains("Not proven yet"), "{stdout}");
    assert!(!dir.join("roomy/candidates").read_dir().unwrap().any(|e| e.unwrap().path().join("rung-0").exists()));

    // Each budget prunes exactly the students over it, and says which budget.
    let flash_kb = median_kib(all.iter().map(|c| c.flash).collect());
    let ram_kb = median_kib(all.iter().map(|c| c.ram).collect());
    let mut times: Vec<f64> = all.iter().map(|c| c.ms).collect();
    times.sort_by(f64::total_cmp);
    let ms = format!("{:.3}", times[times.len() / 2]);
    let limit: f64 = ms.parse().unwrap();
    for (name, args, over) in [
        ("flash", plan(&path("flash"), &flash_kb.to_string(), "4096", None), "flash"),
        ("ram", plan(&path("ram"), "4096", &ram_kb.to_string(), None), "RAM"),
        ("time", plan(&path("time"), "4096", "4096", Some(&ms)), "time"),
    ] {
        let (ok, _, stderr) = run(&dry(args));
        assert!(ok, "{name}: {stderr}");
        let judged = priced(&dir.join(name));
        // The ladder's students are the same; the widest of each shape depends on the budget.
        let ladder = |list: &[Priced]| list.iter().filter(|c| !c.edge).count();
        assert_eq!(ladder(&judged), ladder(&all));
        let pruned = judged.iter().filter(|c| c.pruned.is_some()).count();
        assert!(pruned > 0 && pruned < judged.len(), "{name}: {pruned} of {} pruned", judged.len());
        assert!(judged.iter().any(|c| c.edge && c.pruned.is_none()), "{name}: no widest student fits");
        for c in &judged {
            let over_budget = match name {
                "flash" => c.flash > flash_kb * 1024,
                "ram" => c.ram > ram_kb * 1024,
                _ => c.ms > limit,
            };
            assert_eq!(c.pruned.is_some(), over_budget, "{name}: {} {:?}", c.id, c.pruned);
            if let Some(why) = &c.pruned {
                assert!(why.starts_with(over), "{why}");
            }
        }
    }

    // A budget nothing meets fails before any training, with the smallest student's needs.
    let (ok, _, stderr) = run(&[plan(&path("none"), "1", "4096", None), vec!["--no-reference".into()]].concat());
    assert!(!ok);
    assert!(stderr.contains("no student of the") && stderr.contains("The smallest, d"), "{stderr}");
    assert!(stderr.contains("KiB flash") && stderr.contains("flash ") && stderr.contains("> 1 KiB"), "{stderr}");
    assert!(!dir.join("none").exists(), "a refused search leaves no directory");
    // --epochs would be ignored (each rung sets its own), and a budget no student can
    // have is named as such.
    let refused = |extra: &[&str], needle: &str| {
        let mut args = [plan(&path("none"), "4096", "4096", None), vec!["--no-reference".into()]].concat();
        // An option given here replaces the plan's own.
        for pair in extra.chunks(2) {
            match args.iter().position(|a| a == pair[0]) {
                Some(i) => args[i + 1] = pair[1].to_string(),
                None => args.extend(pair.iter().map(|s| s.to_string())),
            }
        }
        let (ok, _, stderr) = run(&args);
        assert!(!ok && stderr.contains(needle), "{stderr}");
        assert!(!dir.join("none").exists());
    };
    refused(&["--epochs", "5"], "set them with --first-epochs and --max-epochs");
    refused(&["--macs", "10"], "no student can be generated for [12, 12, 1] images at the budgets [10]");

    // The search: 3 students for 2 epochs, the best of them for 2 more, under a time budget.
    let search = path("search");
    let mut args = plan(&search, "4096", "4096", Some(&ms));
    args.extend(["--candidates", "3", "--first-epochs", "2", "--max-epochs", "6", "--subset", "300"].map(String::from));
    args.extend(["--reference-config".into(), reference.clone()]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("fit: rung 1 of 2, 2 epochs") && stderr.contains("fit: rung 2 of 2, 6 epochs"), "{stderr}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("search/fit.json")).unwrap()).unwrap();
    let first = record["rungs"][0]["results"].as_array().unwrap();
    assert_eq!(first.len(), 3);
    let best = first
        .iter()
        .max_by(|a, b| a["valid_accuracy"].as_f64().unwrap().total_cmp(&b["valid_accuracy"].as_f64().unwrap()))
        .unwrap();
    let chosen = &record["chosen"];
    // Only students that fit enter the search; the most accurate on validation goes on.
    assert_eq!(record["rungs"][1]["results"][0]["id"], best["id"]);
    assert!(chosen["run"].as_str().unwrap().starts_with(&format!("candidates/{}", best["id"].as_str().unwrap())));
    assert!(chosen["price"]["ms"].as_f64().unwrap() <= limit, "{chosen}");
    assert!(chosen["pruned"].is_null(), "{chosen}");
    for answer in [chosen, &record["reference"]] {
        let int8 = answer["int8_test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&int8), "{answer}");
    }
    let blob = std::fs::read(dir.join("search/student.fnet")).unwrap();
    assert!(fitnets_shared::Model::from_bytes(&blob).is_ok());
    assert_eq!(chosen["price"]["blob_bytes"].as_u64().unwrap(), blob.len() as u64);
    assert!(dir.join("search/reference.fnet").exists());
    let report = std::fs::read_to_string(dir.join("search/fit.md")).unwrap();
    assert!(stdout.ends_with(&report), "{stdout}");
    for text in ["**chosen**", "paper's FitNet", "The Pareto front", "## Proof of fit", "pareto.svg"] {
        assert!(report.contains(text), "{text} missing from {report}");
    }
    let chart = std::fs::read_to_string(dir.join("search/pareto.svg")).unwrap();
    assert!(chart.contains("on the Pareto front") && chart.contains("estimated ms per inference"));

    // Given again, the search reuses every run and gives the same answer.
    let (ok, again, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("fit: rung"), "{stderr}");
    assert!(again.ends_with(&report), "{again}");
    assert_eq!(std::fs::read_to_string(dir.join("search/fit.md")).unwrap(), report);
    // Another setting in the same directory is refused, naming both.
    let mut other = args.clone();
    other.extend(["--eta".into(), "2".into()]);
    let (ok, _, stderr) = run(&other);
    assert!(!ok);
    assert!(stderr.contains("holds a search with another setting"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
