//! Maskinporten, seen from the client side: the organisation's admin credential (its business
//! certificate), JWT grants signed with it or with a client's own key, and the token endpoint
//! that turns a grant into an access token, with the HTTP client and retries they share; the
//! self-service API that registers a client's keys, the publisher built on it, and the prover
//! that signs a client grant with a key to show that Maskinporten knows it.
//!
//! Facts and limits are from Digdir's documentation (docs.digdir.no:
//! `maskinporten_protocol_jwtgrant`, `maskinporten_protocol_token`, `maskinporten_feilsoking`).

pub mod admin;
pub mod api;
pub mod compare;
pub mod http;
pub mod jwt;
pub mod publisher;
pub mod token;
pub mod verify;
