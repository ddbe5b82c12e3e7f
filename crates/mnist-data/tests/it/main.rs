//! Integration tests for mnist-data: one module per topic.
//!
//! `idx`: the parser on good and malformed files. `download`: the download
//! path against an HTTP server on 127.0.0.1 that the test starts. `sources`:
//! the source order, the user directory and the failure report. `real`: the
//! real data sets, selected by `DLFS_REAL_DATA=1` (the README's test command).

mod download;
mod fixtures;
mod idx;
mod real;
mod sources;
