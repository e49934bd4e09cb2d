//! How `compare` and `sweep` train each student: `--student-epochs`, `--hint-epochs` and
//! the options of every student's run.

use clap::Args;

use super::values::epoch_count;
use super::{DataArgs, DeviceArgs, ScheduleArgs};
use crate::compare::StudentPlan;

/// The students' plan, as options.
#[derive(Args, Clone, Debug)]
pub struct StudentPlanArgs {
    /// Epochs of every student; `hints` spends `--hint-epochs` of them on hint training.
    #[arg(long, default_value_t = 14, value_name = "N", value_parser = epoch_count)]
    pub student_epochs: usize,
    /// Epochs of hint training (stage 1) of the `hints` students, out of
    /// `--student-epochs`.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = epoch_count)]
    pub hint_epochs: usize,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl StudentPlanArgs {
    /// The plan these options give.
    pub fn plan(&self) -> StudentPlan {
        StudentPlan {
            student_epochs: self.student_epochs,
            hint_epochs: self.hint_epochs,
            data: self.data.spec(),
            schedule: self.schedule.schedule(),
            compute: self.device.compute(),
        }
    }
}
