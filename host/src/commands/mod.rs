//! Subcommands whose arguments and work live together (the others are still in
//! [`crate::cli`] and their own modules).

pub mod orchestrator;
