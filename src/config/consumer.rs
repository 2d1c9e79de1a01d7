//! `consumer_format` of a `[[client]]`, resolved against its client ids and the Maskinporten
//! issuers: an `altinn-app` document names both, so each environment must have them.

use std::collections::BTreeMap;

use super::SettingError;
use super::maskinporten::{self, MaskinportenEnv};
use crate::consumer::{AltinnApp, ConsumerFormat, FormatName};
use crate::kid::Environment;

/// The client's consumer format for each of its environments.
pub fn resolve_format(
    name: Option<FormatName>,
    environments: &[Environment],
    client_ids: &BTreeMap<Environment, String>,
    tables: &BTreeMap<Environment, MaskinportenEnv>,
) -> Result<ConsumerFormat, SettingError> {
    if name.unwrap_or_default() == FormatName::EncodedJwk {
        return Ok(ConsumerFormat::EncodedJwk);
    }
    let mut by_env = BTreeMap::new();
    for env in environments {
        let Some(client_id) = client_ids.get(env) else {
            return Err(SettingError::new(
                format!("client_id.{env}"),
                format!(
                    "consumer_format = \"altinn-app\" writes the client id beside the key, but client_id.{env} is not set: add client_id = {{ {env} = \"...\" }} with the client's id in Maskinporten"
                ),
            ));
        };
        let Some(authority) = maskinporten::issuer_of(env, tables) else {
            return Err(SettingError::new(
                format!("[maskinporten.{env}]"),
                format!(
                    "consumer_format = \"altinn-app\" writes Maskinporten's issuer as the authority, and only TEST and PROD have one built in: add a [maskinporten.{env}] table with issuer (and api_url, token_url)"
                ),
            ));
        };
        by_env.insert(env.clone(), AltinnApp { authority, client_id: client_id.clone() });
    }
    Ok(ConsumerFormat::AltinnApp(by_env))
}
