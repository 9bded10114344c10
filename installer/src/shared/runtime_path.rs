//! The runtime PATH of agent panes (Mosaic #581). The systemd user manager's
//! PATH has none of the directories where `npm i -g` and pipx put command
//! line tools, so an agent pane running `mosaic yolo claude` exits 127 and
//! its unit restarts forever. The directories are resolved here, once per
//! install, in Mosaic's order — `$MOSAIC_RUNTIME_BIN` (a PATH-style list),
//! `$(npm config get prefix)/bin`, `~/.npm-global/bin`, `~/.local/bin` —
//! keeping the ones that exist, each once, but none of the system
//! directories a unit's PATH has already; the result lands in every
//! agent's env file as `MOSAIC_RUNTIME_PATH`, which `start-agent-session.sh`
//! puts first on the pane's PATH.
//!
//! [`find_program`] answers the question the pane's shell will ask (is the
//! command's program on that PATH?), for `fleet verify` and the rollout's
//! diagnosis of a start that failed.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The variable operators set to name extra runtime directories.
pub(crate) const RUNTIME_BIN_VAR: &str = "MOSAIC_RUNTIME_BIN";

/// The PATH systemd gives a user manager that was told nothing else (its
/// compiled-in default): what a unit's PATH is on a stock host.
pub(crate) const SYSTEMD_DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One directory of the runtime PATH and which rule found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RuntimeDir {
    pub(crate) dir: PathBuf,
    /// `MOSAIC_RUNTIME_BIN`, `npm prefix`, `~/.npm-global/bin` or `~/.local/bin`.
    pub(crate) source: String,
}

/// The resolved runtime directories, in PATH order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct RuntimePath {
    pub(crate) dirs: Vec<RuntimeDir>,
    /// What `npm config get prefix` said; None without npm.
    pub(crate) npm_prefix: Option<PathBuf>,
}

impl RuntimePath {
    /// Resolve for the home `home` from this process's environment and npm.
    pub(crate) fn resolve(home: &Path) -> RuntimePath {
        let mut candidates = Vec::new();
        if let Some(list) = std::env::var_os(RUNTIME_BIN_VAR) {
            for dir in std::env::split_paths(&list).filter(|d| d.is_absolute()) {
                candidates.push((dir, RUNTIME_BIN_VAR));
            }
        }
        let npm_prefix = npm_prefix(home);
        if let Some(prefix) = &npm_prefix {
            candidates.push((prefix.join("bin"), "npm prefix"));
        }
        candidates.push((home.join(".npm-global/bin"), "~/.npm-global/bin"));
        candidates.push((home.join(".local/bin"), "~/.local/bin"));
        RuntimePath {
            npm_prefix,
            ..RuntimePath::existing(candidates)
        }
    }

    /// Where `npm i -g @mosaicstack/mosaic` may have put Mosaic's CLI:
    /// npm's prefix, then the usual user prefix `~/.npm-global`.
    pub(crate) fn npm_prefixes(&self, home: &Path) -> Vec<PathBuf> {
        self.npm_prefix
            .iter()
            .cloned()
            .chain([home.join(".npm-global")])
            .collect()
    }

    /// The candidates that are directories, each once (the first spelling
    /// wins; two spellings of one directory count once). Left out: the
    /// system directories every unit's PATH has already (npm's prefix is
    /// `/usr` when node came from the distribution, and putting `/usr/bin`
    /// first would reorder the system PATH), and directories a PATH or an
    /// env file cannot carry (a `:`, not UTF-8).
    fn existing(candidates: Vec<(PathBuf, &str)>) -> RuntimePath {
        let mut seen: Vec<PathBuf> = SYSTEMD_DEFAULT_PATH
            .split(':')
            .map(|dir| Path::new(dir).canonicalize().unwrap_or_else(|_| dir.into()))
            .collect();
        let mut dirs = Vec::new();
        for (dir, source) in candidates {
            let Some(text) = dir.to_str() else { continue };
            if text.contains(':') || !dir.is_dir() {
                continue;
            }
            let identity = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if seen.contains(&identity) {
                continue;
            }
            seen.push(identity);
            dirs.push(RuntimeDir {
                dir,
                source: source.to_owned(),
            });
        }
        RuntimePath {
            dirs,
            npm_prefix: None,
        }
    }

    /// `dir1:dir2`, empty when no directory was found.
    pub(crate) fn joined(&self) -> String {
        let dirs: Vec<String> = self
            .dirs
            .iter()
            .map(|d| d.dir.display().to_string())
            .collect();
        dirs.join(":")
    }
}

