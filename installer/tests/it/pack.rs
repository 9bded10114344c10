//! `cargo xtask pack`, `pack --check` and `dist`, driven through the built
//! xtask binary on copies of the fixture packages in `tests/fixtures/pack/`
//! (one per selection rule: `files`, ignore files, always/never included,
//! modes, names, main/browser/bin, directories.bin, bundled dependencies,
//! a workspace root, PAX names) and of `templates/`. Real npm at the pinned version is the
//! reference: every fixture's report must equal `npm pack --dry-run --json`
//! (but for the gzip fields), and its archive, gunzipped, must be npm's tar
//! byte for byte. Each listing is also a reviewed snapshot, so the rules
//! stay pinned where npm is not installed.

use crate::support::pack as fixture;

use fixture::{assert_success, fixtures, require_pinned_npm, run, xtask, Fixture};
use mosaic_tests::require_tool;
use std::path::Path;
use std::process::Command;

/// The fields of a pack report that do not depend on the gzip layer.
fn content_fields(report: &serde_json::Value) -> serde_json::Value {
    let mut report = report.clone();
    let object = report.as_object_mut().expect("a report is an object");
    for gzip_dependent in ["size", "shasum", "integrity"] {
        object.remove(gzip_dependent);
    }
    report
}

/// One line per file, `mode size path`, for the snapshot; then the bundled
/// packages, if any.
fn listing(report: &serde_json::Value) -> Vec<String> {
    let mut lines: Vec<String> = report["files"]
        .as_array()
        .expect("files is an array")
        .iter()
        .map(|f| {
            let mode = f["mode"].as_u64().expect("mode");
            let size = f["size"].as_u64().expect("size");
            format!("{mode:04o} {size:>4} {}", f["path"].as_str().expect("path"))
        })
        .collect();
    let bundled = report["bundled"].as_array().expect("bundled is an array");
    if !bundled.is_empty() {
        let names: Vec<&str> = bundled.iter().filter_map(|b| b.as_str()).collect();
        lines.push(format!("bundled: {}", names.join(", ")));
    }
    lines
}

fn gunzip(tgz: &Path) -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(tgz)
        .output()
        .expect("run gzip");
    assert_success("gzip -dc", &out);
    out.stdout
}

/// The listing is pinned by a snapshot and equals npm's; the archive is npm's tar.
fn packs_like_npm(name: &str) {
    let fixture = Fixture::package(name);
    let ours = fixture.xtask_report();
    crate::support::snapshots().bind(|| {
        insta::assert_yaml_snapshot!(format!("pack__listing-{name}"), listing(&ours));
    });
    if !require_pinned_npm("the listing is compared with real npm pack") {
        return;
    }
    let npm = fixture.npm_report();
    assert_eq!(
        content_fields(&ours),
        content_fields(&npm),
        "{name}: xtask pack --dry-run --json differs from npm's (left xtask, right npm)"
    );
    let (ours_tgz, npm_tgz) = (fixture.xtask_pack("xtask-out"), fixture.npm_pack("npm-out"));
    assert_eq!(
        ours_tgz.file_name(),
        npm_tgz.file_name(),
        "{name}: file names"
    );
    assert!(
        gunzip(&ours_tgz) == gunzip(&npm_tgz),
        "{name}: the uncompressed tar differs from npm's"
    );
}

#[test]
fn files_list_entries_pack_like_npm() {
    packs_like_npm("files-list");
}

#[test]
fn npmignore_in_included_dirs_packs_like_npm() {
    packs_like_npm("npmignore");
}

#[test]
fn always_and_never_included_files_pack_like_npm() {
    packs_like_npm("always-never");
}

#[test]
fn modes_pack_like_npm() {
    packs_like_npm("modes");
}

#[test]
fn a_package_without_files_packs_like_npm() {
    packs_like_npm("no-files");
}

#[test]
fn odd_names_pack_in_npms_order() {
    packs_like_npm("names");
}

#[test]
fn main_browser_and_bin_outside_files_pack_like_npm() {
    // Also: `"bin": "cli.js"` is made executable and `"bin": "bin/tool.js"`
    // is not (pacote's test), and `man` adds nothing.
    packs_like_npm("entry-points");
}

#[test]
fn an_empty_main_a_browser_object_and_a_bin_string_pack_like_npm() {
    packs_like_npm("main-empty");
}

#[test]
fn directories_bin_packs_like_npm() {
    packs_like_npm("directories-bin");
}

