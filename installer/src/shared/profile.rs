//! Profiles: Mosaic fleet rosters (YAML, version 1) and their validation.
//!
//! A profile is either one of the rosters embedded in the bundle
//! (`framework/fleet/examples/<name>.yaml`) or a roster file the operator
//! names by path. Parsing rejects unknown keys and accepts snake_case and
//! camelCase spellings; validation then applies the rules that make every
//! name safe at once as a tmux session, a systemd instance and a file name,
//! and every value safe to write into an env file. All violations are
//! reported together, each with file, line, field, rule and fix.

mod label;
mod locate;
mod tags;
mod validate;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub(crate) use label::ProfileLabel;
pub(crate) use validate::{name_problem, Violation};

use serde::Deserialize;

use crate::shared::bundle::Bundle;

/// The runtimes Mosaic can launch.
pub(crate) const RUNTIMES: [&str; 4] = ["claude", "codex", "opencode", "pi"];
/// Socket name used when the roster names none.
pub(crate) const DEFAULT_SOCKET: &str = "mosaic-fleet";
/// Holder session used when the roster names none.
pub(crate) const DEFAULT_HOLDER_SESSION: &str = "_holder";
/// Working directory used when neither the agent nor the defaults name one.
pub(crate) const DEFAULT_WORKDIR: &str = "~/src";
const MAX_NAME_LEN: usize = 64;
/// A roster file larger than this is refused before it is parsed (1 MiB).
pub(crate) const MAX_ROSTER_BYTES: usize = 1 << 20;
/// Longest value one roster field may hold (4 KiB).
pub(crate) const MAX_FIELD_BYTES: usize = 4 << 10;
/// The UTF-8 byte-order mark some editors write at the start of a file.
const BOM: char = '\u{feff}';

/// The roster exactly as the YAML says (after alias folding).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Roster {
    pub(crate) version: u64,
    pub(crate) transport: String,
    #[serde(default)]
    pub(crate) tmux: TmuxSettings,
    #[serde(default)]
    pub(crate) defaults: Defaults,
    #[serde(default)]
    pub(crate) runtimes: BTreeMap<String, RuntimeSettings>,
    pub(crate) agents: Vec<Agent>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TmuxSettings {
    #[serde(default, alias = "socketName")]
    pub(crate) socket_name: Option<String>,
    #[serde(default, alias = "holderSession")]
    pub(crate) holder_session: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Defaults {
    #[serde(default, alias = "workingDirectory")]
    pub(crate) working_directory: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuntimeSettings {
    #[serde(default, alias = "resetCommand")]
    pub(crate) reset_command: Option<String>,
    /// A regular expression that matches the agent's screen once it can
    /// take input (our addition; `agent send` waits for it).
    #[serde(default, alias = "readyPattern")]
    pub(crate) ready_pattern: Option<String>,
    /// How the runtime's program takes a message (our addition).
    #[serde(default)]
    pub(crate) input: Option<InputMode>,
}

/// How a runtime's program takes input: `paste`, an interactive program
/// that asks the terminal for bracketed paste and submits its whole input
/// box on Enter (every Mosaic runtime); or `lines`, a plain line reader on a
/// line-mode terminal (one line per Enter, at most [`TERMINAL_LINE_MAX`]
/// bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum InputMode {
    #[default]
    Paste,
    Lines,
}

/// The longest line a line-mode terminal passes on (Linux's canonical
/// input buffer is 4096 bytes, the newline included); the rest is dropped.
pub(crate) const TERMINAL_LINE_MAX: usize = 4095;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Agent {
    pub(crate) name: String,
    pub(crate) runtime: String,
    #[serde(default)]
    pub(crate) class: Option<String>,
    #[serde(default)]
    pub(crate) host: Option<String>,
    #[serde(default)]
    pub(crate) ssh: Option<String>,
    #[serde(default)]
    pub(crate) socket: Option<String>,
    #[serde(default, alias = "modelHint")]
    pub(crate) model_hint: Option<String>,
    #[serde(default)]
    pub(crate) command: Option<String>,
    #[serde(default)]
    pub(crate) yolo: Option<bool>,
    #[serde(default, alias = "workingDirectory")]
    pub(crate) working_directory: Option<String>,
}

impl Roster {
    /// The tmux socket of the holder server.
    pub(crate) fn socket(&self) -> &str {
        self.tmux.socket_name.as_deref().unwrap_or(DEFAULT_SOCKET)
    }

    /// The session that keeps the holder server alive.
    pub(crate) fn holder_session(&self) -> &str {
        self.tmux
            .holder_session
            .as_deref()
            .unwrap_or(DEFAULT_HOLDER_SESSION)
    }

    /// The settings of `runtime` (empty when the roster names none).
    pub(crate) fn runtime(&self, runtime: &str) -> RuntimeSettings {
        self.runtimes.get(runtime).cloned().unwrap_or_default()
    }
}

impl Agent {
    /// Whether this agent runs on `host` (see [`crate::shared::host::runs_on`]).
    pub(crate) fn runs_on(&self, host: &str) -> bool {
        crate::shared::host::runs_on(self.host.as_deref(), host)
    }
}

/// A validated roster plus where it came from and its exact bytes (the
/// installed `roster.yaml` is the profile's own text, comments included).
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// Embedded profile name, or the file stem of a roster file.
    pub(crate) name: ProfileLabel,
    /// Where the text came from, for error messages and the receipt.
    pub(crate) origin: String,
    pub(crate) text: String,
    pub(crate) roster: Roster,
    /// The host this profile is installed on: its agents are the roster's
    /// agents whose `host:` names it ([`Profile::on_host`]; default: this
    /// machine's hostname).
    pub(crate) host: String,
}

