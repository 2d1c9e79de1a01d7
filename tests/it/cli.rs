//! The real binary, run with a fixed clock.
