//! Config errors through the real binary that must name the setting and never show a secret:
//! a URL's path, query or credentials (a webhook URL carries its secret in its path), or the
//! config line that TOML's own error message quotes.

use std::fs;

use crate::cli::{Project, T0};

const SECRET: &str = "XOXBSECRET4242";

/// Runs `plan` over `text` and returns its stderr; it must exit 2 and show no part of
/// [`SECRET`] (nor the path it sits in).
fn refused_without_secret(text: &str) -> String {
    let p = Project::new("");
    fs::write(p.path("jwk-rotator.toml"), text).expect("config");
    let (code, out, err) = p.run(T0, &["plan"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    for part in [SECRET, "services/T0", "B0/", "user:pw", "sig="] {
        assert!(!err.contains(part) && !out.contains(part), "{part:?} shown:\n{err}");
    }
    err
}

const CLIENT: &str = "[[client]]\nname = \"a\"\n";

/// The case: a webhook URL with a bad port was echoed with its secret, in the line
/// that TOML quotes.
#[test]
fn a_bad_webhook_url_never_shows_its_secret() {
    let hook = |url: &str| format!("{CLIENT}[[alerts.webhook]]\nformat = \"slack\"\nurl = \"{url}\"\n");
    let err =
        refused_without_secret(&hook(&format!("https://hooks.slack.com:99999/services/T0/B0/{SECRET}")));
    assert!(err.contains("line 5 (url)") && err.contains("[[alerts.webhook]] url is not a URL"), "{err}");
    // A TOML syntax error on that line (an unclosed string) does not quote it either.
    let text = format!(
        "{CLIENT}[[alerts.webhook]]\nformat = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/{SECRET}\n"
    );
    let err = refused_without_secret(&text);
    assert!(err.contains("line 5"), "{err}");
    // A value of the wrong type is named, not quoted.
    let err = refused_without_secret(&format!(
        "{CLIENT}[[alerts.webhook]]\nformat = \"slack\"\nretries = \"https://user:pw@h.example/services/T0/B0/{SECRET}\"\n"
    ));
    assert!(err.contains("(retries)"), "{err}");
}

#[test]
fn urls_of_other_settings_lose_their_path_query_and_credentials() {
    let vault = |url: &str| {
        format!(
            "[store]\nkind = \"azure-key-vault\"\nvault_url = \"{url}\"\ncredential = \"static-token\"\n{CLIENT}"
        )
    };
    let err = refused_without_secret(&vault(&format!("http://user:pw@v.vault.azure.net/x?sig={SECRET}")));
    assert!(err.contains("vault_url") && err.contains("http://v.vault.azure.net/..."), "{err}");
    let table = format!(
        "[maskinporten.STAGE]\napi_url = \"http://api.example/?token={SECRET}\"\nissuer = \"https://i.example/\"\ntoken_url = \"https://i.example/token\"\n{CLIENT}"
    );
    let err = refused_without_secret(&table);
    assert!(err.contains("api_url") && err.contains("http://api.example/..."), "{err}");
}

/// L1: a webhook must be https, or http to this host only; `ftp://` and `http://` elsewhere
/// were accepted at load.
#[test]
fn webhook_urls_must_be_https_or_local() {
    let hook = |url: &str| format!("{CLIENT}[[alerts.webhook]]\nformat = \"json\"\nurl = \"{url}\"\n");
    for url in ["ftp://hooks.example/in", "http://hooks.example/in"] {
        let p = Project::new("");
        fs::write(p.path("jwk-rotator.toml"), hook(url)).expect("config");
        let (code, _, err) = p.run(T0, &["plan"]);
        assert_eq!(code, 2, "{url}: {err}");
        assert!(err.contains("[[alerts.webhook]] url is a") && err.contains("must be https"), "{err}");
        assert!(!err.contains("/in"), "the path is not shown: {err}");
    }
    for url in
        ["https://hooks.example/in", "http://127.0.0.1:9/in", "http://localhost:9/in", "http://[::1]:9/in"]
    {
        let p = Project::new("");
        fs::write(p.path("jwk-rotator.toml"), hook(url)).expect("config");
        p.ok(T0, &["plan"]);
    }
}

/// L2: a setting of the wrong type in `[store]` is named (TOML points only at `[store]`, and
/// serde's message says "invalid type: integer `30`, expected a string" without the name).
#[test]
fn a_store_setting_of_the_wrong_type_is_named() {
    let cases = [
        ("kind = \"file\"\nlock_timeout = 30\n", "[store] lock_timeout = 30 is a number, not a string"),
        ("kind = \"file\"\npath = 7\n", "[store] path: invalid type: integer `7`"),
        (
            "kind = \"azure-key-vault\"\nvault_url = \"https://v.vault.azure.net/\"\ncredential = \"static-token\"\nmax_in_flight = \"32\"\n",
            "[store] max_in_flight: invalid type: string",
        ),
        (
            "kind = \"azure-key-vault\"\nvault_url = \"https://v.vault.azure.net/\"\ncredential = \"static-token\"\n[store.retry]\nmax_retries = \"3\"\n",
            "[store] retry.max_retries: invalid type: string",
        ),
        ("kind = 3\n", "[store] kind is not a string"),
        ("path = \"keys\"\n", "[store] has no kind"),
    ];
    for (store, want) in cases {
        let p = Project::new("");
        fs::write(p.path("jwk-rotator.toml"), format!("[store]\n{store}{CLIENT}")).expect("config");
        let (code, _, err) = p.run(T0, &["plan"]);
        assert_eq!(code, 2, "{store}: {err}");
        assert!(err.contains(want), "{want:?} not in: {err}");
    }
}

/// A config with secrets in its URLs, broken at random (a character dropped or added, a value
/// of another type, a line cut or doubled): whatever the error, the secrets are never shown.
/// `CONFIG_FUZZ=N` sets how many (default 60); the seed is printed.
#[test]
fn randomly_broken_configs_never_show_a_url_secret() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let good = format!(
        "[store]\nkind = \"file\"\npath = \"keys\"\n\n[[alerts.webhook]]\nformat = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/{SECRET}\"\n\n[[alerts.webhook]]\nformat = \"json\"\nurl = \"https://user:pw@hooks.example/in?sig={SECRET}\"\n\n{CLIENT}"
    );
    let runs: usize = std::env::var("CONFIG_FUZZ").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let seed: u64 =
        std::env::var("CONFIG_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let p = Project::new("");
    let (mut refused, mut accepted) = (0, 0);
    for i in 0..runs {
        let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
        let at = rng.random_range(0..lines.len());
        let line = lines[at].clone();
        let cut = if line.is_empty() { 0 } else { rng.random_range(0..line.len()) };
        match rng.random_range(0..6) {
            0 if !line.is_empty() => lines[at] = format!("{}{}", &line[..cut], &line[cut + 1..]),
            1 => lines[at] = format!("{}\"{}", &line[..cut], &line[cut..]),
            2 => lines[at] = line.split_once('=').map_or(line.clone(), |(k, _)| format!("{k}= 7")),
            3 => lines.insert(at, line.clone()),
            4 => lines.truncate(at),
            _ => {
                lines[at] =
                    format!("{}{}", &line[..cut], ["[", "]", "=", "\\", "#", "{"][rng.random_range(0..6)])
            }
        }
        fs::write(p.path("jwk-rotator.toml"), lines.join("\n")).expect("config");
        let (code, out, err) = p.run(T0, &["plan"]);
        for part in [SECRET, "services/T0", "user:pw", "sig="] {
            assert!(
                !out.contains(part) && !err.contains(part),
                "CONFIG_FUZZ_SEED={seed}, case {i}: {part:?} shown for\n{}\n---\n{out}{err}",
                lines.join("\n")
            );
        }
        if code == 0 { accepted += 1 } else { refused += 1 }
    }
    eprintln!(
        "broken configs: {runs} (seed {seed}): {refused} refused, {accepted} still valid; no secret shown"
    );
}