#[test]
fn bundled_dependencies_pack_like_npm() {
    packs_like_npm("bundled");
}

#[test]
fn a_workspace_project_root_packs_like_npm() {
    packs_like_npm("workspaces");
}

#[test]
fn names_that_need_pax_headers_pack_like_npm() {
    packs_like_npm("pax-names");
}

#[test]
fn the_templates_package_packs_like_npm() {
    let fixture = Fixture::templates();
    if !require_pinned_npm("the listing is compared with real npm pack") {
        return;
    }
    assert_eq!(
        content_fields(&fixture.xtask_report()),
        content_fields(&fixture.npm_report())
    );
}

fn archive_bytes(fixture: &Fixture, out_name: &str) -> Vec<u8> {
    std::fs::read(fixture.xtask_pack(out_name)).expect("read the archive")
}

#[test]
fn packing_is_reproducible_across_runs_mtimes_and_places() {
    let fixture = Fixture::package("files-list");
    let first = archive_bytes(&fixture, "first");
    assert!(
        first == archive_bytes(&fixture, "second"),
        "two packs differ"
    );

    let long_ago = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(981_173_106);
    touch_tree(&fixture.root(), long_ago);
    assert!(
        first == archive_bytes(&fixture, "touched"),
        "touching mtimes changed the archive"
    );

    let elsewhere = Fixture::package("files-list");
    assert!(
        first == archive_bytes(&elsewhere, "moved"),
        "another directory changed the archive"
    );
}

fn touch_tree(dir: &Path, time: std::time::SystemTime) {
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.is_dir() {
            touch_tree(&path, time);
        }
        if !meta.file_type().is_symlink() {
            let file = std::fs::File::open(&path).expect("open to touch");
            file.set_modified(time).expect("set mtime");
        }
    }
}

/// `ls -l` style permissions of a regular file (`-rwxr-xr-x`).
fn permissions(mode: u64) -> String {
    let mut out = String::from("-");
    for (shift, special, letter) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 0o7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => letter,
            (false, true) => letter.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    out
}

#[test]
fn the_tgz_reads_with_tar_and_installs_with_npm() {
    let fixture = Fixture::package("files-list");
    let report = fixture.xtask_report();
    let tgz = fixture.xtask_pack("out");

    let out = Command::new("tar")
        .arg("-tzvf")
        .arg(&tgz)
        .output()
        .expect("run tar");
    assert_success("tar -tzvf", &out);
    let table = String::from_utf8(out.stdout).expect("UTF-8 listing");
    let files = report["files"].as_array().expect("files");
    assert_eq!(table.lines().count(), files.len(), "tar lists:\n{table}");
    for file in files {
        let path = file["path"].as_str().expect("path");
        let name = format!(" package/{path}");
        let line = table
            .lines()
            .find(|l| l.ends_with(&name) || l.contains(&format!("{name} link to ")))
            .unwrap_or_else(|| panic!("tar -tzvf does not list {path}:\n{table}"));
        let perms = permissions(file["mode"].as_u64().expect("mode"));
        assert!(
            line[1..].starts_with(&perms[1..]),
            "{path}: `{line}`, expected {perms}"
        );
        assert!(
            line.contains(" 0/0 ") && line.contains(" 1985-10-26 08:15 "),
            "{line}"
        );
    }

    if !require_tool("npm", "the archive is installed with npm install") {
        return;
    }
    let prefix = fixture.scratch("prefix");
    let prefix_arg = prefix.to_str().expect("UTF-8 temp path");
    let tgz_arg = tgz.to_str().expect("UTF-8 temp path");
    let out = fixture.npm(&[
        "install",
        tgz_arg,
        "--prefix",
        prefix_arg,
        "--ignore-scripts",
        "--offline",
    ]);
    assert_success("npm install <tgz>", &out);
    let installed = prefix.join("node_modules").join("files-list-fixture");
    let mut expected: Vec<String> = files
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect();
    expected.sort();
    let mut found = Vec::new();
    collect_files(&installed, &installed, &mut found);
    found.sort();
    assert_eq!(found, expected, "npm install yields other files");
    for path in &expected {
        let source = std::fs::read(fixture.root().join(path)).expect("read source");
        let copy = std::fs::read(installed.join(path)).expect("read installed");
        assert!(source == copy, "{path}: installed content differs");
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("inside root");
            out.push(rel.to_str().expect("UTF-8").to_owned());
        }
    }
}

