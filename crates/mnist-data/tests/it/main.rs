//! Integration tests for mnist-data.
