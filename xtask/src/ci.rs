//! `cargo xtask ci`: everything CI runs, in the order that fails fastest —
//! formatting, clippy, the whole test suite (real tmux, real systemd tools,
//! real npm), the script and unit lint, the packaging check, the
//! pack-corpus (xtask pack against npm pack on real packages from the
//! registry) and a sample of the kill-point harness. Missing machine tools
//! are installed first where that is possible ([`crate::deps`]).

use anyhow::Context;
use xshell::{cmd, Shell};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    crate::deps::ensure(&sh).context("installing the tools the tests drive")?;
    cmd!(sh, "cargo fmt --all --check")
        .run()
        .context("formatting differs: run `cargo fmt --all`")?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()
    .context("clippy found problems")?;
    cmd!(sh, "cargo test --workspace --locked")
        .run()
        .context("tests failed")?;
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
