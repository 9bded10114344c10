//! The roster text edits behind `agent add` and `agent remove`, as data:
//! every roster in `tests/fixtures/fleet/rosters/` gets an agent appended
//! (one reviewed snapshot each, in `tests/snapshots/`), the result must
//! be a valid profile, removing the agent again must give back the original
//! byte for byte (so the edit was one block of new lines), and removing each
//! original agent must leave exactly the others and add nothing.

use crate::fleet::verbs::roster_edit::{append_agent, remove_agent, NewAgent};
use crate::shared::profile::{Profile, Roster};

fn names(text: &str) -> Vec<String> {
    let roster: Roster = serde_yaml_ng::from_str(text).expect("parses");
    roster.agents.into_iter().map(|a| a.name).collect()
}

fn new_agent() -> NewAgent {
    NewAgent {
        name: "added-1".into(),
        runtime: "codex".into(),
        class: Some("worker".into()),
        model_hint: Some("gpt-5".into()),
        working_directory: Some("~/src/new".into()),
        command: Some(r#"echo "hi" $HOME # not a comment"#.into()),
    }
}

#[test]
fn appending_keeps_every_byte_and_removing_restores_the_original() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/fleet"),
        "rosters/*.yaml",
        |path| {
            let original = std::fs::read_to_string(path).unwrap();

            let added = append_agent(&original, &new_agent()).unwrap();

            let profile = Profile::parse("t", &path.display().to_string(), &added)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let agent = profile.roster.agents.last().unwrap();
            assert_eq!(agent.name, "added-1");
            assert_eq!(agent.command.as_deref(), new_agent().command.as_deref());
            assert_eq!(agent.working_directory.as_deref(), Some("~/src/new"));
            insta::with_settings!({
                snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/snapshots"),
                prepend_module_to_snapshot => false,
                omit_expression => true,
            }, {
                insta::assert_snapshot!("fleet_roster_add", added.as_str());
            });

            // The edit is one contiguous block of new lines (plus the final
            // newline a file without one gets): cutting it gives the original.
            let mut terminated = original.clone();
            if !terminated.ends_with('\n') {
                terminated.push('\n');
            }
            assert_eq!(remove_agent(&added, "added-1").unwrap(), terminated);
        }
    );
}

#[test]
fn removing_any_agent_leaves_exactly_the_others() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/fleet"),
        "rosters/*.yaml",
        |path| {
            let original = std::fs::read_to_string(path).unwrap();
            let all = names(&original);
            for name in &all {
                let out = remove_agent(&original, name)
                    .unwrap_or_else(|err| panic!("{}: removing {name}: {err}", path.display()));
                let expected: Vec<String> = all.iter().filter(|n| *n != name).cloned().collect();
                assert_eq!(names(&out), expected, "{}", path.display());
                assert!(out.len() < original.len());
                for line in out.lines() {
                    assert!(
                        original.contains(line),
                        "{}: new line {line:?}",
                        path.display()
                    );
                }
            }
        }
    );
}
