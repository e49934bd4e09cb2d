//! `fitnets report`, hermetically. A report built from runs made up in memory and the
//! repository's tiny blob is compared with a snapshot; every figure is checked to follow
//! its input (change the input, the figure changes); the board fit, the metrics parser
//! and the paper's table choice are table-driven; and the command line trains a tiny
//! student on generated images, exports it on the fly and writes every file.

use std::path::{Path, PathBuf};
use std::process::Command;

use fitnets::commands::report::write;
use fitnets::data::{Augment, Dataset, Normalization};
use fitnets::method::Method;
use fitnets::model::{NetConfig, count};

mod common;
use common::{pattern_dataset, schedule};
use fitnets::quant::eval::evaluate_int8;
use fitnets::report::boards::{BOARDS, Board, Firmware, Needs, fits};
use fitnets::report::markdown::{SECTIONS, SEEDS_SECTION, SWEEP_SECTION, render, thousands};
use fitnets::report::runs::{MetricRow, Run, best_student, parse_metrics};
use fitnets::report::stages::{Int8Student, Precision};
use fitnets::report::{Report, data_set_name, paper};
use fitnets::run::{DataInfo, RunInfo, RunResult};
use fitnets::sweep::record::{DepthRow, Sweep, SweepSetting};
use fitnets::train::schedule::{OptimizerKind, Schedule};
use fitnets_shared::{Model, plan};

/// A fresh temporary directory, removed when dropped; `name` shows in its path.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("fitnets-report-{name}-")).tempdir().unwrap()
}

const TEACHER: &str = include_str!("fixtures/report-teacher.toml");

const STUDENT: &str = include_str!("fixtures/report-student.toml");

fn info(method: Option<Method>, config: &str) -> RunInfo {
    RunInfo {
        format: fitnets::run::RUN_FORMAT,
        role: if method.is_some() { "student" } else { "teacher" }.into(),
        method,
        config: NetConfig::parse(config).unwrap(),
        schedule: schedule(3, 11),
        hint_schedule: (method == Some(Method::Hints)).then(|| schedule(2, 11)),
        kd: None,
        teacher: None,
        teacher_views: None,
        data: DataInfo {
            name: "fashion-mnist-train-train".into(),
            content_hash: None,
            train_images: 55_000,
            valid_images: 5_000,
            test_images: 10_000,
            split_seed: 1,
            normalization: Normalization { mean: vec![0.286], std: vec![0.353] },
            classes: Vec::new(),
            images: None,
            pixels_hash: None,
        },
        backend: "cpu (flex)".into(),
        flip_average: false,
        shift_average: false,
    }
}

#[test]
fn a_flip_averaged_teacher_is_labelled_so() {
    let teacher = info(None, TEACHER);
    assert_eq!(teacher.label(), "teacher (tiny-teacher)");
    let averaged = RunInfo { flip_average: true, ..teacher.clone() };
    assert_eq!(averaged.label(), "teacher (tiny-teacher, flip-averaged)");
    // Averaging runs the network twice an image.
    let (params, macs) = teacher.cost().unwrap();
    assert_eq!(averaged.cost().unwrap(), (params, 2 * macs));
    // Shifts: the image and four one-pixel shifts, each mirrored too when both are set.
    let shifted = RunInfo { shift_average: true, ..teacher.clone() };
    assert_eq!(shifted.label(), "teacher (tiny-teacher, shift-averaged)");
    assert_eq!(shifted.cost().unwrap(), (params, 5 * macs));
    let both = RunInfo { shift_average: true, ..averaged };
    assert_eq!(both.label(), "teacher (tiny-teacher, flip- and shift-averaged)");
    assert_eq!(both.cost().unwrap(), (params, 10 * macs));
    assert_eq!(info(Some(Method::Hints), STUDENT).label(), "FitNet hints");
}

/// `epochs` rows of `phase`, accuracy rising by a point an epoch from `start`.
fn metrics(phase: &str, epochs: usize, start: f64) -> Vec<MetricRow> {
    (1..=epochs)
        .map(|epoch| {
            let accuracy = (phase != "hints").then_some(start + 0.01 * epoch as f64);
            MetricRow {
                phase: phase.into(),
                epoch,
                train_loss: 1.0 / epoch as f64,
                train_accuracy: accuracy.map(|a| a - 0.005),
                valid_loss: 1.1 / epoch as f64,
                valid_accuracy: accuracy,
                seconds: 30.0 + epoch as f64,
            }
        })
        .collect()
}