/// npm's global prefix as `npm config get prefix` would say it for the
/// owner of `home`, read the way npm reads it without running npm (a node
/// process costs a fifth of a second per install, and a kill-point sweep
/// must not trace node): `npm_config_prefix` in the environment, else
/// `prefix` in the user config (`~/.npmrc`, or `npm_config_userconfig`),
/// else in the global config (`<default prefix>/etc/npmrc`), else the
/// default prefix: `$PREFIX`, or the directory above node's `bin`. None
/// without npm's node.
pub(crate) fn npm_prefix(home: &Path) -> Option<PathBuf> {
    let env = |name: &str| {
        std::env::var_os(name)
            .or_else(|| std::env::var_os(name.to_uppercase()))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(prefix) = env("npm_config_prefix") {
        return Some(expand_home(&prefix, home));
    }
    let userconfig = env("npm_config_userconfig").unwrap_or_else(|| home.join(".npmrc"));
    if let Some(prefix) = npmrc_prefix(&userconfig, home) {
        return Some(prefix);
    }
    let default = env("PREFIX").or_else(node_prefix)?;
    Some(npmrc_prefix(&default.join("etc/npmrc"), home).unwrap_or(default))
}

/// The directory above the `bin` that holds node (npm's default prefix).
fn node_prefix() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let node = std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| is_executable(candidate))?;
    let real = node.canonicalize().ok()?;
    Some(real.parent()?.parent()?.to_path_buf())
}

/// `prefix = VALUE` in an npmrc (ini: `;` and `#` comments, optional
/// quotes, `~/` for the home), None when the file or the key is absent.
fn npmrc_prefix(file: &Path, home: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        if line.starts_with([';', '#']) {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        (key.trim() == "prefix").then(|| {
            let value = value.trim().trim_matches('"').trim_matches('\'');
            expand_home(Path::new(value), home)
        })
    })
}

