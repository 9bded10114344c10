//! Profiles: Mosaic fleet rosters (YAML, version 1) and their validation.
//!
//! A profile is either one of the rosters embedded in the bundle
//! (`framework/fleet/examples/<name>.yaml`) or a roster file the operator
//! names by path. Parsing rejects unknown keys and accepts snake_case and
//! camelCase spellings; validation then applies the rules that make every
//! name safe at once as a tmux session, a systemd instance and a file name,
//! and every value safe to write into an env file. All violations are
//! reported together, each with file, line, field, rule and fix.

mod locate;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use validate::{name_problem, socket_problem, Violation};

use serde::Deserialize;

use crate::bundle::Bundle;

/// The runtimes Mosaic can launch.
pub const RUNTIMES: [&str; 4] = ["claude", "codex", "opencode", "pi"];
/// Socket name used when the roster names none.
pub const DEFAULT_SOCKET: &str = "mosaic-fleet";
/// Holder session used when the roster names none.
pub const DEFAULT_HOLDER_SESSION: &str = "_holder";
/// Working directory used when neither the agent nor the defaults name one.
pub const DEFAULT_WORKDIR: &str = "~/src";
const MAX_NAME_LEN: usize = 64;

/// The roster exactly as the YAML says (after alias folding).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    pub version: u64,
    pub transport: String,
    #[serde(default)]
    pub tmux: TmuxSettings,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub runtimes: BTreeMap<String, RuntimeSettings>,
    pub agents: Vec<Agent>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmuxSettings {
    #[serde(default, alias = "socketName")]
    pub socket_name: Option<String>,
    #[serde(default, alias = "holderSession")]
    pub holder_session: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, alias = "workingDirectory")]
    pub working_directory: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    #[serde(default, alias = "resetCommand")]
    pub reset_command: Option<String>,
    /// A regular expression that matches the agent's screen once it can
    /// take input (our addition; `agent send` waits for it).
    #[serde(default, alias = "readyPattern")]
    pub ready_pattern: Option<String>,
    /// How the runtime's program takes a message (our addition).
    #[serde(default)]
    pub input: Option<InputMode>,
}

/// How a runtime's program takes input: `paste`, an interactive program
/// that asks the terminal for bracketed paste and submits its whole input
/// box on Enter (every Mosaic runtime); or `lines`, a plain line reader on a
/// line-mode terminal (one line per Enter, at most [`TERMINAL_LINE_MAX`]
/// bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    #[default]
    Paste,
    Lines,
}

/// The longest line a line-mode terminal passes on (Linux's canonical
/// input buffer is 4096 bytes, the newline included); the rest is dropped.
pub const TERMINAL_LINE_MAX: usize = 4095;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub name: String,
    pub runtime: String,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub ssh: Option<String>,
    #[serde(default)]
    pub socket: Option<String>,
    #[serde(default, alias = "modelHint")]
    pub model_hint: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub yolo: Option<bool>,
    #[serde(default, alias = "workingDirectory")]
    pub working_directory: Option<String>,
}

impl Roster {
    /// The tmux socket of the holder server.
    pub fn socket(&self) -> &str {
        self.tmux.socket_name.as_deref().unwrap_or(DEFAULT_SOCKET)
    }

    /// The session that keeps the holder server alive.
    pub fn holder_session(&self) -> &str {
        self.tmux
            .holder_session
            .as_deref()
            .unwrap_or(DEFAULT_HOLDER_SESSION)
    }

    /// The settings of `runtime` (empty when the roster names none).
    pub fn runtime(&self, runtime: &str) -> RuntimeSettings {
        self.runtimes.get(runtime).cloned().unwrap_or_default()
    }

    /// Agents that run on this machine (no `host`, or `localhost`/`local`).
    pub fn local_agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.iter().filter(|agent| agent.is_local())
    }
}

impl Agent {
    pub fn is_local(&self) -> bool {
        matches!(self.host.as_deref(), None | Some("localhost" | "local"))
    }
}

