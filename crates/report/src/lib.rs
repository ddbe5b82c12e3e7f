//! What the command-line tools show a person: progress that works in a
//! terminal and in a CI log, and PNG plots that render on a bare server.
//!
//! Kept out of the numeric crates: only the binaries need indicatif and
//! plotters.

pub mod plot;
pub mod progress;

pub use plot::PlotError;
pub use progress::{Progress, Unit};