impl Profile {
    /// Resolve `--profile`: a path (contains `/` or ends in `.yaml`/`.yml`)
    /// is read from disk; anything else names an embedded profile.
    pub(crate) fn resolve(spec: &str, bundle: &Bundle) -> Result<Profile, ProfileError> {
        let looks_like_path =
            spec.contains('/') || spec.ends_with(".yaml") || spec.ends_with(".yml");
        if looks_like_path {
            let path = PathBuf::from(spec);
            let text = read_roster(&path)?;
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

    /// Parse and validate roster text. A leading byte-order mark is read
    /// past (and kept in `text`, which is installed byte for byte).
    pub(crate) fn parse(name: &str, origin: &str, text: &str) -> Result<Profile, ProfileError> {
        let name = ProfileLabel::checked(name).map_err(|why| ProfileError::Label {
            origin: origin.to_owned(),
            name: name.to_owned(),
            why,
        })?;
        if text.len() > MAX_ROSTER_BYTES {
            return Err(ProfileError::TooLarge {
                origin: origin.to_owned(),
                size: text.len() as u64,
            });
        }
        let body = text.strip_prefix(BOM).unwrap_or(text);
        if let Some(found) = tags::first_tag(body) {
            return Err(ProfileError::Tag {
                origin: origin.to_owned(),
                line: found.line,
                column: found.column,
                tag: tags::as_written(&found.tag),
            });
        }
        let roster: Roster = serde_yaml_ng::from_str(body).map_err(|err| {
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
        let violations = validate::validate(&roster, body);
        if !violations.is_empty() {
            return Err(ProfileError::Invalid {
                origin: origin.to_owned(),
                violations,
            });
        }
        Ok(Profile {
            name,
            origin: origin.to_owned(),
            text: text.to_owned(),
            roster,
            host: crate::shared::host::machine(),
        })
    }

    /// The agents that run on [`Profile::host`], in roster order.
    pub(crate) fn local_agents(&self) -> impl Iterator<Item = &Agent> {
        self.roster
            .agents
            .iter()
            .filter(|agent| agent.runs_on(&self.host))
    }

    /// This profile as installed on `host`. A roster that assigns every
    /// agent to other hosts is refused: installing it would install no agent
    /// here, which is a wrong `--host` far more often than a wish.
    pub(crate) fn on_host(mut self, host: &str) -> Result<Profile, ProfileError> {
        if let Some(problem) = crate::shared::host::name_problem(host) {
            return Err(ProfileError::BadHost {
                host: host.to_owned(),
                problem,
            });
        }
        self.host = host.to_owned();
        if self.local_agents().next().is_none() {
            let mut hosts: Vec<String> = Vec::new();
            for name in self.roster.agents.iter().filter_map(|a| a.host.clone()) {
                if !hosts.contains(&name) {
                    hosts.push(name);
                }
            }
            return Err(ProfileError::NoAgentsHere {
                origin: self.origin,
                host: self.host,
                hosts: hosts.join(", "),
            });
        }
        Ok(self)
    }
}

/// Where the roster in effect is installed, config-relative: the single
/// source of truth for the env files, the units and the sessions.
pub(crate) const ROSTER_PATH: &str = "mosaic/fleet/roster.yaml";

impl Profile {
    /// The installed roster ([`ROSTER_PATH`] under `layout`), validated and
    /// seen from `host`; None when none is installed.
    pub(crate) fn installed(
        layout: &crate::shared::layout::Layout,
        host: &str,
    ) -> Result<Option<Profile>, ProfileError> {
        let path = layout.target(Path::new(ROSTER_PATH));
        if !path.is_file() {
            return Ok(None);
        }
        let origin = path.display().to_string();
        let text = read_roster(&path)?;
        let mut profile = Profile::parse("installed", &origin, &text)?;
        profile.host = host.to_owned();
        Ok(Some(profile))
    }
}

/// Read a roster file, refusing one over [`MAX_ROSTER_BYTES`] without
/// reading more than that.
pub(crate) fn read_roster(path: &Path) -> Result<String, ProfileError> {
    let read_error = |cause| ProfileError::Read {
        path: path.to_path_buf(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let on_disk = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::new();
    file.take(MAX_ROSTER_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_ROSTER_BYTES {
        return Err(ProfileError::TooLarge {
            origin: path.display().to_string(),
            size: on_disk.max(bytes.len() as u64),
        });
    }
    String::from_utf8(bytes).map_err(|_| ProfileError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Every profile error is bad input: the operator's to fix.
impl crate::shared::command::ExitStatus for ProfileError {
    fn exit_code(&self) -> u8 {
        2
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    #[error("unknown profile `{name}`: the embedded profiles are {known}; or pass the path of a roster file (for example --profile ./roster.yaml)")]
    UnknownProfile { name: String, known: String },
    #[error("cannot read profile {}: {cause}; check the path and its permissions", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("profile {} is not UTF-8 text; save it as UTF-8 YAML", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{origin:?}: the profile name {name:?} contains {why}; a roster's file name (without .yaml) is the profile's label, written into the units' header comment\n    fix: rename the file to plain text, such as fleet.yaml, and pass that")]
    Label {
        origin: String,
        name: String,
        why: String,
    },
    #[error("{origin} is {size} bytes; a roster may be at most {MAX_ROSTER_BYTES} bytes (1 MiB)\n    fix: a roster lists agents and takes a few kilobytes: check that this is the right file")]
    TooLarge { origin: String, size: u64 },
    #[error("{origin}:{line}:{column}: the YAML tag `{tag}` is not allowed: a roster is plain data, and the loader would silently drop the tag\n    fix: remove the tag and write the value itself (quote a value that starts with `!`)")]
    Tag {
        origin: String,
        line: usize,
        column: usize,
        tag: String,
    },
    #[error("{origin}:{line}:{column}: not a valid roster: {message}\n    fix: correct the YAML at that position (see fleet/roster.schema.json for the allowed keys)")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "invalid --host `{host}`: it {problem}; give the host name the roster's `host:` fields use"
    )]
    BadHost { host: String, problem: &'static str },
    #[error("{origin}: no agent runs on host `{host}`: the roster puts its agents on {hosts}\n    fix: pass --host with one of those names (the default is the host of the last install here, else this machine's hostname), or give agents `host: {host}`")]
    NoAgentsHere {
        origin: String,
        host: String,
        hosts: String,
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
pub(crate) fn description(text: &str) -> &str {
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
                "line 5: runtimes.claude.ready_pattern: `(?m)^(> ` is not a valid regular expression: unclosed group"
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
    fn default_and_empty_sockets_are_refused_with_why() {
        let holder = BASE.replace("agents:", "tmux:\n  socket_name: default\nagents:");
        let err = parse(&holder).unwrap_err().to_string();
        assert!(
            err.contains("line 4: tmux.socket_name: is `default`"),
            "{err}"
        );
        assert!(err.contains("tmux -L default kill-server"), "{err}");
        let agent = format!("{BASE}    socket: default\n");
        let err = parse(&agent).unwrap_err().to_string();
        assert!(err.contains("agents[0].socket: is `default`"), "{err}");
        let empty = BASE.replace("agents:", "tmux:\n  socket_name: ''\nagents:");
        let err = parse(&empty).unwrap_err().to_string();
        assert!(err.contains("tmux.socket_name: is empty"), "{err}");
        for fine in ["Default", "default2", "mosaic-default"] {
            let text = BASE.replace("agents:", &format!("tmux:\n  socket_name: {fine}\nagents:"));
            assert!(parse(&text).is_ok(), "{fine} was refused");
        }
    }

    #[test]
    fn a_byte_order_mark_is_read_past_and_kept() {
        let text = format!("\u{feff}{BASE}");
        let profile = parse(&text).unwrap();
        assert_eq!(profile.roster.agents[0].name, "a1");
        assert_eq!(profile.text, text, "the installed roster keeps its bytes");
        let bad = format!("\u{feff}{}", BASE.replace("a1", "a.b"));
        assert!(parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("line 4: agents[0].name"));
    }

    #[test]
    fn yaml_tags_are_refused_at_their_position() {
        let text = format!("{BASE}    command: !include cmd.txt\n");
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(
                err,
                ProfileError::Tag {
                    line: 6,
                    column: 14,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("t.yaml:6:14: the YAML tag `!include` is not allowed"),
            "{message}"
        );
        let binary = format!("{BASE}    model_hint: !!binary aGk=\n");
        assert!(parse(&binary)
            .unwrap_err()
            .to_string()
            .contains("`!!binary`"));
    }

    #[test]
    fn a_field_over_4_kib_is_refused_with_its_size_and_the_limit() {
        let at_limit = format!("{BASE}    command: {}\n", "x".repeat(MAX_FIELD_BYTES));
        assert!(parse(&at_limit).is_ok());
        let over = format!("{BASE}    command: {}\n", "x".repeat(MAX_FIELD_BYTES + 1));
        let err = parse(&over).unwrap_err().to_string();
        assert!(
            err.contains("line 6: agents[0].command: is 4097 bytes long; a roster field may be at most 4096 bytes (4 KiB)"),
            "{err}"
        );
        let runtime = BASE.replace("claude", &"r".repeat(MAX_FIELD_BYTES * 2));
        let err = parse(&runtime).unwrap_err().to_string();
        assert!(
            err.len() < 1000,
            "the message quotes a long value whole: {} bytes",
            err.len()
        );
    }

    #[test]
    fn roster_text_over_1_mib_is_refused_before_parsing() {
        let text = format!("{BASE}# {}\n", "x".repeat(MAX_ROSTER_BYTES));
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "t.yaml is {} bytes; a roster may be at most 1048576 bytes (1 MiB)",
                text.len()
            )),
            "{err}"
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

    const HOSTS: &str = "version: 1\ntransport: tmux\nagents:\n  - {name: a, runtime: claude, host: box1}\n  - {name: b, runtime: claude, host: box2.example.com}\n  - {name: c, runtime: claude, host: box1}\n";

    fn names_on(host: &str) -> Vec<String> {
        let profile = parse(HOSTS).unwrap().on_host(host).unwrap();
        profile.local_agents().map(|a| a.name.clone()).collect()
    }

    #[test]
    fn on_host_keeps_that_hosts_agents() {
        assert_eq!(names_on("box1"), ["a", "c"]);
        assert_eq!(names_on("BOX2"), ["b"]);
        let with_local = HOSTS.replace("host: box1}", "host: localhost}");
        let profile = parse(&with_local).unwrap().on_host("box2").unwrap();
        assert_eq!(profile.local_agents().count(), 3);
    }

    #[test]
    fn no_agent_on_this_host_names_the_hosts() {
        let err = parse(HOSTS).unwrap().on_host("box3").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ProfileError::NoAgentsHere { .. }), "{text}");
        assert!(
            text.contains("no agent runs on host `box3`: the roster puts its agents on box1, box2.example.com"),
            "{text}"
        );
        assert!(text.contains("pass --host"), "{text}");
        assert!(parse(HOSTS).unwrap().on_host("-x").is_err());
    }

    #[test]
    fn description_is_first_comment() {
        assert_eq!(description("# One canary.\nversion: 1\n"), "One canary.");
        assert_eq!(description("version: 1\n"), "");
    }
}

#[cfg(test)]
mod schema_tests;
