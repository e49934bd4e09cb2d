//! Training: the losses of the three methods, the loop, and the run directory.

pub mod batch;
pub mod collective;
pub mod fit;
pub mod flat;
pub mod loss;
pub mod run_dir;
pub mod schedule;
pub mod teacher_cache;
pub mod workers;
