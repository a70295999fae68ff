//! Cross-crate and real-server interop tests live in `tests/`.
