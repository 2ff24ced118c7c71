//! No input may panic: many generated strings (seeded, so a failure reproduces) through every
//! parser of operator input: durations and their ranges, counts, revisions, step specs, migration
//! file names, `new` descriptions, connection strings and the secret redaction.

use std::time::Duration;

use crate::config;

/// Pieces that tend to break parsers: digits and units, signs, dots, exponents, huge numbers,
/// quotes and escapes, URL and key=value punctuation, whitespace, multi-byte and odd characters.
const PIECES: &[&str] = &[
    "0",
    "1",
    "9",
    "00",
    "99999999999999999999",
    "2147483647",
    "4294967296",
    ".",
    "-",
    "+",
    "e",
    "E",
    "ms",
    "s",
    "m",
    "min",
    "h",
    "d",
    "NaN",
    "inf",
    " ",
    "\t",
    "\n",
    "'",
    "\"",
    "\\",
    "=",
    "@",
    ":",
    "/",
    "?",
    "&",
    "%",
    "%4",
    "%zz",
    "#",
    "_",
    "base",
    "head",
    "postgres://",
    "password",
    "host",
    ".up.sql",
    ".down.sql",
    "ü",
    "é",
    "😀",
    "\u{301}",
    "\u{0}",
    "ÿ",
    "ß",
    "İ",
    "\u{feff}",
    "a",
    "Z",
];

fn generate(rng: &mut fastrand::Rng) -> String {
    let n = rng.usize(0..12);
    (0..n).map(|_| PIECES[rng.usize(..PIECES.len())]).collect()
}

fn cases() -> impl Iterator<Item = String> {
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    (0..20_000).map(move |_| generate(&mut rng))
}

#[test]
fn duration_and_count_parsers_never_panic_and_respect_their_ranges() {
    let ranges = [
        config::LOCK_TIMEOUT_RANGE,
        config::STATEMENT_TIMEOUT_RANGE,
        config::LOCK_WAIT_RANGE,
        config::TERMINATE_AFTER_RANGE,
    ];
    for s in cases() {
        if let Ok(d) = config::parse_duration(&s) {
            // What is shown parses back to the same milliseconds.
            let shown = config::format_duration(d);
            let back = config::parse_duration(&shown).unwrap();
            assert_eq!(back.as_millis(), d.as_millis(), "{s:?} -> {shown:?}");
        }
        for r in &ranges {
            if let Ok(d) = r.parse(&s) {
                assert!(
                    d.is_zero() && r.zero_refused.is_none() || (d >= r.min && d <= r.max),
                    "{s:?} gave {d:?} outside {r:?}"
                );
                assert!(d <= config::SERVER_MAX_TIMEOUT.max(Duration::from_secs(24 * 3600)));
            }
        }
        if let Ok(n) = config::retries_arg(&s) {
            assert!(config::RETRIES_RANGE.contains(&n), "{s:?} gave {n}");
        }
    }
}

#[test]
fn name_and_revision_parsers_never_panic() {
    use crate::plan::{Direction, TargetSpec};
    for s in cases() {
        crate::catalog::Revision::parse(&s);
        TargetSpec::parse(&s, Direction::Up).ok();
        TargetSpec::parse(&s, Direction::Down).ok();
        if let Ok((v, name)) = crate::catalog::parse_stem(&s) {
            assert!(v > 0 && !name.is_empty(), "{s:?}");
        }
        let slug = crate::ops::new::slug(&s);
        assert!(
            slug.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{s:?} -> {slug:?}"
        );
        for max in [0, 1, 2, 5, 63] {
            assert!(crate::db::truncate_bytes(&s, max).len() <= max);
        }
    }
}

#[test]
fn connection_strings_and_redaction_never_panic() {
    for s in cases() {
        config::ConnInfo::parse(&s).ok();
        crate::config::tls_params::split(&s).ok();
        let once = crate::secrets::redact(&s).into_owned();
        // Redacting twice changes nothing more: the mask itself is not a secret.
        assert_eq!(crate::secrets::redact(&once), once, "{s:?}");
    }
}
