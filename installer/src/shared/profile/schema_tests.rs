//! The shipped roster schema (`framework/fleet/roster.schema.json`) against
//! the shipped profiles and the fixtures, with a real JSON Schema validator.
//!
//! The schema and `mosaic-install` must agree: every shipped example and the
//! tricky fixture pass both; every bad fixture fails `mosaic-install`, and
//! fails the schema too unless its header says the schema cannot express
//! the rule (`# schema: accepts (why)`), the file is not YAML at all, or it
//! has no JSON value (`# schema: not json (why)`).

use std::path::{Path, PathBuf};

use crate::shared::bundle::Bundle;
use crate::shared::profile::Profile;
use mosaic_tests::{fixture_header, fixtures_dir, templates_dir};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let path = templates_dir().join("framework/fleet/roster.schema.json");
    let schema: Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("the schema is valid JSON");
    jsonschema::meta::validate(&schema).expect("the schema is a valid JSON Schema");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// A roster as the JSON value the schema describes.
fn roster_value(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Schema errors, as "instance path: message" lines.
fn schema_errors(validator: &jsonschema::Validator, path: &Path) -> Vec<String> {
    let value = roster_value(path);
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

fn shipped_examples() -> Vec<PathBuf> {
    let dir = templates_dir().join("framework/fleet/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn bad_fixture(name: &str) -> PathBuf {
    fixtures_dir()
        .join("profiles/bad")
        .join(format!("{name}.yaml"))
}

#[test]
fn every_shipped_example_and_the_tricky_fixture_validate() {
    let validator = validator();
    let examples = shipped_examples();
    let names: Vec<String> = examples
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["local-canary.yaml", "minimal.yaml", "usc.yaml"]);
    let tricky = fixtures_dir().join("profiles/tricky.yaml");
    for path in examples.iter().chain([&tricky]) {
        assert_eq!(
            schema_errors(&validator, path),
            Vec::<String>::new(),
            "{path:?}"
        );
        Profile::resolve(path.to_str().unwrap(), &Bundle::embedded())
            .unwrap_or_else(|e| panic!("mosaic-install rejects {path:?}: {e}"));
    }
}

#[test]
fn schema_rejects_an_unknown_key_version_2_and_a_dotted_name_where_they_are() {
    let validator = validator();
    let cases = [
        ("unknown-key-in-agent", "/agents/0"),
        ("unknown-key-top-level", ""),
        ("version-not-1", "/version"),
        ("name-with-dot", "/agents/1/name"),
    ];
    for (name, instance_path) in cases {
        let errors = schema_errors(&validator, &bad_fixture(name));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("{instance_path}: "))),
            "{name}: expected an error at {instance_path:?}, got {errors:#?}"
        );
    }
}

#[test]
fn schema_and_mosaic_install_agree_on_every_bad_fixture() {
    let validator = validator();
    let bundle = Bundle::embedded();
    let mut failures = Vec::new();
    let dir = fixtures_dir().join("profiles/bad");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if Profile::resolve(path.to_str().unwrap(), &bundle).is_ok() {
            failures.push(format!("{name}: mosaic-install accepts it"));
        }
        let verdict = fixture_header(&path, "schema").join("");
        if verdict == "not yaml" || verdict.starts_with("not json") {
            continue;
        }
        let errors = schema_errors(&validator, &path);
        match (verdict.starts_with("rejects"), errors.is_empty()) {
            (true, true) => failures.push(format!("{name}: the schema accepts it")),
            (false, false) => failures.push(format!(
                "{name}: header says `schema: {verdict}` but the schema rejects it: {errors:#?}"
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
