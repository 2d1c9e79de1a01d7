//! `export-key`: a private key (the current one by default) on stdout, in the shape an
//! application's settings take it: the JWK, its base64 (`EncodedJwk`), or Altinn app-lib's
//! `MaskinportenSettings` with the client id and authority beside it.

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};

use super::KeyFormat;
use super::commands::{Exit, print_data, records_of, select_with_kid};
use crate::config::{Config, consumer_format_for};
use crate::consumer::{ConsumerShape, FormatName};
use crate::kid::{KeySet, Kid};
use crate::lifecycle;

pub(super) async fn export_key(
    config: &Config,
    set: &str,
    kid: Option<&str>,
    format: KeyFormat,
    now: DateTime<Utc>,
) -> anyhow::Result<Exit> {
    let (target, kid) = match select_with_kid(config, set, kid) {
        Ok(selected) => selected,
        Err(exit) => return Ok(exit),
    };
    // A document that can not name the client id is refused before the key is read.
    let shape = match format {
        KeyFormat::AltinnApp => Some(altinn_shape(config, &target.key_set)?),
        KeyFormat::Jwk | KeyFormat::EncodedJwk => None,
    };
    let (target, engine, records) = records_of(config, target).await?;
    let kid: Kid = match kid {
        Some(kid) => kid,
        None => current_kid(&target.key_set, &records, now)?,
    };
    if !records.iter().any(|r| r.kid == kid) {
        bail!("key set {set} has no key {kid}; `jwk-rotator status {set}` lists its keys");
    }
    let key = engine.store().private_key(&kid).await?;
    let text = match (format, shape) {
        (_, Some(shape)) => shape.render(&key),
        (KeyFormat::EncodedJwk, None) => key.to_base64(),
        (_, None) => key.to_json(),
    };
    print_data(&text)?;
    Ok(Exit::OK)
}

/// The `altinn-app` shape of `set`: its client id and its environment's issuer.
fn altinn_shape(config: &Config, set: &KeySet) -> anyhow::Result<ConsumerShape> {
    let format = consumer_format_for(config, set, FormatName::AltinnApp)
        .map_err(|e| anyhow!("--format altinn-app for {set}: {e}"))?;
    Ok(format.shape(set.env()))
}

fn current_kid(
    set: &KeySet,
    records: &[crate::record::KeyRecord],
    now: DateTime<Utc>,
) -> anyhow::Result<Kid> {
    lifecycle::current(records, now).map(|r| r.kid.clone()).ok_or_else(|| {
        anyhow!("key set {set} has no current key: run `jwk-rotator rotate {set}`, or name one with --kid")
    })
}