fn check(fixture: &Fixture) -> std::process::Output {
    let manifest = fixtures().join("check").join("manifest.txt");
    run(xtask()
        .args(["pack", "--check", "--package-dir"])
        .arg(fixture.root())
        .arg("--manifest")
        .arg(manifest))
}

fn assert_check_fails_naming(fixture: &Fixture, expected: &str) {
    let out = check(fixture);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "pack --check passed:\n{stdout}");
    assert!(
        stdout.contains(expected),
        "expected `{expected}` in:\n{stdout}"
    );
}

/// The names of what is in `dir`.
fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_files_string_is_refused_naming_what_npm_would_do() {
    let fixture = Fixture::package("files-string");
    let out_dir = fixture.scratch("out");
    let out = run(xtask()
        .args(["pack", "--package-dir"])
        .arg(fixture.root())
        .arg("--out-dir")
        .arg(&out_dir));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pack accepted `files` as a string");
    for expected in [
        "package.json: `files` is the string \"index.js\", not an array",
        "npm would take each of its characters as a pattern",
        "write `\"files\": [\"index.js\"]`",
    ] {
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
    }
    assert!(dir_names(&out_dir).is_empty(), "something was written");
}

#[test]
fn a_failed_write_leaves_no_tgz_and_keeps_the_old_one() {
    if !require_tool(
        "prlimit",
        "the write is made to fail with a file size limit",
    ) {
        return;
    }
    let fixture = Fixture::package("files-list");
    let out_dir = fixture.scratch("out");
    let name = "files-list-fixture-1.2.3.tgz";
    std::fs::write(out_dir.join(name), "the previous archive\n").expect("write");
    // Writes past 100 bytes fail with EFBIG (SIGXFSZ ignored, so the
    // process sees the error instead of dying of the signal).
    let out = run(Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; exec prlimit --fsize=100 -- \"$@\"",
            "sh",
        ])
        .arg(mosaic_tests::xtask())
        .args(["pack", "--package-dir"])
        .arg(fixture.root())
        .arg("--out-dir")
        .arg(&out_dir));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pack succeeded:\n{stderr}");
    assert!(
        stderr.contains(&format!("write {}", out_dir.join(name).display()))
            && stderr.contains("File too large"),
        "the error names the archive and the cause:\n{stderr}"
    );
    assert_eq!(dir_names(&out_dir), [name], "a partial file was left");
    let kept = std::fs::read_to_string(out_dir.join(name)).expect("read");
    assert_eq!(kept, "the previous archive\n");
}

#[test]
fn a_huge_all_zero_file_is_packed() {
    // npm stops at its "max decompression ratio" on this one; xtask packs it.
    let dir = tempfile::tempdir().expect("temp dir");
    let package = dir.path().join("package");
    std::fs::create_dir(&package).expect("mkdir");
    let manifest = r#"{"name": "zeros", "version": "1.0.0"}"#;
    std::fs::write(package.join("package.json"), manifest).expect("write package.json");
    let size: u64 = 200 * 1024 * 1024;
    std::fs::File::create(package.join("zeros.bin"))
        .and_then(|f| f.set_len(size))
        .expect("create a sparse file");
    let out_dir = dir.path().join("out");
    let out = run(xtask()
        .args(["pack", "--json", "--package-dir"])
        .arg(&package)
        .arg("--out-dir")
        .arg(&out_dir));
    assert_success("xtask pack", &out);
    let report: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        report[0]["unpackedSize"].as_u64(),
        Some(size + manifest.len() as u64)
    );
    let tgz = out_dir.join("zeros-1.0.0.tgz");
    let packed = std::fs::metadata(&tgz).expect("the archive").len();
    assert!(packed < 1024 * 1024, "{packed} bytes for zeros");
    let out = Command::new("tar")
        .arg("-tzvf")
        .arg(&tgz)
        .output()
        .expect("run tar");
    assert_success("tar -tzvf", &out);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains(&format!(" {size} ")) && l.ends_with(" package/zeros.bin")),
        "{table}"
    );
}

