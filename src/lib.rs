//! jwk-rotator
