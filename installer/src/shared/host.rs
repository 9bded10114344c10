//! Hosts: which machine a run acts for, and which roster agents live there.
//!
//! A roster may spread its agents over many machines with each agent's
//! `host:`. One run of `mosaic-install` (or `mosaic-fleet`) acts for one
//! host: `--host NAME`, else the host the last install in this home was for
//! (its receipt), else this machine's hostname. An agent runs on that host
//! when its `host:` is absent, `localhost` or `local`, or names the host —
//! compared without regard to ASCII case, and a bare name matches the first
//! label of a dotted one (`box2` is `box2.example.com`), so the short and the
//! full hostname both work.

/// The `host:` values that always mean "the machine this roster is on".
const THIS_MACHINE: [&str; 2] = ["localhost", "local"];

/// This machine's hostname as the kernel reports it (`hostname`), or
/// `localhost` when it cannot be read.
pub(crate) fn machine() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates, and we read up to the first NUL only.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match String::from_utf8_lossy(&buf[..end]).trim() {
        name if ok && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

/// The first label of a host name (`box2` of `box2.example.com`): the label
/// the messaging preamble shows, as `hostname -s` prints it.
pub(crate) fn short(host: &str) -> &str {
    host.split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(host)
}

/// Whether an agent whose roster `host:` is `roster_host` runs on `this`.
pub(crate) fn runs_on(roster_host: Option<&str>, this: &str) -> bool {
    match roster_host {
        None => true,
        Some(name) if THIS_MACHINE.contains(&name) => true,
        Some(name) => same_host(name, this),
    }
}

/// Two spellings of one host: equal ignoring ASCII case, or one is the bare
/// first label of the other.
pub(crate) fn same_host(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    let bare_matches = |bare: &str, dotted: &str| {
        !bare.contains('.') && dotted.contains('.') && short(dotted).eq_ignore_ascii_case(bare)
    };
    bare_matches(a, b) || bare_matches(b, a)
}

/// A problem with a `--host` value, or None when it can name a host.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.starts_with('-') {
        Some("starts with `-`")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace or a control character")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_local_names_run_everywhere() {
        for host in [None, Some("localhost"), Some("local")] {
            assert!(runs_on(host, "box1"), "{host:?}");
        }
    }

    #[test]
    fn names_match_ignoring_case_and_domain() {
        assert!(runs_on(Some("box2"), "box2"));
        assert!(runs_on(Some("BOX2"), "box2"));
        assert!(runs_on(Some("box2"), "box2.example.com"));
        assert!(runs_on(Some("box2.example.com"), "box2"));
        assert!(runs_on(Some("box2.example.com"), "Box2.Example.Com"));
        assert!(!runs_on(Some("box2"), "box1"));
        assert!(!runs_on(Some("box2"), "box20"));
        assert!(!runs_on(Some("box2.dc1"), "box2.dc2"));
    }

    #[test]
    fn short_is_the_first_label() {
        assert_eq!(short("box2.example.com"), "box2");
        assert_eq!(short("box2"), "box2");
    }

    #[test]
    fn machine_name_is_never_empty() {
        assert!(!machine().is_empty());
    }

    #[test]
    fn host_flag_values() {
        assert_eq!(name_problem("host-a"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("-oProxyCommand=x").is_some());
        assert!(name_problem("a b").is_some());
    }
}
