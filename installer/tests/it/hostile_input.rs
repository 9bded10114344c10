//! Input crafted to break out of where it is written or to exhaust the
//! machine (issue 9): a roster file name that would become unit directives,
//! the same label planted in an older receipt, `--bundle` templates that
//! would expand to gigabytes, and a roster with a byte-order mark, which is
//! no attack and must simply install.

use crate::support::mosaic_install;
use std::io::Read;
use std::mem::MaybeUninit;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use mosaic_tests::{bundle_copy, templates_dir, tree_listing, TempHome, TmuxWorld};
use serde_json::Value;

/// The tester's file name: each line after the first would be read by
/// systemd as a directive if the label were written unescaped.
const HOSTILE_STEM: &str = "fleet\n[Service]\nExecStartPre=touch PWNED\n#";
const UNITS: [&str; 2] = [
    ".config/systemd/user/mosaic-tmux-holder.service",
    ".config/systemd/user/mosaic-agent@.service",
];
const RECEIPT: &str = ".local/state/mosaic-install/receipt.json";

fn install(home: &TempHome, world: &TmuxWorld, args: &[&str]) -> Output {
    mosaic_install(home.path(), world)
        .arg("--home")
        .arg(home.path())
        .args(args)
        .output()
        .expect("run mosaic-install")
}