fn result(config: &str, valid: f64, test: f64) -> RunResult {
    let (params, macs) = count::totals(&NetConfig::parse(config).unwrap()).unwrap();
    RunResult {
        params,
        macs,
        valid_accuracy: valid,
        test_accuracy: test,
        confusion: Vec::new(),
        hint_history: Vec::new(),
        history: Vec::new(),
        train_seconds: 754.0,
    }
}

/// A made-up comparison: a finished teacher, scratch and kd, an unfinished hints run.
/// `config` for data like the paper's: `input` and 10 classes.
fn like(config: &str, input: &str) -> String {
    let last_units = config.rfind("units = 4").expect("the dense layer of 4 classes");
    let mut text = config.to_string();
    text.replace_range(last_units..last_units + "units = 4".len(), "units = 10");
    text.replace("input = [12, 12, 1]", input).replace("classes = 4", "classes = 10")
}

/// Made-up runs on 12x12 data of 4 classes, which the paper did not measure.
fn made_up_runs() -> Vec<Run> {
    made_up_runs_of(TEACHER, STUDENT)
}

/// Made-up runs on data like the paper's: `input` and 10 classes.
fn made_up_runs_on(input: &str) -> Vec<Run> {
    made_up_runs_of(&like(TEACHER, input), &like(STUDENT, input))
}

fn made_up_runs_of(teacher: &str, student: &str) -> Vec<Run> {
    let run = |name: &str, method, config, result, metrics| Run {
        name: name.into(),
        dir: PathBuf::from("runs/compare").join(name),
        info: info(method, config),
        result,
        metrics,
    };
    let mut hints = metrics("hints", 2, 0.0);
    hints.extend(metrics("student", 1, 0.84));
    vec![
        run("teacher", None, teacher, Some(result(teacher, 0.905, 0.9)), metrics("teacher", 3, 0.86)),
        run("scratch", Some(Method::Scratch), student, Some(result(student, 0.88, 0.875)), metrics("student", 3, 0.85)),
        run("kd", Some(Method::Kd), student, Some(result(student, 0.891, 0.885)), metrics("student", 3, 0.86)),
        run("hints", Some(Method::Hints), student, None, hints),
    ]
}

fn tiny_blob() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny.fnet")).unwrap()
}

fn made_up_report(runs: Vec<Run>, blob: Vec<u8>, firmware: Firmware) -> Report {
    let int8 = Int8Student {
        blob,
        source: "`tests/fixtures/tiny.fnet`".into(),
        run: Some("kd".into()),
        accuracy: Some((0.8825, 10_000)),
    };
    Report::build(runs, int8, firmware, &BOARDS).unwrap()
}

/// Compares `text` with `tests/snapshots/NAME`; `FITNETS_BLESS=1` rewrites it.
fn check_snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("FITNETS_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {}: run with FITNETS_BLESS=1", path.display()));
    assert!(expected == text, "{name} differs from its snapshot (FITNETS_BLESS=1 rewrites it):\n{text}");
}

