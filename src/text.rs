//! Text helpers every layer uses: one-line SQL and errors, `; `-joined lists, durations with units.
//! A leaf: depends on nothing in the crate, so the core and every shell can use it.

/// `s` on one line, at most `max` chars, with an ellipsis when cut.
pub fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The first line of a (multi-line: what, why, what next) message.
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A run's length for humans: `0.4s` under ten seconds, else `3m12s`.
pub fn human_elapsed(d: std::time::Duration) -> String {
    if d.as_secs() < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        human_duration_s(d.as_secs_f64())
    }
}

/// The items on one line, separated by `; ` (blockers, drift).
pub fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `4s`, `3m12s`, `2h05m`, `3d4h`.
pub fn human_duration_s(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_and_cuts_with_an_ellipsis() {
        assert_eq!(one_line("SELECT\n  1,\t2", 20), "SELECT 1, 2");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }

    #[test]
    fn first_line_of_empty_is_empty() {
        assert_eq!(first_line(""), "");
        assert_eq!(first_line("what\nwhy"), "what");
    }

    #[test]
    fn durations_keep_their_unit() {
        assert_eq!(human_duration_s(4.2), "4s");
        assert_eq!(human_duration_s(192.0), "3m12s");
        assert_eq!(human_duration_s(7500.0), "2h05m");
        assert_eq!(human_duration_s(273600.0), "3d4h");
    }
}
