//! `cargo xtask ci`: everything CI runs, in the order that fails fastest —
//! formatting, clippy, the whole test suite under `cargo insta test` (so a
//! changed or orphaned snapshot fails too; real tmux, real systemd tools,
//! real npm, real sshd, dpkg, lintian and ansible-playbook), the script and
//! unit lint, the packaging check, the pack-corpus (xtask pack against npm
//! pack on real packages from the registry) and a sample of the kill-point
//! harness. Missing machine tools are installed first where that is
//! possible, and the pinned Python tools into a venv on PATH
//! ([`crate::deps`]).

use anyhow::Context;
use xshell::{cmd, Shell};

#[derive(clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    crate::deps::ensure(&sh).context("installing the tools the tests drive")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"));
    let python = crate::deps::python_tools(&sh, &target)
        .context("installing ansible-core and ansible-lint")?;
    let insta = crate::deps::cargo_insta(&sh, &target).context("installing cargo-insta")?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        [python, insta]
            .into_iter()
            .chain(std::env::split_paths(&path)),
    )
    .context("put the Python tools and cargo-insta on PATH")?;
    sh.set_var("PATH", path);
    cmd!(sh, "cargo fmt --all --check")
        .run()
        .context("formatting differs: run `cargo fmt --all`")?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()
    .context("clippy found problems")?;
    // Every test; a snapshot that differs, or one no test asserts any
    // more, fails the run (review with `cargo insta review`).
    cmd!(
        sh,
        "cargo insta test --workspace --check --unreferenced=reject"
    )
    .run()
    .context("tests failed, or a snapshot differs or is unreferenced")?;
    crate::lint::run(crate::lint::Args {
        scripts_only: false,
    })
    .context("lint failed")?;
    cmd!(sh, "cargo xtask pack --check")
        .run()
        .context("the packaging check failed")?;
    cmd!(sh, "cargo xtask pack-corpus")
        .run()
        .context("xtask pack differs from npm pack on a real package")?;
    // A deterministic sample of the kill points; `cargo xtask crash --all`
    // runs every one.
    cmd!(sh, "cargo xtask crash --sample 10")
        .run()
        .context("a killed run left a mix")?;
    Ok(())
}
