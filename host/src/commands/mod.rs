//! Subcommands whose arguments and work live together: each module holds its `clap`
//! arguments and the function that runs it, over the library. The library's modules
//! (`train`, `model`, `data`, `quant`, `report`, …) never import these: a command turns its options into the
//! library's values (`cli`'s `spec`, `compute`, `nodes`, `plan`; a `job` or a plan of
//! its own) and calls the library with them.

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
