//! One module per subcommand: its `clap` arguments and the function that runs it, over
//! the library. A command turns its options into the library's values (`cli`'s `spec`,
//! `compute`, `nodes`, `plan`; a job or a search of its own) and calls the library with
//! them. No library module (`train`, `model`, `data`, `quant`, `report`, `compare`, …)
//! imports `commands` or `cli`: `cargo xtask test --only imports` checks it.

pub mod compare;
pub mod eval;
pub mod export;
pub mod fit;
pub mod info;
pub mod orchestrator;
pub mod predict;
pub mod report;
pub mod sweep;
pub mod train;
