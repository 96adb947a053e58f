//! What every line a container sends becomes before anything looks at it: the parser's
//! and the file comparison's one rule, in a room of its own that both import.

/// Control characters (C0, DEL, C1) become spaces; at most `max` characters are kept.
pub fn clean(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