/// A validated roster plus where it came from and its exact bytes (the
/// installed `roster.yaml` is the profile's own text, comments included).
#[derive(Debug, Clone)]
pub struct Profile {
    /// Embedded profile name, or the file stem of a roster file.
    pub name: String,
    /// Where the text came from, for error messages and the receipt.
    pub origin: String,
    pub text: String,
    pub roster: Roster,
}

impl Profile {
    /// Resolve `--profile`: a path (contains `/` or ends in `.yaml`/`.yml`)
    /// is read from disk; anything else names an embedded profile.
    pub fn resolve(spec: &str, bundle: &Bundle) -> Result<Profile, ProfileError> {
        let looks_like_path =
            spec.contains('/') || spec.ends_with(".yaml") || spec.ends_with(".yml");
        if looks_like_path {
            let path = PathBuf::from(spec);
            let text = std::fs::read(&path)
                .map_err(|cause| ProfileError::Read {
                    path: path.clone(),
                    cause,
                })
                .and_then(|bytes| {
                    String::from_utf8(bytes)
                        .map_err(|_| ProfileError::NotUtf8 { path: path.clone() })
                })?;
            let name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| spec.to_owned());
            return Profile::parse(&name, &path.display().to_string(), &text);
        }
        match bundle.profile_text(spec) {
            Some(text) => Profile::parse(spec, &format!("embedded profile `{spec}`"), text),
            None => Err(ProfileError::UnknownProfile {
                name: spec.to_owned(),
                known: bundle.profile_names().join(", "),
            }),
        }
    }

    /// Parse and validate roster text.
    pub fn parse(name: &str, origin: &str, text: &str) -> Result<Profile, ProfileError> {
        let roster: Roster = serde_yaml_ng::from_str(text).map_err(|err| {
            let (line, column) = err
                .location()
                .map(|loc| (loc.line(), loc.column()))
                .unwrap_or((0, 0));
            ProfileError::Syntax {
                origin: origin.to_owned(),
                line,
                column,
                message: err.to_string(),
            }
        })?;
        let violations = validate::validate(&roster, text);
        if !violations.is_empty() {
            return Err(ProfileError::Invalid {
                origin: origin.to_owned(),
                violations,
            });
        }
        Ok(Profile {
            name: name.to_owned(),
            origin: origin.to_owned(),
            text: text.to_owned(),
            roster,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile `{name}`: the embedded profiles are {known}; or pass the path of a roster file (for example --profile ./roster.yaml)")]
    UnknownProfile { name: String, known: String },
    #[error("cannot read profile {}: {cause}; check the path and its permissions", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("profile {} is not UTF-8 text; save it as UTF-8 YAML", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{origin}:{line}:{column}: not a valid roster: {message}\n    fix: correct the YAML at that position (see fleet/roster.schema.json for the allowed keys)")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {} problem(s):\n{}", violations.len(), render_violations(violations))]
    Invalid {
        origin: String,
        violations: Vec<Violation>,
    },
}

fn render_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one-line description of a profile: its first comment line.
pub fn description(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix('#'))
        .map(str::trim)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile, ProfileError> {
        Profile::parse("t", "t.yaml", text)
    }

    const BASE: &str = "version: 1\ntransport: tmux\nagents:\n  - name: a1\n    runtime: claude\n";

    #[test]
    fn minimal_roster_gets_defaults() {
        let profile = parse(BASE).unwrap();
        assert_eq!(profile.roster.socket(), "mosaic-fleet");
        assert_eq!(profile.roster.holder_session(), "_holder");
        assert_eq!(profile.roster.agents[0].name, "a1");
    }

    #[test]
    fn camel_case_keys_are_accepted() {
        let text = "version: 1\ntransport: tmux\ntmux:\n  socketName: s1\n  holderSession: h\n\
                    defaults:\n  workingDirectory: /w\nruntimes:\n  codex:\n    resetCommand: /new\n\
                    agents:\n  - name: a\n    runtime: codex\n    modelHint: m\n    workingDirectory: ~/x\n";
        let roster = parse(text).unwrap().roster;
        assert_eq!(roster.socket(), "s1");
        assert_eq!(roster.holder_session(), "h");
        assert_eq!(roster.agents[0].model_hint.as_deref(), Some("m"));
        assert_eq!(roster.agents[0].working_directory.as_deref(), Some("~/x"));
        assert_eq!(
            roster.runtimes["codex"].reset_command.as_deref(),
            Some("/new")
        );
    }

    #[test]
    fn runtimes_say_how_they_take_input_and_when_they_are_ready() {
        let text =
            "version: 1\ntransport: tmux\nruntimes:\n  claude:\n    readyPattern: '(?m)^> '\n\
                    \n  codex:\n    input: lines\nagents:\n  - name: a\n    runtime: codex\n";
        let roster = parse(text).unwrap().roster;
        assert_eq!(
            roster.runtime("claude").ready_pattern.as_deref(),
            Some("(?m)^> ")
        );
        assert_eq!(roster.runtime("claude").input, None);
        assert_eq!(roster.runtime("codex").input, Some(InputMode::Lines));
        assert_eq!(
            roster.runtime("pi").input.unwrap_or_default(),
            InputMode::Paste
        );
        let bad = text.replace("(?m)^> ", "(?m)^(> ");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(
            err.contains(
                "line 5: runtimes.claude.ready_pattern: is not a valid regular expression"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let err = parse("version: 1\ntransport: tmux\nagents:\n  - name: a\n    runtme: claude\n")
            .unwrap_err();
        let ProfileError::Syntax { line, column, .. } = &err else {
            panic!("expected a syntax error, got {err}");
        };
        assert_eq!((*line, *column), (5, 5));
        assert!(err.to_string().contains("unknown field `runtme`"), "{err}");
    }

    #[test]
    fn dotted_name_explains_tmux_renaming() {
        let err = parse(&BASE.replace("a1", "a.b")).unwrap_err().to_string();
        assert!(err.contains("agents[0].name"), "{err}");
        assert!(
            err.contains("renames a session called `a.b` to `a_b`"),
            "{err}"
        );
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn every_bad_name_is_rejected() {
        let long = "x".repeat(65);
        for bad in ["a:b", "a/b", "a b", "-a", "\"\"", "é", long.as_str()] {
            let text = BASE.replace("a1", bad);
            assert!(parse(&text).is_err(), "{bad} was accepted");
        }
        assert!(parse(&BASE.replace("a1", &"x".repeat(64))).is_ok());
    }

    #[test]
    fn all_violations_are_reported_together() {
        let text = "version: 2\ntransport: matrix\ntmux:\n  socket_name: a/b\nagents:\n\
                    - {name: x, runtime: claude}\n- {name: x, runtime: gpt}\n";
        let ProfileError::Invalid { violations, .. } = parse(text).unwrap_err() else {
            panic!("expected violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "version",
                "transport",
                "tmux.socket_name",
                "agents[1].name",
                "agents[1].runtime"
            ]
        );
    }

    #[test]
    fn command_with_newline_is_rejected() {
        let text = format!("{BASE}    command: \"echo a\\nrm -rf /\"\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("agents[0].command: contains a newline"),
            "{err}"
        );
    }

    #[test]
    fn workdir_must_be_absolute_or_home_relative() {
        let bad = format!("{BASE}    working_directory: src\n");
        assert!(parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("neither absolute"));
        let good = format!("{BASE}    working_directory: ~/src/x\n");
        assert!(parse(&good).is_ok());
    }

    #[test]
    fn description_is_first_comment() {
        assert_eq!(description("# One canary.\nversion: 1\n"), "One canary.");
        assert_eq!(description("version: 1\n"), "");
    }
}
