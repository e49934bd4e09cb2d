//! Networks: their TOML description ([`config`]), their burn modules ([`net`]), what
//! they cost ([`count`]), and students generated at a multiplication budget
//! ([`generate`]).

pub mod config;
pub mod count;
pub mod generate;
pub mod net;

pub use config::NetConfig;
pub use net::Net;
