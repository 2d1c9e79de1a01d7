//! `import altinn-jwks --from DIR|VAULT_URL [SET...] [--dry-run] [--skip-bad]`: arguments,
//! the plan on stdout, and the writes (see [`crate::import`]).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::commands::{Exit, open_store, usage};
use crate::config::{Config, ConfigError, StoreConfig};
use crate::import::{self, ImportError, SetPlan, Source, StoreSide, VaultSide};
use crate::kid::KeySet;
use crate::moment::Moment;
use crate::policy::Target;
use crate::publish::FilePublisher;
use crate::store::{KeyStore, Opened};

/// What to import from.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Keys that altinn-jwks 1.x or 2.0 keeps in a directory or a Key Vault
    #[command(
        name = "altinn-jwks",
        after_help = "Reads every layout altinn-jwks writes: 1.x {set}.json, .pub.json, .key.json or secrets
{set}--priv, --pub, --key; 2.0 {set}.jwks.json or secret {set}--jwks. The last key of each set
becomes current, the others previous (retired once past max_age). It prints the plan first and
writes only when every selected key set is clean (or, with --skip-bad, the clean ones). It
never changes or deletes what altinn-jwks wrote, and lists what may be deleted afterwards.

A VAULT_URL is read with the [store] settings of the config: credential, client_id, tenant_id,
ca_cert and verify_challenge_resource (so [store] must be kind = \"azure-key-vault\").

Exit codes: 0 imported (or nothing to do, or a clean --dry-run); 1 a key set has problems
(nothing written without --skip-bad) or a write failed; 2 bad command line or config.

Examples:
  jwk-rotator import altinn-jwks --from ./altinn-keys --dry-run
  jwk-rotator import altinn-jwks --from https://my-vault.vault.azure.net/ testklient-TEST"
    )]
    AltinnJwks {
        /// The directory or Key Vault URL altinn-jwks wrote to
        #[arg(long, value_name = "DIR|VAULT_URL")]
        from: String,
        /// Key sets (CLIENT-ENV); every one found when none are named
        #[arg(value_name = "SET")]
        sets: Vec<String>,
        /// Print the plan, write nothing
        #[arg(long)]
        dry_run: bool,
        /// Import the clean key sets even when others have problems
        #[arg(long)]
        skip_bad: bool,
        /// Allow JWK_ROTATOR_NOW more than a day behind the clock
        #[arg(long)]
        allow_past: bool,
    },
}

impl ImportSource {
    /// `Some(allow_past)` when the import writes (it is not a dry run).
    pub(super) fn writes(&self) -> Option<bool> {
        let ImportSource::AltinnJwks { dry_run, allow_past, .. } = self;
        (!dry_run).then_some(*allow_past)
    }
}

/// Runs `import altinn-jwks`.
pub(super) async fn import(config: &Config, source: ImportSource, at: Moment) -> anyhow::Result<Exit> {
    let ImportSource::AltinnJwks { from, sets, dry_run, skip_bad, .. } = source;
    let source = match open_source(config, &from) {
        Ok(source) => source,
        Err(e) => return Ok(usage(e.into())),
    };
    let found = source.read().await?;
    let found = match select(config, found, &sets, &source) {
        Ok(found) => found,
        Err(e) => return Ok(usage(e.into())),
    };
    let store = open_store(config)?;
    let _lock = if dry_run { None } else { Some(store.keys.lock(config.store.lock_timeout()).await?) };
    let plans = plan(config, store.keys.as_ref(), &found, &source, at).await?;
    render(&mut std::io::stdout().lock(), &plans, &source.describe())?;
    let bad: Vec<String> = plans.iter().filter(|p| !p.is_clean()).map(|p| p.key_set.to_string()).collect();
    if dry_run {
        eprintln!("dry run: nothing was written");
        return Ok(if bad.is_empty() { Exit::OK } else { Exit::FAILED });
    }
    if !bad.is_empty() && !skip_bad {
        eprintln!(
            "error: nothing was imported: {} of {} key sets have problems ({}); fix them and run again, or pass --skip-bad to import the clean ones",
            bad.len(),
            plans.len(),
            bad.join(", ")
        );
        return Ok(Exit::FAILED);
    }
    let publisher = FilePublisher::new(config.publish.dir.clone());
    let failed = write_clean(&plans, &config.targets(), &store, &publisher, at).await;
    if !bad.is_empty() {
        eprintln!("error: not imported, with problems: {}", bad.join(", "));
    }
    Ok(if failed || !bad.is_empty() { Exit::FAILED } else { Exit::OK })
}

