//! A stand-in for an AI coding TUI (Claude Code, Codex...), for the
//! delivery tests and `cargo xtask bench send`: it takes the terminal out of
//! line mode, asks for bracketed paste, keeps an input line on the cursor
//! row (`> ` and the end of what was typed; `[+N lines]` before it for a
//! multi-line input), takes a paste whole (newlines included) and submits
//! the whole input on Enter. Every submission, empty ones included, is
//! appended to the log as one JSON line `{"n":1,"text":"..."}`; the text
//! then moves into the transcript above the input line.
//!
//! ```text
//! stand-in-tui --log FILE [--slow-start SECS] [--flush-at-start]
//!              [--keep-after-enter MS] [--summarise-over CHARS] [--park-cursor]
//!              [--ignore-enter]
//! ```
//!
//! - `--slow-start SECS`: stay in line mode (the terminal's own echo and
//!   line editing) for SECS before taking the keyboard, as a program that
//!   loads for a while does; what is typed meanwhile is read afterwards.
//! - `--flush-at-start`: discard pending input when taking the keyboard.
//! - `--keep-after-enter MS`: after Enter, keep the text on the input line
//!   for MS (busy) before clearing it; keys pressed meanwhile wait.
//! - `--summarise-over CHARS`: show a paste longer than CHARS characters as
//!   `[Pasted text #K +L lines]` instead of its text.
//! - `--park-cursor`: draw a status line under the input line and leave the
//!   terminal's cursor on the row below it, as ink-based TUIs do (they hide
//!   the cursor and draw their own caret): the input line is then not the
//!   cursor's row.
//! - `--ignore-enter`: never submit (a program that is not taking input):
//!   whatever is typed stays on the input line.
//!
//! It prints `stand-in TUI ready` once it reads keys.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

struct Options {
    log: PathBuf,
    slow_start: Duration,
    flush_at_start: bool,
    keep_after_enter: Duration,
    summarise_over: Option<usize>,
    park_cursor: bool,
    ignore_enter: bool,
}

fn options() -> Options {
    let mut options = Options {
        log: PathBuf::new(),
        slow_start: Duration::ZERO,
        flush_at_start: false,
        keep_after_enter: Duration::ZERO,
        summarise_over: None,
        park_cursor: false,
        ignore_enter: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--log" => options.log = PathBuf::from(value()),
            "--slow-start" => options.slow_start = Duration::from_secs_f64(number(&value())),
            "--flush-at-start" => options.flush_at_start = true,
            "--keep-after-enter" => {
                options.keep_after_enter = Duration::from_millis(number(&value()) as u64)
            }
            "--summarise-over" => options.summarise_over = Some(number(&value()) as usize),
            "--park-cursor" => options.park_cursor = true,
            "--ignore-enter" => options.ignore_enter = true,
            other => usage(&format!("unknown option {other}")),
        }
    }
    if options.log.as_os_str().is_empty() {
        usage("--log FILE is required");
    }
    options
}

fn number(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|_| usage(&format!("`{text}` is not a number")))
}

fn usage(problem: &str) -> ! {
    eprintln!("stand-in-tui: {problem}");
    std::process::exit(2)
}

/// Where the byte parser is.
enum Parse {
    Text,
    Escape,
    Csi(Vec<u8>),
}

struct Tui {
    options: Options,
    log: File,
    submitted: u64,
    input: Vec<u8>,
    pasting: bool,
    paste_start: usize,
    pastes: u64,
    /// The summary shown for the input up to `summary_end`.
    summary: Option<(String, usize)>,
    parse: Parse,
    /// With --park-cursor: a frame (input line, status line) is on screen.
    framed: bool,
}

fn main() {
    let options = options();
    let log = File::options()
        .create(true)
        .append(true)
        .open(&options.log)
        .unwrap_or_else(|e| usage(&format!("cannot open {}: {e}", options.log.display())));
    print("stand-in TUI: loading\n");
    std::thread::sleep(options.slow_start);
    take_keyboard(options.flush_at_start);
    print("\x1b[?2004hstand-in TUI ready\n");
    let mut tui = Tui {
        options,
        log,
        submitted: 0,
        input: Vec::new(),
        pasting: false,
        paste_start: 0,
        pastes: 0,
        summary: None,
        parse: Parse::Text,
        framed: false,
    };
    tui.render();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a live buffer of its own length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        for &byte in &buf[..n as usize] {
            tui.byte(byte);
        }
        if !(tui.pasting && tui.options.summarise_over.is_some()) {
            tui.render();
        }
    }
}

/// Raw input (no line mode, no echo, no signals, CR stays CR); output
/// processing stays on.
fn take_keyboard(flush: bool) {
    // SAFETY: termios is plain old data; fd 0 is the pane's terminal.
    unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut termios) != 0 {
            usage("stdin is not a terminal");
        }
        termios.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
        termios.c_iflag &= !(libc::ICRNL | libc::INLCR | libc::IXON);
        termios.c_cc[libc::VMIN] = 1;
        termios.c_cc[libc::VTIME] = 0;
        libc::tcsetattr(0, libc::TCSANOW, &termios);
        if flush {
            libc::tcflush(0, libc::TCIFLUSH);
        }
    }
}

