//! The paper's Table 4 for our data: the teacher and the three student methods trained
//! with one schedule (`fitnets compare`), tabulated with parameters, MACs, accuracy,
//! compression and speed-up; the plan `sweep` and `fit` train their students by.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::backend::Compute;
use crate::data::DataSpec;
use crate::method::{KdSettings, Method};
use crate::run::dir::RunDir;
use crate::run::train::{StudentJob, TeacherJob, train_student, train_teacher};
use crate::run::{RunInfo, RunResult};
use crate::train::nodes::Nodes;
use crate::train::schedule::Schedule;

/// A comparison: the teacher and every student method, each with `seeds` seeds.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The teacher's network config.
    pub teacher_config: PathBuf,
    /// The student's network config (its `guided` layer for `hints`).
    pub student_config: PathBuf,
    /// Where the runs go: `teacher/`, `scratch/`, `kd/`, `hints/`, `seed-K/…`.
    pub runs: PathBuf,
    /// Epochs of the teacher (its other settings are the plan's).
    pub teacher_epochs: usize,
    /// Seeds of every student method, from the plan's seed on (at least one).
    pub seeds: u64,
    pub plan: StudentPlan,
}

/// How `compare`, `sweep` and `fit` train each student: one schedule for all, the
/// paper's KD settings (τ = 3, λ from 4 to 1).
#[derive(Clone, Debug)]
pub struct StudentPlan {
    /// Epochs of every student; `hints` spends `hint_epochs` of them on hint training.
    pub student_epochs: usize,
    /// Epochs of hint training of the `hints` students, fewer than `student_epochs`.
    pub hint_epochs: usize,
    pub data: DataSpec,
    /// The schedule of every student (its epochs are set per method).
    pub schedule: Schedule,
    pub compute: Compute,
}

impl StudentPlan {
    /// Refuses a plan that leaves `hints` no epochs of KD: called before any training.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.hint_epochs < self.student_epochs,
            "--hint-epochs {} must leave epochs of --student-epochs {} for the KD stage: give fewer hint epochs \
             or more student epochs",
            self.hint_epochs,
            self.student_epochs
        );
        Ok(())
    }

    /// Trains the student of `config` with `method` from `teacher` into `run` (seed
    /// `schedule.seed` + `seed_offset`), unless that run finished already; an interrupted run
    /// is resumed.
    pub fn train(
        &self,
        config: &Path,
        method: Method,
        teacher: &Path,
        run: &Path,
        seed_offset: u64,
    ) -> anyhow::Result<()> {
        self.check()?;
        let mut schedule = self.schedule.clone();
        // Any seed is valid: `--seed` near the top of the range wraps around.
        schedule.seed = self.schedule.seed.wrapping_add(seed_offset);
        let hint_epochs = if method == Method::Hints { self.hint_epochs } else { 0 };
        schedule.epochs = self.student_epochs - hint_epochs;
        let student = StudentJob {
            config: config.to_path_buf(),
            method,
            teacher: Some(teacher.to_path_buf()),
            run: run.to_path_buf(),
            resume: run.join("run.json").exists(),
            hint_epochs,
            kd: KdSettings::default(),
            data: self.data.clone(),
            schedule,
            compute: self.compute.clone(),
            nodes: Nodes::default(),
        };
        if student.resume {
            check_settings(run, &student)?;
            if finished(run).is_some() {
                return Ok(());
            }
        }
        train_student(&student).with_context(|| {
            format!("training {} with {} (seed {})", run.display(), method.name(), student.schedule.seed)
        })
    }
}

/// A run is reused (or resumed) only if it was started with the settings this command
/// would give it; otherwise the table would mix schedules without saying so.
fn check_settings(run: &Path, student: &StudentJob) -> anyhow::Result<()> {
    let info: RunInfo = RunDir::open(run)?.read_json("run.json")?;
    crate::run::check_reuse_data(run, &info, &student.data)?;
    let wanted = student.settings();
    let saved = (info.schedule.clone(), info.hint_schedule.clone(), info.kd);
    anyhow::ensure!(
        saved == wanted,
        "{} holds a run started with other settings than this command gives it:\n  the run's:     {}\n  \
         this command: {}\nchoose another --runs, or pass the run's options",
        run.display(),
        serde_json::to_string(&saved)?,
        serde_json::to_string(&wanted)?
    );
    if let Some(teacher) = &student.teacher {
        let now = RunDir::open(teacher)?.read_json::<RunInfo>("run.json")?.views();
        crate::run::check_teacher_views(run, &info, teacher, now)?;
    }
    Ok(())
}

