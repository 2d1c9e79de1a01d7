//! `verify SET [--kid KID]`: proves a key with a real token grant, as a verified promotion does.
//! The token is never printed.

use super::commands::{Exit, print_data, records_of, select_with_kid, usage};
use crate::config::Config;
use crate::lifecycle;
use crate::proof::Patience;

/// Proves `kid` of `set` (the pending key, else the current one): exit 0 when Maskinporten
/// granted a token, 1 when it refused or could not be reached, 2 for a bad command line or config.
pub(super) async fn verify(
    config: &Config,
    set: &str,
    kid: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Exit> {
    let (target, kid) = match select_with_kid(config, set, kid) {
        Ok(selected) => selected,
        Err(exit) => return Ok(exit),
    };
    let (target, engine, records) = records_of(config, target).await?;
    let set = &target.key_set;
    if !engine.prover().can_prove(set) {
        return Ok(usage(anyhow::anyhow!(
            "{set} can not be verified: give client {} a client_id for {} and a verify_scope (a scope the client has), and add [maskinporten.{}] to {}",
            set.client(),
            set.env(),
            set.env(),
            config.file.display()
        )));
    }
    let record = match &kid {
        Some(kid) => records.iter().find(|r| r.kid == *kid),
        None => lifecycle::pending(&records, now).or_else(|| lifecycle::current(&records, now)),
    };
    let Some(record) = record else {
        let what = kid.map_or_else(|| "no pending or current key".to_owned(), |k| format!("no key {k}"));
        anyhow::bail!("key set {set} has {what}; `jwk-rotator status {set}` lists its keys");
    };
    if !record.stage.is_published() {
        anyhow::bail!(
            "key {} of {set} is {}: it is not published, so Maskinporten should not know it",
            record.kid,
            record.stage
        );
    }
    let key = engine.store().private_key(&record.kid).await?;
    match engine.prover().prove(set, &key, Patience::WaitForPropagation).await {
        Ok(proof) => {
            print_data(&format!(
                "verified {} ({}) of {set}: Maskinporten granted a token with scope \"{}\", expires_in {} s\n",
                record.kid, record.stage, proof.scope, proof.expires_in
            ))?;
            Ok(Exit::OK)
        }
        Err(e) => {
            eprintln!("error: {set}: {} ({}) was not verified: {e}", record.kid, record.stage);
            Ok(Exit::FAILED)
        }
    }
}
