//! The installed units through the real `systemd-analyze --user verify`, and
//! the tricky env values read back through the real bash.
//!
//! verify runs with `HOME` = the temp home (so `%h` names it) and its own
//! `XDG_RUNTIME_DIR`; it loads unit files and checks them, it never starts a
//! service manager. The template is verified as concrete instances.

use crate::support::mosaic_install;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mosaic_tests::{fixtures_dir, require_tool, TempHome, TmuxWorld};
use serde_json::Value;

const HOLDER: &str = "mosaic-tmux-holder.service";
const TEMPLATE: &str = "mosaic-agent@.service";

/// Install `profile` into `home` (with `env` added), asserting success.
fn install(home: &Path, world: &TmuxWorld, profile: &str, env: &[(&str, &Path)]) {
    let mut cmd = mosaic_install(home, world);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.args(["--profile", profile]).output().unwrap();
    assert!(out.status.success(), "install {profile} failed: {out:?}");
}

/// `systemd-analyze --user verify` of the holder and of the template as
/// each agent's instance; every line of output that mentions a unit.
fn verify_units(
    home: &Path,
    unit_dir: &Path,
    agents: &[&str],
    env: &[(&str, &Path)],
) -> Vec<String> {
    let runtime = tempfile::tempdir().unwrap();
    let instances = tempfile::tempdir().unwrap();
    let mut units = vec![unit_dir.join(HOLDER)];
    for agent in agents {
        // A symlink named like the instance makes verify load the template as it.
        let instance = instances
            .path()
            .join(format!("mosaic-agent@{agent}.service"));
        std::os::unix::fs::symlink(unit_dir.join(TEMPLATE), &instance).unwrap();
        units.push(instance);
    }
    let mut problems = Vec::new();
    for unit in units {
        let mut cmd = Command::new("systemd-analyze");
        cmd.env("HOME", home)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("SYSTEMD_LOG_LEVEL")
            .env_remove("XDG_CONFIG_HOME");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let out = cmd.args(["--user", "verify"]).arg(&unit).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let name = unit.file_name().unwrap().to_string_lossy().into_owned();
        if !out.status.success() {
            problems.push(format!("{name}: exit {:?}", out.status.code()));
        }
        problems.extend(
            text.lines()
                .filter(|line| line.contains("mosaic"))
                .map(|line| format!("{name}: {line}")),
        );
    }
    problems
}

