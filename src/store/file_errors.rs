//! Key file errors that name the field and its line but never a stored value: which member of a
//! key file does not read as its type.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::error::Category;

use crate::jwk::PublicJwk;
use crate::kid::Kid;
use crate::policy::Algorithm;
use crate::record::Stage;
use crate::redact::{data_reason, position_error};

/// What is wrong with a key file's JSON, naming the field (found by checking each member
/// against its type) and its line, but no value: `field `stage` (line 3): not one of the
/// allowed values; expected one of `pending`, ...`.
pub(crate) fn key_file_error(e: &serde_json::Error, text: &[u8]) -> String {
    if e.classify() != Category::Data {
        return position_error(e);
    }
    describe(e, text)
}

/// The member of a key file that does not read as its type, if one can be named.
pub(crate) fn damaged_field(e: &serde_json::Error, text: &[u8]) -> Option<&'static str> {
    if e.classify() != Category::Data {
        return None;
    }
    serde_json::from_slice::<Value>(text).ok().as_ref().and_then(bad_member)
}

fn describe(e: &serde_json::Error, text: &[u8]) -> String {
    let reason = data_reason(&e.to_string());
    let doc: Option<Value> = serde_json::from_slice(text).ok();
    match doc.as_ref().and_then(bad_member) {
        Some(field) => match line_of(text, field) {
            Some(line) => format!("field `{field}` (line {line}): {reason}"),
            None => format!("field `{field}`: {reason}"),
        },
        None => format!("line {}, column {}: {reason}", e.line(), e.column()),
    }
}

/// A member's name and whether a value fails to read as its type.
type Check = (&'static str, fn(&Value) -> bool);

fn fails<T: DeserializeOwned>(value: &Value) -> bool {
    serde_json::from_value::<T>(value.clone()).is_err()
}

/// The first member of a key file that does not read as its type: `stage`, `public.kid`, ...
fn bad_member(doc: &Value) -> Option<&'static str> {
    let top: [Check; 7] = [
        ("kid", fails::<Kid>),
        ("stage", fails::<Stage>),
        ("created", fails::<DateTime<Utc>>),
        ("published", fails::<Option<DateTime<Utc>>>),
        ("activated", fails::<Option<DateTime<Utc>>>),
        ("demoted", fails::<Option<DateTime<Utc>>>),
        ("retired", fails::<Option<DateTime<Utc>>>),
    ];
    let public: [Check; 4] = [
        ("public.kid", fails::<Kid>),
        ("public.alg", fails::<Algorithm>),
        ("public.n", fails::<String>),
        ("public.e", fails::<String>),
    ];
    let found = top.into_iter().find(|(name, bad)| doc.get(name).is_some_and(bad));
    let inner = doc.get("public");
    let found = found.or_else(|| {
        public.into_iter().find(|(name, bad)| {
            let member = name.trim_start_matches("public.");
            inner.and_then(|p| p.get(member)).is_some_and(bad)
        })
    });
    let found = found.map(|(name, _)| name);
    found.or_else(|| inner.is_some_and(fails::<PublicJwk>).then_some("public"))
}

/// The 1-based line on which `field` (`stage`, or `public.kid` within `public`) is written.
fn line_of(text: &[u8], field: &str) -> Option<usize> {
    let text = std::str::from_utf8(text).ok()?;
    let (outer, inner) = match field.split_once('.') {
        Some((outer, inner)) => (Some(outer), inner),
        None => (None, field),
    };
    let key = |name: &str| format!("\"{name}\"");
    let mut lines = text.lines().enumerate();
    if let Some(outer) = outer {
        lines.find(|(_, l)| l.trim_start().starts_with(&key(outer)))?;
    }
    lines.find(|(_, l)| l.trim_start().starts_with(&key(inner))).map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXByaXZhdGUtbWF0ZXJpYWwtdGhhdC1tdXN0LW5vdC1sZWFr";

    fn file(stage: &str, kid: &str, alg: &str) -> String {
        format!(
            "{{\n  \"kid\": \"{kid}\",\n  \"stage\": \"{stage}\",\n  \"created\": \"2026-11-21T06:00:00Z\",\n  \"public\": {{\n    \"kid\": \"a-TEST.2026-11-21\",\n    \"alg\": \"{alg}\",\n    \"n\": \"AQAB\",\n    \"e\": \"AQAB\"\n  }},\n  \"private_jwk\": \"x\"\n}}"
        )
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct KeyFile {
        #[serde(flatten)]
        record: crate::record::KeyRecord,
        private_jwk: String,
    }

    fn error_of(text: &str) -> String {
        let e = serde_json::from_str::<KeyFile>(text).err().expect("an error");
        key_file_error(&e, text.as_bytes())
    }

    #[test]
    fn a_secret_in_a_field_is_named_but_never_shown() {
        let kid = "a-TEST.2026-11-21";
        let cases = [
            (
                file(SECRET, kid, "RS256"),
                "field `stage` (line 3): not one of the allowed values; expected one of",
            ),
            (file("current", SECRET, "RS256"), "field `kid` (line 2): not a valid value; expected a kid"),
            (file("current", kid, SECRET), "field `public.alg` (line 7): not one of the allowed values"),
        ];
        for (text, want) in cases {
            let message = error_of(&text);
            assert!(message.contains(want), "{message}");
            assert!(!message.contains(&SECRET[..12]), "{message}");
        }
    }

    #[test]
    fn syntax_errors_keep_their_position_and_fixed_text() {
        let text = format!("{{\"stage\": \"{SECRET}\"");
        let message = error_of(&text);
        assert!(message.starts_with("line 1, column") && message.contains("EOF"), "{message}");
        assert!(!message.contains(&SECRET[..12]), "{message}");
    }

    #[test]
    fn wrong_types_say_what_was_expected() {
        let text = file("current", "a-TEST.2026-11-21", "RS256").replace("\"x\"", &format!("[\"{SECRET}\"]"));
        let message = error_of(&text);
        assert!(message.contains("a value of the wrong type; expected a string"), "{message}");
    }
}
