//! Text from outside the binary made safe for a terminal. Server names and versions,
//! container logs, exec output, file and folder names and process command lines are all
//! written by someone else; an ESC in them would drive the user's terminal (move the
//! cursor, rewrite earlier lines, set the window title) and a CR or a bidi override
//! would make a line say something it does not. Every such character is shown as an
//! escape (`\x1b`, `\u{202e}`) instead, so the only escape sequences pd-doctor prints
//! are its renderer's own colours.

use std::borrow::Cow;
use std::fmt::Write;
use std::time::Duration;

/// Characters that change how a terminal shows text rather than being text.
fn is_control(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_control(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_control(c) || keep(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// One line of outside text: every control character escaped, line breaks included.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// Several lines of text: line breaks and tabs stay, every other control is escaped.
pub fn block(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// A duration as a person reads it, to the millisecond (`1s 500ms`).
pub fn duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_reach_the_terminal_as_text() {
        assert_eq!(line("qms\x1b]0;pwned\x07"), "qms\\x1b]0;pwned\\x07");
        assert_eq!(line("a\rb\x08c\u{9b}d"), "a\\x0db\\x08c\\u{9b}d");
        assert_eq!(line("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(line("two\nlines"), "two\\x0alines");
        assert_eq!(block("two\nlines\t\x1b[2J"), "two\nlines\t\\x1b[2J");
        assert!(matches!(line("plain ünïcode ✓"), Cow::Borrowed(_)));
    }
}
