//! Finding the line a validation error is about. serde gives positions only
//! for syntax errors, so semantic errors are located in the text: a key path
//! (`tmux` → `socket_name`) or the n-th agent item and one of its fields,
//! skipping comments. Block and flow style are both understood well enough
//! to point at the right line; when in doubt it points at the enclosing item.

pub(super) struct Locator<'a> {
    /// Lines with comments blanked out.
    lines: Vec<&'a str>,
    /// 0-based line index of each agent item's start.
    agent_starts: Vec<usize>,
    /// 0-based line index where the agents list ends (exclusive).
    agents_end: usize,
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Does `line` hold key `key` (in block or flow style)?
fn has_key(line: &str, key: &str) -> bool {
    let body = line.trim_start().trim_start_matches("- ").trim_start();
    let key_colon = format!("{key}:");
    body.starts_with(&key_colon)
        || line.contains(&format!("{{{key_colon}"))
        || line.contains(&format!("{{ {key_colon}"))
        || line.contains(&format!(", {key_colon}"))
}

/// `a|b` lists a key's accepted spellings.
fn has_any_key(line: &str, keys: &str) -> bool {
    keys.split('|').any(|key| has_key(line, key))
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str) -> Locator<'a> {
        let lines: Vec<&str> = text.lines().map(strip_comment).collect();
        let mut agent_starts = Vec::new();
        let mut agents_end = lines.len();
        if let Some(at) = lines
            .iter()
            .position(|l| indent(l) == 0 && has_key(l, "agents"))
        {
            let mut item_indent = None;
            for (index, line) in lines.iter().enumerate().skip(at + 1) {
                if line.trim().is_empty() {
                    continue;
                }
                let trimmed = line.trim_start();
                if indent(line) == 0 && !trimmed.starts_with('-') {
                    agents_end = index;
                    break;
                }
                let is_item = trimmed.starts_with("- ") || trimmed == "-";
                if is_item && item_indent.is_none_or(|i| i == indent(line)) {
                    item_indent = Some(indent(line));
                    agent_starts.push(index);
                }
            }
            if agent_starts.is_empty() {
                agent_starts.push(at);
            }
        }
        Locator {
            lines,
            agent_starts,
            agents_end,
        }
    }

    /// 1-based line of a key path, each step a key (or `a|b` spellings)
    /// nested under the previous one.
    pub(super) fn key(&self, path: &[&str]) -> Option<usize> {
        let mut from = 0;
        let mut end = self.lines.len();
        let mut found = None;
        let mut min_indent = 0;
        for step in path {
            let at = (from..end).find(|&i| {
                let line = self.lines[i];
                indent(line) >= min_indent && has_any_key(line, step)
            })?;
            found = Some(at);
            min_indent = indent(self.lines[at]) + 1;
            from = at + 1;
            end = (from..self.lines.len())
                .find(|&i| {
                    let line = self.lines[i];
                    !line.trim().is_empty() && indent(line) < min_indent
                })
                .unwrap_or(self.lines.len());
            // A flow mapping keeps its nested keys on the same line.
            if self.lines[at].contains('{') {
                from = at;
            }
        }
        found.map(|i| i + 1)
    }

    /// 1-based line of `field` (or `a|b` spellings) of the `index`-th agent,
    /// else of the agent item itself.
    pub(super) fn agent(&self, index: usize, field: &str) -> Option<usize> {
        let start = *self.agent_starts.get(index)?;
        let end = self
            .agent_starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.agents_end);
        let line = (start..end.max(start + 1))
            .find(|&i| has_any_key(self.lines[i], field))
            .unwrap_or(start);
        Some(line + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# runtime: in a comment\nversion: 1\ntmux:\n  socketName: a/b\n\
                        agents:\n  - name: a\n    runtime: gpt\n  - {name: b, runtime: x}\n\
                        runtimes:\n  claude:\n    reset_command: r\n";

    #[test]
    fn keys_are_found_below_their_parents() {
        let locate = Locator::new(TEXT);
        assert_eq!(locate.key(&["version"]), Some(2));
        assert_eq!(locate.key(&["tmux", "socket_name|socketName"]), Some(4));
        assert_eq!(
            locate.key(&["runtimes", "claude", "reset_command|resetCommand"]),
            Some(11)
        );
        assert_eq!(locate.key(&["defaults"]), None);
    }

    #[test]
    fn agent_fields_point_at_their_own_line() {
        let locate = Locator::new(TEXT);
        assert_eq!(locate.agent(0, "runtime"), Some(7));
        assert_eq!(locate.agent(0, "socket"), Some(6));
        assert_eq!(locate.agent(1, "runtime"), Some(8));
        assert_eq!(locate.agent(2, "runtime"), None);
    }

    #[test]
    fn unindented_items_and_camel_case_fields() {
        let text = "agents:\n- name: a\n  modelHint: m\n- name: b\nversion: 1\n";
        let locate = Locator::new(text);
        assert_eq!(locate.agent(0, "model_hint|modelHint"), Some(3));
        assert_eq!(locate.agent(1, "runtime"), Some(4));
    }
}