/// The row of the Markdown table whose first cell is `first`, as cells.
fn row<'a>(markdown: &'a str, first: &str) -> Vec<&'a str> {
    let line = markdown
        .lines()
        .find(|l| l.starts_with(&format!("| {first} |")))
        .unwrap_or_else(|| panic!("no row `{first}` in\n{markdown}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn report_of_made_up_runs_matches_its_snapshot() {
    // Fixed allowances: the measured defaults change with the firmware.
    let firmware = Firmware {
        code_bytes: 34_000,
        static_bytes: 1_000,
        stack_bytes: 4096,
        m4_cycles_per_mac: Some(2.5),
        m0plus_cycles_per_mac: Some(7.5),
    };
    let report = made_up_report(made_up_runs(), tiny_blob(), firmware);
    let markdown = render(&report, "runs/compare");
    for section in SECTIONS {
        assert!(markdown.contains(section), "{section} missing");
    }
    check_snapshot("report.md", &markdown);
}

#[test]
fn every_figure_follows_its_input() {
    let base = made_up_report(made_up_runs(), tiny_blob(), Firmware::default());
    let markdown = render(&base, "runs/compare");
    let (teacher_params, teacher_macs) = count::totals(&NetConfig::parse(TEACHER).unwrap()).unwrap();
    let (student_params, student_macs) = count::totals(&NetConfig::parse(STUDENT).unwrap()).unwrap();
    let teacher = row(&markdown, "teacher (tiny-teacher) float32");
    assert_eq!(teacher[1], thousands(teacher_params));
    assert_eq!(
        teacher[3],
        format!("{} B ({:.1} KB)", thousands(4 * teacher_params), (4 * teacher_params) as f64 / 1024.0)
    );
    assert_eq!(teacher[7], "90.00%");
    let kd = row(&markdown, "FitNet kd float32");
    assert_eq!(kd[4], format!("{:.1}x", teacher_params as f64 / student_params as f64));
    assert_eq!(kd[6], format!("{:.1}x", teacher_macs as f64 / student_macs as f64));
    assert_eq!(kd[7], "88.50%");
    // The int8 row comes from the blob: its bytes, its parameters.
    let blob = tiny_blob();
    let model = Model::from_bytes(&blob).unwrap();
    let int8 = row(&markdown, "FitNet int8 (from kd)");
    let int8_params: u64 = fitnets::inspect::layers(&model).unwrap().iter().map(|l| l.params).sum();
    assert_eq!(int8[1], thousands(int8_params));
    assert!(int8[3].starts_with(&format!("{} B", thousands(blob.len() as u64))), "{int8:?}");
    assert!(markdown.contains("int8 - float32 (kd): **-0.25 pp**"), "{markdown}");
    // The unfinished run says so, with its progress.
    assert!(markdown.contains("FitNet hints (runs/compare/hints) has not finished: 3 of 5 epochs"));

    // A better teacher: its accuracy and only its accuracy changes.
    let mut runs = made_up_runs();
    runs[0].result.as_mut().unwrap().test_accuracy = 0.95;
    let changed = render(&made_up_report(runs, tiny_blob(), Firmware::default()), "runs/compare");
    assert_eq!(row(&changed, "teacher (tiny-teacher) float32")[7], "95.00%");
    assert_eq!(row(&changed, "FitNet kd float32"), kd);

    // A wider teacher: parameters, bytes and every saving change.
    let mut runs = made_up_runs();
    runs[0].info.config = NetConfig::parse(&TEACHER.replace("units = 12", "units = 24")).unwrap();
    let wider = render(&made_up_report(runs, tiny_blob(), Firmware::default()), "runs/compare");
    let (wider_params, wider_macs) = runs_totals(&TEACHER.replace("units = 12", "units = 24"));
    assert!(wider_params > teacher_params && wider_macs > teacher_macs);
    assert_eq!(row(&wider, "teacher (tiny-teacher) float32")[1], thousands(wider_params));
    assert_eq!(row(&wider, "FitNet kd float32")[4], format!("{:.1}x", wider_params as f64 / student_params as f64));
    assert_eq!(row(&wider, "FitNet kd float32")[6], format!("{:.1}x", wider_macs as f64 / student_macs as f64));

    // A flip-averaged teacher runs its network twice an image: its MACs and every
    // speed-up double, and the training table says its validation accuracy is plain.
    let mut runs = made_up_runs();
    runs[0].info.flip_average = true;
    let averaged = render(&made_up_report(runs, tiny_blob(), Firmware::default()), "runs/compare");
    assert_eq!(row(&averaged, "teacher (tiny-teacher, flip-averaged) float32")[2], thousands(2 * teacher_macs));
    let speed_up = 2.0 * teacher_macs as f64 / student_macs as f64;
    assert_eq!(row(&averaged, "FitNet kd float32")[6], format!("{speed_up:.1}x"));
    let note = "A flip- or shift-averaged network's validation accuracy is its plain network's";
    assert!(averaged.contains(note) && !markdown.contains(note), "{averaged}");

    // The best student is chosen by validation accuracy, not test accuracy.
    let mut runs = made_up_runs();
    assert_eq!(best_student(&runs).unwrap().name, "kd");
    runs[1].result.as_mut().unwrap().valid_accuracy = 0.95;
    assert_eq!(best_student(&runs).unwrap().name, "scratch");

    // A larger code allowance moves flash, not RAM.
    let big = made_up_report(made_up_runs(), tiny_blob(), Firmware { code_bytes: 100 * 1024, ..Firmware::default() });
    assert_eq!(big.needs.flash(), base.needs.flash() + 100 * 1024 - base.firmware.code_bytes);
    assert_eq!(big.needs.ram(), base.needs.ram());
    let share = |r: &Report, board: &str| r.fits.iter().find(|f| f.board.name == board).unwrap().flash_share;
    assert!(share(&big, "STM32G071RB") > share(&base, "STM32G071RB"));
}

fn runs_totals(config: &str) -> (u64, u64) {
    count::totals(&NetConfig::parse(config).unwrap()).unwrap()
}

#[test]
fn needs_add_up_and_boards_fit_or_not() {
    let blob = tiny_blob();
    let model = Model::from_bytes(&blob).unwrap();
    let firmware = Firmware {
        code_bytes: 30_000,
        static_bytes: 100,
        stack_bytes: 4096,
        m4_cycles_per_mac: Some(3.0),
        m0plus_cycles_per_mac: None,
    };
    let needs = Needs::of(&model, blob.len() as u64, firmware).unwrap();
    assert_eq!(needs.arena_bytes, u64::from(plan::arena_bytes(&model)));
    assert_eq!(needs.unfused_arena_bytes, u64::from(plan::unfused_arena_bytes(&model)));
    assert_eq!(needs.flash(), blob.len() as u64 + 30_000);
    // A request frame a little longer than one image, and a short response frame: the
    // serve program keeps no separate image.
    let image = model.input_shape().len() as u64;
    assert!(needs.io_bytes > image && needs.io_bytes < image + 200, "{needs:?}");
    assert_eq!(needs.ram(), needs.arena_bytes + needs.io_bytes + needs.static_bytes + 4096);

    let board = |flash_bytes, ram_bytes| Board {
        name: "b",
        core: "c",
        flash_bytes,
        ram_bytes,
        note: "",
        cycles_key: "cortex-m4",
        mhz: 100,
    };
    let check = |board: Board, fits_expected: bool| {
        let fit = fits(&needs, &[board])[0];
        assert_eq!(fit.fits(), fits_expected, "{board:?} for {needs:?}");
        assert_eq!(fit.flash_share, needs.flash() as f64 / board.flash_bytes as f64);
        assert_eq!(fit.ram_share, needs.ram() as f64 / board.ram_bytes as f64);
        // 3 cycles per MAC at 100 MHz.
        assert_eq!(fit.latency_ms, Some(needs.macs as f64 * 3.0 / 100_000.0));
    };
    let m0plus = Board { cycles_key: "cortex-m0plus", ..board(1 << 20, 1 << 18) };
    assert_eq!(fits(&needs, &[m0plus])[0].latency_ms, None, "no M0+ figure was given");
    check(board(needs.flash(), needs.ram()), true);
    check(board(needs.flash() - 1, needs.ram()), false);
    check(board(needs.flash(), needs.ram() - 1), false);
    check(board(1 << 20, 1 << 18), true);
    // The named boards: a Cortex-M0+ part among them, the STM32F405 without its CCM.
    assert!(BOARDS.iter().any(|b| b.core.contains("M0+")));
    let f405 = BOARDS.iter().find(|b| b.name == "STM32F405").unwrap();
    assert_eq!((f405.flash_bytes, f405.ram_bytes), (1024 * 1024, 128 * 1024));
}

/// `(phase, epoch, validation accuracy)` of each parsed row.
type Parsed<'a> = Vec<(&'a str, usize, Option<f64>)>;

