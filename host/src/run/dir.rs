//! A run's directory: its config, `metrics.csv`, checkpoints and results, each file
//! written atomically (a temporary file renamed into place), so an interrupted run never
//! leaves a half-written file behind.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A run directory on disk.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
    /// `run.lock`, locked exclusively, for a directory opened to write: the lock lasts
    /// while any clone of this `RunDir` lives (the OS drops it if the process dies).
    lock: Option<std::sync::Arc<std::fs::File>>,
}

/// The file whose exclusive lock marks a run directory in use.
pub const LOCK_FILE: &str = "run.lock";

/// Columns of `metrics.csv`, one row per epoch of each phase.
pub const METRICS_HEADER: &str =
    "phase,epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,learning_rate,lambda,seconds,images_per_second";

impl RunDir {
    /// Creates the directory (and its parents) if needed.
    pub fn create(path: &Path) -> anyhow::Result<RunDir> {
        std::fs::create_dir_all(path).with_context(|| format!("cannot create the run directory {}", path.display()))?;
        Ok(RunDir { path: path.to_path_buf(), lock: None })
    }

    /// An existing run directory, to read.
    pub fn open(path: &Path) -> anyhow::Result<RunDir> {
        anyhow::ensure!(path.is_dir(), "{} is not a run directory (no such folder)", path.display());
        Ok(RunDir { path: path.to_path_buf(), lock: None })
    }

    /// The run directory at `path` (created if needed), to write: holds an exclusive lock
    /// on its `run.lock` for as long as the returned value (or a clone) lives, and
    /// refuses at once if another process holds it.
    pub fn lock(path: &Path) -> anyhow::Result<RunDir> {
        let mut run = RunDir::create(path)?;
        let lock_path = run.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "{} is in use by another fitnets process (two processes training into one run would \
                 corrupt it): wait for that one to finish, or choose another --run",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        run.lock = Some(std::sync::Arc::new(file));
        Ok(run)
    }

    /// Whether this value holds the directory's lock.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `bytes` to `name` atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        write_atomic(&self.join(name), bytes)
    }

    /// Writes `value` as pretty JSON to `name`.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        self.write(name, text.as_bytes())
    }

    /// Reads JSON from `name`.
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> anyhow::Result<T> {
        let path = self.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("cannot read {} as a fitnets record", path.display()))
    }

    /// Appends rows to `metrics.csv` (rewritten whole, atomically).
    pub fn append_metrics(&self, rows: &[String]) -> anyhow::Result<()> {
        let path = self.join("metrics.csv");
        let mut text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(_) => format!("{METRICS_HEADER}\n"),
        };
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        self.write("metrics.csv", text.as_bytes())
    }

    /// Drops the rows of `metrics.csv` after the given phase and epoch (so a resumed
    /// run does not repeat rows written after its last checkpoint).
    pub fn truncate_metrics(&self, keep: impl Fn(&str, usize) -> bool) -> anyhow::Result<()> {
        let path = self.join("metrics.csv");
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let mut fields = line.split(',');
            let (phase, epoch) = (fields.next().unwrap_or(""), fields.next().and_then(|e| e.parse().ok()));
            if i == 0 || epoch.is_some_and(|e| keep(phase, e)) {
                out.push_str(line);
                out.push('\n');
            }
        }
        self.write("metrics.csv", out.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, named by
/// process so that processes writing the same file (sweeps of one depth each) never
/// share one: the last rename wins, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let tmp = path.with_extension(format!("{extension}.{}.tmp", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("cannot write {}: {e}", path.display());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}