fn expand_home(path: &Path, home: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

/// The PATH `start-agent-session.sh` gives an agent's pane: `runtime` (its
/// env file's `MOSAIC_RUNTIME_PATH`), then `~/.npm-global/bin` and
/// `~/.local/bin` — existing directories only — then `base`, the unit's PATH.
pub(crate) fn agent_pane_path(runtime: &str, home: &Path, base: &str) -> String {
    let fallback = [home.join(".npm-global/bin"), home.join(".local/bin")];
    let fallback = fallback.iter().filter_map(|dir| dir.to_str());
    let existing: Vec<&str> = runtime
        .split(':')
        .chain(fallback)
        .filter(|dir| !dir.is_empty() && Path::new(dir).is_dir())
        .collect();
    pane_path(&existing.join(":"), base)
}

/// `runtime` first, then `base`, each directory once.
pub(crate) fn pane_path(runtime: &str, base: &str) -> String {
    let mut dirs: Vec<&str> = Vec::new();
    for dir in runtime.split(':').chain(base.split(':')) {
        if !dir.is_empty() && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.join(":")
}

/// Where the pane's shell would find the program of `command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub(crate) enum ProgramLookup {
    /// Found at this path.
    Found { program: String, path: PathBuf },
    /// Not on the PATH (or not executable where the command names it).
    NotFound { program: String },
    /// The shell runs it itself, or its first word is shell syntax (`$X`,
    /// quotes, `VAR=x cmd`): only running it can tell.
    NotChecked { why: String },
}

/// Shell words that are not programs: builtins and keywords `sh -c` runs itself.
const SHELL_WORDS: [&str; 22] = [
    "exec", "cd", ".", ":", "eval", "export", "set", "unset", "trap", "if", "for", "while",
    "until", "case", "time", "!", "{", "(", "[[", "command", "builtin", "source",
];

/// The program `command` runs first, looked up as `start-agent-session.sh`
/// does before it starts the pane (same rules, same answer): the first
/// word, `~/` expanded to `home`; a word with a `/` must be an executable
/// file, any other is searched on `path`.
pub(crate) fn find_program(command: &str, path: &str, home: &Path) -> ProgramLookup {
    let Some(word) = command.split_whitespace().next() else {
        return ProgramLookup::NotChecked {
            why: "the command is empty".into(),
        };
    };
    if SHELL_WORDS.contains(&word) {
        return ProgramLookup::NotChecked {
            why: format!("`{word}` is run by the shell itself"),
        };
    }
    if word.chars().any(|c| "$'\"`\\=;&|<>(){}*?[]#".contains(c)) {
        return ProgramLookup::NotChecked {
            why: format!("`{word}` is shell syntax, known only when it runs"),
        };
    }
    if word.starts_with('~') && word != "~" && !word.starts_with("~/") {
        return ProgramLookup::NotChecked {
            why: format!("`{word}` names another user's home, known only when it runs"),
        };
    }
    let expanded = match word.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None if word == "~" => home.to_path_buf(),
        None => PathBuf::from(word),
    };
    let found = if word.contains('/') {
        is_executable(&expanded).then_some(expanded)
    } else {
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| Path::new(dir).join(word))
            .find(|candidate| is_executable(candidate))
    };
    match found {
        Some(path) => ProgramLookup::Found {
            program: word.to_owned(),
            path,
        },
        None => ProgramLookup::NotFound {
            program: word.to_owned(),
        },
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn existing_non_system_directories_each_once_in_order() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        for dir in ["a", ".npm-global/bin", ".local/bin"] {
            std::fs::create_dir_all(h.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink(h.join(".local/bin"), h.join("link")).unwrap();
        let resolved = RuntimePath::existing(vec![
            (h.join("a"), RUNTIME_BIN_VAR),
            (h.join("missing"), RUNTIME_BIN_VAR),
            (h.join("link"), "npm prefix"),
            (h.join("a"), "npm prefix"),
            (h.join(".npm-global/bin"), "~/.npm-global/bin"),
            (PathBuf::from("/usr/bin"), "npm prefix"),
            (PathBuf::from("/bin"), "npm prefix"),
            (h.join(".local/bin"), "~/.local/bin"),
        ]);
        let dirs: Vec<(PathBuf, &str)> = resolved
            .dirs
            .iter()
            .map(|d| (d.dir.clone(), d.source.as_str()))
            .collect();
        assert_eq!(
            dirs,
            [
                (h.join("a"), RUNTIME_BIN_VAR),
                (h.join("link"), "npm prefix"),
                (h.join(".npm-global/bin"), "~/.npm-global/bin"),
            ]
        );
        assert_eq!(
            resolved.joined(),
            format!(
                "{}:{}:{}",
                h.join("a").display(),
                h.join("link").display(),
                h.join(".npm-global/bin").display()
            )
        );
        assert_eq!(RuntimePath::default().joined(), "");
    }

    #[test]
    fn npmrc_prefix_is_read_as_npm_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path();
        let rc = h.join(".npmrc");
        std::fs::write(
            &rc,
            "; a comment\nregistry=https://example.invalid/\n# prefix=/not/this\nprefix = ~/.npm-global\n",
        )
        .unwrap();
        assert_eq!(npmrc_prefix(&rc, h), Some(h.join(".npm-global")));
        std::fs::write(&rc, "prefix=\"/opt/node\"\n").unwrap();
        assert_eq!(npmrc_prefix(&rc, h), Some(PathBuf::from("/opt/node")));
        std::fs::write(&rc, "fund=false\n").unwrap();
        assert_eq!(npmrc_prefix(&rc, h), None);
        assert_eq!(npmrc_prefix(&h.join("missing"), h), None);
    }

    #[test]
    fn pane_path_puts_the_runtime_first_without_repeats() {
        assert_eq!(
            pane_path("/r:/usr/bin", "/usr/bin:/bin"),
            "/r:/usr/bin:/bin"
        );
        assert_eq!(pane_path("", "/usr/bin:/bin"), "/usr/bin:/bin");
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::create_dir_all(h.join(".local/bin")).unwrap();
        std::fs::create_dir_all(h.join("tools")).unwrap();
        let runtime = format!("{}:{}", h.join("tools").display(), h.join("gone").display());
        assert_eq!(
            agent_pane_path(&runtime, h, "/usr/bin"),
            format!(
                "{}:{}:/usr/bin",
                h.join("tools").display(),
                h.join(".local/bin").display()
            )
        );
    }

    #[test]
    fn programs_are_found_as_the_shell_would() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        executable(&h.join(".npm-global/bin/mosaic"));
        executable(&h.join("bin/fake-agent"));
        std::fs::write(h.join("bin/not-executable"), "").unwrap();
        let path = format!("/nonexistent:{}", h.join(".npm-global/bin").display());
        assert_eq!(
            find_program("mosaic yolo claude --model opus", &path, h),
            ProgramLookup::Found {
                program: "mosaic".into(),
                path: h.join(".npm-global/bin/mosaic")
            }
        );
        assert_eq!(
            find_program("mosaic yolo claude", "/nonexistent", h),
            ProgramLookup::NotFound {
                program: "mosaic".into()
            }
        );
        assert!(matches!(
            find_program("~/bin/fake-agent", "", h),
            ProgramLookup::Found { .. }
        ));
        assert!(matches!(
            find_program("~/bin/not-executable", "", h),
            ProgramLookup::NotFound { .. }
        ));
        for shell in [
            "exec mosaic",
            "X=1 mosaic",
            "$HOME/x",
            "'quoted' x",
            "\\start x",
            "~other/bin/x",
            "",
        ] {
            assert!(
                matches!(
                    find_program(shell, &path, h),
                    ProgramLookup::NotChecked { .. }
                ),
                "{shell}"
            );
        }
    }
}
