//! Integration tests of core-layers: backprop against numerical gradients.
//!
//! One test binary (`autotests = false`), one module per topic.

mod common;
mod compositions;
mod layers;
mod sparse;
