//! fitnets on the host: everything that runs on a workstation.
//!
//! - [`data`]: IDX and CIFAR-10 loaders, splits, normalization, augmentation.
//! - [`model`]: networks from TOML configs, as burn modules, and what they cost.
//! - [`train`]: the losses, the training loop and run directories.
//! - [`method`]: the paper's procedures: teacher, scratch, KD, hints.
//! - [`compare`], [`sweep`], [`fit`]: the paper's Table 4 and Figure 2, and the search
//!   for the student that fits a chip, over the runs they train.
//! - [`cli`] and [`commands`]: the command line, over everything else: the option groups
//!   the subcommands share, and one module per subcommand (its options and its call into
//!   the library). No other module imports them.
//! - [`run`]: a run directory: `run.json`, `result.json`, the final model; opened fresh
//!   or resumed, its checks, a failed start undone; training a teacher or a student into one.
//! - [`kernels`]: the fused conv + maxout and max pooling CPU kernels that training on flex runs.
//! - [`quant`]: folding, calibration and int8 quantization of a run; export to a blob;
//!   evaluation of blobs with `shared`'s kernels.
//! - [`inspect`]: describing an int8 model blob with `shared`'s validator.
//! - [`report`]: `fitnets report`: the stages, the student per layer, the paper's
//!   figures, the fit on real boards, and charts.

pub mod backend;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod data;
pub mod fit;
pub mod inspect;
pub mod kernels;
pub mod method;
pub mod model;
pub mod quant;
pub mod report;
pub mod run;
pub mod sweep;
pub mod train;
