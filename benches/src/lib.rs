//! Criterion benchmarks of the workspace; the benches live in `benches/`.
//!
//! Run with: `cargo bench` (all) or `cargo bench -p benches --bench gradient`.
