//! placeholder
#[cfg(feature = "blas")]
extern crate blas_src;