/// One row of the table: a network and its test accuracy for each seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub params: u64,
    pub macs: u64,
    pub accuracies: Vec<f64>,
}

/// The result of the run in `dir` if it finished.
pub(crate) fn finished(dir: &Path) -> Option<RunResult> {
    RunDir::open(dir).ok()?.read_json("result.json").ok()
}

/// Runs what is missing, then prints and saves the table.
pub fn compare(args: &Comparison) -> anyhow::Result<()> {
    args.plan.check()?;
    let teacher_dir = args.runs.join("teacher");
    if finished(&teacher_dir).is_some() {
        let info: RunInfo = RunDir::open(&teacher_dir)?.read_json("run.json")?;
        crate::run::check_reuse_data(&teacher_dir, &info, &args.plan.data)?;
    } else {
        let teacher = TeacherJob {
            config: args.teacher_config.clone(),
            run: teacher_dir.clone(),
            resume: teacher_dir.join("run.json").exists(),
            data: args.plan.data.clone(),
            schedule: Schedule { epochs: args.teacher_epochs, ..args.plan.schedule.clone() },
            flip_average: false,
            shift_average: false,
            no_flip_average: false,
            no_shift_average: false,
            compute: args.plan.compute.clone(),
            nodes: Nodes::default(),
        };
        train_teacher(&teacher).context("training the teacher")?;
    }
    for k in 0..args.seeds {
        for method in METHODS {
            args.plan.train(&args.student_config, method, &teacher_dir, &student_dir(&args.runs, k, method), k)?;
        }
    }
    let table = full_table(&args.runs, args.seeds)?;
    print!("{table}");
    RunDir::open(&args.runs)?.write("table.md", table.as_bytes())?;
    Ok(())
}

/// The table of `seeds` seeds from the runs in `runs`, with the differences between
/// methods when there are several.
fn full_table(runs: &Path, seeds: u64) -> anyhow::Result<String> {
    let rows = rows(runs, seeds)?;
    let mut table = table(&rows);
    if seeds > 1 {
        table += "\n";
        table += &differences(&rows, test_images(&runs.join("teacher"))?);
    }
    Ok(table)
}

/// The teacher's row, then each method's over seeds `0..seeds`.
fn rows(runs: &Path, seeds: u64) -> anyhow::Result<Vec<Row>> {
    let mut rows = vec![row(&runs.join("teacher"))?];
    for method in METHODS {
        let dirs: Vec<PathBuf> = (0..seeds).map(|k| student_dir(runs, k, method)).collect();
        rows.push(seed_row(&dirs)?);
    }
    Ok(rows)
}

/// The table of a `compare --seeds N` in `runs`, over the seeds whose three methods
/// all finished, if there are two or more of them (the report's seeds section).
pub fn seeds_table(runs: &Path) -> anyhow::Result<Option<String>> {
    let complete = |k: u64| METHODS.iter().all(|&m| finished(&student_dir(runs, k, m)).is_some());
    let seeds = (0..).take_while(|&k| complete(k)).count() as u64;
    if seeds < 2 || finished(&runs.join("teacher")).is_none() {
        return Ok(None);
    }
    full_table(runs, seeds).map(Some)
}

const METHODS: [Method; 3] = [Method::Scratch, Method::Kd, Method::Hints];

/// Where the student of `method` trained with the `k`-th seed lives.
fn student_dir(runs: &Path, k: u64, method: Method) -> PathBuf {
    match k {
        0 => runs.join(method.name()),
        _ => runs.join(format!("seed-{k}")).join(method.name()),
    }
}

fn read_run(dir: &Path) -> anyhow::Result<(RunInfo, RunResult)> {
    let run = RunDir::open(dir)?;
    Ok((run.read_json("run.json")?, run.read_json("result.json")?))
}

fn row(dir: &Path) -> anyhow::Result<Row> {
    let (info, result) = read_run(dir)?;
    let (params, macs) = info.cost()?;
    Ok(Row { name: info.label(), params, macs, accuracies: vec![result.test_accuracy] })
}

fn seed_row(dirs: &[PathBuf]) -> anyhow::Result<Row> {
    let mut row = row(&dirs[0])?;
    for dir in &dirs[1..] {
        row.accuracies.push(read_run(dir)?.1.test_accuracy);
    }
    Ok(row)
}

