//! Corpora of bad inputs through the `fitnets` binary, each case a process: generated
//! configs (`info`, then `train teacher` on data of their shape), mutated IDX files
//! (`train teacher` on them), and every flag of `train` set to nasty values. Each case
//! must end as success or a clean refusal: no panic (exit 101), no abort (a signal), no
//! hang (a minute). The tally and the largest peak memory of any case are printed.
//!
//! `cargo test -p fitnets --test corpora` runs a small corpus; the closing figures of
//! the hardening work come from `FITNETS_CORPUS=2000 cargo test --release -p fitnets
//! --test corpora -- --nocapture` (N configs and N IDX files; the flags are always all).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

mod common;
use common::{STUDENT, TEACHER, config, idx, write_idx};

/// How one case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Accepted,
    Refused,
    Panic,
    Abort,
    Hang,
}

/// A corpus's outcomes, with an example command for each kind.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<Outcome, usize>,
    examples: BTreeMap<Outcome, String>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome, case: String) {
        *self.counts.entry(outcome).or_default() += 1;
        self.examples.entry(outcome).or_insert(case);
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.counts.get(&outcome).copied().unwrap_or(0)
    }

    fn line(&self, name: &str) -> String {
        let total: usize = self.counts.values().sum();
        format!(
            "{name}: {total} tried, {} refused cleanly, {} accepted, {} panics, {} aborts, {} hangs",
            self.count(Outcome::Refused),
            self.count(Outcome::Accepted),
            self.count(Outcome::Panic),
            self.count(Outcome::Abort),
            self.count(Outcome::Hang)
        )
    }

    /// Fails with the first example of each bad outcome.
    fn check(&self, name: &str) {
        let bad: Vec<String> = [Outcome::Panic, Outcome::Abort, Outcome::Hang]
            .iter()
            .filter_map(|o| self.examples.get(o).map(|e| format!("{o:?}: {e}")))
            .collect();
        assert!(bad.is_empty(), "{}\n{}", self.line(name), bad.join("\n"));
    }
}

/// Runs `fitnets args` with a deadline; its stderr goes to `log`.
fn run(args: &[String], log: &Path) -> Outcome {
    let stderr = std::fs::File::create(log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fitnets"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Hang;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    match status.code() {
        _ if text.contains("panicked") => Outcome::Panic,
        Some(0) => Outcome::Accepted,
        Some(1 | 2) => Outcome::Refused,
        Some(101) => Outcome::Panic,
        Some(_) => Outcome::Abort,
        None => Outcome::Abort, // killed by a signal: SIGABRT on a failed allocation
    }
}

/// The largest resident set of any child process so far, in MB.
fn peak_child_mb() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss as f64 / 1024.0
}

fn corpus_size() -> usize {
    std::env::var("FITNETS_CORPUS").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn config_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let strategy = config();
    let (mut info, mut train) = (Tally::default(), Tally::default());
    for i in 0..corpus_size() {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, &text).unwrap();
        let path = path.display().to_string();
        info.add(run(&strings(&["info", &path]), &log), text.clone());
        // Data of the config's own input and classes where that is small, so that accepted
        // configs train; else a fixed 8x8 set, which they must refuse cleanly.
        let shape = text
            .lines()
            .find_map(|l| l.strip_prefix("input = [")?.strip_suffix(']').map(str::to_string))
            .map(|s| s.split(", ").filter_map(|v| v.parse::<u32>().ok()).collect::<Vec<_>>())
            .unwrap_or_default();
        let classes = text.lines().find_map(|l| l.strip_prefix("classes = ")?.parse::<u8>().ok()).unwrap_or(3);
        let data = dir.path().join(format!("d{i}"));
        match shape[..] {
            [h @ 1..=16, w @ 1..=16, c @ 1..=3] if (2..=20).contains(&classes) => {
                write_idx(&data, (40, 10), [h, w, c], classes, i as u8)
            }
            _ => write_idx(&data, (40, 10), [8, 8, 1], 3, i as u8),
        }
        let run_dir = dir.path().join(format!("r{i}"));
        let args = strings(&["train", "teacher", "--config", &path, "--data", &data.display().to_string()]);
        let mut args = args;
        args.extend(strings(&["--run", &run_dir.display().to_string(), "--epochs", "1", "--batch", "8"]));
        train.add(run(&args, &log), text);
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    eprintln!(
        "{}\n{}\npeak memory of any case: {:.0} MB",
        info.line("configs, info"),
        train.line("configs, train"),
        peak_child_mb()
    );
    info.check("configs, info");
    train.check("configs, train");
}