fn minimal_roster() -> String {
    std::fs::read_to_string(templates_dir().join("framework/fleet/examples/minimal.yaml")).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every line of every unit that mentions `PWNED`, unless it is a comment.
fn directives_from_the_label(home: &Path) -> Vec<String> {
    UNITS
        .iter()
        .flat_map(|unit| {
            let text = std::fs::read_to_string(home.join(unit)).unwrap();
            text.lines()
                .filter(|line| line.contains("PWNED") && !line.starts_with('#'))
                .map(|line| format!("{unit}: {line}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_roster_file_name_with_a_newline_is_refused_and_writes_nothing() {
    let world = TmuxWorld::new();
    let scratch = TempHome::new();
    let roster = scratch.path().join(format!("{HOSTILE_STEM}.yaml"));
    std::fs::write(&roster, minimal_roster()).unwrap();
    let home = TempHome::new();
    let out = install(&home, &world, &["--profile", roster.to_str().unwrap()]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains(
            r#"the profile name "fleet\n[Service]\nExecStartPre=touch PWNED\n#" contains a newline"#
        ),
        "the refusal does not name the label with its newline shown:\n{message}"
    );
    assert!(message.contains("fix: rename the file"), "{message}");
    assert!(
        !message.lines().any(|line| line.starts_with("ExecStartPre")),
        "the message itself breaks lines where the name does:\n{message}"
    );
    assert_eq!(tree_listing(home.path()), Vec::<String>::new());
}

#[test]
fn a_hostile_label_in_an_older_receipt_is_cleaned_not_carried_into_the_upgrade() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let out = install(&home, &world, &["--profile", "minimal"]);
    assert!(
        out.status.success(),
        "setup install failed: {}",
        stderr(&out)
    );
    // An older receipt carrying the label the file name would have given.
    let receipt_path = home.path().join(RECEIPT);
    let mut receipt: Value =
        serde_json::from_slice(&std::fs::read(&receipt_path).unwrap()).unwrap();
    receipt["profile"]["name"] = Value::from(HOSTILE_STEM);
    std::fs::write(&receipt_path, serde_json::to_vec_pretty(&receipt).unwrap()).unwrap();

    let out = install(&home, &world, &[]);
    assert!(out.status.success(), "upgrade failed: {}", stderr(&out));
    assert_eq!(directives_from_the_label(home.path()), Vec::<String>::new());
    let cleaned = "fleet?[Service]?ExecStartPre=touch PWNED?#";
    for unit in UNITS {
        let text = std::fs::read_to_string(home.path().join(unit)).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "# Managed by mosaic-install {} (profile {cleaned}); edits are kept,",
                env!("CARGO_PKG_VERSION")
            ),
            "{unit}"
        );
    }
    let receipt: Value = serde_json::from_slice(&std::fs::read(&receipt_path).unwrap()).unwrap();
    assert_eq!(
        receipt["profile"]["name"], cleaned,
        "the new receipt carries the label on"
    );

    let status = install(&home, &world, &["status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.starts_with(&format!("generation 2 (profile {cleaned}, ")),
        "{shown}"
    );
}

#[test]
fn a_roster_with_a_byte_order_mark_installs_and_keeps_its_bytes() {
    let world = TmuxWorld::new();
    let scratch = TempHome::new();
    let roster = scratch.path().join("bom.yaml");
    let bytes = format!("\u{feff}{}", minimal_roster());
    std::fs::write(&roster, &bytes).unwrap();
    let home = TempHome::new();
    let out = install(&home, &world, &["--profile", roster.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let installed = std::fs::read(home.path().join(".config/mosaic/fleet/roster.yaml")).unwrap();
    assert_eq!(installed, bytes.as_bytes());
    assert!(home
        .path()
        .join(".config/mosaic/fleet/agents/canary.env")
        .is_file());
    // And the installed roster, BOM and all, is read back by the next run.
    let again = install(&home, &world, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    let summary = String::from_utf8_lossy(&again.stdout);
    assert!(
        summary.contains("summary: 0 created, 0 updated,"),
        "the rerun changed files:\n{summary}"
    );
}

/// The address space a hostile-bundle run gets: should the limits regress,
/// the run dies on its own instead of taking the machine down with it.
const ADDRESS_SPACE: libc::rlim_t = 1 << 30;

/// What a bounded run of the installer did.
struct Bounded {
    code: Option<i32>,
    stderr: String,
    peak_rss_kib: i64,
}

/// Run `cmd` under [`ADDRESS_SPACE`]; its exit code, stderr and peak
/// resident memory (from the kernel's own account, wait4).
fn run_bounded(mut cmd: Command) -> Bounded {
    // SAFETY: only async-signal-safe setrlimit runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Reaped by wait4 below, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mosaic-install");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let mut status = 0;
    let mut usage = MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: waits for our own child; both out-pointers are valid.
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, usage.as_mut_ptr()) };
    assert_eq!(reaped, child.id() as i32, "wait4 failed");
    // SAFETY: wait4 succeeded, so it filled in the usage.
    let usage = unsafe { usage.assume_init() };
    Bounded {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr,
        peak_rss_kib: usage.ru_maxrss,
    }
}

/// Templates that would expand to gigabytes, each with what the refusal
/// must say. Put in place of the holder unit's template.
fn expansions() -> [(&'static str, String, &'static str); 3] {
    let loops = "{% set s = '0123456789' %}".to_owned()
        + &"{% for x in s %}".repeat(10)
        + "ExecStartPre=/bin/true {{ socket }} {{ holder_session }}\n"
        + &"{% endfor %}".repeat(10);
    let doubling =
        "# holder\n{% set s = socket %}\n".to_owned() + &"{% set s = s ~ s %}".repeat(40);
    let folded = "{{ 'x' * 99999999 }}".repeat(1000);
    [
        (
            "ten nested loops over ten characters: 10^10 lines of 60 bytes",
            loops,
            "renders to more than 1048576 bytes (1 MiB), the limit for one rendered file",
        ),
        (
            "a string doubled forty times",
            doubling,
            "line 3: uses `~` (string concatenation), which a bundle template may not",
        ),
        (
            "a thousand 100 MB constants, folded while compiling",
            folded,
            "line 1: uses arithmetic (+ * / // % **), which a bundle template may not",
        ),
    ]
}

#[test]
fn bundle_templates_that_would_expand_to_gigabytes_fail_fast_in_little_memory() {
    let world = TmuxWorld::new();
    for (what, template, says) in expansions() {
        let bundle = bundle_copy("9.9.9");
        let holder = bundle
            .path()
            .join("systemd/user/mosaic-tmux-holder.service.j2");
        std::fs::write(&holder, template).unwrap();
        let home = TempHome::new();
        let mut cmd = mosaic_install(home.path(), &world);
        cmd.arg("--home")
            .arg(home.path())
            .arg("--bundle")
            .arg(bundle.path())
            .args(["--profile", "minimal"]);
        let started = Instant::now();
        let run = run_bounded(cmd);
        let took = started.elapsed();
        eprintln!(
            "{what}: exit {:?} after {took:?}, peak RSS {} KiB",
            run.code, run.peak_rss_kib
        );
        assert_eq!(run.code, Some(1), "{what}: {}", run.stderr);
        let wanted = [
            "cannot render bundle file systemd/user/mosaic-tmux-holder.service.j2",
            says,
            "fix: ",
        ];
        for text in wanted {
            assert!(
                run.stderr.contains(text),
                "{what}: stderr lacks {text:?}:\n{}",
                run.stderr
            );
        }
        assert!(
            run.peak_rss_kib < 100 * 1024,
            "{what}: peak RSS {} KiB",
            run.peak_rss_kib
        );
        assert_eq!(tree_listing(home.path()), Vec::<String>::new(), "{what}");
    }
}
