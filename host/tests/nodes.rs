//! Training on several machines, as a user runs it: `fitnets orchestrator` and one
//! `fitnets train` per node, all processes on the loopback.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module as _, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use fitnets::backend::Flex;
use fitnets::run::load_run;

use common::{STUDENT, TEACHER, ok, write_idx};

/// Every parameter of the finished run in `dir`, flattened in visiting order.
fn weights(dir: &Path) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let (net, _) = load_run::<Flex>(dir, &Default::default()).unwrap();
    let mut collect = Collect(Vec::new());
    net.visit(&mut collect);
    collect.0
}

/// `fitnets orchestrator` for `nodes` nodes on a free loopback port, and that address.
fn start_orchestrator(nodes: usize, timeout: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fitnets"))
        .args(["orchestrator", "--listen", "127.0.0.1:0", "--nodes", &nodes.to_string(), "--peer-timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap()).read_line(&mut line).unwrap();
    let address = line
        .strip_prefix("orchestrator listening on ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("the orchestrator's first line: {line}"))
        .to_string();
    (child, address)
}

/// `fitnets <args>` in the background, its output going to `log` (a file: a pipe that
/// nobody reads while another node is waited for could fill and stall the run).
fn spawn(args: &[String], log: &Path) -> (Child, std::path::PathBuf) {
    let file = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_fitnets"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    (child, log.to_path_buf())
}

/// Waits for `child`: `(exit code, its log)`.
fn finish((mut child, log): (Child, std::path::PathBuf)) -> (i32, String) {
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), std::fs::read_to_string(log).unwrap())
}

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Setup {
    /// 8x8 images of 3 classes, the tiny teacher trained alone.
    fn new(train_images: u32) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        write_idx(&root.join("data"), (train_images, 30), [8, 8, 1], 3, 7);
        std::fs::write(root.join("teacher.toml"), TEACHER).unwrap();
        std::fs::write(root.join("student.toml"), STUDENT).unwrap();
        let setup = Setup { _dir: dir, root };
        let (teacher, data) = (setup.path("teacher"), setup.path("data"));
        let config = setup.path("teacher.toml");
        let args = ["train", "teacher", "--config", &config, "--run", &teacher, "--data", &data, "--valid", "24"];
        ok(&[&args[..], &["--epochs", "2", "--batch", "16"]].concat());
        setup
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    /// `fitnets train student --method hints` into `run`, with `extra` options.
    fn student(&self, run: &str, epochs: usize, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> =
            ["train", "student", "--method", "hints", "--valid", "24"].iter().map(|s| s.to_string()).collect();
        for (option, value) in [
            ("--config", self.path("student.toml")),
            ("--teacher", self.path("teacher")),
            ("--data", self.path("data")),
            ("--run", self.path(run)),
        ] {
            args.extend([option.to_string(), value]);
        }
        if !extra.contains(&"--resume") {
            let schedule = ["--epochs", &epochs.to_string(), "--hint-epochs", "2", "--batch", "16"].map(String::from);
            args.extend(schedule);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

fn node_options<'a>(node: &'a str, address: &'a str) -> [&'a str; 6] {
    ["--nodes", "2", "--node", node, "--orchestrator", address]
}

#[test]
fn two_nodes_train_as_one_process_does() {
    let setup = Setup::new(120);
    let (_, alone_log) = ok(&setup.student("alone", 3, &[]).iter().map(String::as_str).collect::<Vec<_>>());
    let (orchestrator, address) = start_orchestrator(2, "60");
    let nodes: Vec<_> = ["0", "1"]
        .iter()
        .map(|node| {
            let args = setup.student(&format!("node{node}"), 3, &node_options(node, &address));
            spawn(&args, &setup.root.join(format!("node{node}.log")))
        })
        .collect();
    for (node, child) in nodes.into_iter().enumerate() {
        let (code, log) = finish(child);
        assert_eq!(code, 0, "node {node}: {log}");
        assert!(log.contains(&format!("node {node} of 2: joining the orchestrator")), "{log}");
    }
    let out = orchestrator.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Hints, 2 epochs of 96 images in batches of 16, then 3 epochs of the student.
    assert_eq!(stdout.trim(), "2 nodes trained 2 phases, 30 steps");

    let (alone, node0, node1) =
        (weights(&setup.root.join("alone")), weights(&setup.root.join("node0")), weights(&setup.root.join("node1")));
    assert_eq!(node0, node1, "the nodes' replicas take the same steps, bit for bit");
    let scale = alone.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = alone.iter().zip(&node0).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff <= 1e-4 * scale, "2 nodes differ from one process by {diff} (scale {scale})");
    // The same epochs, the same training losses within rounding.
    let losses = |run: &str| -> Vec<f64> {
        let csv = std::fs::read_to_string(setup.root.join(run).join("metrics.csv")).unwrap();
        csv.lines().skip(1).map(|line| line.split(',').nth(2).unwrap().parse().unwrap()).collect()
    };
    let (alone_losses, node_losses) = (losses("alone"), losses("node0"));
    assert_eq!(alone_losses.len(), 5, "{alone_log}");
    assert_eq!(alone_losses.len(), node_losses.len());
    for (a, b) in alone_losses.iter().zip(&node_losses) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "training losses {alone_losses:?} and {node_losses:?}");
    }
}

