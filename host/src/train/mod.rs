//! Training: the losses of the three methods, the loop and its peers.

pub mod batch;
mod checkpoint;
pub mod collective;
pub mod fit;
pub mod flat;
pub mod loss;
pub mod nodes;
mod optim;
mod peer;
pub mod phase;
pub mod schedule;
pub mod step;
pub mod teacher_cache;
pub mod workers;
