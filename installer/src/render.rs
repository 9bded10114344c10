//! Rendering: profile + bundle → the desired tree of files, relative to the
//! config directory (`~/.config`).
//!
//! minijinja runs in strict-undefined mode, so a missing variable is an error
//! and never an empty string. Only `.j2` files are templates; everything else
//! is copied byte for byte. Values that land in env files go through the
//! `env_quote` filter ([`crate::envfile::quote`]).

use std::path::PathBuf;

use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::bundle::{Bundle, AGENT_ENV_TEMPLATE, TEMPLATE_SUFFIX};
use crate::profile::{Profile, DEFAULT_WORKDIR};

/// Who owns a file once it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ownership {
    /// Shipped by us: upgraded while the user has not changed it.
    Managed,
    /// Written once, then the operator's (roster, agent env files).
    Config,
}

/// One file of the desired tree.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    /// Path relative to the config directory, e.g. `mosaic/tools/fleet/x.sh`.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
    pub ownership: Ownership,
}

/// The whole desired tree, sorted by path.
#[derive(Debug, Clone)]
pub struct RenderedTree {
    pub files: Vec<RenderedFile>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot render bundle file {template}{}: {message}\n    fix: this is a bug in the bundle ({origin}); use the embedded bundle or fix the template", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct RenderError {
    pub origin: String,
    pub template: String,
    pub line: Option<usize>,
    pub message: String,
}

/// The settings one agent's env file is rendered from.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSettings {
    pub name: String,
    pub runtime: String,
    pub model: Option<String>,
    pub workdir: String,
    pub socket: String,
    pub command: Option<String>,
}

impl AgentSettings {
    /// Resolve an agent's effective settings from the roster.
    pub fn of(profile: &Profile) -> Vec<AgentSettings> {
        let roster = &profile.roster;
        let default_dir = roster
            .defaults
            .working_directory
            .as_deref()
            .unwrap_or(DEFAULT_WORKDIR);
        profile
            .local_agents()
            .map(|agent| {
                let model = agent.model_hint.clone();
                let command = agent.command.clone().or_else(|| {
                    (agent.yolo == Some(false)).then(|| {
                        let mut plain = format!("mosaic {}", agent.runtime);
                        if let Some(model) = &model {
                            plain.push_str(" --model ");
                            plain.push_str(&shell_quote(model));
                        }
                        plain
                    })
                });
                AgentSettings {
                    name: agent.name.clone(),
                    runtime: agent.runtime.clone(),
                    model,
                    workdir: agent
                        .working_directory
                        .clone()
                        .unwrap_or_else(|| default_dir.to_owned()),
                    socket: agent
                        .socket
                        .clone()
                        .unwrap_or_else(|| roster.socket().to_owned()),
                    command,
                }
            })
            .collect()
    }
}

/// Render the bundle for a profile. `mosaic_dir` is how units name the
/// Mosaic tree (see [`crate::layout::Layout::unit_mosaic_dir`]).
pub fn render(
    bundle: &Bundle,
    profile: &Profile,
    mosaic_dir: &str,
) -> Result<RenderedTree, RenderError> {
    let env = environment();
    let roster = &profile.roster;
    let agents = AgentSettings::of(profile);
    let globals = context! {
        version => &bundle.version,
        profile => &profile.name,
        socket => roster.socket(),
        holder_session => roster.holder_session(),
        mosaic_dir => mosaic_dir,
        agents => &agents,
    };
    let render_one = |name: &str, source: &[u8], ctx: &minijinja::Value| {
        let fail = |err: minijinja::Error| RenderError {
            origin: bundle.origin.clone(),
            template: name.to_owned(),
            line: err.line(),
            message: err.to_string(),
        };
        let source = std::str::from_utf8(source).map_err(|_| RenderError {
            origin: bundle.origin.clone(),
            template: name.to_owned(),
            line: None,
            message: "template is not UTF-8".into(),
        })?;
        env.render_str(source, ctx).map_err(fail)
    };

    let mut files = Vec::new();
    for file in bundle.files() {
        if file.path == AGENT_ENV_TEMPLATE {
            continue;
        }
        let Some(target) = install_path(&file.path) else {
            continue;
        };
        let (target, contents) = match target.strip_suffix(TEMPLATE_SUFFIX) {
            Some(plain) => (
                plain.to_owned(),
                render_one(&file.path, &file.contents, &globals)?.into_bytes(),
            ),
            None => (target, file.contents.clone()),
        };
        let mode = if target.ends_with(".sh") {
            0o755
        } else {
            0o644
        };
        files.push(RenderedFile {
            path: PathBuf::from(target),
            contents,
            mode,
            ownership: Ownership::Managed,
        });
    }

    files.push(RenderedFile {
        path: PathBuf::from("mosaic/fleet/roster.yaml"),
        contents: profile.text.clone().into_bytes(),
        mode: 0o644,
        ownership: Ownership::Config,
    });
    let env_template = bundle.file(AGENT_ENV_TEMPLATE).ok_or_else(|| RenderError {
        origin: bundle.origin.clone(),
        template: AGENT_ENV_TEMPLATE.into(),
        line: None,
        message: "the per-agent env template is missing from the bundle".into(),
    })?;
    for agent in &agents {
        let ctx = context! { agent => agent, ..globals.clone() };
        let contents = render_one(AGENT_ENV_TEMPLATE, &env_template.contents, &ctx)?;
        files.push(RenderedFile {
            path: agent_env_path(&agent.name),
            contents: contents.into_bytes(),
            mode: 0o600,
            ownership: Ownership::Config,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(RenderedTree { files })
}

/// Config-relative path of an agent's env file.
pub fn agent_env_path(agent: &str) -> PathBuf {
    PathBuf::from(format!("mosaic/fleet/agents/{agent}.env"))
}

/// Where a bundle file is installed, relative to the config directory; None
/// for package metadata that is not installed.
fn install_path(bundle_path: &str) -> Option<String> {
    if let Some(rest) = bundle_path.strip_prefix("framework/") {
        return Some(format!("mosaic/{rest}"));
    }
    bundle_path
        .starts_with("systemd/user/")
        .then(|| bundle_path.to_owned())
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.add_filter("env_quote", |value: String| crate::envfile::quote(&value));
    env.add_filter("shell_quote", |value: String| shell_quote(&value));
    env
}

/// Quote a word for a POSIX shell command line.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn shell_quote_leaves_plain_words() {
        assert_eq!(shell_quote("gpt-5.1"), "gpt-5.1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let env = environment();
        let err = env.render_str("x={{ nope }}", context! {}).unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UndefinedError);
    }

    #[test]
    fn usc_renders_one_env_file_per_agent() {
        let bundle = Bundle::embedded();
        let profile = Profile::resolve("usc", &bundle).unwrap();
        let tree = render(&bundle, &profile, "%h/.config/mosaic").unwrap();
        let envs: Vec<_> = tree
            .files
            .iter()
            .filter(|f| f.path.starts_with("mosaic/fleet/agents"))
            .collect();
        assert_eq!(envs.len(), profile.roster.agents.len());
        assert!(envs.iter().all(|f| f.mode == 0o600));
        assert!(tree
            .files
            .iter()
            .any(|f| f.path == Path::new("systemd/user/mosaic-agent@.service")));
        assert!(!tree.files.iter().any(|f| f.path.ends_with("package.json")));
    }
}
