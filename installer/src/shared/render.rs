//! Rendering: profile + bundle → the desired tree of files, relative to the
//! config directory (`~/.config`).
//!
//! minijinja runs in strict-undefined mode, so a missing variable is an error
//! and never an empty string. Only `.j2` files are templates; everything else
//! is copied byte for byte. Values that land in env files go through the
//! `env_quote` filter ([`crate::shared::envfile::quote`]). Every render is bounded
//! in time and memory ([`limits`]).

mod limits;

use std::path::{Path, PathBuf};

use minijinja::{context, Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;

use limits::{CappedOutput, FilterBudget};
pub(crate) use limits::{MAX_RENDERED_FILE, MAX_RENDERED_TOTAL, TEMPLATE_FUEL};

use crate::shared::bundle::{Bundle, AGENT_ENV_TEMPLATE, TEMPLATE_SUFFIX};
use crate::shared::profile::{Profile, DEFAULT_WORKDIR};

/// Who owns a file once it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Ownership {
    /// Shipped by us: upgraded while the user has not changed it.
    Managed,
    /// The fleet's configuration (roster, agent env files generated from it):
    /// upgraded like managed files, kept by `uninstall` unless `--purge`.
    Config,
}

/// One file of the desired tree.
#[derive(Debug, Clone)]
pub(crate) struct RenderedFile {
    /// Path relative to the config directory, e.g. `mosaic/tools/fleet/x.sh`.
    pub(crate) path: PathBuf,
    pub(crate) contents: Vec<u8>,
    pub(crate) mode: u32,
    pub(crate) ownership: Ownership,
}

/// The whole desired tree, sorted by path.
#[derive(Debug, Clone)]
pub(crate) struct RenderedTree {
    pub(crate) files: Vec<RenderedFile>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot render bundle file {template}{}: {message}\n    fix: this is a bug in the bundle ({origin}); use the embedded bundle or fix the template", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub(crate) struct RenderError {
    pub(crate) origin: String,
    pub(crate) template: String,
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

/// What rendering needs to know of the host it renders for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Host<'a> {
    /// How units name the Mosaic tree (see
    /// [`crate::shared::layout::Layout::unit_mosaic_dir`]).
    pub(crate) mosaic_dir: &'a str,
    /// `MOSAIC_RUNTIME_PATH` of every agent (see [`crate::shared::runtime_path`]).
    pub(crate) runtime_path: &'a str,
}

/// The settings one agent's env file is rendered from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentSettings {
    pub(crate) name: String,
    pub(crate) runtime: String,
    /// The persona class (`MOSAIC_AGENT_CLASS`, Mosaic #669).
    pub(crate) class: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) workdir: String,
    pub(crate) socket: String,
    pub(crate) command: Option<String>,
}

