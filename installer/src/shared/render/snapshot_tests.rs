//! Snapshots of what the installer renders for each embedded profile and the
//! tricky fixture: one reviewed `insta` snapshot per rendered file (units,
//! per-agent env files, the roster; the schema once), in `tests/snapshots/`.
//!
//! Files copied verbatim from `templates/` (scripts, READMEs, examples) are
//! not snapshotted: they must equal their source byte for byte, so their
//! review happens where they are written.

use std::path::{Path, PathBuf};

use crate::shared::bundle::Bundle;
use crate::shared::profile::Profile;
use crate::shared::render::{self, Host, RenderedFile, RenderedTree};
use mosaic_tests::{fixtures_dir, templates_dir};

/// The host the snapshots are rendered for: the default config dir, and a
/// runtime PATH as `mosaic-install` resolves it on a host with a user npm
/// prefix and pipx.
const HOST: Host<'static> = Host {
    mosaic_dir: "%h/.config/mosaic",
    runtime_path: "/home/op/.npm-global/bin:/home/op/.local/bin",
};
const SCHEMA: &str = "mosaic/fleet/roster.schema.json";

fn rendered(spec: &str) -> (Profile, RenderedTree) {
    let bundle = Bundle::embedded();
    let profile = Profile::resolve(spec, &bundle).expect("profile is valid");
    let tree = render::render(&bundle, &profile, &HOST).expect("profile renders");
    (profile, tree)
}

/// The `templates/` file a rendered file is a verbatim copy of, if any.
fn verbatim_source(file: &RenderedFile) -> Option<PathBuf> {
    let rel = file.path.strip_prefix("mosaic").ok()?;
    let source = templates_dir().join("framework").join(rel);
    source.is_file().then_some(source)
}

fn snapshot(name: &str, file: &RenderedFile) {
    let text = String::from_utf8(file.contents.clone())
        .unwrap_or_else(|_| panic!("{} is not UTF-8", file.path.display()));
    let description = format!(
        "{} (mode {:04o}, {:?})",
        file.path.display(),
        file.mode,
        file.ownership
    );
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/snapshots"),
        prepend_module_to_snapshot => false,
        description => description,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// Snapshot every rendered file of a profile; verbatim copies must equal
/// their source instead.
fn snapshot_profile(label: &str, spec: &str) {
    let (profile, tree) = rendered(spec);
    let mut snapshotted = 0;
    for file in &tree.files {
        if let Some(source) = verbatim_source(file) {
            let expected = std::fs::read(&source).unwrap();
            assert!(
                file.contents == expected,
                "{} differs from {}",
                file.path.display(),
                source.display()
            );
            continue;
        }
        let path = file.path.display().to_string();
        snapshot(&format!("{label}__{}", path.replace('/', "__")), file);
        snapshotted += 1;
    }
    let roster = tree
        .files
        .iter()
        .find(|f| f.path == Path::new("mosaic/fleet/roster.yaml"))
        .expect("the roster is rendered");
    assert_eq!(
        roster.contents,
        profile.text.as_bytes(),
        "roster is the profile's text"
    );
    // Two units, the roster, one env file per local agent.
    let agents = profile.local_agents().count();
    assert_eq!(snapshotted, 3 + agents, "rendered files of {label}");
}

#[test]
fn minimal() {
    snapshot_profile("minimal", "minimal");
}

#[test]
fn local_canary() {
    snapshot_profile("local-canary", "local-canary");
}

#[test]
fn usc() {
    snapshot_profile("usc", "usc");
}

#[test]
fn tricky() {
    let path = fixtures_dir().join("profiles/tricky.yaml");
    snapshot_profile("tricky", path.to_str().unwrap());
}

#[test]
fn roster_schema() {
    let (_, tree) = rendered("minimal");
    let schema = tree
        .files
        .iter()
        .find(|f| f.path == Path::new(SCHEMA))
        .expect("the schema is installed");
    snapshot("schema__roster.schema.json", schema);
}
