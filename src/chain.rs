//! An error and its causes in one line, for messages: `reqwest` and the Azure SDK keep the DNS
//! and TLS causes deep in the source chain, where a plain `to_string` does not show them.

/// The error's text, then each cause that adds something, separated by `: `.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
