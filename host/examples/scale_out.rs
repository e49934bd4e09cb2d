//! Data parallelism on one machine, measured as a user runs it: the same training run as
//! one process on one device, as one process of 2 peers (`--device cpu:peers=2`, or a
//! GPU named twice), and as 2 nodes (`fitnets orchestrator` and two `fitnets train
//! --nodes 2` processes, each with half the CPU threads), runs alternated over rounds.
//! Prints each setting's training images/s (median) and the largest difference of its
//! trained parameters from the one-process run of the same round, relative to the
//! largest parameter.
//!
//! ```text
//! cargo build --release -p fitnets
//! cargo run --release -p fitnets --example scale_out -- [--rounds 2] [--images 6400] [--epochs 1]
//!     [--threads 2] [--device cpu] [--config configs/mnist-fitnet.toml] [--batch 128] [--data DIR]
//! ```
//!
//! `--device cuda` compares `cuda`, `cuda:0,0` and 2 nodes on `cuda` (`--features cuda`).
//! The network trains from scratch on the labels: a network with dropout draws its masks
//! per shard, so its parameters differ by more than rounding (use one without, as the
//! default FitNet).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use burn::module::{Module as _, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use fitnets::backend::Flex;

struct Options {
    rounds: usize,
    images: usize,
    epochs: usize,
    threads: usize,
    device: String,
    config: String,
    batch: usize,
    data: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        rounds: 2,
        images: 6400,
        epochs: 1,
        threads: 2,
        device: "cpu".into(),
        config: "configs/mnist-fitnet.toml".into(),
        batch: 128,
        data: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().ok().filter(|&n| n > 0).ok_or(format!("{flag} {value}: a count"));
        match flag.as_str() {
            "--rounds" => o.rounds = number()?,
            "--images" => o.images = number()?,
            "--epochs" => o.epochs = number()?,
            "--threads" => o.threads = number()?,
            "--batch" => o.batch = number()?,
            "--device" => o.device = value,
            "--config" => o.config = value,
            "--data" => o.data = Some(value),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

/// Every parameter of the finished run in `dir`, flattened in visiting order.
fn weights(dir: &Path) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().to_vec::<f32>().expect("f32 parameters"));
        }
    }
    let (net, _) = fitnets::run::load_run::<Flex>(dir, &Default::default()).expect("a finished run");
    let mut collect = Collect(Vec::new());
    net.visit(&mut collect);
    collect.0
}

/// The training images/s of every epoch in the run's `metrics.csv`, averaged.
fn images_per_second(dir: &Path) -> f64 {
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
    let rates: Vec<f64> = csv.lines().skip(1).filter_map(|l| l.rsplit(',').next()?.parse().ok()).collect();
    rates.iter().sum::<f64>() / rates.len().max(1) as f64
}

fn train(binary: &Path, o: &Options, run: &Path, device: &str, threads: usize, extra: &[String]) -> Child {
    let mut command = Command::new(binary);
    command
        .args(["train", "student", "--method", "scratch", "--config", &o.config, "--device", device])
        .args(["--epochs", &o.epochs.to_string(), "--batch", &o.batch.to_string()])
        .args(["--subset", &(o.images + 500).to_string(), "--valid", "500", "--test-subset", "500"])
        .arg("--run")
        .arg(run)
        .args(extra)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(data) = &o.data {
        command.args(["--data", data]);
    }
    command.spawn().expect("fitnets starts")
}