/// The number of test images the runs were evaluated on.
fn test_images(teacher: &Path) -> anyhow::Result<usize> {
    Ok(read_run(teacher)?.0.data.test_images)
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// For each pair of student methods, the difference of their mean test accuracies
/// against its noise: the seeds' spread (standard error of each mean) and the test set's
/// sampling error (binomial, `√(p(1−p)/N)` per method), combined as independent. A
/// difference beyond twice that standard error is called real.
pub fn differences(rows: &[Row], test_images: usize) -> String {
    let mut text = String::from("| difference | mean | noise (1 s.e.) | beyond 2 s.e.? |\n|---|---:|---:|---|\n");
    let students = &rows[1..];
    for (i, a) in students.iter().enumerate() {
        for b in &students[i + 1..] {
            let (ma, sa) = mean_std(&a.accuracies);
            let (mb, sb) = mean_std(&b.accuracies);
            let sampling = |p: f64| p * (1.0 - p) / test_images.max(1) as f64;
            let se = (sa * sa / a.accuracies.len() as f64
                + sb * sb / b.accuracies.len() as f64
                + sampling(ma)
                + sampling(mb))
            .sqrt();
            let diff = mb - ma;
            let _ = writeln!(
                text,
                "| {} − {} | {:+.2} pp | {:.2} pp | {} |",
                b.name,
                a.name,
                100.0 * diff,
                100.0 * se,
                if diff.abs() > 2.0 * se { "yes" } else { "no" }
            );
        }
    }
    text
}

/// The Markdown table; the first row is the teacher, the reference for compression
/// (parameters) and speed-up (MACs). With several seeds, accuracy is mean ± standard
/// deviation followed by each seed's value.
pub fn table(rows: &[Row]) -> String {
    let mut text = String::from("| network | parameters | MACs | test accuracy | compression | speed-up |\n");
    text += "|---|---:|---:|---:|---:|---:|\n";
    let Some(teacher) = rows.first() else { return text };
    for row in rows {
        let (mean, std) = mean_std(&row.accuracies);
        let accuracy = match row.accuracies.len() {
            1 => format!("{:.2}%", 100.0 * mean),
            n => {
                let each: Vec<String> = row.accuracies.iter().map(|a| format!("{:.2}", 100.0 * a)).collect();
                format!("{:.2} ± {:.2}% ({n} seeds: {})", 100.0 * mean, 100.0 * std, each.join(", "))
            }
        };
        let _ = writeln!(
            text,
            "| {} | {} | {:.2}M | {accuracy} | {:.1}x | {:.1}x |",
            row.name,
            row.params,
            row.macs as f64 / 1e6,
            teacher.params as f64 / row.params as f64,
            teacher.macs as f64 / row.macs as f64
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, accuracies: &[f64]) -> Row {
        Row { name: name.into(), params: 100, macs: 1_000_000, accuracies: accuracies.to_vec() }
    }

    #[test]
    fn mean_and_sample_standard_deviation() {
        assert_eq!(mean_std(&[0.9]), (0.9, 0.0));
        let (mean, std) = mean_std(&[0.90, 0.92, 0.94]);
        assert!((mean - 0.92).abs() < 1e-12);
        assert!((std - 0.02).abs() < 1e-12, "{std}");
    }

    #[test]
    fn several_seeds_show_spread_and_which_differences_are_real() {
        let rows = [
            row("teacher", &[0.91]),
            row("FitNet scratch", &[0.900, 0.901, 0.899]),
            row("FitNet kd", &[0.901, 0.900, 0.902]),
            row("FitNet hints", &[0.930, 0.931, 0.929]),
        ];
        let table = table(&rows);
        assert!(table.contains("| 90.00 ± 0.10% (3 seeds: 90.00, 90.10, 89.90) |"), "{table}");
        // 10,000 test images: about 0.3 pp of sampling error per method at 90%.
        let diffs = differences(&rows, 10_000);
        assert!(diffs.contains("| FitNet kd − FitNet scratch | +0.10 pp | 0.43 pp | no |"), "{diffs}");
        assert!(diffs.contains("| FitNet hints − FitNet scratch | +3.00 pp |"), "{diffs}");
        assert!(diffs.lines().filter(|l| l.ends_with("| yes |")).count() == 2, "{diffs}");
    }
}
