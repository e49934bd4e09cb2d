//! Subcommands whose arguments and work live together: each module holds its `clap`
//! arguments and the function that runs it, over the library. The library's modules
//! (`train`, `model`, `data`, `quant`'s arithmetic, `report`'s drawing, …) never import
//! these. `compare`, `sweep`, `fit`, `predict` and `quant::command`/`report::command` are
//! commands that still live beside their library modules.

pub mod eval;
pub mod info;
pub mod orchestrator;
pub mod train;
