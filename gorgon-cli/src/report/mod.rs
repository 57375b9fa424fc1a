//! Reports: one model ([`model::Report`]), and one file per way of showing it.

pub mod model;
pub mod table;
pub mod units;

pub use model::Report;
