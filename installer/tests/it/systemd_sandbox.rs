//! `cargo xtask sandbox` against the real systemd user manager: units from
//! the sandbox's HOME start and report active, `EnvironmentFile=` hands the
//! installer's quoted values over byte for byte (as bash reads them too),
//! and nothing started inside outlives the sandbox or touches the host's
//! cgroups. Root only: skipped with a reason otherwise, failing under CI=true.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mosaic_tests::{env_file_values, fixtures_dir, TempHome};

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join("systemd_sandbox").join(name)
}

fn install(home: &Path, fixture_name: &str, relative: &str) {
    let target = home.join(relative);
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(fixture(fixture_name), &target).unwrap();
}

fn install_unit(home: &Path, unit: &str) {
    install(home, unit, &format!(".config/systemd/user/{unit}"));
}

/// `cargo xtask sandbox --home HOME -- bash SCRIPT ARGS...`
fn sandbox(home: &Path, script: &str, args: &[&str]) -> Output {
    Command::new(mosaic_tests::xtask())
        .arg("sandbox")
        .arg("--home")
        .arg(home)
        .arg("--")
        .arg("bash")
        .arg(fixture(script))
        .args(args)
        .output()
        .expect("run xtask sandbox")
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "xtask sandbox failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_user_unit_from_the_sandbox_home_starts_and_reports_active() {
    if !mosaic_tests::sandbox::systemd_sandbox_available() {
        return;
    }
    let home = TempHome::new();
    install_unit(home.path(), "mosaic-probe.service");

    let output = sandbox(home.path(), "start-units.sh", &["mosaic-probe.service"]);

    assert_success(&output);
    let show = fs::read_to_string(home.path().join("mosaic-probe.service.show")).unwrap();
    assert_eq!(show, "ActiveState=active\nSubState=running\n");
    assert!(
        home.path().join("probe-started").is_file(),
        "the unit ran with the sandbox HOME as %h"
    );
}

#[test]
fn environment_file_values_reach_the_service_as_written_and_bash_agrees() {
    let expected: BTreeMap<String, String> =
        serde_json::from_str(&fs::read_to_string(fixture("expected-values.json")).unwrap())
            .unwrap();
    assert_bash_reads_back(&expected);
    if !mosaic_tests::sandbox::systemd_sandbox_available() {
        return;
    }
    let home = TempHome::new();
    install_unit(home.path(), "mosaic-envdump.service");
    install(home.path(), "tricky.env", "tricky.env");

    let output = sandbox(home.path(), "start-units.sh", &["mosaic-envdump.service"]);

    assert_success(&output);
    let dump = fs::read(home.path().join("systemd-env.bin")).unwrap();
    let seen: BTreeMap<&[u8], &[u8]> = dump
        .split(|byte| *byte == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let split = entry.iter().position(|byte| *byte == b'=')?;
            Some((&entry[..split], &entry[split + 1..]))
        })
        .collect();
    for (key, value) in &expected {
        let got = seen.get(key.as_bytes()).map(|v| String::from_utf8_lossy(v));
        assert_eq!(
            got.as_deref(),
            Some(value.as_str()),
            "systemd handed over {key} differently"
        );
    }
}

/// `set -a; source FILE` gives back every original value.
fn assert_bash_reads_back(expected: &BTreeMap<String, String>) {
    let read = env_file_values(&fixture("tricky.env"));
    for (key, value) in expected {
        assert_eq!(read.get(key), Some(value), "bash read {key} differently");
    }
}

#[test]
fn nothing_started_inside_outlives_the_sandbox_or_moves_host_processes() {
    if !mosaic_tests::sandbox::systemd_sandbox_available() {
        return;
    }
    let home = TempHome::new();
    install_unit(home.path(), "mosaic-probe.service");
    let socket = format!("mosaic-sandbox-test-{}", std::process::id());
    let init_cgroups = fs::read_to_string("/proc/1/cgroup").unwrap();
    let own_cgroups = fs::read_to_string("/proc/self/cgroup").unwrap();

    let output = sandbox(home.path(), "leave-things-running.sh", &[&socket]);

    assert_eq!(
        output.status.code(),
        Some(42),
        "the command's exit status comes back:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let created: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("sandbox: created cgroup "))
        .collect();
    assert_eq!(
        created.len(),
        6,
        "one child cgroup per hierarchy:\n{stderr}"
    );
    for cgroup in created {
        assert!(!Path::new(cgroup).exists(), "{cgroup} was left behind");
    }
    let home_entry = format!("HOME={}", home.path().display());
    assert_eq!(processes_with_env(&home_entry), Vec::<String>::new());
    assert_eq!(processes_with_cmdline(&socket), Vec::<String>::new());
    let tmux_tmpdir = fs::read_to_string(home.path().join("tmux-tmpdir")).unwrap();
    assert!(
        !Path::new(&tmux_tmpdir).exists(),
        "{tmux_tmpdir} was left behind"
    );
    assert_eq!(fs::read_to_string("/proc/1/cgroup").unwrap(), init_cgroups);
    assert_eq!(
        fs::read_to_string("/proc/self/cgroup").unwrap(),
        own_cgroups
    );
}

/// Command lines of live processes whose environment holds `entry` exactly.
fn processes_with_env(entry: &str) -> Vec<String> {
    live_processes(|pid| {
        fs::read(Path::new("/proc").join(pid).join("environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
    })
}

/// Command lines of live processes that mention `needle`.
fn processes_with_cmdline(needle: &str) -> Vec<String> {
    live_processes(|pid| cmdline(pid).contains(needle))
}

fn live_processes(matches: impl Fn(&OsStr) -> bool) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| matches(pid))
        .map(|pid| cmdline(&pid))
        .collect()
}

fn cmdline(pid: &OsStr) -> String {
    let path = Path::new("/proc").join(pid).join("cmdline");
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).replace('\0', " ")
}