fn print(text: &str) {
    write(&text.replace('\n', "\r\n"));
}

impl Tui {
    fn byte(&mut self, byte: u8) {
        match std::mem::replace(&mut self.parse, Parse::Text) {
            Parse::Escape if byte == b'[' => self.parse = Parse::Csi(Vec::new()),
            Parse::Escape => {}
            Parse::Csi(mut seq) => {
                if (0x40..=0x7e).contains(&byte) {
                    seq.push(byte);
                    self.sequence(&seq);
                } else {
                    seq.push(byte);
                    self.parse = Parse::Csi(seq);
                }
            }
            Parse::Text if byte == 0x1b => self.parse = Parse::Escape,
            Parse::Text if self.pasting => match byte {
                b'\r' => self.input.push(b'\n'),
                other => self.input.push(other),
            },
            Parse::Text => match byte {
                b'\r' | b'\n' if self.options.ignore_enter => {}
                b'\r' | b'\n' => self.submit(),
                0x7f | 0x08 => {
                    while let Some(last) = self.input.pop() {
                        if last & 0xc0 != 0x80 {
                            break;
                        }
                    }
                }
                b'\t' => self.input.push(byte),
                other if other < 0x20 => {}
                other => self.input.push(other),
            },
        }
    }

    fn sequence(&mut self, seq: &[u8]) {
        match seq {
            b"200~" => {
                self.pasting = true;
                self.paste_start = self.input.len();
            }
            b"201~" => {
                self.pasting = false;
                let pasted = String::from_utf8_lossy(&self.input[self.paste_start..]);
                let chars = pasted.chars().count();
                if self
                    .options
                    .summarise_over
                    .is_some_and(|limit| chars > limit)
                {
                    self.pastes += 1;
                    let lines = pasted.split('\n').count();
                    let summary = format!("[Pasted text #{} +{lines} lines]", self.pastes);
                    self.summary = Some((summary, self.input.len()));
                }
            }
            _ => {}
        }
    }

    fn submit(&mut self) {
        let text = String::from_utf8_lossy(&self.input).into_owned();
        self.submitted += 1;
        let line = serde_json::json!({ "n": self.submitted, "text": text }).to_string();
        let _ = self.log.write_all(format!("{line}\n").as_bytes());
        let _ = self.log.flush();
        std::thread::sleep(self.options.keep_after_enter);
        let last = text.rsplit('\n').next().unwrap_or("");
        let entry = format!("• {}\r\n", tail(last, width().saturating_sub(4)));
        write(&format!("{}{entry}", self.clear_frame()));
        self.framed = false;
        self.input.clear();
        self.summary = None;
    }

    /// What puts the cursor back at the start of the input line, cleared
    /// from there to the end of the screen.
    fn clear_frame(&self) -> &'static str {
        match (self.options.park_cursor, self.framed) {
            (true, true) => "\x1b[2A\r\x1b[J",
            _ => "\r\x1b[K",
        }
    }

    /// The input line: `> `, then `[+N lines] ` and the end of the last line
    /// (and, with --park-cursor, the status line and the parked cursor).
    fn render(&mut self) {
        let room = width().saturating_sub(4);
        let line = match &self.summary {
            Some((summary, end)) => {
                let after = String::from_utf8_lossy(&self.input[*end..]).into_owned();
                format!(
                    "{summary} {}",
                    tail(&after, room.saturating_sub(summary.len() + 1))
                )
            }
            None => {
                let text = String::from_utf8_lossy(&self.input);
                let lines = text.split('\n').count();
                let last = text.rsplit('\n').next().unwrap_or("");
                let more = if lines > 1 {
                    format!("[+{} lines] ", lines - 1)
                } else {
                    String::new()
                };
                format!("{more}{}", tail(last, room.saturating_sub(more.len())))
            }
        };
        let status = if self.options.park_cursor {
            "\r\n  ? for shortcuts\r\n"
        } else {
            ""
        };
        write(&format!("{}> {line}{status}", self.clear_frame()));
        self.framed = true;
    }
}

fn write(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The end of `text` that fits in `room` columns (wide characters count 2,
/// a tab 8), so the input line never wraps.
fn tail(text: &str, room: usize) -> String {
    let mut used = 0;
    let mut kept: Vec<char> = Vec::new();
    for c in text.chars().rev() {
        let width = match c {
            '\t' => 8,
            c if u32::from(c) >= 0x1100 => 2,
            _ => 1,
        };
        if used + width > room {
            break;
        }
        used += width;
        kept.push(c);
    }
    kept.iter().rev().collect()
}

fn width() -> usize {
    // SAFETY: winsize is plain old data; TIOCGWINSZ fills it or fails.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}
