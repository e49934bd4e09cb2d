//! fitnets on the host: everything that runs on a workstation.
//!
//! Today: [`inspect`], which decodes a model blob with `shared`'s validator and
//! describes it. Training, export and evaluation build on this crate.

pub mod inspect;
