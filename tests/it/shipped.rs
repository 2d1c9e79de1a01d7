//! The configs shipped with the deployment files are in the format the binary reads.

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
    let config = Config::load(&root(".github/jwk-rotator.toml")).expect("workflow config");
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
