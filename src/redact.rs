//! Error texts that never echo a secret from the input. JSON errors never quote a value: a
//! private key pasted into the wrong field must not end up in a log or on a terminal (the key
//! file's field-naming errors build on these, `store::file_errors`). Config errors never show a
//! URL's path, query or credentials (a webhook URL carries its secret in its path), nor the
//! config line that the TOML parser would quote.

use serde_json::error::Category;

/// A JSON error without any value from the input: syntax errors keep serde_json's fixed text
/// and position, data errors keep only what the type expected.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        Category::Data => data_reason(&e.to_string()),
        _ => position_error(e),
    }
}

/// serde_json's syntax and end-of-input messages are fixed texts ("expected `,` or `}`"), with
/// the position appended.
pub(crate) fn position_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let fixed = text.split(" at line ").next().unwrap_or_default();
    format!("line {}, column {}: {fixed}", e.line(), e.column())
}

/// The kind of a serde data error and what the type expected; the part that would quote the
/// input (`unknown variant `...``, `invalid type: string "..."`) is dropped.
pub(crate) fn data_reason(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or_default();
    let (head, expected) = match message.rfind(", expected ") {
        Some(at) => (&message[..at], Some(&message[at + 2..])),
        None => (message, None),
    };
    let kind = if head.starts_with("missing field `") || head.starts_with("duplicate field `") {
        // The field's name comes from the type, not from the input.
        head
    } else if head.starts_with("unknown variant") {
        "not one of the allowed values"
    } else if head.starts_with("invalid type") {
        "a value of the wrong type"
    } else if head.starts_with("unknown field") {
        "a field that is not known"
    } else {
        "not a valid value"
    };
    match expected {
        Some(expected) => format!("{kind}; {expected}"),
        None => kind.to_owned(),
    }
}

/// `text` with every URL cut after its host and port: a webhook URL carries its secret in its
/// path, and a URL may carry credentials before its host and tokens in its query. A bare `/`
/// path stays (an issuer's); any longer path, query or fragment becomes `/...`.
pub(crate) fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme = rest[..at].rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)));
        let scheme_start = scheme.map_or(0, |i| i + 1);
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        if scheme_start == at {
            continue;
        }
        let end = rest.find(|c: char| c.is_whitespace() || "\"'`<>".contains(c)).unwrap_or(rest.len());
        let url = rest[..end].trim_end_matches(|c: char| ".,;:)]}".contains(c));
        let host_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let authority = &url[..host_end];
        out.push_str(authority.rsplit_once('@').map_or(authority, |(_, host)| host));
        match &url[host_end..] {
            "" | "/" => out.push_str(&url[host_end..]),
            _ => out.push_str("/..."),
        }
        rest = &rest[url.len()..];
    }
    out.push_str(rest);
    out
}

/// A TOML error without the config line that the toml crate quotes (it may hold a URL's secret
/// or a password): the line, the key or table on that line (never its value), and the
/// message, with URLs cut. A config error shows it as `line N (KEY): MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TomlProblem {
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

/// `e`, an error in the TOML `text`, as a [`TomlProblem`].
pub(crate) fn toml_problem(text: &str, e: &toml::de::Error) -> TomlProblem {
    let message = urls(e.message().trim_end());
    let Some(at) = e.span().map(|s| s.start.min(text.len())) else {
        return TomlProblem { line: None, key: None, message };
    };
    let line = text[..at].matches('\n').count() + 1;
    let source = text.lines().nth(line - 1).unwrap_or_default().trim_start();
    let key = if source.starts_with('[') {
        source.find(']').map(|end| &source[..=end + usize::from(source[end + 1..].starts_with(']'))])
    } else {
        source
            .split_once('=')
            .map(|(key, _)| key.trim())
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.\" ".contains(c)))
    };
    TomlProblem { line: Some(line), key: key.map(str::to_owned), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_keep_only_what_was_expected() {
        let secret = "c2VjcmV0LXByaXZhdGUtbWF0ZXJpYWwtdGhhdC1tdXN0LW5vdC1sZWFr";
        let reason = data_reason(&format!("invalid type: string \"{secret}\", expected struct PublicJwk"));
        assert_eq!(reason, "a value of the wrong type; expected struct PublicJwk");
        let e = serde_json::from_str::<u32>(&format!("\"{secret}\"")).expect_err("not a number");
        assert!(!json_error(&e).contains(&secret[..12]), "{}", json_error(&e));
    }

    #[test]
    fn urls_keep_their_host_and_lose_path_query_and_credentials() {
        let text = "url \"https://hooks.slack.com:99999/services/T0/B0/SECRET\" is bad; see (https://u:p@x.example/a?t=1), http://localhost:8080/ and https://test.maskinporten.no/.";
        assert_eq!(
            urls(text),
            "url \"https://hooks.slack.com:99999/...\" is bad; see (https://x.example/...), http://localhost:8080/ and https://test.maskinporten.no/."
        );
        assert_eq!(urls("no url here: a://"), "no url here: a://");
        assert_eq!(urls("ftp://h/x?y"), "ftp://h/...");
    }

    #[test]
    fn toml_errors_name_the_line_and_key_but_never_quote_it() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            n: u32,
        }
        let text = "# a comment\nn = \"https://hooks.example/services/SECRET\"\n";
        let e = toml::from_str::<Doc>(text).expect_err("not a number");
        let problem = toml_problem(text, &e);
        assert_eq!((problem.line, problem.key.as_deref()), (Some(2), Some("n")));
        assert!(!problem.message.contains("SECRET") && !problem.message.contains("services"), "{problem:?}");
        let e = toml::from_str::<Doc>("[x\nn = 1").expect_err("syntax");
        assert_eq!(toml_problem("[x\nn = 1", &e).line, Some(1));
    }
}
