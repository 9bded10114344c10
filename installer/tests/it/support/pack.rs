//! Packages to pack in temp dirs: copies of `tests/fixtures/pack/` (and of
//! `templates/`) with their setup files applied, and the two packers run on
//! them: the built `xtask` and real `npm`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn fixtures() -> PathBuf {
    mosaic_tests::fixtures_dir().join("pack")
}

/// A package copied into its own temp dir, with room beside it for outputs.
pub(crate) struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// `packages/<name>` with `setup/<name>.txt` applied.
    pub(crate) fn package(name: &str) -> Fixture {
        let setup = fixtures().join("setup").join(format!("{name}.txt"));
        Fixture::copy_of(&fixtures().join("packages").join(name), Some(&setup))
    }

    /// The package the `pack --check` tests break, with its setup applied.
    pub(crate) fn check_package() -> Fixture {
        let setup = fixtures().join("check").join("setup.txt");
        Fixture::copy_of(&fixtures().join("check").join("package"), Some(&setup))
    }

    pub(crate) fn templates() -> Fixture {
        Fixture::copy_of(&mosaic_tests::templates_dir(), None)
    }

    fn copy_of(source: &Path, setup: Option<&Path>) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("mosaic-pack-")
            .tempdir()
            .expect("create a temp dir");
        let fixture = Fixture { dir };
        copy_tree(source, &fixture.root());
        if let Some(setup) = setup {
            apply_setup(&fixture.root(), setup);
        }
        fixture
    }

    /// The package directory.
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("package")
    }

    /// A directory beside the package (created on first use).
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("create a scratch dir");
        path
    }

    /// `xtask pack --dry-run --json` on this package: the one report object.
    pub(crate) fn xtask_report(&self) -> serde_json::Value {
        let out = run(xtask()
            .args(["pack", "--dry-run", "--json", "--package-dir"])
            .arg(self.root()));
        assert_success("xtask pack --dry-run --json", &out);
        single_report(&out.stdout)
    }

    /// `npm pack --dry-run --json` on this package: the one report object.
    pub(crate) fn npm_report(&self) -> serde_json::Value {
        let out = self.npm(&["pack", "--dry-run", "--json", "--ignore-scripts"]);
        assert_success("npm pack --dry-run --json", &out);
        single_report(&out.stdout)
    }

    /// Packs with xtask into a fresh dir and returns the `.tgz` path.
    pub(crate) fn xtask_pack(&self, out_name: &str) -> PathBuf {
        let out_dir = self.scratch(out_name);
        let out = run(xtask()
            .args(["pack", "--package-dir"])
            .arg(self.root())
            .arg("--out-dir")
            .arg(&out_dir));
        assert_success("xtask pack", &out);
        only_file_in(&out_dir)
    }

    /// Packs with npm into a fresh dir and returns the `.tgz` path.
    pub(crate) fn npm_pack(&self, out_name: &str) -> PathBuf {
        let out_dir = self.scratch(out_name);
        let destination = out_dir.to_str().expect("UTF-8 temp path");
        let out = self.npm(&[
            "pack",
            "--ignore-scripts",
            "--pack-destination",
            destination,
        ]);
        assert_success("npm pack", &out);
        only_file_in(&out_dir)
    }

    /// npm in the package directory, with its cache in the temp dir.
    pub(crate) fn npm(&self, args: &[&str]) -> Output {
        Command::new("npm")
            .args(args)
            .current_dir(self.root())
            .env("npm_config_cache", self.scratch("npm-cache"))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_audit", "false")
            .output()
            .expect("run npm")
    }
}

/// Whether real npm may be the reference here: it must be the version
/// xtask pack follows (`xtask/npm-version.txt`). Another version fails the
/// test under `CI=true` and skips it visibly otherwise, like a missing tool.
pub(crate) fn require_pinned_npm(why: &str) -> bool {
    if !mosaic_tests::require_tool("npm", why) {
        return false;
    }
    let pinned = pinned_npm();
    static FOUND: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let out = Command::new("npm")
            .arg("--version")
            .env("npm_config_update_notifier", "false")
            .output()
            .expect("run npm --version");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    });
    if *found == pinned {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "npm {found} is on PATH, and the tests compare with npm {pinned} ({why}); \
             cargo xtask ci installs it (npm install -g npm@{pinned})"
        );
    }
    eprintln!("skipped: npm {found} is not the pinned npm {pinned} ({why})");
    false
}

/// The npm version xtask pack follows.
pub(crate) fn pinned_npm() -> String {
    let path = mosaic_tests::workspace_root().join("xtask/npm-version.txt");
    std::fs::read_to_string(&path)
        .expect("read xtask/npm-version.txt")
        .trim()
        .to_owned()
}

/// The built `xtask` binary, to be given arguments.
pub(crate) fn xtask() -> Command {
    Command::new(mosaic_tests::xtask())
}

/// Runs a command to completion.
pub(crate) fn run(command: &mut Command) -> Output {
    command.output().expect("run the command")
}

pub(crate) fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn single_report(stdout: &[u8]) -> serde_json::Value {
    let reports: Vec<serde_json::Value> =
        serde_json::from_slice(stdout).expect("pack --json prints a JSON array");
    assert_eq!(reports.len(), 1, "one package, one report");
    reports.into_iter().next().expect("one report")
}

fn only_file_in(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the output dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one archive in {}: {entries:?}",
        dir.display()
    );
    entries.into_iter().next().expect("one archive")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list a fixture dir") {
        let entry = entry.expect("fixture dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}

/// Applies a setup file (format in its header) to the copy at `root`.
fn apply_setup(root: &Path, setup: &Path) {
    let text = std::fs::read_to_string(setup).expect("read the setup file");
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = |rel: &str| root.join(rel);
        let parent_of = |path: &Path| {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("create parents");
        };
        match words.as_slice() {
            ["file", path] => {
                parent_of(&at(path));
                std::fs::write(at(path), format!("{path}\n")).expect("write a setup file");
            }
            ["dir", path] => std::fs::create_dir_all(at(path)).expect("create a setup dir"),
            ["mode", mode, path] => {
                let mode = u32::from_str_radix(mode, 8).expect("an octal mode");
                std::fs::set_permissions(at(path), std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
            }
            ["symlink", path, target] => {
                parent_of(&at(path));
                std::os::unix::fs::symlink(target, at(path)).expect("create a symlink");
            }
            ["hardlink", path, existing] => {
                parent_of(&at(path));
                std::fs::hard_link(at(existing), at(path)).expect("create a hard link")
            }
            ["rename", from, to] => std::fs::rename(at(from), at(to)).expect("rename"),
            _ => panic!("{}: cannot read setup line `{line}`", setup.display()),
        }
    }
}
