//! Networks: their TOML description ([`config`]), their burn modules ([`net`]), what
//! they cost ([`count`]), students generated at a multiplication budget
//! ([`generate`]), and the views they average to classify ([`views`]).

pub mod config;
pub mod count;
pub mod generate;
pub mod net;
pub mod regressor;
mod shapes;
pub mod views;

pub use config::NetConfig;
pub use net::Net;
pub use views::Views;
