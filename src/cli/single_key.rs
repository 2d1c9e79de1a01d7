//! `jwks SET --kid KID`: one published key's public JWK, so that an operator adding keys one at
//! a time in Samarbeidsportalen pastes exactly that key.

use anyhow::bail;

use super::JwksFormat;
use super::commands::{Exit, print_data, records_of, select_one};
use crate::config::Config;
use crate::kid::Kid;

/// Prints the public JWK of `kid` in `set`: with `exp` for `jwks`, in altinn-jwks member order
/// for `maskinporten`. Only published keys (pending, current, previous) are offered.
pub(super) async fn jwks_key(
    config: &Config,
    set: &str,
    kid: &str,
    format: JwksFormat,
) -> anyhow::Result<Exit> {
    let target = match select_one(config, set) {
        Ok(target) => target,
        Err(exit) => return Ok(exit),
    };
    let kid: Kid = match kid.parse() {
        Ok(kid) => kid,
        Err(e) => return Ok(super::commands::usage(anyhow::anyhow!("--kid: {e}"))),
    };
    let (target, _, records) = records_of(config, target).await?;
    let Some(record) = records.iter().find(|r| r.kid == kid) else {
        bail!("key set {set} has no key {kid}; `jwk-rotator status {set}` lists its keys");
    };
    if !record.stage.is_published() {
        bail!(
            "key {kid} of {set} is {}, not published: do not add it to Maskinporten; `jwk-rotator status {set}` lists the published keys",
            record.stage.as_str()
        );
    }
    let text = match format {
        JwksFormat::Jwks => {
            let member = record.public.to_jwks_member(record.expires(&target.policy).timestamp());
            let mut text = serde_json::to_string_pretty(&member)?;
            text.push('\n');
            text
        }
        JwksFormat::Maskinporten => record.public.to_altinn_json(),
    };
    print_data(&text)?;
    Ok(Exit::OK)
}
