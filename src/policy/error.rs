//! Policy settings that can not be used: a value out of its range, or settings that can not
//! work together, named.

/// A policy setting that can not be used: a value out of its range, or settings that can not
/// work together, named as in the config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("key size {bits} is not supported: use 2048, 3072 or 4096")]
    KeySize { bits: u32 },
    #[error("algorithm {found:?} is not supported: use RS256, RS384 or RS512")]
    Algorithm { found: String },
    #[error("{text:?} is not a duration ({reason}): write it like \"90d\", \"12h\" or \"30m\"")]
    Duration { text: String, reason: String },
    #[error("{text:?} is too long")]
    TooLong { text: String },
    /// A setting out of its range, or settings that can not work together: `settings` names
    /// them, and the message says how they fit.
    #[error("{message}")]
    Settings { settings: Vec<&'static str>, message: String },
}

impl PolicyError {
    pub(super) fn settings(settings: &[&'static str], message: String) -> Self {
        PolicyError::Settings { settings: settings.to_vec(), message }
    }

    /// The setting at fault, as the config file names it: the first one a message names, where
    /// the error knows it (a duration alone does not know its name).
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            PolicyError::KeySize { .. } => Some("key_size"),
            PolicyError::Algorithm { .. } => Some("algorithm"),
            PolicyError::Duration { .. } | PolicyError::TooLong { .. } => None,
            PolicyError::Settings { settings, .. } => settings.first().copied(),
        }
    }
}
