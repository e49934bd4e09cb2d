//! A run directory: what it records (`info`: `run.json`, `result.json`, the final model)
//! and how commands open it: a fresh start or a resume checked against what the run was
//! started with, a failed start undone, a run reused only on its own data.

pub mod dir;
mod info;
pub mod train;

pub use info::{DataInfo, ImageInfo, MODEL_FILE, RUN_FORMAT, RunInfo, RunResult, config_text, load_run, save_net};

use std::path::Path;

use anyhow::{bail, ensure};

use crate::data::DataSpec;
use crate::method::Method;
use crate::model::Views;
use dir::RunDir;

/// Whether the run directory `dir` holds a run that got anywhere: a `run.json` with a
/// checkpoint or a final model. A `run.json` alone is a start that failed or was stopped
/// before its first epoch ended, which starting again loses nothing of.
fn started(dir: &Path) -> bool {
    let has_checkpoint = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("checkpoint-") && name.ends_with(".json")
        })
    });
    dir.join("run.json").exists() && (has_checkpoint || dir.join("model.bin").exists())
}

/// Starts a run, or reopens it with `--resume`, holding the directory's lock. A resumed
/// run keeps its saved settings (clap refuses the options that would set them); what a
/// resume must still be told (the config, data, method and teacher) must be what the run
/// was started with, or the resume is refused before anything is written. Call it only
/// once every input has been checked: it writes `run.json`.
pub fn open_run(dir: &Path, resume: bool, fresh: RunInfo) -> anyhow::Result<(RunDir, RunInfo)> {
    let exists = dir.join("run.json").exists();
    if resume {
        ensure!(exists, "{} holds no run to resume: leave out --resume to start one", dir.display());
        let run = RunDir::lock(dir)?;
        let info: RunInfo = run.read_json("run.json")?;
        ensure!(
            info.role == fresh.role,
            "{} is a {} run: resume it with `fitnets train {}`",
            dir.display(),
            info.role,
            info.role
        );
        ensure!(
            info.data.same_data(&fresh.data),
            "{} was started on other data: resume it with the data options it was started with.\n  \
             it has:   {}\n  you gave: {}",
            dir.display(),
            describe_split(&info.data),
            describe_split(&fresh.data)
        );
        ensure!(
            info.config == fresh.config,
            "{} was started with another network config ({}; you gave {}): resume it with the config it was \
             started with (its copy is {})",
            dir.display(),
            info.config.name,
            fresh.config.name,
            dir.join("config.toml").display()
        );
        ensure!(
            info.method == fresh.method,
            "{} was started with --method {} (you gave --method {}): resume it with that method",
            dir.display(),
            info.method.map_or("none", Method::name),
            fresh.method.map_or("none", Method::name)
        );
        ensure!(
            fresh.teacher.is_none() || same_path(info.teacher.as_deref(), fresh.teacher.as_deref()),
            "{} was started with the teacher {} (you gave {}): resume it with that teacher",
            dir.display(),
            info.teacher.as_deref().map_or("none".into(), |t| t.display().to_string()),
            fresh.teacher.as_deref().map_or("none".into(), |t| t.display().to_string())
        );
        if let (Some(teacher), Some(now)) = (&info.teacher, fresh.teacher_views) {
            check_teacher_views(dir, &info, teacher, now)?;
        }
        return Ok((run, info));
    }
    let run = RunDir::lock(dir)?;
    if exists {
        ensure!(
            !started(dir),
            "{} already holds a run: pass --resume to continue it, or choose another --run",
            dir.display()
        );
        eprintln!("note: {} held a run that never finished an epoch; starting it again", dir.display());
        remove_start_files(&run);
    }
    run.write("config.toml", toml::to_string(&fresh.config)?.as_bytes())?;
    run.write_json("run.json", &fresh)?;
    Ok((run, fresh))
}

/// Whether `name` is a file a run writes before or with its checkpoints (what
/// [`remove_start_files`] removes from a run that never finished an epoch).
fn is_start_file(name: &str) -> bool {
    ["run.json", "config.toml", "metrics.csv"].contains(&name)
        || name.starts_with("history-")
        || name.starts_with("checkpoint-")
        || name.ends_with(".tmp")
}

/// Removes what a run wrote before its first epoch ended, so that the same command can
/// start it again (and a folder this command made is removed when nothing else is in it).
fn discard_unstarted(run: &RunDir) {
    remove_start_files(run);
    let only_lock =
        std::fs::read_dir(run.path()).is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == dir::LOCK_FILE));
    if only_lock {
        let _ = std::fs::remove_file(run.join(dir::LOCK_FILE));
        let _ = std::fs::remove_dir(run.path());
    }
}

/// Removes from `run` what a start wrote before its first checkpoint (run.json, config,
/// metrics, and the files of a checkpoint whose state file was never written).
fn remove_start_files(run: &RunDir) {
    let Ok(entries) = std::fs::read_dir(run.path()) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(is_start_file) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Runs `body` on a run just opened; when it fails before the run's first checkpoint,
/// the run's start is undone (the files it wrote are removed) so that the same command, once
/// its cause is fixed, just works. A resumed run is left as it is.
pub fn undo_failed_start(run: &RunDir, resumed: bool, body: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let result = body();
    if result.is_err() && !resumed && !started(run.path()) {
        discard_unstarted(run);
    }
    result
}

/// Refuses to reuse the run at `dir` (recorded as `info`) for data other than what
/// `data` names: runs are matched by the content hash of their files.
pub fn check_reuse_data(dir: &Path, info: &RunInfo, data: &DataSpec) -> anyhow::Result<()> {
    let (name, hash) = data.identity()?;
    // Compared by the files' hash: the pixels are not read here.
    let ours = crate::run::DataInfo { name, content_hash: Some(hash), pixels_hash: None, ..info.data.clone() };
    ensure!(
        info.data.same_set(&ours),
        "{} holds a run on {}, but this command's data is {}: choose another --runs for other data",
        dir.display(),
        info.data.describe(),
        ours.describe()
    );
    Ok(())
}

/// One line on a run's data: `fashion-mnist (sha256 3f2a…), 55000 training and 5000
/// validation images, split seed 1`.
pub(crate) fn describe_split(data: &crate::run::DataInfo) -> String {
    format!(
        "{}, {} training and {} validation images, split seed {}",
        data.describe(),
        data.train_images,
        data.valid_images,
        data.split_seed
    )
}

/// A student that recorded the views its teacher averaged is continued (or reused) only
/// while the teacher still averages those: views added to the teacher since change the
/// logits the student distils.
pub(crate) fn check_teacher_views(dir: &Path, student: &RunInfo, teacher: &Path, now: Views) -> anyhow::Result<()> {
    match student.teacher_views {
        Some(then) if then != now => bail!(
            "{} distilled the teacher {} when it classified {}; it now classifies {}, so the run cannot be \
             continued or reused: train the student again in a new run",
            dir.display(),
            teacher.display(),
            then.name(),
            now.name()
        ),
        _ => Ok(()),
    }
}

/// Whether two optional paths name the same file (both absent, equal, or the same once
/// resolved).
fn same_path(a: Option<&Path>, b: Option<&Path>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b),
        (a, b) => a == b,
    }
}
