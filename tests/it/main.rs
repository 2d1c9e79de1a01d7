//! The integration test binary: every integration test lives in a module below.

mod azure;