#[test]
fn metrics_csv_parses_by_column_name() {
    let check = |text: &str, expected: Result<Parsed<'_>, &str>| match (parse_metrics(text), expected) {
        (Ok(rows), Ok(want)) => {
            let got: Parsed<'_> = rows.iter().map(|r| (r.phase.as_str(), r.epoch, r.valid_accuracy)).collect();
            assert_eq!(got, want, "{text}");
        }
        (Err(e), Err(needle)) => assert!(format!("{e:#}").contains(needle), "{text}: {e:#}"),
        (got, want) => panic!("{text}: got {got:?}, expected {want:?}"),
    };
    let header = "phase,epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,learning_rate,lambda,seconds,images_per_second";
    check("", Ok(vec![]));
    check(&format!("{header}\n"), Ok(vec![]));
    check(
        &format!("{header}\nhints,1,0.5,,0.6,,1e-3,,2.0,100\nstudent,1,0.7,0.8,0.6,0.81,1e-3,4,2.0,100\n"),
        Ok(vec![("hints", 1, None), ("student", 1, Some(0.81))]),
    );
    // Columns found by name, in any order.
    check(
        "valid_accuracy,phase,seconds,epoch,train_loss,train_accuracy,valid_loss\n0.5,teacher,9,3,1,0.4,1\n",
        Ok(vec![("teacher", 3, Some(0.5))]),
    );
    check("phase,epoch\nteacher,1\n", Err("no `train_loss` column"));
    check(&format!("{header}\nteacher,1,0.5\n"), Err("line 2: 3 fields"));
    check(
        &format!("{header}\nteacher,1,x,0.1,0.6,0.2,1e-3,,2.0,100\n"),
        Err("line 2: `x` is not a number (train_loss)"),
    );
}

