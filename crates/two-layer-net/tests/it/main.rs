//! Integration tests of two-layer-net: one binary, one module per topic.
//!
//! The tests on real MNIST run when `DLFS_REAL_DATA=1` (set by `cargo xtask
//! test`, the README's test command); otherwise they say loudly that they
//! were skipped.

mod cli;
mod gradient;
mod python;
mod real_data;
mod sparse;

/// Whether the real-data tests were selected; prints a skip line if not.
pub fn real_data_selected(test: &str) -> bool {
    let on = std::env::var("DLFS_REAL_DATA").is_ok_and(|v| v == "1");
    if !on {
        // Straight to stderr: the test harness captures eprintln!, and a skip
        // must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set DLFS_REAL_DATA=1 (cargo xtask test does) to run it on real MNIST"
        );
    }
    on
}