fn wait(child: Child, what: &str) {
    let out = child.wait_with_output().expect("fitnets runs");
    if !out.status.success() {
        eprintln!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
}

fn main() {
    let o = options().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let binary = std::env::current_exe().expect("this example's path");
    let binary: PathBuf = binary.parent().and_then(Path::parent).expect("target/release").join("fitnets");
    if !binary.exists() {
        eprintln!("{} is missing: run `cargo build --release -p fitnets` first", binary.display());
        std::process::exit(1);
    }
    let scratch = tempfile::tempdir().expect("a temporary folder");
    // Two peers on the one device.
    let two_peers = match o.device.as_str() {
        "cpu" => "cpu:peers=2".to_string(),
        "cuda" => "cuda:0,0".to_string(),
        other => match other.strip_prefix("cuda:") {
            Some(n) if n.parse::<usize>().is_ok() => format!("cuda:{n},{n}"),
            _ => {
                eprintln!("--device {other}: give cpu, cuda or cuda:N (one device)");
                std::process::exit(2)
            }
        },
    };
    let other_threads = if o.threads > 1 { o.threads / 2 } else { 2 };
    let yardstick = format!("1 peer, {other_threads} threads");
    let settings = ["1 process, 1 peer", "1 process, 2 peers", "2 nodes (processes)", yardstick.as_str()];
    let mut rates = vec![Vec::new(); settings.len()];
    let mut diffs = vec![Vec::new(); settings.len()];
    let mut means = vec![Vec::new(); settings.len()];
    for round in 0..o.rounds {
        let runs: Vec<PathBuf> = (0..settings.len()).map(|s| scratch.path().join(format!("r{round}-s{s}"))).collect();
        wait(train(&binary, &o, &runs[0], &o.device, o.threads, &[]), settings[0]);
        wait(train(&binary, &o, &runs[1], &two_peers, o.threads, &[]), settings[1]);
        // The same single peer with another thread count: the rounding every change of
        // summation order brings, the yardstick for the others.
        wait(train(&binary, &o, &runs[3], &o.device, other_threads, &[]), settings[3]);
        let mut orchestrator = Command::new(&binary)
            .args(["orchestrator", "--listen", "127.0.0.1:0", "--nodes", "2", "--peer-timeout", "120"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the orchestrator starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(orchestrator.stderr.as_mut().expect("piped")),
            &mut line,
        )
        .expect("the orchestrator's address");
        let address = line.trim().trim_start_matches("orchestrator listening on ").split(',').next().unwrap_or("");
        let nodes: Vec<Child> = (0..2)
            .map(|node| {
                let run = if node == 0 { runs[2].clone() } else { scratch.path().join(format!("r{round}-node1")) };
                let extra = ["--nodes", "2", "--node", &node.to_string(), "--orchestrator", address].map(String::from);
                train(&binary, &o, &run, &o.device, (o.threads / 2).max(1), &extra)
            })
            .collect();
        for node in nodes {
            wait(node, settings[2]);
        }
        wait(orchestrator, "the orchestrator");
        let reference = weights(&runs[0]);
        let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (s, run) in runs.iter().enumerate() {
            let trained = weights(run);
            let diff = reference.iter().zip(&trained).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let mean = reference.iter().zip(&trained).map(|(a, b)| (a - b).abs()).sum::<f32>() / trained.len() as f32;
            rates[s].push(images_per_second(run));
            diffs[s].push(diff / scale);
            means[s].push(mean / scale);
            eprintln!(
                "round {} {:22} {:8.1} images/s, parameter difference largest {:.2e}, mean {:.2e}",
                round + 1,
                settings[s],
                rates[s][round],
                diffs[s][round],
                means[s][round]
            );
        }
    }
    let steps = o.images.div_ceil(o.batch) * o.epochs;
    println!(
        "{} on {}, {} images x {} epochs in batches of {} ({steps} steps), {} rounds, {} threads per machine",
        o.config, o.device, o.images, o.epochs, o.batch, o.rounds, o.threads
    );
    println!(
        "| setting | images/s (median) | parameter difference from 1 peer, relative to the largest parameter: \
         largest / mean (worst round) |"
    );
    println!("|---|---:|---:|");
    for s in 0..settings.len() {
        let mut sorted = rates[s].clone();
        sorted.sort_by(f64::total_cmp);
        let median = (sorted[(sorted.len() - 1) / 2] + sorted[sorted.len() / 2]) / 2.0;
        let worst = diffs[s].iter().fold(0f32, |m, &d| m.max(d));
        let mean = means[s].iter().fold(0f32, |m, &d| m.max(d));
        println!("| {} | {median:.1} | {worst:.2e} / {mean:.2e} |", settings[s]);
    }
}