#[test]
fn the_paper_table_matches_the_data_set() {
    assert_eq!(data_set_name("fashion-mnist-train-train"), "fashion-mnist");
    assert_eq!(data_set_name("cifar10-train-valid"), "cifar10");
    // By the data's shape and classes, not its name: an 8x8 digits set gets no table.
    let title = |input, classes| paper::for_data(input, classes).map(|t| t.title);
    assert_eq!(title([28, 28, 1], 10), Some("Table 4"));
    assert_eq!(title([32, 32, 3], 10), Some("Table 5"));
    assert_eq!(title([8, 8, 1], 10), None);
    assert_eq!(title([28, 28, 1], 5), None);
    // Table 5's own figures, and the ratios the report derives from them.
    let teacher = paper::TABLE_5.rows[0];
    assert_eq!((teacher.params, teacher.mults, teacher.value), (9_000_000, Some(725_000_000), 90.18));
    let mut runs = made_up_runs_on("input = [32, 32, 3]");
    for run in &mut runs {
        run.info.data.name = "cifar10-train-train".into();
    }
    let markdown = render(&made_up_report(runs, tiny_blob(), Firmware::default()), "runs/compare");
    assert!(markdown.contains("## The paper's figures (Table 5, CIFAR-10): the paper's, not ours"));
    let mnist_like =
        render(&made_up_report(made_up_runs_on("input = [28, 28, 1]"), tiny_blob(), Firmware::default()), "r");
    assert!(mnist_like.contains("## The paper's figures (Table 4, MNIST): the paper's, not ours"), "{mnist_like}");
    let other = render(&made_up_report(made_up_runs(), tiny_blob(), Firmware::default()), "r");
    assert!(other.contains("no figure of the paper is set beside ours") && !other.contains("(paper)"), "{other}");
    // FitNet 1: 9M / 250K parameters, 725M / 30M multiplications.
    assert_eq!(row(&markdown, "FitNet 1")[3..5], ["36.0x", "24.2x"]);
    assert_eq!(row(&markdown, "Teacher")[5], "90.18%");
    assert_eq!(row(&markdown, "Teacher")[7], "90.00%");
}

#[test]
fn charts_are_written_and_carry_the_figures() {
    let dir = temp_dir("charts");
    let report = made_up_report(made_up_runs(), tiny_blob(), Firmware::default());
    let paths = write(&report, Path::new("runs/compare"), dir.path()).unwrap();
    let names: Vec<String> = paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["report.md", "accuracy.svg", "layers.svg", "training.svg"]);
    let svg = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let accuracy = svg("accuracy.svg");
    assert!(accuracy.starts_with("<svg"), "{}", &accuracy[..80.min(accuracy.len())]);
    for needle in ["Test accuracy against parameters", "FitNet kd float32: 88.50%", "FitNet int8 (from kd): 88.25%"] {
        assert!(accuracy.contains(needle), "{needle:?} not in accuracy.svg");
    }
    let layers = svg("layers.svg");
    assert!(layers.contains("multiply-accumulates per image") && layers.contains("arena while the step runs"));
    let training = svg("training.svg");
    for needle in ["Training curves", "accuracy", "hint loss", "teacher", "hints"] {
        assert!(training.contains(needle), "{needle:?} not in training.svg");
    }
    // Without any metrics, the curves say so rather than drawing empty axes.
    let mut runs = made_up_runs();
    runs.iter_mut().for_each(|r| r.metrics.clear());
    let empty = fitnets::report::charts::curves::draw(&runs).unwrap();
    assert!(empty.contains("No run has a metrics.csv row yet."));
}

