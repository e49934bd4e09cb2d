//! Subcommands whose arguments and work live together: each module holds its `clap`
//! arguments and the function that runs it, over the library. The library's modules
//! (`train`, `model`, `data`, `quant`, `report`, …) never import these. `compare`,
//! `sweep` and `fit` are commands that still live beside their library parts.

pub mod eval;
pub mod export;
pub mod info;
pub mod orchestrator;
pub mod predict;
pub mod report;
pub mod train;
