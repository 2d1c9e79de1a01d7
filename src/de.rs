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
pub(crate) fn some_from_str<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
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
    let text = named_text(name, d)?;
    text.parse().map_err(|e| serde::de::Error::custom(format!("{name}: {e}")))
}

/// A setting that is written as a string; a value of another type (`lock_timeout = 30`) is
/// refused naming the setting, which serde's own message ("invalid type: integer `30`,
/// expected a string") does not.
pub(crate) fn named_text<'de, D: Deserializer<'de>>(name: &str, d: D) -> Result<String, D::Error> {
    let shown = match toml::Value::deserialize(d)? {
        toml::Value::String(text) => return Ok(text),
        toml::Value::Integer(n) => format!("{name} = {n} is a number"),
        toml::Value::Float(n) => format!("{name} = {n} is a number"),
        toml::Value::Boolean(b) => format!("{name} = {b} is a boolean"),
        toml::Value::Datetime(_) => format!("{name} is a date"),
        toml::Value::Array(_) => format!("{name} is a list"),
        toml::Value::Table(_) => format!("{name} is a table"),
    };
    Err(serde::de::Error::custom(format!(
        "{shown}, not a string: write it in quotes, such as {name} = \"30s\" for a duration"
    )))
}
