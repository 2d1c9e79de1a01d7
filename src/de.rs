//! The one way a `FromStr` type is read by serde from config or stored data: as a string,
//! parsed, with the type's own message on failure (which says what a valid value looks like).

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Reads a string and parses it as `T`.
pub fn from_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
}

/// [`from_str`] for an optional setting that is present.
pub fn some_from_str<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    from_str(d).map(Some)
}

/// [`from_str`] with the setting's name before the message: inside a TOML table, the TOML
/// error can only point at the table's first line.
pub fn named<'de, D, T>(name: &str, d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = String::deserialize(d)?;
    text.parse().map_err(|e| serde::de::Error::custom(format!("{name}: {e}")))
}
