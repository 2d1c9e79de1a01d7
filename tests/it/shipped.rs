//! The configs shipped with the deployment files are in the format the binary reads, and no
//! shipped text tells an operator to upload a whole published set to Samarbeidsportalen.

use std::path::Path;

use jwk_rotator::config::{Config, StoreConfig};

fn root(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The TOML under `jwk-rotator.toml: |` in a ConfigMap, de-indented.
fn embedded_toml(yaml: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| !l.trim_start().starts_with("jwk-rotator.toml: |")).skip(1);
    let first = lines.clone().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let indent = first.len() - first.trim_start().len();
    lines
        .by_ref()
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_config_uses_the_file_store() {
    let config = Config::load(&root("examples/jwk-rotator.toml")).expect("example config");
    assert!(matches!(config.store, StoreConfig::File { .. }));
    assert!(config.targets().len() >= 2);
}

#[test]
fn github_workflow_config_loads() {
    let config = Config::load(&root("examples/github-actions/jwk-rotator.toml")).expect("workflow config");
    assert!(matches!(config.store, StoreConfig::AzureKeyVault(_)));
}

#[test]
fn kubernetes_configmap_config_loads() {
    let yaml = std::fs::read_to_string(root("infra/kubernetes/configmap.yaml")).expect("configmap");
    let toml = embedded_toml(&yaml);
    assert!(toml.contains("[[client]]"), "{toml}");
    let config = Config::parse(&toml, Path::new("/config/jwk-rotator.toml")).expect("configmap config");
    assert_eq!(config.publish.dir, Path::new("/work/jwks"), "absolute paths stay as they are");
}

/// Every file under `dir` (recursively) whose name ends with one of `suffixes`.
fn files_under(dir: &Path, suffixes: &[&str], out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, suffixes, out);
        } else if suffixes.iter().any(|s| path.to_string_lossy().ends_with(s)) {
            out.push(path);
        }
    }
}

/// Samarbeidsportalen adds one key at a time (`jwks SET --kid KID --format maskinporten`); a
/// text that says to upload or paste `{set}.maskinporten.json` makes an operator paste an array
/// where the portal expects one key. Messages, alerts, parameter files and docs are all read.
#[test]
fn no_shipped_text_says_to_upload_the_whole_published_set() {
    let mut files = vec![root("README.md"), root("CHANGELOG.md")];
    for dir in ["src", "docs", "infra", ".github", "examples"] {
        files_under(
            &root(dir),
            &[".rs", ".md", ".yaml", ".yml", ".bicep", ".bicepparam", ".toml"],
            &mut files,
        );
    }
    assert!(files.len() > 40, "read only {} files", files.len());
    let mut offending = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("shipped text file");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            // A sentence may wrap: read each mention with the line before it.
            let near = format!("{} {line}", if i > 0 { lines[i - 1] } else { "" }).to_lowercase();
            let mentions_set_file = line.contains(".maskinporten.json");
            if mentions_set_file && (near.contains("upload") || near.contains("paste")) {
                offending.push(format!("{}:{}: {line}", file.display(), i + 1));
            }
        }
    }
    assert!(offending.is_empty(), "texts that send the whole set to the portal:\n{}", offending.join("\n"));
}