/// Plans every found key set against the config and what the store holds.
async fn plan(
    config: &Config,
    store: &dyn KeyStore,
    found: &[import::Found],
    source: &Source,
    at: Moment,
) -> anyhow::Result<Vec<SetPlan>> {
    let targets = config.targets();
    let wanted: Vec<KeySet> =
        found.iter().map(|f| f.key_set.clone()).filter(|s| targets.iter().any(|t| t.key_set == *s)).collect();
    let loaded = store.load(&wanted).await?;
    let consumer = |set: &KeySet| consumer_name(config, set);
    let vault = match &config.store {
        StoreConfig::AzureKeyVault(azure) => Some(VaultSide {
            url: azure.vault_url.as_str(),
            prefix: &azure.secret_prefix,
            consumer: &consumer,
        }),
        StoreConfig::File { .. } => None,
    };
    Ok(import::plan_all(found, &targets, &loaded, &StoreSide { vault }, source, at))
}

/// Writes every clean plan; says what was written and what may be deleted. Whether one failed.
async fn write_clean(
    plans: &[SetPlan],
    targets: &[Target],
    opened: &Opened,
    publisher: &FilePublisher,
    at: Moment,
) -> bool {
    let (store, consumers) = (opened.keys.as_ref(), opened.consumers.as_deref());
    let mut failed = false;
    for plan in plans.iter().filter(|p| p.is_clean()) {
        let Some(target) = targets.iter().find(|t| t.key_set == plan.key_set) else { continue };
        match import::write(plan, target, store, consumers, publisher, at).await {
            Ok(n) => {
                let keys = if n == 1 { "key" } else { "keys" };
                eprintln!("{}: imported {n} {keys} into {}", plan.key_set, store.describe());
                eprintln!(
                    "{}: once applications read their key from {}, you may delete what altinn-jwks wrote: {} (this tool never deletes it)",
                    plan.key_set,
                    store.describe(),
                    plan.sources.join(", ")
                );
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    failed
}

/// The name of the consumer secret of `set`, from the client's template.
fn consumer_name(config: &Config, set: &KeySet) -> Option<String> {
    let client = config.client(set)?;
    let template = client.consumer_secret.as_ref()?;
    Some(template.replace("{client}", set.client().as_str()).replace("{env}", set.env().as_str()))
}

/// Why `--from`, or a key set named to import, can not be used: a usage error.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// A directory, or a Key Vault URL read with the store's Key Vault settings.
fn open_source(config: &Config, from: &str) -> Result<Source, Refused> {
    if from.starts_with("https://") || from.starts_with("http://") {
        return Ok(Source::Vault(crate::app::altinn_vault(config, from)?));
    }
    let dir = PathBuf::from(from);
    if !dir.is_dir() {
        return Err(ImportError::NotASource { from: from.to_owned() }.into());
    }
    let store_dir = match &config.store {
        StoreConfig::File { path, .. } => Some(path.as_path()),
        StoreConfig::AzureKeyVault(_) => None,
    };
    import::check_directory(&dir, store_dir, &config.publish.dir)?;
    Ok(Source::Directory(dir))
}

/// The found key sets to import: the named ones (each configured and found), else all.
fn select(
    config: &Config,
    found: Vec<import::Found>,
    sets: &[String],
    source: &Source,
) -> Result<Vec<import::Found>, Refused> {
    if found.is_empty() {
        return Err(ImportError::NothingFound { place: source.describe() }.into());
    }
    if sets.is_empty() {
        return Ok(found);
    }
    let targets = config.select(sets)?;
    if let Some(t) = targets.iter().find(|t| !found.iter().any(|f| f.key_set == t.key_set)) {
        return Err(ImportError::NotInSource {
            key_set: t.key_set.clone(),
            place: source.describe(),
            found: found.iter().map(|f| f.key_set.to_string()).collect(),
        }
        .into());
    }
    Ok(found.into_iter().filter(|f| targets.iter().any(|t| t.key_set == f.key_set)).collect())
}

/// The plan, per key set: each key's stage, date, expiry and action, then what is left out,
/// notes and problems.
fn render(out: &mut impl Write, plans: &[SetPlan], from: &str) -> std::io::Result<()> {
    writeln!(out, "import from {from}")?;
    for plan in plans {
        let verdict = if plan.is_clean() { "clean" } else { "NOT IMPORTED" };
        writeln!(out, "\n{} ({}): {verdict}", plan.key_set, plan.layout)?;
        for k in &plan.keys {
            let action = if k.stored { "in store already" } else { "import" };
            writeln!(
                out,
                "  {:<40} {:<9} {}  expires {}  {action}",
                k.record.kid.to_string(),
                k.record.stage.as_str(),
                k.record.kid.date(),
                k.expires.date_naive()
            )?;
        }
        for r in &plan.superseded {
            let made = "made by rotate before the import";
            writeln!(
                out,
                "  {:<40} {:<9} {}  {made}: becomes {}",
                r.kid.to_string(),
                "",
                r.kid.date(),
                r.stage
            )?;
        }
        for (kid, why) in &plan.left_out {
            writeln!(out, "  {:<40} {why}", kid.to_string())?;
        }
        for note in &plan.notes {
            writeln!(out, "  note: {note}")?;
        }
        for problem in &plan.problems {
            writeln!(out, "  problem: {problem}")?;
        }
    }
    Ok(())
}
