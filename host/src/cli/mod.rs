//! The argument types the `fitnets` subcommands share (each command's own arguments and
//! work live in [`crate::commands`]): data, schedule, device and nodes, and the parsers of
//! option values.

mod data;
mod device;
mod plan;
mod schedule;
mod values;

pub use data::{DataArgs, data_set_name, default_valid, resize_mode};
pub use device::{DeviceArgs, MAX_NODES, NodeArgs, node_count, peer_timeout};
pub use plan::StudentPlanArgs;
pub use schedule::{DEFAULT_EPOCHS, ScheduleArgs};
pub use values::{MAX_EPOCHS, epoch_count, non_negative_number, positive_count, positive_number};
