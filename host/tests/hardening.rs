//! Every input a user gives `fitnets` (configs, data files, flags, run directories) is
//! refused with a clear error that names it, before any work: never a panic, an abort
//! or a half-written run. One regression test per fault found when the training side was
//! first tried as an adversary would (issue "no panic from any config, data file or flag").

use std::path::{Path, PathBuf};

use tempfile::TempDir;

mod common;
use common::{STUDENT, TEACHER, ok, refused, write_idx};

/// A scratch folder with the 8x8 data set `digits8`, the two configs and room for runs.
struct Bench {
    dir: TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::Builder::new().prefix("fitnets-hardening-").tempdir().unwrap();
        write_idx(&dir.path().join("digits8"), (240, 60), [8, 8, 1], 3, 0);
        std::fs::write(dir.path().join("teacher.toml"), TEACHER).unwrap();
        std::fs::write(dir.path().join("student.toml"), STUDENT).unwrap();
        Bench { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Writes a config `name` from `text`.
    fn config(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self.path(name)
    }

    /// `train teacher` on `digits8` into `run`, one epoch, with `extra` options.
    fn teacher_args<'a>(&'a self, config: &'a str, run: &'a str, data: &'a str, extra: &[&'a str]) -> Vec<String> {
        let mut args: Vec<String> = ["train", "teacher", "--config", config, "--run", run, "--data", data]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (option, value) in [("--epochs", "1"), ("--batch", "16")] {
            if !extra.iter().any(|e| e.starts_with(option)) {
                args.extend([option.to_string(), value.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// A finished teacher run on `digits8` at `teacher`.
    fn teacher(&self) -> String {
        let (config, run, data) = (self.path("teacher.toml"), self.path("teacher"), self.path("digits8"));
        let args = self.teacher_args(&config, &run, &data, &[]);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        run
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn with_text(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "fixture lacks `{from}`");
    base.replacen(from, to, 1)
}

// 1. A config whose input differs from the data.
#[test]
fn input_shape_against_the_data() {
    let bench = Bench::new();
    let data = bench.path("digits8");
    let big = bench.config("big.toml", &with_text(TEACHER, "input = [8, 8, 1]", "input = [28, 28, 1]"));
    let rgb = bench.config("rgb.toml", &with_text(TEACHER, "input = [8, 8, 1]", "input = [8, 8, 3]"));
    for config in [&big, &rgb] {
        let run = bench.path("run");
        let message = refused(&strs(&bench.teacher_args(config, &run, &data, &[])), &["does not fit the data"]);
        assert!(
            message.contains("height x width x channels") && message.contains("set input = [8, 8, 1]"),
            "{message}"
        );
        assert!(!Path::new(&run).exists(), "a refused run leaves nothing behind");
    }
    // eval RUN on data of another shape.
    let teacher = bench.teacher();
    write_idx(&bench.dir.path().join("ten"), (100, 30), [10, 10, 1], 3, 0);
    refused(&["eval", &teacher, "--data", &bench.path("ten")], &["cannot classify these test images", "10x10x1"]);
}

// 2. Classes against the labels of every split.
#[test]
fn classes_against_the_labels() {
    let bench = Bench::new();
    let data = bench.path("digits8");
    let run = bench.path("run");
    // The config says 2 classes, the data has 3 (a label 2 in the training split).
    let two = bench
        .config("two.toml", &with_text(&with_text(TEACHER, "classes = 3", "classes = 2"), "units = 3", "units = 2"));
    refused(&strs(&bench.teacher_args(&two, &run, &data, &[])), &["has label 2", "classes = 2"]);
    // More classes in the config than in the data.
    let five = bench
        .config("five.toml", &with_text(&with_text(TEACHER, "classes = 3", "classes = 5"), "units = 3", "units = 5"));
    refused(&strs(&bench.teacher_args(&five, &run, &data, &[])), &["classes = 5", "3 classes", "set classes = 3"]);
    // A stray label only in the test split (was trained on silently).
    let stray = bench.dir.path().join("stray");
    write_idx(&stray, (240, 60), [8, 8, 1], 3, 0);
    let mut labels = std::fs::read(stray.join("t10k-labels-idx1-ubyte")).unwrap();
    *labels.last_mut().unwrap() = 7;
    std::fs::write(stray.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    let config = bench.path("teacher.toml");
    refused(&strs(&bench.teacher_args(&config, &run, &stray.display().to_string(), &[])), &["label 7"]);
    // eval RUN --data with more classes than the run's network.
    let teacher = bench.teacher();
    write_idx(&bench.dir.path().join("four"), (100, 40), [8, 8, 1], 4, 0);
    refused(&["eval", &teacher, "--data", &bench.path("four")], &["has label 3"]);
}

// 3 and 11. Flags that make no sense are refused by the parser.
#[test]
fn nonsense_flags() {
    let bench = Bench::new();
    let (config, run, data) = (bench.path("teacher.toml"), bench.path("run"), bench.path("digits8"));
    for (flag, value) in [
        ("--batch", "0"),
        ("--lr", "nan"),
        ("--lr", "-1"),
        ("--lr", "0"),
        ("--final-lr", "inf"),
        ("--subset", "0"),
        ("--valid", "0"),
        ("--test-subset", "0"),
        ("--epochs", "-3"),
        ("--batch", "many"),
    ] {
        let option = format!("{flag}={value}");
        refused(&strs(&bench.teacher_args(&config, &run, &data, &[&option])), &[flag]);
    }
    for (flag, value) in [("--tau", "0"), ("--lambda-start", "nan"), ("--lambda-end", "-2")] {
        let option = format!("{flag}={value}");
        refused(&["train", "student", "--config", &config, "--method", "kd", "--run", &run, &option], &[flag]);
    }
    // A shift as large as the image.
    refused(&strs(&bench.teacher_args(&config, &run, &data, &["--shift", "200"])), &["--shift 200", "8x8"]);
    // --valid larger than the data set names --valid and the data given.
    refused(&strs(&bench.teacher_args(&config, &run, &data, &["--valid", "5000"])), &["--valid 5000", "--data"]);
    // 0 epochs is legal: it says what it does.
    let (_, stderr) = ok(&strs(&bench.teacher_args(&config, &run, &data, &["--epochs", "0"])));
    assert!(stderr.contains("--epochs 0 trains nothing"), "{stderr}");
}

// 4, 5, 9 and 10. Configs: sizes, limits and malformed fields.
#[test]
fn configs_out_of_bounds_or_malformed() {
    let bench = Bench::new();
    let cases: Vec<(String, &[&str])> = vec![
        (
            with_text(STUDENT, "guided = \"pool1\"", "guided = \"pool1\"\n[regressor]\npieces = 0"),
            &["[regressor] pieces = 0"],
        ),
        (with_text(TEACHER, "padding = 1", "padding = 4611686018427387904"), &["layer 0 `conv1` (conv)", "padding"]),
        (with_text(TEACHER, "padding = 1", "padding = 9223372036854775807"), &["layer 0 `conv1`", "padding"]),
        (with_text(TEACHER, "kernel = 3", "kernel = 1000000000"), &["kernel = 1000000000"]),
        (with_text(TEACHER, "input = [8, 8, 1]", "input = [1000000000, 8, 1]"), &["input = [1000000000, 8, 1]"]),
        (with_text(TEACHER, "input = [8, 8, 1]", "input = [8, 8, 1000000]"), &["channels 1 to"]),
        (with_text(TEACHER, "units = 4", "units = 1000000"), &["units = 1000000"]),
        (with_text(TEACHER, "units = 4", "units = 1000000000"), &["units = 1000000000"]),
        (with_text(TEACHER, "pieces = 2", "pieces = 1000000"), &["pieces = 1000000"]),
        (with_text(TEACHER, "padding = 1", "padding = 3"), &["padding = 3", "smaller than the kernel"]),
        (with_text(TEACHER, "input = [8, 8, 1]", "input = [8, 8, 1, 99, 100]"), &["three numbers", "found 5"]),
        (with_text(TEACHER, "name = \"pool1\"", "name = \"conv1\""), &["layers 0 and 1", "`conv1`"]),
        (with_text(TEACHER, "padding = 1", "padding = -1"), &["padding -1 is negative"]),
        (with_text(TEACHER, "units = 3", "unitz = 3"), &["layer 2 `out`", "unitz"]),
        (with_text(TEACHER, "\nunits = 3", ""), &["layer 2 `out`", "missing field `units`"]),
        (with_text(TEACHER, "hint = \"pool1\"", "hint = \"out\""), &["hint = \"out\"", "feature map"]),
        (
            with_text(
                TEACHER,
                "type = \"max_pool\"",
                "type = \"dense\"\nunits = 4\n[[layers]]\ntype = \"conv\"\nunits = 2\nkernel = 1\n[[layers]]\ntype = \"max_pool\"",
            ),
            &["a conv cannot follow a dense layer"],
        ),
        (String::new(), &["missing field"]),
        ("\u{0}\u{1}garbage = [".into(), &["is not a valid network config"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let config = bench.config(&format!("bad{i}.toml"), text);
        let message = refused(&["info", &config], needles);
        assert!(message.contains(&format!("bad{i}.toml")), "the file is named: {message}");
    }
    // `info` labels its shape order and never wraps its totals.
    let (stdout, _) = ok(&["info", &bench.path("teacher.toml")]);
    assert!(
        stdout.contains("8x8x1 inputs (HxWxC)") && stdout.contains("out (HxWxC)") && stdout.contains("4x4x4"),
        "{stdout}"
    );
}

// 6. A command that fails after its run directory was made leaves no half-made run, so
//    the same command, once fixed, just works.
#[test]
fn a_failed_start_leaves_nothing_behind() {
    let bench = Bench::new();
    let teacher = bench.teacher();
    let data = bench.path("digits8");
    let student = bench.path("student.toml");
    let run = bench.path("hints");
    // The wrong teacher: a student run.
    let scratch = bench.path("scratch");
    ok(&[
        "train", "student", "--config", &student, "--method", "scratch", "--run", &scratch, "--data", &data,
        "--epochs", "1",
    ]);
    let args = |teacher: &str| {
        ["train", "student", "--config", &student, "--method", "hints", "--teacher", teacher, "--run", &run]
            .iter()
            .map(|s| s.to_string())
            .chain(["--data", &data, "--epochs", "1", "--hint-epochs", "1"].iter().map(|s| s.to_string()))
            .collect::<Vec<_>>()
    };
    refused(&strs(&args(&scratch)), &["is a student run", "pass the run of a teacher"]);
    assert!(!Path::new(&run).exists(), "nothing written for a refused start");
    // A start that fails during its first epoch (training diverges) is undone too.
    let diverging = bench.teacher_args(&bench.path("teacher.toml"), &run, &data, &["--lr", "1e30"]);
    let message = refused(&strs(&diverging), &["training diverged", "epoch 1, batch", "lower --lr"]);
    assert!(message.contains("no checkpoint"), "{message}");
    assert!(!Path::new(&run).join("run.json").exists(), "{message}");
    // The right teacher: the same command works.
    ok(&strs(&args(&teacher)));
}

// 7. One process per run directory.
#[test]
fn a_second_process_is_refused() {
    let bench = Bench::new();
    let (config, run, data) = (bench.path("teacher.toml"), bench.path("run"), bench.path("digits8"));
    std::fs::create_dir_all(&run).unwrap();
    let lock = std::fs::File::create(Path::new(&run).join("run.lock")).unwrap();
    lock.lock().unwrap();
    refused(&strs(&bench.teacher_args(&config, &run, &data, &[])), &["in use by another fitnets process"]);
    assert!(!Path::new(&run).join("run.json").exists());
    drop(lock);
    ok(&strs(&bench.teacher_args(&config, &run, &data, &[])));
}

// 8. Data sets are named by their folder and told apart by content.
#[test]
fn data_sets_have_an_identity() {
    let bench = Bench::new();
    let teacher = bench.teacher();
    let info = std::fs::read_to_string(Path::new(&teacher).join("run.json")).unwrap();
    assert!(info.contains("\"name\": \"digits8\"") && info.contains("\"content_hash\""), "{info}");
    // Other data of the same shape: a student may not distil from this teacher on it.
    let other = bench.dir.path().join("other");
    write_idx(&other, (240, 60), [8, 8, 1], 3, 9);
    let (student, run) = (bench.path("student.toml"), bench.path("kd"));
    let other = other.display().to_string();
    refused(
        &[
            "train",
            "student",
            "--config",
            &student,
            "--method",
            "kd",
            "--teacher",
            &teacher,
            "--run",
            &run,
            "--data",
            &other,
        ],
        &["was trained on digits8 (sha256", "this student's data is other (sha256"],
    );
    // A name must be one a record and a file name can hold.
    for bad in ["", "a/b", "x y"] {
        refused(
            &["train", "student", "--config", &student, "--method", "scratch", "--run", &run, "--name", bad],
            &["--name"],
        );
    }
    // The same files under another folder name and --name are the same data set.
    let copy = bench.dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(bench.path("digits8")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let copy = copy.display().to_string();
    let args = ["train", "student", "--config", &student, "--method", "kd", "--teacher", &teacher, "--run", &run];
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--data", &copy, "--name", "digits-copy", "--epochs", "1"]);
    ok(&args);
}

// 12 and 13. Splits come from the run; messages name files, not temporaries or Debug.
#[test]
fn export_reads_the_split_and_errors_name_files() {
    let bench = Bench::new();
    let teacher = bench.teacher();
    let data = bench.path("digits8");
    // No --valid anywhere: export finds the run's split itself.
    let blob = bench.path("t.fnet");
    ok(&["export", &teacher, "-o", &blob, "--data", &data]);
    // A --valid that contradicts the run is refused by name.
    refused(
        &["export", &teacher, "-o", &blob, "--data", &data, "--valid", "7"],
        &["--valid 7", "was trained with --valid 24"],
    );
    refused(
        &["export", &teacher, "-o", &blob, "--data", &data, "--subset", "7"],
        &["--subset 7", "216 training images"],
    );
    // The target, not a temporary file.
    let message =
        refused(&["export", &teacher, "-o", "/nonexistent-dir/x.fnet", "--data", &data], &["/nonexistent-dir/x.fnet"]);
    assert!(!message.contains(".tmp"), "{message}");
    // eval of a blob needs only the test files.
    let tests_only = bench.dir.path().join("tests-only");
    std::fs::create_dir_all(&tests_only).unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        std::fs::copy(Path::new(&data).join(name), tests_only.join(name)).unwrap();
    }
    ok(&["eval", &blob, "--data", &tests_only.display().to_string()]);
    refused(&["eval", &blob, "--data", &data, "--valid", "5"], &["--valid and --subset choose training images"]);
    // A run from a newer fitnets is refused as such, not as damaged.
    let record = PathBuf::from(&teacher).join("run.json");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, text.replacen("{", "{\n  \"format\": 99,", 1)).unwrap();
    refused(&["eval", &teacher, "--data", &data], &["written by a newer fitnets (run format 99"]);
    std::fs::write(&record, text).unwrap();
    // A truncated model names the file and says what to do.
    let model = PathBuf::from(&teacher).join("model.bin");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let message =
        refused(&["eval", &teacher, "--data", &data], &["model.bin cannot be decoded", "train the run again"]);
    assert!(!message.contains("0.14.0"), "{message}");
    // A missing config, by name, without Debug.
    let message = refused(&["info", &bench.path("missing.toml")], &["missing.toml"]);
    assert!(!message.contains("FileNotFound") && !message.contains("Os {"), "{message}");
    // Resuming a teacher as a student says so, and shows both settings on a data mismatch.
    let student = bench.path("student.toml");
    refused(
        &[
            "train", "student", "--config", &student, "--method", "scratch", "--run", &teacher, "--data", &data,
            "--resume",
        ],
        &["is a teacher run", "fitnets train teacher"],
    );
    let args = bench.teacher_args(&bench.path("teacher.toml"), &teacher, &data, &[]);
    let mut args: Vec<&str> =
        strs(&args).into_iter().filter(|a| !["--epochs", "1", "--batch", "16"].contains(a)).collect();
    args.extend(["--resume", "--valid", "30"]);
    refused(&args, &["it has:", "you gave:", "24 validation", "30 validation"]);
}

// 13. Every option has help text.
#[test]
fn every_option_has_help() {
    let mut missing = Vec::new();
    for command in [
        &["train", "teacher"][..],
        &["train", "student"],
        &["eval"],
        &["export"],
        &["compare"],
        &["sweep"],
        &["fit"],
        &["predict"],
        &["orchestrator"],
        &["report"],
        &["info"],
        &["inspect"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let (stdout, _) = ok(&args);
        let mut lines = stdout.lines().peekable();
        while let Some(line) = lines.next() {
            let trimmed = line.trim_start();
            if !trimmed.starts_with("--") && !trimmed.starts_with('-') {
                continue;
            }
            // `--flag <V>  help` on one line, or the help on the next, more indented.
            let has_text = trimmed.contains("  ") && !trimmed.trim_end().ends_with('>')
                || lines.peek().is_some_and(|next| {
                    next.starts_with("          ") && !next.trim().is_empty() && !next.trim().starts_with('[')
                });
            if !has_text {
                missing.push(format!("`fitnets {}`: `{}`", command.join(" "), trimmed));
            }
        }
    }
    assert!(missing.is_empty(), "options without help text:\n{}", missing.join("\n"));
}

// compare and sweep check their students' plan before the teacher or any student trains.
#[test]
fn a_plan_without_kd_epochs_is_refused_before_any_training() {
    let bench = Bench::new();
    let (runs, data) = (bench.path("runs"), bench.path("digits8"));
    let plan = ["--student-epochs", "3", "--hint-epochs", "3", "--data", &data];
    let says = ["--hint-epochs 3 must leave epochs of --student-epochs 3"];
    refused(&[&["compare", "--runs", &runs][..], &plan].concat(), &says);
    refused(&[&["sweep", "--runs", &runs, "--teacher", &bench.path("teacher-run")][..], &plan].concat(), &says);
    assert!(!Path::new(&runs).exists(), "a refused plan left {runs} behind");
}

// The vector unit: FITNETS_VECTOR is an input too. A value that is not a unit, not text
// or a unit the CPU lacks stops every command before any work, and names the variable.
#[test]
fn a_bad_vector_unit_is_refused_before_any_work() {
    let bench = Bench::new();
    let (config, run, data) = (bench.path("teacher.toml"), bench.path("run"), bench.path("digits8"));
    let args = bench.teacher_args(&config, &run, &data, &[]);
    let mut values: Vec<std::ffi::OsString> = vec!["avx1024".into(), "x".repeat(1 << 16).into()];
    #[cfg(unix)]
    values.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"avx\xff").to_os_string());
    for value in values {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fitnets"))
            .args(&args)
            .env("FITNETS_VECTOR", &value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("FITNETS_VECTOR") && !stderr.contains("panicked"), "{stderr}");
        assert!(stderr.len() < 400, "the message repeats the whole value: {} bytes", stderr.len());
        assert!(!Path::new(&run).exists(), "a refused start left {run} behind");
    }
}