impl AgentSettings {
    /// Resolve an agent's effective settings from the roster.
    pub(crate) fn of(profile: &Profile) -> Vec<AgentSettings> {
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
                    class: agent.class.clone(),
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

/// Renders the templates of one bundle within the limits of [`limits`]:
/// fuel and output are spent across all its templates.
struct Renderer<'b> {
    env: Environment<'b>,
    origin: &'b str,
    fuel_left: u64,
    output_left: usize,
}

impl<'b> Renderer<'b> {
    fn new(origin: &'b str) -> Renderer<'b> {
        Renderer {
            env: environment(),
            origin,
            fuel_left: TEMPLATE_FUEL,
            output_left: MAX_RENDERED_TOTAL,
        }
    }

    fn render(
        &mut self,
        name: &str,
        source: &'b [u8],
        ctx: &minijinja::Value,
    ) -> Result<String, RenderError> {
        let fail = |line: Option<usize>, message: String| RenderError {
            origin: self.origin.to_owned(),
            template: name.to_owned(),
            line,
            message,
        };
        let source =
            std::str::from_utf8(source).map_err(|_| fail(None, "template is not UTF-8".into()))?;
        if let Some((line, why)) = limits::refused_syntax(source) {
            return Err(fail(line, why));
        }
        self.env.set_fuel(Some(self.fuel_left));
        let template = self
            .env
            .template_from_str(source)
            .map_err(|err| fail(err.line(), err.to_string()))?;
        if let Some((line, why)) = limits::refused_construct(&template) {
            return Err(fail(line, why));
        }
        let limit = MAX_RENDERED_FILE.min(self.output_left);
        let mut out = CappedOutput::new(limit);
        let rendered = template.render_captured_to(ctx, &mut out);
        let consumed = match &rendered {
            Ok(captured) => captured.state().fuel_levels().map_or(0, |(used, _)| used),
            Err(_) => self.fuel_left,
        };
        self.fuel_left = self.fuel_left.saturating_sub(consumed);
        if let Err(err) = rendered {
            let message = if out.overflowed && limit == MAX_RENDERED_FILE {
                format!("renders to more than {MAX_RENDERED_FILE} bytes (1 MiB), the limit for one rendered file")
            } else if out.overflowed {
                format!("the rendered files pass {MAX_RENDERED_TOTAL} bytes (64 MiB) in all, the limit for one render")
            } else if err.kind() == ErrorKind::OutOfFuel {
                format!("the bundle's templates ran out of fuel: they may run {TEMPLATE_FUEL} template instructions in all, and this one loops past that")
            } else {
                err.to_string()
            };
            return Err(fail(err.line(), message));
        }
        self.output_left -= out.bytes.len();
        String::from_utf8(out.bytes).map_err(|_| fail(None, "rendered text is not UTF-8".into()))
    }
}

/// Render the bundle for a profile on `host`.
pub(crate) fn render(
    bundle: &Bundle,
    profile: &Profile,
    host: &Host<'_>,
) -> Result<RenderedTree, RenderError> {
    let mut renderer = Renderer::new(&bundle.origin);
    let roster = &profile.roster;
    let agents = AgentSettings::of(profile);
    let globals = context! {
        version => &bundle.version,
        profile => &profile.name,
        socket => roster.socket(),
        holder_session => roster.holder_session(),
        mosaic_dir => host.mosaic_dir,
        runtime_path => host.runtime_path,
        agents => &agents,
    };
    let mut files = Vec::new();
    for file in bundle.files() {
        if file.path == AGENT_ENV_TEMPLATE {
            continue;
        }
        let Some(target) = install_path(&file.path) else {
            continue;
        };
        let in_tree = Path::new(&target).strip_prefix(crate::shared::layout::MOSAIC_REL);
        if let Some(why) = in_tree.ok().and_then(crate::shared::mosaic::protected) {
            return Err(RenderError {
                origin: bundle.origin.clone(),
                template: file.path.clone(),
                line: None,
                message: format!(
                    "it would be installed as {target}, {why}; mosaic-install never writes, moves or removes Mosaic's own files"
                ),
            });
        }
        let (target, contents) = match target.strip_suffix(TEMPLATE_SUFFIX) {
            Some(plain) => (
                plain.to_owned(),
                renderer
                    .render(&file.path, &file.contents, &globals)?
                    .into_bytes(),
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
        let contents = renderer.render(AGENT_ENV_TEMPLATE, &env_template.contents, &ctx)?;
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
pub(crate) fn agent_env_path(agent: &str) -> PathBuf {
    PathBuf::from(format!("mosaic/fleet/agents/{agent}.env"))
}

/// Config-relative path of an agent's overrides, `<agent>.local.env`: the
/// operator's, read after the generated file, never written by us.
pub(crate) fn local_env_path(agent: &str) -> PathBuf {
    PathBuf::from(format!("mosaic/fleet/agents/{agent}.local.env"))
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

/// No built-in filters, tests or functions: only what the bundle needs,
/// each spending from the render's filter budget.
fn environment<'b>() -> Environment<'b> {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let budget = FilterBudget::new();
    let spend = budget.clone();
    env.add_filter("env_quote", move |value: String| {
        spend.apply(&value, crate::shared::envfile::quote)
    });
    env.add_filter("shell_quote", move |value: String| {
        budget.apply(&value, shell_quote)
    });
    env
}

/// Quote a word for a POSIX shell command line.
pub(crate) fn shell_quote(word: &str) -> String {
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

    fn render_one(renderer: &mut Renderer<'_>, source: &'static str) -> Result<String, String> {
        let ctx = minijinja::Value::from_serialize(context! {
            kib => "k".repeat(1024),
            quotes => "'".repeat(1000),
        });
        renderer
            .render("hostile.j2", source.as_bytes(), &ctx)
            .map_err(|err| err.to_string())
    }

    /// Ten loops over ten characters, nested: 10^10 iterations.
    const LOOPS: &str = "{% set s = '0123456789' %}\
        {% for a in s %}{% for b in s %}{% for c in s %}{% for d in s %}{% for e in s %}\
        {% for f in s %}{% for g in s %}{% for h in s %}{% for i in s %}{% for j in s %}";
    const ENDS: &str = "{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}\
        {% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";

    #[test]
    fn an_expansion_stops_at_the_rendered_file_limit() {
        let source: &'static str = format!("{LOOPS}{{{{ kib }}}}{ENDS}").leak();
        let err = render_one(&mut Renderer::new("test"), source).unwrap_err();
        assert!(
            err.contains(
                "renders to more than 1048576 bytes (1 MiB), the limit for one rendered file"
            ),
            "{err}"
        );
    }

    #[test]
    fn loops_that_write_nothing_run_out_of_fuel() {
        let source: &'static str = format!("{LOOPS}{ENDS}").leak();
        let err = render_one(&mut Renderer::new("test"), source).unwrap_err();
        assert!(err.contains("ran out of fuel"), "{err}");
        assert!(
            err.contains("10000000 template instructions in all"),
            "{err}"
        );
    }

    #[test]
    fn fuel_and_output_are_spent_across_the_templates_of_a_render() {
        let mut renderer = Renderer::new("test");
        // 1023 KiB each: under the per-file limit, over the total by the 65th.
        let almost_1_mib = "{% for a in '0123456789abcdef' %}{% for b in '0123456789abcdef' %}\
            {% for c in '0123' %}{{ kib }}{% endfor %}{% endfor %}{% endfor %}";
        for _ in 0..64 {
            render_one(&mut renderer, almost_1_mib).unwrap();
        }
        let err = render_one(&mut renderer, almost_1_mib).unwrap_err();
        assert!(
            err.contains("the rendered files pass 67108864 bytes (64 MiB) in all"),
            "{err}"
        );
    }

    #[test]
    fn chained_filters_stop_at_the_filter_input_limit() {
        // Each shell_quote makes 1000 quotes four times as long: 4^6 KB.
        let source = "{{ quotes|shell_quote|shell_quote|shell_quote|shell_quote|shell_quote\
            |shell_quote|shell_quote|shell_quote|shell_quote|shell_quote|shell_quote }}";
        let err = render_one(&mut Renderer::new("test"), source).unwrap_err();
        assert!(
            err.contains("a filtered value may be at most 1048576 bytes (1 MiB)"),
            "{err}"
        );
    }

    #[test]
    fn usc_renders_one_env_file_per_agent() {
        let bundle = Bundle::embedded();
        let profile = Profile::resolve("usc", &bundle).unwrap();
        let host = Host {
            mosaic_dir: "%h/.config/mosaic",
            runtime_path: "",
        };
        let tree = render(&bundle, &profile, &host).unwrap();
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

#[cfg(test)]
mod snapshot_tests;
