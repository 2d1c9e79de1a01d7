//! Digdir faked in process: Maskinporten's token endpoint and the self-service API.

pub mod fake;
