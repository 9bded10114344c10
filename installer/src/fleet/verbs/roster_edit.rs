//! Text edits of the operator's roster that keep every comment and every
//! formatting choice: an agent is appended as text after the last item of
//! the `agents:` block, or its item's lines are cut out. Neither function
//! trusts itself: the result is parsed again and must have exactly the
//! agents expected (the caller then validates the whole roster) before
//! anything is written.

use crate::shared::profile::Roster;

/// The fields `agent add` writes, in this order.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewAgent {
    pub(crate) name: String,
    pub(crate) runtime: String,
    pub(crate) class: Option<String>,
    pub(crate) model_hint: Option<String>,
    pub(crate) working_directory: Option<String>,
    pub(crate) command: Option<String>,
}

/// The `agents:` block of a roster, by line index.
struct AgentsBlock {
    /// Indent of the items' `-`.
    item_indent: usize,
    /// Lines that start an item.
    items: Vec<usize>,
    /// Last line that belongs to the list (an item's content or an
    /// indented comment); the `agents:` line when the list is empty.
    last: usize,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

fn is_item(line: &str) -> bool {
    let trimmed = line.trim_start_matches(' ');
    trimmed == "-" || trimmed.starts_with("- ") || trimmed.starts_with("-\t")
}

fn find_block(lines: &[&str]) -> Result<AgentsBlock, String> {
    let key = lines
        .iter()
        .position(|line| {
            ["agents:", "\"agents\":", "'agents':"]
                .iter()
                .any(|k| line.starts_with(k))
        })
        .ok_or("it has no top-level `agents:` key")?;
    let after_key = lines[key]
        .split_once(':')
        .map_or("", |(_, rest)| rest)
        .trim();
    if !(after_key.is_empty() || after_key.starts_with('#')) {
        return Err(
            "its `agents:` list is written inline (flow style); write one item per line (`- name: ...`) to let mosaic-fleet edit it"
                .into(),
        );
    }
    let mut block = AgentsBlock {
        item_indent: 2,
        items: Vec::new(),
        last: key,
    };
    for (at, line) in lines.iter().enumerate().skip(key + 1) {
        let top_level = indent(line) == 0 && !line.trim().is_empty();
        if top_level && !line.starts_with('#') && !line.starts_with('-') {
            break;
        }
        if is_blank_or_comment(line) && indent(line) == 0 {
            continue;
        }
        if is_item(line) && (block.items.is_empty() || indent(line) == block.item_indent) {
            if block.items.is_empty() {
                block.item_indent = indent(line);
            }
            block.items.push(at);
        }
        if !line.trim().is_empty() {
            block.last = at;
        }
    }
    Ok(block)
}

/// A YAML scalar for `value`: plain when it reads back as the same string,
/// double-quoted (JSON escapes are YAML's) otherwise.
fn scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.contains(['#', ':', '\''])
        && serde_yaml_ng::from_str::<serde_yaml_ng::Value>(value)
            .is_ok_and(|v| v.as_str() == Some(value));
    if plain {
        value.to_owned()
    } else {
        serde_json::to_string(value).expect("strings serialize")
    }
}

fn agent_names(text: &str) -> Option<Vec<String>> {
    let roster: Roster = serde_yaml_ng::from_str(text).ok()?;
    Some(roster.agents.into_iter().map(|a| a.name).collect())
}

/// The roster text with `agent` appended as the last item of `agents:`.
pub(crate) fn append_agent(text: &str, agent: &NewAgent) -> Result<String, String> {
    let before = agent_names(text).ok_or("it does not parse as a roster")?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let block = find_block(&lines)?;
    let pad = " ".repeat(block.item_indent);
    let mut item = format!("{pad}- name: {}\n", scalar(&agent.name));
    let mut field = |key: &str, value: Option<&String>| {
        if let Some(value) = value {
            item.push_str(&format!("{pad}  {key}: {}\n", scalar(value)));
        }
    };
    field("runtime", Some(&agent.runtime));
    field("class", agent.class.as_ref());
    field("model_hint", agent.model_hint.as_ref());
    field("working_directory", agent.working_directory.as_ref());
    field("command", agent.command.as_ref());

    let mut out = String::with_capacity(text.len() + item.len() + 1);
    for (at, line) in lines.iter().enumerate() {
        out.push_str(line);
        if at == block.last {
            if !line.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&item);
        }
    }
    let mut expected = before;
    expected.push(agent.name.clone());
    check(&out, &expected)?;
    Ok(out)
}