/// The valid 8x8 set's four files, mutated one at a time.
#[test]
fn idx_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let clean = dir.path().join("clean");
    write_idx(&clean, (60, 20), [8, 8, 1], 3, 0);
    let config = dir.path().join("t.toml");
    std::fs::write(&config, TEACHER).unwrap();
    let names =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut tally = Tally::default();
    for i in 0..corpus_size() {
        let data = dir.path().join(format!("d{i}"));
        std::fs::create_dir_all(&data).unwrap();
        for name in names {
            std::fs::copy(clean.join(name), data.join(name)).unwrap();
        }
        let name = names[next() as usize % 4];
        let mut bytes = std::fs::read(clean.join(name)).unwrap();
        let what = match i % 7 {
            0 => {
                bytes.truncate(next() as usize % bytes.len());
                "truncated"
            }
            1 => {
                for _ in 0..1 + next() % 8 {
                    let at = next() as usize % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
                "bits flipped"
            }
            2 => {
                // A header dimension (big-endian u32 after the 4-byte magic) made huge.
                let dims = usize::from(bytes[3]);
                let at = 4 + 4 * (next() as usize % dims.max(1));
                let huge = [u32::MAX, 1 << 31, 1 << 24, 0, 70_000][next() as usize % 5];
                bytes[at..at + 4].copy_from_slice(&huge.to_be_bytes());
                "dimension rewritten"
            }
            3 => {
                bytes = idx(&[1 + (next() % 5) as u32], &[255; 5][..1 + (next() % 5) as usize]);
                "replaced by a tiny set"
            }
            4 => {
                bytes.extend(std::iter::repeat_n(0xab, 1 + next() as usize % 64));
                "trailing bytes"
            }
            5 => {
                bytes = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, (next() % 256) as u8];
                "bad gzip"
            }
            _ => {
                // Labels everywhere become one large value.
                if name.contains("labels") {
                    let len = bytes.len();
                    bytes[8..len].fill((next() % 256) as u8);
                }
                "labels rewritten"
            }
        };
        std::fs::write(data.join(name), &bytes).unwrap();
        let run_dir = dir.path().join(format!("r{i}"));
        let args = strings(&[
            "train",
            "teacher",
            "--config",
            &config.display().to_string(),
            "--data",
            &data.display().to_string(),
            "--run",
            &run_dir.display().to_string(),
            "--epochs",
            "1",
            "--batch",
            "8",
        ]);
        tally.add(run(&args, &log), format!("{name} {what}"));
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    eprintln!("{}\npeak memory of any case: {:.0} MB", tally.line("IDX files"), peak_child_mb());
    tally.check("IDX files");
}

/// Every option of `train teacher`, `train student`, `export` and `eval`, one at a time,
/// set to each of a list of bad (and borderline) values.
#[test]
fn flag_mutations() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let data = dir.path().join("data");
    write_idx(&data, (60, 20), [8, 8, 1], 3, 0);
    let config = dir.path().join("t.toml");
    std::fs::write(&config, TEACHER).unwrap();
    let student = dir.path().join("s.toml");
    std::fs::write(&student, STUDENT).unwrap();
    let (config, student, data) =
        (config.display().to_string(), student.display().to_string(), data.display().to_string());
    let teacher = dir.path().join("teacher").display().to_string();
    let base = strings(&["--data", &data, "--epochs", "1", "--batch", "8"]);
    let mut args = strings(&["train", "teacher", "--config", &config, "--run", &teacher]);
    args.extend(base.clone());
    assert_eq!(run(&args, &log), Outcome::Accepted, "{}", std::fs::read_to_string(&log).unwrap());
    let blob = dir.path().join("t.fnet").display().to_string();
    assert_eq!(run(&strings(&["export", &teacher, "-o", &blob, "--data", &data]), &log), Outcome::Accepted);

    let values = [
        "",
        "0",
        "1",
        "-1",
        "nan",
        "inf",
        "-inf",
        "1e308",
        "1e-300",
        "18446744073709551616",
        "99999999999",
        "abc",
        "3.5",
        "/nonexistent",
        "é\u{202e}",
    ];
    let student_options = ["--hint-epochs", "--tau", "--lambda-start", "--lambda-end", "--method"];
    let options = [
        "--epochs",
        "--batch",
        "--lr",
        "--final-lr",
        "--seed",
        "--shift",
        "--crop-pad",
        "--optimizer",
        "--valid",
        "--subset",
        "--test-subset",
        "--split-seed",
        "--name",
        "--data",
        "--device",
        "--backend",
    ];
    let mut tally = Tally::default();
    let mut case = 0;
    let mut try_args = |mut args: Vec<String>, tally: &mut Tally| {
        case += 1;
        let run_dir = dir.path().join(format!("r{case}")).display().to_string();
        args.extend(strings(&["--run", &run_dir]));
        let outcome = run(&args, &log);
        tally.add(outcome, args.join(" "));
        let _ = std::fs::remove_dir_all(&run_dir);
    };
    for option in options.iter().chain(&student_options) {
        for value in values {
            let is_student = student_options.contains(option);
            let mut args = if is_student {
                strings(&["train", "student", "--config", &student, "--teacher", &teacher])
            } else {
                strings(&["train", "teacher", "--config", &config])
            };
            if is_student && *option != "--method" {
                args.extend(strings(&["--method", "hints"]));
            }
            for pair in base.chunks(2) {
                if pair[0] != *option {
                    args.extend(pair.iter().cloned());
                }
            }
            args.push(format!("{option}={value}"));
            try_args(args, &mut tally);
        }
    }
    // `export` and `eval` options.
    for value in values {
        for args in [
            strings(&["export", &teacher, "-o", &blob, "--data", &data, "--calibration", value]),
            strings(&["export", &teacher, "-o", &blob, "--data", &data, "--calibration-images", value]),
            strings(&["export", &teacher, "-o", &blob, "--data", &data, "--labels", value]),
            strings(&["eval", &blob, "--data", &data, "--test-subset", value]),
            strings(&["eval", &teacher, "--data", &data, "--split-seed", value]),
        ] {
            tally.add(run(&args, &log), args.join(" "));
        }
    }
    eprintln!("{}\npeak memory of any case: {:.0} MB", tally.line("flags"), peak_child_mb());
    tally.check("flags");
}