#[test]
fn check_works_on_any_package_and_names_a_missing_bin() {
    let fixture = Fixture::package("entry-points");
    let check = || {
        run(xtask()
            .args(["pack", "--check", "--package-dir"])
            .arg(fixture.root()))
    };
    let out = check();
    assert_success("pack --check on a package with bin and main", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pack --check: ok: @fixtures/entry-points@2.0.0")
            && stdout.contains("no manifest of required files given"),
        "{stdout}"
    );
    std::fs::remove_file(fixture.root().join("cli.js")).expect("remove a bin target");
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "pack --check passed:\n{stdout}");
    assert!(
        stdout.contains(
            "bin `top` points to cli.js, which is not in the archive (npm install would link a missing file)"
        ),
        "{stdout}"
    );
}

#[test]
fn check_passes_on_an_intact_package() {
    let out = check(&Fixture::check_package());
    assert_success("pack --check", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pack --check: ok"));
}

#[test]
fn check_names_a_removed_required_file() {
    let fixture = Fixture::check_package();
    std::fs::remove_file(fixture.root().join("framework/tools/fleet/start.sh")).expect("remove");
    assert_check_fails_naming(
        &fixture,
        "missing required file: framework/tools/fleet/start.sh",
    );
}

#[test]
fn check_names_a_script_that_lost_its_executable_bit() {
    use std::os::unix::fs::PermissionsExt as _;
    let fixture = Fixture::check_package();
    let script = fixture.root().join("framework/tools/tmux/send.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_check_fails_naming(
        &fixture,
        "wrong mode: framework/tools/tmux/send.sh is 0644 in the archive, the manifest requires 0755",
    );
}

#[test]
fn check_names_an_unexpected_file() {
    let fixture = Fixture::check_package();
    std::fs::write(
        fixture.root().join("framework/tools/tmux/scratch.txt"),
        "oops\n",
    )
    .expect("write");
    assert_check_fails_naming(
        &fixture,
        "unexpected file: framework/tools/tmux/scratch.txt",
    );
}

#[test]
fn the_real_templates_package_passes_the_check() {
    let out = run(xtask().args(["pack", "--check"]));
    assert_success("cargo xtask pack --check on templates/", &out);
}

#[test]
fn dist_artifacts_verify_with_sha256sum() {
    if !require_tool("sha256sum", "SHA256SUMS is verified with sha256sum -c")
        || !require_tool("dpkg-shlibdeps", "dist builds the .deb with dpkg-dev")
    {
        return;
    }
    let out_dir = tempfile::tempdir().expect("temp dir");
    // A private copy: other builds may replace target/debug/ meanwhile.
    let built = tempfile::tempdir().expect("temp dir");
    let binary = built.path().join("mosaic-install");
    std::fs::copy(crate::support::PRODUCT.install, &binary).expect("copy binary");
    let fleet = built.path().join("mosaic-fleet");
    std::fs::copy(crate::support::PRODUCT.fleet, &fleet).expect("copy binary");
    let out = run(xtask()
        .args(["dist", "--out-dir"])
        .arg(out_dir.path())
        .arg("--binary")
        .arg(&binary));
    assert_success("xtask dist", &out);

    let verify = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(out_dir.path())
        .output()
        .expect("run sha256sum");
    assert_success("sha256sum -c SHA256SUMS", &verify);
    let verified = String::from_utf8_lossy(&verify.stdout);
    let checked: Vec<&str> = verified
        .lines()
        .filter_map(|l| l.strip_suffix(": OK"))
        .collect();
    assert_eq!(checked.len(), 3, "{verified}");
    assert!(
        checked
            .iter()
            .any(|name| name.starts_with("mosaic-install_") && name.ends_with(".deb")),
        "SHA256SUMS does not cover the .deb: {verified}"
    );

    let release = std::fs::read_dir(out_dir.path())
        .expect("list dist")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a release archive");
    let unpacked = tempfile::tempdir().expect("temp dir");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&release)
        .arg("-C")
        .arg(unpacked.path())
        .output()
        .expect("run tar");
    assert_success("tar -xzf", &out);
    let top = release
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .expect("archive name");
    assert!(top.starts_with("mosaic-install-"), "{top}");
    let shipped = unpacked.path().join(top);
    let same = |name: &str, original: &Path| {
        let a = std::fs::read(shipped.join(name)).expect("read shipped file");
        let b = std::fs::read(original).expect("read original");
        assert!(
            a == b,
            "{name} in the release archive differs from {}",
            original.display()
        );
    };
    same("mosaic-install", &binary);
    same("mosaic-fleet", &fleet);
    same(
        "README.md",
        &mosaic_tests::workspace_root().join("README.md"),
    );
    same("LICENSE", &mosaic_tests::workspace_root().join("LICENSE"));
}
