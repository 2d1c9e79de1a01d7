//! Bad input through the real binary: each gets a clear message and writes nothing.