/// A sweep of three depths; hints has not finished the deepest yet.
fn made_up_sweep() -> Sweep {
    let schedule = Schedule {
        epochs: 14,
        batch_size: 128,
        optimizer: OptimizerKind::Rmsprop,
        learning_rate: 5e-4,
        final_learning_rate: 0.0,
        seed: 0,
        augment: Augment::default(),
    };
    let setting = SweepSetting {
        budget_macs: 5_947_032,
        student_epochs: 14,
        hint_epochs: 3,
        subset: Some(20_000),
        valid: 5000,
        test_subset: None,
        split_seed: 1,
        schedule,
        teacher: "runs/teacher".into(),
        teacher_name: "mnist-teacher".into(),
        teacher_test_accuracy: 0.9222,
    };
    let row = |depth, widths: &[usize], accuracies: [Option<f64>; 3]| DepthRow {
        depth,
        widths: widths.to_vec(),
        params: 1000 * depth as u64,
        macs: 5_900_000,
        accuracies: [Method::Scratch, Method::Kd, Method::Hints].into_iter().zip(accuracies).collect(),
    };
    Sweep {
        setting,
        rows: vec![
            row(3, &[30, 40, 50], [Some(0.9011), Some(0.9102), Some(0.9050)]),
            row(5, &[20, 20, 30, 30, 40], [Some(0.1), Some(0.8533), Some(0.8977)]),
            row(7, &[12, 12, 16, 16, 20, 20, 20], [Some(0.1), Some(0.1), None]),
        ],
    }
}

#[test]
fn a_sweep_adds_its_table_and_chart() {
    let mut report = made_up_report(made_up_runs(), tiny_blob(), Firmware::default());
    assert!(!render(&report, "runs/compare").contains(SWEEP_SECTION));
    report.sweep = Some(made_up_sweep());
    let markdown = render(&report, "runs/compare");
    let at = markdown.find(SWEEP_SECTION).expect("the sweep section");
    assert!(SECTIONS.iter().all(|s| markdown.find(s).unwrap() < at), "the sweep comes last");
    assert!(markdown.contains("on a seeded sample of 20000 training images"));
    assert!(markdown.contains("mnist-teacher (`runs/teacher`), 92.22% test accuracy"));
    assert_eq!(row(&markdown, "5"), ["5", "20-20-30-30-40", "5000", "5.90M", "10.00%", "85.33%", "89.77%"]);
    assert_eq!(row(&markdown, "7")[6], "not trained");
    assert!(markdown.contains("![Test accuracy against depth](depth.svg)"));

    let dir = temp_dir("sweep");
    let paths = write(&report, Path::new("runs/compare"), dir.path()).unwrap();
    assert_eq!(paths.last().unwrap().file_name().unwrap(), "depth.svg");
    let chart = std::fs::read_to_string(dir.path().join("depth.svg")).unwrap();
    for needle in ["Test accuracy against depth at 5.95M", "conv layers", "teacher mnist-teacher: 92.22%", "FitNet kd"]
    {
        assert!(chart.contains(needle), "{needle:?} not in depth.svg");
    }
    // Without a finished student the chart says so.
    let mut empty = made_up_sweep();
    empty.rows.iter_mut().for_each(|r| r.accuracies.iter_mut().for_each(|a| a.1 = None));
    let svg = fitnets::report::charts::depth::draw(&empty).unwrap();
    assert!(svg.contains("No student of the sweep has finished"));
}

// ---- The command line, end to end ----