/// The roster text without the item of the agent called `name`.
pub(crate) fn remove_agent(text: &str, name: &str) -> Result<String, String> {
    let before = agent_names(text).ok_or("it does not parse as a roster")?;
    let expected: Vec<String> = before.iter().filter(|n| *n != name).cloned().collect();
    if expected.len() == before.len() {
        return Err(format!("it has no agent `{name}`"));
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let block = find_block(&lines)?;
    for (index, &start) in block.items.iter().enumerate() {
        let next = block
            .items
            .get(index + 1)
            .copied()
            .unwrap_or(block.last + 1);
        // The item's own lines: up to the next item, less the blank lines
        // and shallow comments that sit between items.
        let mut end = next;
        while end > start + 1
            && is_blank_or_comment(lines[end - 1])
            && indent(lines[end - 1]) <= block.item_indent
        {
            end -= 1;
        }
        let out: String = lines[..start].concat() + &lines[end..].concat();
        if agent_names(&out).as_ref() == Some(&expected) {
            return Ok(out);
        }
    }
    Err(format!(
        "the item of agent `{name}` could not be told apart from its neighbours; remove it by hand"
    ))
}

fn check(text: &str, expected: &[String]) -> Result<(), String> {
    match agent_names(text) {
        Some(names) if names == expected => Ok(()),
        Some(names) => Err(format!(
            "the edit would leave the agents {names:?} instead of {expected:?}"
        )),
        None => Err("the edited roster would not parse".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROSTER: &str = "# my fleet\nversion: 1\ntransport: tmux\nagents:\n  # the first\n  - name: a\n    runtime: claude # inline\n\n  - {name: b, runtime: codex}\n# end of agents\ntmux:\n  socket_name: s\n";

    fn agent(name: &str) -> NewAgent {
        NewAgent {
            name: name.into(),
            runtime: "pi".into(),
            ..NewAgent::default()
        }
    }

    #[test]
    fn append_goes_after_the_last_item_and_keeps_comments() {
        let out = append_agent(ROSTER, &agent("c")).unwrap();
        assert!(out.contains(
            "  - {name: b, runtime: codex}\n  - name: c\n    runtime: pi\n# end of agents\n"
        ));
        assert!(out.starts_with("# my fleet\n"));
    }

    #[test]
    fn append_then_remove_gives_back_the_original() {
        let out = append_agent(ROSTER, &agent("c")).unwrap();
        assert_eq!(remove_agent(&out, "c").unwrap(), ROSTER);
    }

    #[test]
    fn remove_cuts_only_that_item() {
        let out = remove_agent(ROSTER, "a").unwrap();
        assert_eq!(
            out,
            "# my fleet\nversion: 1\ntransport: tmux\nagents:\n  # the first\n\n  - {name: b, runtime: codex}\n# end of agents\ntmux:\n  socket_name: s\n"
        );
    }

    #[test]
    fn items_at_column_zero_and_no_final_newline() {
        let text = "version: 1\ntransport: tmux\nagents:\n- name: a\n  runtime: claude";
        let out = append_agent(text, &agent("b")).unwrap();
        assert!(out.ends_with("runtime: claude\n- name: b\n  runtime: pi\n"));
    }

    #[test]
    fn tricky_values_are_quoted() {
        assert_eq!(scalar("~/src/x"), "~/src/x");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("echo \"a\" # b"), r#""echo \"a\" # b""#);
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("it's"), "\"it's\"");
        let mut with_command = agent("c");
        with_command.command = Some("sh -c 'echo $HOME' # x: y".into());
        let out = append_agent(ROSTER, &with_command).unwrap();
        let roster: Roster = serde_yaml_ng::from_str(&out).unwrap();
        assert_eq!(
            roster.agents[2].command.as_deref(),
            Some("sh -c 'echo $HOME' # x: y")
        );
    }

    #[test]
    fn flow_style_list_is_refused() {
        let text = "version: 1\ntransport: tmux\nagents: [{name: a, runtime: claude}]\n";
        assert!(append_agent(text, &agent("b"))
            .unwrap_err()
            .contains("flow style"));
    }
}

#[cfg(test)]
mod fixture_tests;
