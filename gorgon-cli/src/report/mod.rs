//! Reports: one model ([`model::Report`]), and one file per way of showing
//! it (table, json, csv, svg, html). [`output`] sends a report where the
//! command line asked, [`snapshot`] saves a partial one during a run, and
//! [`show`] is `gorgon report`, which shows a saved one again.

pub mod compare;
pub mod csv;
pub mod destination;
pub mod html;
pub mod json;
pub mod load_model;
pub mod model;
pub mod output;
pub mod shape_table;
pub mod snapshot;
pub mod svg;
pub mod table;
pub mod text;
pub mod verdict;

pub use model::Report;

use std::path::Path;

use crate::exit::{self, Code, Failure};

/// `gorgon report FILE.json`: the saved result in the asked formats.
pub fn show(file: &Path, destinations: output::Destinations) -> Result<Code, Failure> {
    let report = json::read(file).map_err(Failure::usage)?;
    let inputs = [(
        "the saved result being shown".to_string(),
        file.to_path_buf(),
    )];
    let outputs = output::Outputs::prepare(destinations, &inputs)?;
    outputs.emit(&report)?;
    Ok(Code(exit::OK))
}
