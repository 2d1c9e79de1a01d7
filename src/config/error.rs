//! Why a config can not be used: the file, the place in it and the setting are fields, so that
//! callers and tests match on what happened, and the message is rendered here, in one place.
//! Shown, an error never holds a URL's path, query or credentials (see [`crate::redact::urls`]).

use std::fmt;
use std::path::{Path, PathBuf};

/// A config that can not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The config file can not be read.
    Unreadable {
        file: PathBuf,
        /// Why, as the operating system said it.
        cause: String,
        /// Whether the file is not there (the message then says where a config comes from).
        missing: bool,
    },
    /// The file has no `[[client]]`.
    NoClient { file: PathBuf },
    /// A key set named on the command line is not in the config.
    UnknownKeySet {
        file: PathBuf,
        /// As it was named.
        name: String,
        /// The configured key sets, in config order.
        known: Vec<String>,
    },
    /// A setting that can not work.
    Setting(SettingError),
}

impl ConfigError {
    /// The setting at fault, as the message names it, when the error is about one.
    pub fn setting(&self) -> Option<&str> {
        match self {
            ConfigError::Setting(e) => e.setting.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ConfigError::Unreadable { file, cause, missing } => {
                let hint = if *missing {
                    "pass --config FILE, set JWK_ROTATOR_CONFIG, or copy examples/jwk-rotator.toml to ./jwk-rotator.toml"
                } else {
                    "check that the file is readable by this user"
                };
                format!("cannot read config file {}: {cause}; {hint}", file.display())
            }
            ConfigError::NoClient { file } => format!(
                "config file {} has no [[client]]: add one with name = \"...\" and environments = [\"TEST\", \"PROD\"]",
                file.display()
            ),
            ConfigError::UnknownKeySet { file, name, known } => format!(
                "key set {name:?} is not in {}; configured key sets: {}",
                file.display(),
                known.join(", ")
            ),
            ConfigError::Setting(e) => return e.fmt(f),
        };
        f.write_str(&crate::redact::urls(&text))
    }
}

impl std::error::Error for ConfigError {}

impl From<SettingError> for ConfigError {
    fn from(e: SettingError) -> Self {
        ConfigError::Setting(e)
    }
}

/// A setting that can not work, or a value that can not be read, and where it is. Rendered as
/// `config file FILE: line N (KEY): TABLE: ...: MESSAGE`, each part only when it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The config file; `None` until the loader adds it, and for a value that comes from
    /// elsewhere (an environment variable, `--from`).
    pub file: Option<PathBuf>,
    /// The line TOML's parser points at, for an error it found.
    pub line: Option<usize>,
    /// The tables it is in, outermost first, as the message names them: `[maskinporten.TEST]`,
    /// or `[[client]] number 2` then `client a`.
    pub place: Vec<String>,
    /// The setting, as the message names it (`publish`, `client_id.PROD`, `[store] path`), or
    /// the key or table on the line TOML points at; `None` when no one setting is at fault.
    pub setting: Option<String>,
    /// What is wrong and what to do; it names the setting as the file writes it.
    pub message: String,
}

impl SettingError {
    /// An error in `setting`; `message` names it as the file writes it.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        SettingError {
            file: None,
            line: None,
            place: Vec::new(),
            setting: Some(setting.into()),
            message: message.into(),
        }
    }

    /// An error that is not about one setting (such as a table that is missing).
    pub(crate) fn general(message: impl Into<String>) -> Self {
        SettingError { setting: None, ..SettingError::new("", message) }
    }

    /// The same error inside `place` (a table, or a client), which goes before the places it
    /// already has.
    pub fn within(mut self, place: impl Into<String>) -> Self {
        self.place.insert(0, place.into());
        self
    }

    /// The same error, in the config file `file`.
    pub(crate) fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_path_buf());
        self
    }
}

impl From<crate::policy::PolicyError> for SettingError {
    /// A policy setting that can not work, named as the policy error names it.
    fn from(e: crate::policy::PolicyError) -> Self {
        SettingError { setting: e.setting().map(str::to_owned), ..SettingError::general(e.to_string()) }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        if let Some(file) = &self.file {
            text += &format!("config file {}: ", file.display());
        }
        match (self.line, &self.setting) {
            (Some(line), Some(setting)) => text += &format!("line {line} ({setting}): "),
            (Some(line), None) => text += &format!("line {line}: "),
            (None, _) => {}
        }
        for place in &self.place {
            text += &format!("{place}: ");
        }
        text += &self.message;
        f.write_str(&crate::redact::urls(&text))
    }
}

impl std::error::Error for SettingError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_is_shown_only_when_known_and_urls_lose_their_path() {
        let e = SettingError::new("publish", "publish = [] would publish the keys nowhere")
            .within("client a")
            .within("[[client]] number 2")
            .in_file(Path::new("/etc/j.toml"));
        assert_eq!(
            e.to_string(),
            "config file /etc/j.toml: [[client]] number 2: client a: publish = [] would publish the keys nowhere"
        );
        let parsed = SettingError { line: Some(3), ..SettingError::new("path", "expected a string") };
        assert_eq!(parsed.to_string(), "line 3 (path): expected a string");
        let general = SettingError { line: Some(4), ..SettingError::general("unclosed string") };
        assert_eq!(general.to_string(), "line 4: unclosed string");
        let url = SettingError::new("url", "url https://u:p@h.example/s/SECRET?x=1 is bad");
        assert_eq!(url.to_string(), "url https://h.example/... is bad");
        let unknown = ConfigError::UnknownKeySet {
            file: "j.toml".into(),
            name: "a-STAGE".to_owned(),
            known: vec!["a-TEST".to_owned(), "a-PROD".to_owned()],
        };
        assert_eq!(
            unknown.to_string(),
            "key set \"a-STAGE\" is not in j.toml; configured key sets: a-TEST, a-PROD"
        );
        assert_eq!(unknown.setting(), None);
    }
}
