//! Networks: their TOML description ([`config`]), their burn modules ([`net`]) and what
//! they cost ([`count`]).

pub mod config;
pub mod count;
pub mod net;

pub use config::NetConfig;
pub use net::Net;
