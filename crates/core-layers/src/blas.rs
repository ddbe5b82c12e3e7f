//! Which matrix-product backend this build uses, and its thread count.
//!
//! Debian's OpenBLAS keeps a pool of one thread per core and uses it for every
//! large product. That is right for training, where the outer loop is serial,
//! and wrong inside a rayon-parallel loop (a numerical gradient), where each
//! worker's product would spawn more threads than there are cores. The
//! `OPENBLAS_NUM_THREADS` variable is read only when the library loads, so a
//! program that changes its mind at run time calls [`set_num_threads`].

/// The name of the backend: `"openblas"` or `"pure-rust"` (ndarray's `matrixmultiply`).
pub const BACKEND: &str = if cfg!(feature = "blas") {
    "openblas"
} else {
    "pure-rust"
};

#[cfg(feature = "blas")]
unsafe extern "C" {
    fn openblas_set_num_threads(num_threads: std::ffi::c_int);
    fn openblas_get_num_threads() -> std::ffi::c_int;
}

/// Sets the number of threads OpenBLAS uses for each product, from now on.
///
/// Does nothing in the pure-Rust build, whose products are single-threaded.
pub fn set_num_threads(n: usize) {
    #[cfg(feature = "blas")]
    {
        let n = std::ffi::c_int::try_from(n.max(1)).unwrap_or(std::ffi::c_int::MAX);
        // SAFETY: a plain setter of OpenBLAS's global thread count; it takes
        // any positive value and is safe to call at any time from one thread.
        unsafe { openblas_set_num_threads(n) }
    }
    #[cfg(not(feature = "blas"))]
    let _ = n;
}

/// The number of threads OpenBLAS uses for each product (1 in the pure-Rust build).
pub fn num_threads() -> usize {
    #[cfg(feature = "blas")]
    {
        // SAFETY: a plain getter of OpenBLAS's global thread count.
        let n = unsafe { openblas_get_num_threads() };
        usize::try_from(n).unwrap_or(1)
    }
    #[cfg(not(feature = "blas"))]
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_round_trips() {
        let before = num_threads();
        set_num_threads(1);
        assert_eq!(num_threads(), 1);
        set_num_threads(before);
        assert_eq!(num_threads(), before);
    }
}