/// Writes `train` and `test` as MNIST-named IDX files into `dir`.
fn write_idx_set(dir: &Path, train: &Dataset, test: &Dataset) {
    let idx = |dims: &[usize], data: &[u8]| {
        let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
        dims.iter().for_each(|&d| bytes.extend((d as u32).to_be_bytes()));
        bytes.extend(data);
        bytes
    };
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

/// Rewrites a JSON file of a run through `edit`.
fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

#[test]
fn cli_exports_the_best_student_and_writes_the_report() {
    let dir = temp_dir("cli");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let test_set = pattern_dataset(150, 5);
    write_idx_set(&dir.path().join("data"), &pattern_dataset(700, 4), &test_set);
    std::fs::write(dir.path().join("student.toml"), STUDENT).unwrap();
    let (data, runs, out, config) = (path("data"), path("runs"), path("out"), path("student.toml"));
    let data_args = ["--data", &data, "--valid", "200"];

    // One real student; the teacher and the other methods are its files, edited.
    let scratch = path("runs/scratch");
    let mut train = vec!["train", "student", "--method", "scratch", "--config", &config, "--run", &scratch];
    train.extend(["--epochs", "2", "--batch", "32", "--optimizer", "adam", "--lr", "3e-3"]);
    train.extend(data_args);
    let (ok, _, stderr) = fitnets(&train);
    assert!(ok, "{stderr}");
    for (name, valid) in [("teacher", 0.5), ("kd", 0.99)] {
        let sub = dir.path().join("runs").join(name);
        std::fs::create_dir_all(&sub).unwrap();
        for file in ["run.json", "result.json", "metrics.csv", "model.bin"] {
            std::fs::copy(dir.path().join("runs/scratch").join(file), sub.join(file)).unwrap();
        }
        edit_json(&sub.join("result.json"), |v| v["valid_accuracy"] = valid.into());
        edit_json(&sub.join("run.json"), |v| {
            if name == "teacher" {
                v["role"] = "teacher".into();
                v["method"] = serde_json::Value::Null;
                v["config"] = serde_json::to_value(NetConfig::parse(TEACHER).unwrap()).unwrap();
            } else {
                v["method"] = name.into();
            }
        });
    }

    let (ok, stdout, stderr) = fitnets(&[&["report", "--runs", &runs, "-o", &out][..], &data_args].concat());
    assert!(ok, "{stderr}");
    for file in ["report.md", "student.fnet", "accuracy.svg", "layers.svg", "training.svg"] {
        assert!(dir.path().join("out").join(file).is_file(), "{file} missing; stdout:\n{stdout}");
        assert!(stdout.contains(file) || file == "student.fnet", "{file} not announced:\n{stdout}");
    }
    let markdown = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    for section in SECTIONS {
        assert!(markdown.contains(section), "{section} missing from\n{markdown}");
    }
    // kd has the best validation accuracy: exported from it, compared with it.
    assert!(markdown.contains("exported here from") && markdown.contains("kd` (best validation accuracy)"));
    let blob = std::fs::read(dir.path().join("out/student.fnet")).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let int8 = evaluate_int8(&model, &test_set).unwrap();
    let int8_row = row(&markdown, "FitNet int8 (from kd)");
    assert_eq!(int8_row[7], format!("{:.2}%", 100.0 * int8.accuracy));
    assert!(int8_row[3].starts_with(&format!("{} B", thousands(blob.len() as u64))));
    assert!(markdown.contains(&format!("Arena: **{} B", thousands(u64::from(plan::arena_bytes(&model))))));
    let teacher_params = count::totals(&NetConfig::parse(TEACHER).unwrap()).unwrap().0;
    assert_eq!(row(&markdown, "teacher (tiny-teacher) float32")[1], thousands(teacher_params));
    assert!(row(&markdown, "FitNet int8 (from kd)")[0].contains("int8"));
    assert_eq!(
        markdown.lines().filter(|l| l.starts_with("| FitNet ") && l.contains(" float32 |")).count(),
        2,
        "scratch and kd in float32"
    );

    // A given blob with --student checks its origin; a wrong origin is refused.
    let given = path("out/student.fnet");
    let args = ["report", "--runs", &runs, "--blob", &given, "--student", "scratch", "-o", &path("out2")];
    let (ok, _, stderr) = fitnets(&[&args[..], &data_args].concat());
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = fitnets(&["report", "--runs", &path("nowhere"), "-o", &out, "--data", &data]);
    assert!(!ok && stderr.contains("nowhere is not a directory of runs"), "{stderr}");
    let (ok, _, stderr) = fitnets(&["report", "--runs", &runs, "--student", "hints", "-o", &out, "--data", &data]);
    assert!(!ok && stderr.contains("has no hints run"), "{stderr}");
    assert!(!markdown.contains(SEEDS_SECTION), "one seed has no seeds section");

    // Two complete seeds (hints and a second seed as edited copies) add the seeds table.
    let copy = |to: &str, method: &str, test: f64| {
        let sub = dir.path().join("runs").join(to);
        std::fs::create_dir_all(&sub).unwrap();
        for file in ["run.json", "result.json", "metrics.csv", "model.bin"] {
            std::fs::copy(dir.path().join("runs/scratch").join(file), sub.join(file)).unwrap();
        }
        edit_json(&sub.join("result.json"), |v| v["test_accuracy"] = test.into());
        edit_json(&sub.join("run.json"), |v| v["method"] = method.into());
    };
    copy("hints", "hints", 0.91);
    copy("seed-1/scratch", "scratch", 0.5);
    copy("seed-1/kd", "kd", 0.5);
    let (ok, _, stderr) = fitnets(&[&["report", "--runs", &runs, "-o", &out][..], &data_args].concat());
    assert!(ok, "{stderr}");
    let markdown = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(!markdown.contains(SEEDS_SECTION), "seed 1 has no hints run yet");
    copy("seed-1/hints", "hints", 0.93);
    let (ok, _, stderr) = fitnets(&[&["report", "--runs", &runs, "-o", &out][..], &data_args].concat());
    assert!(ok, "{stderr}");
    let markdown = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    let seeds = &markdown[markdown.find(SEEDS_SECTION).expect("the seeds section")..];
    assert!(seeds.contains("| FitNet hints | "), "{seeds}");
    assert!(seeds.contains("92.00 ± 1.41% (2 seeds: 91.00, 93.00)"), "{seeds}");
    assert!(seeds.contains("| FitNet hints − FitNet scratch |"), "{seeds}");
}

#[test]
fn int8_row_and_drop_need_their_run() {
    let mut report = made_up_report(made_up_runs(), tiny_blob(), Firmware::default());
    assert_eq!(report.stages.iter().filter(|s| s.precision == Precision::Int8).count(), 1);
    report.int8.run = None;
    report.stages.last_mut().unwrap().run = None;
    let markdown = render(&report, "runs/compare");
    assert!(!markdown.contains("int8 - float32"), "{markdown}");
    assert!(markdown.contains("| FitNet int8 |"));
}

#[test]
fn the_sentence_of_what_distillation_bought_follows_the_runs() {
    use fitnets::report::stages::{Precision, Stage, bought};
    let stage = |run: &str, precision, params, accuracy| Stage {
        label: run.into(),
        run: Some(run.into()),
        precision,
        params,
        macs: params,
        model_bytes: if precision == Precision::Int8 { params } else { 4 * params },
        accuracy,
        test_images: Some(10_000),
    };
    let mut rows = vec![
        stage("teacher", Precision::Float32, 150_000, Some(0.932)),
        stage("scratch", Precision::Float32, 26_000, Some(0.905)),
        stage("hints", Precision::Float32, 26_000, Some(0.916)),
        stage("hints", Precision::Int8, 28_000, Some(0.915)),
    ];
    let text = bought(&rows).unwrap();
    assert!(text.starts_with("Here distillation beat training from scratch"), "{text}");
    assert!(text.contains("90.50% from scratch, with hints 91.60% (+1.10 pp)"), "{text}");
    assert!(
        text.contains("(from hints) has 5x fewer parameters and 21x fewer bytes than the teacher (93.20%)"),
        "{text}"
    );
    // Said plainly when distillation loses or ties, and nothing without a scratch student.
    rows[2].accuracy = Some(0.897);
    assert!(bought(&rows).unwrap().starts_with("Here distillation did not beat training from scratch"));
    rows[2].accuracy = Some(0.907);
    assert!(bought(&rows).unwrap().starts_with("Here distillation and training from scratch tied"));
    rows.remove(1);
    assert_eq!(bought(&rows), None);
}
