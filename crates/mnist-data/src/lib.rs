//! Real MNIST and Fashion-MNIST (placeholder; filled by the mnist-data issue).
