//! `cargo xtask completions --out DIR`: shell completions (bash, zsh, fish)
//! and man pages for `mosaic-install` and `mosaic-fleet`, generated from
//! their clap definitions (`clap_complete`, `clap_mangen`), so they can
//! never drift from the flags the binaries accept.
//!
//! The files land in a `share/` tree laid out like an installation prefix
//! (`share/bash-completion/completions/`, `share/zsh/site-functions/`,
//! `share/fish/vendor_completions.d/`, `share/man/man1/`): copying it onto
//! `~/.local` or `/usr/local` puts every file where its shell or `man`
//! looks. `dist` puts the same tree into the release archive.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap_complete::Shell;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Directory to write the `share/` tree into [default: target/completions].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let out = args
        .out
        .unwrap_or_else(|| crate::project_root().join("target/completions"));
    for file in generate(&out)? {
        println!("{}", out.join(file).display());
    }
    Ok(())
}

/// Both binaries' clap commands, by binary name.
fn commands() -> [clap::Command; 2] {
    [
        mosaic_install::install_command(),
        mosaic_install::fleet_command(),
    ]
}

/// Where a shell looks for the completions of `bin`, under the prefix.
fn completion_path(shell: Shell, bin: &str) -> PathBuf {
    match shell {
        Shell::Bash => format!("share/bash-completion/completions/{bin}"),
        Shell::Zsh => format!("share/zsh/site-functions/_{bin}"),
        Shell::Fish => format!("share/fish/vendor_completions.d/{bin}.fish"),
        other => format!("share/{other}/{bin}"),
    }
    .into()
}

/// Write every completion script and man page under `out`; returns their
/// paths relative to `out`, sorted.
pub(crate) fn generate(out: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for command in commands() {
        let bin = command.get_name().to_owned();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let rel = completion_path(shell, &bin);
            let mut script = Vec::new();
            // A copy: generating builds the command, adding `help` subcommands.
            clap_complete::generate(shell, &mut command.clone(), &bin, &mut script);
            if shell == Shell::Bash {
                script = fix_bash_arms(&script, &bin);
            }
            write(out, &rel, &script)?;
            written.push(rel);
        }
        // One page per command and subcommand (`mosaic-fleet-agent-send.1`),
        // rendered apart so that only this run's pages are listed.
        let pages = tempfile::tempdir().context("create a directory for man pages")?;
        clap_mangen::generate_to(command, pages.path())
            .with_context(|| format!("render the man pages of {bin}"))?;
        for entry in std::fs::read_dir(pages.path()).context("list the man pages")? {
            let page = entry.context("read a directory entry")?.path();
            let rel = Path::new("share/man/man1").join(page.file_name().expect("a file"));
            let bytes = std::fs::read(&page).with_context(|| format!("read {}", page.display()))?;
            write(out, &rel, &bytes)?;
            written.push(rel);
        }
    }
    written.sort();
    Ok(written)
}

fn write(out: &Path, rel: &Path, bytes: &[u8]) -> Result<()> {
    let path = out.join(rel);
    let dir = path.parent().expect("completion paths have a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))
}

/// clap_complete 4.6 spells a hyphenated binary's subcommand states two
/// ways in bash (`mosaic__fleet__subcmd__agent` while walking the words,
/// `mosaic__subcmd__fleet__subcmd__agent` in the `case` arms), so nothing
/// completes after the first word (clap-rs/clap#6421, open). Spell the arms
/// as the walk does.
fn fix_bash_arms(script: &[u8], bin: &str) -> Vec<u8> {
    let wrong = bin.replace('-', "__subcmd__");
    let right = bin.replace('-', "__");
    String::from_utf8_lossy(script)
        .replace(&wrong, &right)
        .into_bytes()
}