fn roster_agents(roster: &Path) -> Vec<String> {
    let value: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(roster).unwrap()).unwrap();
    value["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

fn verify_profile(profile: &str, roster: &Path) {
    if !require_tool("systemd-analyze", "verifies the rendered units") {
        return;
    }
    let world = TmuxWorld::new();
    let home = TempHome::new();
    install(home.path(), &world, profile, &[]);
    let agents = roster_agents(roster);
    let agents: Vec<&str> = agents.iter().map(String::as_str).collect();
    let unit_dir = home.path().join(".config/systemd/user");
    let problems = verify_units(home.path(), &unit_dir, &agents, &[]);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn usc_units_pass_verify_without_warnings() {
    let roster = mosaic_tests::templates_dir().join("framework/fleet/examples/usc.yaml");
    verify_profile("usc", &roster);
}

#[test]
fn tricky_units_pass_verify_without_warnings() {
    let roster = fixtures_dir().join("profiles/tricky.yaml");
    verify_profile(roster.to_str().unwrap(), &roster);
}

/// With the config dir moved by `XDG_CONFIG_HOME`, the units name it by its
/// absolute path: one with a space or `%` cannot be written into a unit
/// safely, so the install is refused (exit 2, the dir and the character
/// named) before anything is written; a plain moved dir gives units that
/// verify.
#[test]
fn units_under_a_moved_config_dir_verify_or_are_refused() {
    if !require_tool("systemd-analyze", "verifies the rendered units") {
        return;
    }
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let config = home.path().join("my config 100%");
    let mut cmd = mosaic_install(home.path(), &world);
    let out = cmd
        .env("XDG_CONFIG_HOME", &config)
        .args(["--profile", "minimal"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("my config 100%"), "{stderr}");
    assert!(stderr.contains("' '"), "{stderr}");
    assert!(!config.exists(), "nothing may be written");
    assert!(
        !home.path().join(".local").exists(),
        "no state may be written"
    );

    let plain = home.path().join("cfg");
    let env = [("XDG_CONFIG_HOME", plain.as_path())];
    install(home.path(), &world, "minimal", &env);
    let problems = verify_units(home.path(), &plain.join("systemd/user"), &["canary"], &env);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The values an agent's env file should hold, straight from the YAML.
fn expected_env(roster: &Value, agent: &Value) -> BTreeMap<&'static str, Option<String>> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let either = |v: &Value, snake: &str, camel: &str| text(&v[snake]).or_else(|| text(&v[camel]));
    let workdir = either(agent, "working_directory", "workingDirectory")
        .or_else(|| either(&roster["defaults"], "working_directory", "workingDirectory"))
        .unwrap_or_else(|| "~/src".into());
    let socket = text(&agent["socket"])
        .or_else(|| either(&roster["tmux"], "socket_name", "socketName"))
        .unwrap_or_else(|| "mosaic-fleet".into());
    BTreeMap::from([
        ("MOSAIC_AGENT_NAME", text(&agent["name"])),
        ("MOSAIC_AGENT_RUNTIME", text(&agent["runtime"])),
        (
            "MOSAIC_AGENT_MODEL",
            either(agent, "model_hint", "modelHint"),
        ),
        ("MOSAIC_AGENT_WORKDIR", Some(workdir)),
        ("MOSAIC_TMUX_SOCKET", Some(socket)),
        ("MOSAIC_AGENT_COMMAND", text(&agent["command"])),
    ])
}

/// Source `env_file` in a clean bash and print each variable (or its absence).
fn bash_reads(env_file: &Path, names: &[&str]) -> BTreeMap<String, Option<String>> {
    let script = r#"set -a; . "$1"; shift
        for name; do
            if [ -n "${!name+set}" ]; then printf 'set\0%s\0' "${!name}"; else printf 'unset\0\0'; fi
        done"#;
    let out = Command::new("bash")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["-c", script, "bash"])
        .arg(env_file)
        .args(names)
        .output()
        .unwrap();
    assert!(out.status.success(), "bash failed: {out:?}");
    let fields: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .map(str::to_owned)
        .collect();
    names
        .iter()
        .zip(fields.chunks(2))
        .map(|(name, pair)| {
            (
                name.to_string(),
                (pair[0] == "set").then(|| pair[1].clone()),
            )
        })
        .collect()
}

/// Words bash makes of a command line, without running it.
fn bash_words(command: &str) -> Vec<String> {
    let out = Command::new("bash")
        .env_clear()
        .args([
            "-c",
            r#"eval "set -- $1"; printf '%s\0' "$@""#,
            "bash",
            command,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "bash failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.strip_suffix('\0')
        .unwrap_or(&text)
        .split('\0')
        .map(str::to_owned)
        .collect()
}

#[test]
fn tricky_env_values_read_back_through_bash() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let roster_path = fixtures_dir().join("profiles/tricky.yaml");
    install(home.path(), &world, roster_path.to_str().unwrap(), &[]);
    let roster: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&roster_path).unwrap()).unwrap();
    let agents_dir: PathBuf = home.path().join(".config/mosaic/fleet/agents");
    for agent in roster["agents"].as_array().unwrap() {
        let name = agent["name"].as_str().unwrap();
        let mut expected = expected_env(&roster, agent);
        let names: Vec<&str> = expected.keys().copied().collect();
        let read = bash_reads(&agents_dir.join(format!("{name}.env")), &names);
        let plain_launch = agent["yolo"] == Value::Bool(false) && agent["command"].is_null();
        if plain_launch {
            // yolo: false without a command: `mosaic <runtime> --model <model>`.
            let command = read["MOSAIC_AGENT_COMMAND"]
                .clone()
                .expect("a launch command");
            let mut words = vec![
                "mosaic".to_owned(),
                agent["runtime"].as_str().unwrap().to_owned(),
            ];
            if let Some(model) = expected["MOSAIC_AGENT_MODEL"].clone() {
                words.extend(["--model".to_owned(), model]);
            }
            assert_eq!(bash_words(&command), words, "{name}: {command}");
            expected.insert("MOSAIC_AGENT_COMMAND", Some(command));
        }
        let read: BTreeMap<&str, Option<String>> =
            names.iter().map(|n| (*n, read[*n].clone())).collect();
        assert_eq!(read, expected, "{name}");
    }
}
