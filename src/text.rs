//! Text helpers every layer uses: one-line SQL and errors, `; `-joined lists, durations with units,
//! counts with thousands separators, percentages.
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

/// `72ms`, `1.2s`, `3m12s`: a measured duration, always with its unit (milliseconds below a
/// second, one decimal below ten seconds, then [`human_duration_s`]).
pub fn human_duration_ms(ms: i64) -> String {
    match ms {
        ..1000 => format!("{}ms", ms.max(0)),
        1000..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => human_duration_s(ms as f64 / 1000.0),
    }
}

/// [`human_duration_ms`] of a `Duration`.
pub fn took(d: std::time::Duration) -> String {
    human_duration_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `135000` → `135,000`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// ` 42%` (four columns) of a fraction 0.0..=1.0; never `100%` before it is done; `   ?` unknown.
pub fn percent(fraction: Option<f64>) -> String {
    match fraction {
        Some(f) if f < 1.0 => format!("{:>3}%", ((f * 100.0).floor() as i64).min(99)),
        Some(_) => "100%".into(),
        None => "   ?".into(),
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
        assert_eq!(human_duration_ms(72), "72ms");
        assert_eq!(human_duration_ms(-3), "0ms");
        assert_eq!(human_duration_ms(1234), "1.2s");
        assert_eq!(human_duration_ms(192_000), "3m12s");
        assert_eq!(took(std::time::Duration::from_millis(72)), "72ms");
    }

    #[test]
    fn counts_and_percentages_read_as_the_screen_shows_them() {
        assert_eq!(count(135_000), "135,000");
        assert_eq!(count(-1_234_567), "-1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(percent(Some(0.999)), " 99%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(None), "   ?");
    }
}