#[test]
fn a_killed_node_stops_the_others_and_the_run_resumes() {
    let setup = Setup::new(240);
    let epochs = 150;
    let (orchestrator, address) = start_orchestrator(2, "60");
    let survivor = spawn(&setup.student("node0", epochs, &node_options("0", &address)), &setup.root.join("node0.log"));
    let (mut victim, _) =
        spawn(&setup.student("node1", epochs, &node_options("1", &address)), &setup.root.join("node1.log"));
    // Killed once it has checkpointed an epoch of the student phase.
    let checkpoint = setup.root.join("node1/checkpoint-student.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !checkpoint.exists() {
        assert!(Instant::now() < deadline, "node 1 wrote no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    victim.kill().unwrap();
    let killed = Instant::now();
    let (code, log) = finish(survivor);
    let noticed = killed.elapsed();
    assert_eq!(code, 1, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("node 1 disconnected after step"), "{log}");
    assert!(log.contains("start the orchestrator again and every node with --resume"), "{log}");
    assert!(noticed < Duration::from_secs(30), "node 0 stopped {noticed:?} after node 1 died");
    let out = orchestrator.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: node 1 disconnected after step"));
    let _ = victim.wait();

    // Both resume from their checkpoints; one that stopped an epoch later than the
    // other is refused with both nodes' resume points.
    let (orchestrator, address) = start_orchestrator(2, "60");
    let nodes: Vec<_> = ["0", "1"]
        .iter()
        .map(|node| {
            let options = [&node_options(node, &address)[..], &["--resume"]].concat();
            spawn(
                &setup.student(&format!("node{node}"), epochs, &options),
                &setup.root.join(format!("resume{node}.log")),
            )
        })
        .collect();
    let results: Vec<(i32, String)> = nodes.into_iter().map(finish).collect();
    let out = orchestrator.wait_with_output().unwrap();
    let orchestrated = String::from_utf8_lossy(&out.stderr).into_owned();
    if results.iter().all(|(code, _)| *code == 0) {
        eprintln!("node 0 stopped {noticed:?} after node 1 was killed; both resumed");
        assert!(out.status.success(), "{orchestrated}");
        let resumed = weights(&setup.root.join("node0"));
        assert_eq!(resumed, weights(&setup.root.join("node1")));
        // The resume is exact: the same run uninterrupted ends with the same weights.
        let (orchestrator, address) = start_orchestrator(2, "60");
        let nodes: Vec<_> = ["0", "1"]
            .iter()
            .map(|node| {
                let args = setup.student(&format!("whole{node}"), epochs, &node_options(node, &address));
                spawn(&args, &setup.root.join(format!("whole{node}.log")))
            })
            .collect();
        for node in nodes {
            let (code, log) = finish(node);
            assert_eq!(code, 0, "{log}");
        }
        assert!(orchestrator.wait_with_output().unwrap().status.success());
        assert_eq!(resumed, weights(&setup.root.join("whole0")), "resumed and uninterrupted runs differ");
    } else {
        eprintln!("node 0 stopped {noticed:?} after node 1 was killed; resuming refused: {orchestrated}");
        assert!(orchestrated.contains("the nodes disagree on the phase they train"), "{orchestrated}\n{results:?}");
        for (_, log) in &results {
            assert!(log.contains("the nodes disagree"), "{log}");
        }
    }
}

#[test]
fn node_options_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run").display().to_string();
    let config = dir.path().join("t.toml");
    std::fs::write(&config, TEACHER).unwrap();
    let config = config.display().to_string();
    let train = |extra: &[&str]| -> Vec<String> {
        ["train", "teacher", "--config", &config, "--run", &run, "--data", "/nonexistent"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    for (extra, needles) in [
        (&["--nodes", "2"][..], &["--nodes 2 needs this machine's --node (0 to 1)", "--orchestrator HOST:PORT"][..]),
        (&["--nodes", "2", "--node", "1"], &["--orchestrator"]),
        (
            &["--nodes", "2", "--node", "2", "--orchestrator", "127.0.0.1:1"],
            &["--node 2: with --nodes 2 the nodes are 0 to 1"],
        ),
        (&["--node", "0"], &["add --nodes N"]),
        (&["--nodes", "0"], &["--nodes", "from 1 to 1024"]),
        (&["--peer-timeout", "0"], &["--peer-timeout", "from 1 to 86400"]),
        (&["--device", "cpu:peers=0"], &["the CPU takes 1 to 64 peers"]),
        (&["--device", "cpu:2"], &["cpu:peers=N"]),
    ] {
        common::refused(&train(extra).iter().map(String::as_str).collect::<Vec<_>>(), needles);
        assert!(!Path::new(&run).exists(), "a refused command made {run}");
    }
    common::refused(&["orchestrator", "--nodes", "2", "--listen", "nowhere"], &["--listen nowhere", "HOST:PORT"]);
    common::refused(&["orchestrator", "--listen", "127.0.0.1:0"], &["--nodes"]);
}
