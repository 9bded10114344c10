//! Unit tests of the transaction: undo on failure, commit, parallel creates, modes.

use super::*;

struct Setup {
    _dir: tempfile::TempDir,
    home: PathBuf,
    root: PathBuf,
    state: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().canonicalize().unwrap();
    let root = home.join("root");
    fs::create_dir(&root).unwrap();
    let state = home.join("state");
    Setup {
        _dir: dir,
        home,
        root,
        state,
    }
}

fn spec(s: &Setup) -> TxSpec {
    TxSpec {
        command: "test".into(),
        generation: Some(1),
        backup_dir: s.state.join("backups/1"),
        finish: Finish::Discard,
    }
}

fn run<T>(
    s: &Setup,
    body: impl FnOnce(&mut Transaction) -> Result<T, ApplyError>,
) -> Result<Committed<T>, TxError> {
    let lock = InstallLock::acquire(&s.home).unwrap();
    Transaction::run(
        &lock,
        &s.state,
        vec![s.root.clone(), s.state.clone()],
        spec(s),
        body,
    )
}

#[test]
fn a_failure_restores_replaced_and_removes_created() {
    let s = setup();
    let root = s.root.clone();
    fs::write(root.join("old"), "old").unwrap();
    fs::write(root.join("gone"), "gone").unwrap();
    let err = run(&s, |tx| {
        tx.create_dir_all(&root.join("a/b"), 0o755)?;
        tx.write(&root.join("a/b/new"), b"new", 0o644)?;
        tx.write(&root.join("old"), b"changed", 0o600)?;
        tx.remove(&root.join("gone"))?;
        assert_eq!(fs::read_to_string(root.join("old")).unwrap(), "changed");
        Err::<(), _>(ApplyError::Injected(0))
    })
    .unwrap_err();
    assert!(err.undo.complete() && err.undo.kept.is_empty(), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(fs::read_to_string(root.join("old")).unwrap(), "old");
    assert_eq!(fs::read_to_string(root.join("gone")).unwrap(), "gone");
    assert!(!root.join("a").exists());
    assert!(
        !s.state.exists(),
        "the state chain this run created is gone"
    );
}

#[test]
fn a_commit_keeps_every_change_and_drops_the_journal() {
    let s = setup();
    let root = s.root.clone();
    fs::write(root.join("old"), "old").unwrap();
    let done = run(&s, |tx| {
        tx.write(&root.join("old"), b"new", 0o644)?;
        tx.write(&root.join("fresh"), b"fresh", 0o600)?;
        Ok(7)
    })
    .unwrap();
    assert_eq!(done.value, 7);
    assert!(done.unfinished.is_none());
    assert_eq!(fs::read_to_string(root.join("old")).unwrap(), "new");
    let mode = fs::metadata(root.join("fresh")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    let left: Vec<_> = fs::read_dir(&s.state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec!["backups"], "journal discarded, backups kept");
    let temps = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("mosaic-install"))
        .count();
    assert_eq!(temps, 0, "no temp file left");
}

#[test]
fn created_files_land_with_modes_and_are_undone() {
    let s = setup();
    let root = s.root.clone();
    let names: Vec<PathBuf> = (0..20).map(|i| root.join(format!("f{i}"))).collect();
    let files: Vec<(PathBuf, &[u8], u32)> = names
        .iter()
        .map(|p| (p.clone(), b"x".as_slice(), 0o600))
        .collect();
    let err = run(&s, |tx| {
        tx.create_files(&files)?;
        let mode = fs::metadata(&names[7]).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600);
        Err::<(), _>(ApplyError::Injected(0))
    })
    .unwrap_err();
    assert!(err.undo.complete(), "{err}");
    assert_eq!(
        fs::read_dir(&root).unwrap().count(),
        0,
        "no file or temp file left"
    );
}

#[test]
fn dirs_get_their_mode_whatever_the_umask() {
    let s = setup();
    let root = s.root.clone();
    // SAFETY: umask only changes this process's file-creation mask.
    let old = unsafe { libc::umask(0) };
    let result = run(&s, |tx| tx.create_dir_all(&root.join("p/q"), 0o700));
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    result.unwrap();
    for dir in [root.join("p"), root.join("p/q")] {
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    }
}

#[test]
fn atomic_write_sets_mode() {
    let s = setup();
    atomic_write(&s.root.join("s.sh"), b"#!/bin/sh\n", 0o755).unwrap();
    let mode = fs::metadata(s.root.join("s.sh")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o755);
}
