//! JSON error texts that never echo a value from the input: a private key pasted into the wrong
//! field must not end up in a log or on a terminal. The key file's field-naming errors build on
//! these (`store::file_errors`).

use serde_json::error::Category;

/// A JSON error without any value from the input: syntax errors keep serde_json's fixed text
/// and position, data errors keep only what the type expected.
pub fn json_error(e: &serde_json::Error) -> String {
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
}
