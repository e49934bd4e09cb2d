//! Checkpoints: written after every epoch, this epoch's files before the state that
//! points at them, so an interruption at any moment leaves the previous one usable.

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::optim::{Optim, Recorder32};
use super::phase::{EpochMetrics, Phase, Trainee};

/// What a checkpoint says: the last completed epoch of a phase and its files.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct CheckpointState {
    pub(super) phase: String,
    pub(super) epochs_done: usize,
    pub(super) model: String,
    pub(super) optimizer: String,
}

pub(super) fn history_file(phase: &Phase<'_>) -> String {
    format!("history-{}.json", phase.name)
}

/// Writes the checkpoint after `epoch`: this epoch's files first, then the state that
/// points at them, so an interruption at any moment leaves the previous one usable.
pub(super) fn checkpoint<B: AutodiffBackend>(
    phase: &Phase<'_>,
    epoch: usize,
    model: &Trainee<B>,
    optim: &Optim<B>,
    history: &[EpochMetrics],
) -> anyhow::Result<()> {
    let state_file = format!("checkpoint-{}.json", phase.name);
    let stem = format!("checkpoint-{}-epoch{}", phase.name, epoch + 1);
    model.clone().save_file(phase.run.join(&format!("{stem}-model")), &Recorder32::new())?;
    optim.save(phase.run.join(&format!("{stem}-optim")))?;
    phase.run.write_json(&history_file(phase), &history)?;
    let previous: Option<CheckpointState> = phase.run.read_json(&state_file).ok();
    phase.run.write_json(
        &state_file,
        &CheckpointState {
            phase: phase.name.to_string(),
            epochs_done: epoch + 1,
            model: format!("{stem}-model.bin"),
            optimizer: format!("{stem}-optim.bin"),
        },
    )?;
    if let Some(previous) = previous {
        let _ = std::fs::remove_file(phase.run.join(&previous.model));
        let _ = std::fs::remove_file(phase.run.join(&previous.optimizer));
    }
    Ok(())
}
