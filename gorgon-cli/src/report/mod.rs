//! Reports: one model ([`model::Report`]), and one file per way of showing it.

pub mod load_model;
pub mod model;
pub mod shape_table;
pub mod table;
pub mod units;

pub use model::Report;
