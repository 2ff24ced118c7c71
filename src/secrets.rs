//! Secrets stay secret: the one redaction applied to every text pgshift shows or stores (errors,
//! `--json`, the log file, audit rows, `application_name`, progress lines).
//!
//! It finds passwords in every form libpq accepts, wherever they sit in a longer text:
//! - URL userinfo: `postgres://user:secret@host/db` becomes `postgres://user@host/db`;
//! - URL query parameters: `?password=secret&...` (keys percent-decoded, as libpq does);
//! - `key = value` pairs: `password=secret`, `password = 'x y'`, `password='it\'s'`, and any key
//!   ending in `password` (`sslpassword`, `PGPASSWORD=...`), also quoted keys (`"password": "x"`).
//!
//! When in doubt it redacts more (an unterminated quoted value runs to the end of the text), never
//! less. Structured values ([`crate::config::ConnInfo`]) never hold their password in `Display` or
//! `Debug` at all; this is for free text that may contain what an operator typed.

use std::borrow::Cow;

/// What a password is replaced with.
pub const MASK: &str = "[redacted]";

/// `text` with every password in it replaced. Never panics, whatever the input.
pub fn redact(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out = String::new();
    // `text[copied..i]` is still to be copied; every index used to slice is at an ASCII byte (or
    // the end), so slices stay on character boundaries.
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"://") {
            let start = i + 3;
            let end = b[start..]
                .iter()
                .position(u8::is_ascii_whitespace)
                .map_or(b.len(), |p| start + p);
            if let Some(url) = redact_url_rest(&text[start..end]) {
                out.push_str(&text[copied..start]);
                out.push_str(&url);
                copied = end;
            }
            i = end;
            continue;
        }
        if starts_key(b, i)
            && let Some((value_start, value_end)) = password_value(b, i)
        {
            out.push_str(&text[copied..value_start]);
            out.push_str(MASK);
            copied = value_end;
            i = value_end;
            continue;
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Whether `text` holds a password in any form [`redact`] knows.
pub fn contains_password(text: &str) -> bool {
    matches!(redact(text), Cow::Owned(_))
}

/// Redact every string inside a JSON value (audit details).
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn starts_key(b: &[u8], i: usize) -> bool {
    is_ident(b[i]) && (i == 0 || !is_ident(b[i - 1]))
}

/// Is this (decoded) parameter name a password?
fn is_password_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("password")
}

/// At a key starting at `i`: when it is a password key followed by `=` (or `:` after a quoted
/// key) and a value, the byte span of that value.
fn password_value(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    while j < b.len() && is_ident(b[j]) {
        j += 1;
    }
    // The key is ASCII (identifier bytes), so this cannot fail.
    if !is_password_key(std::str::from_utf8(&b[i..j]).ok()?) {
        return None;
    }
    let quoted_key = i > 0 && matches!(b[i - 1], b'"' | b'\'') && b.get(j) == Some(&b[i - 1]);
    if quoted_key {
        j += 1;
    }
    while j < b.len() && matches!(b[j], b' ' | b'\t') {
        j += 1;
    }
    match b.get(j) {
        Some(b'=') => {}
        Some(b':') if quoted_key => {}
        _ => return None,
    }
    j += 1;
    // libpq skips whitespace after `=`: `password= x` has the value `x`.
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    if j >= b.len() {
        return None;
    }
    let in_query = i > 0 && matches!(b[i - 1], b'?' | b'&');
    let start = j;
    match b[j] {
        q @ (b'\'' | b'"') => {
            j += 1;
            while j < b.len() && b[j] != q {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((start, (j + 1).min(b.len())))
        }
        _ => {
            while j < b.len()
                && !b[j].is_ascii_whitespace()
                && !(in_query && matches!(b[j], b'&' | b'#'))
            {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((start, j.min(b.len())))
        }
    }
}

/// The part of a URL after `://` (up to whitespace) without its password, or `None` when it
/// holds none.
fn redact_url_rest(rest: &str) -> Option<String> {
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let (authority_and_path, query) = rest.split_at(query_at);
    let mut out = String::with_capacity(rest.len());
    let mut changed = false;
    // The userinfo ends at the last `@` before the query: a raw `@` or `/` typed inside a password
    // then still counts as userinfo (redacting too much rather than too little).
    match authority_and_path.rfind('@') {
        Some(at) => {
            let userinfo = &authority_and_path[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    changed = true;
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority_and_path[at..]);
        }
        None => out.push_str(authority_and_path),
    }
    let mut first = true;
    for (n, pair) in query.split('&').enumerate() {
        if n > 0 {
            out.push('&');
        }
        // The first piece starts with `?` (or `#`); a fragment is copied as it is.
        let (lead, pair) = if first && !pair.is_empty() {
            first = false;
            pair.split_at(1)
        } else {
            ("", pair)
        };
        out.push_str(lead);
        match pair.split_once('=') {
            Some((key, _)) if lead != "#" && is_password_key(&percent_decode(key)) => {
                out.push_str(key);
                out.push('=');
                out.push_str(MASK);
                changed = true;
            }
            _ => out.push_str(pair),
        }
    }
    changed.then_some(out)
}

/// `%XX` decoded (invalid escapes kept as they are), as libpq reads URL parts.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "S3kr1t";

    fn hidden(text: &str) -> String {
        let r = redact(text).into_owned();
        assert!(!r.contains(S), "{text:?} -> {r:?} still shows the secret");
        r
    }

    #[test]
    fn url_userinfo_loses_its_password() {
        assert_eq!(
            hidden("postgres://app:S3kr1t@db.example:6432/prod"),
            "postgres://app@db.example:6432/prod"
        );
        assert_eq!(
            hidden("cannot parse database URL postgresql://app:S3kr1t@h/db: invalid"),
            "cannot parse database URL postgresql://app@h/db: invalid"
        );
        // A raw `@` or `/` inside the password: everything up to the last `@` is userinfo.
        hidden("postgres://app:a@S3kr1t@h/db");
        hidden("postgres://app:a/S3kr1t@h/db");
        // Not a password: a user alone, and an `@` only in the query.
        assert_eq!(redact("postgres://app@h/db"), "postgres://app@h/db");
        assert!(matches!(
            redact("see postgres://h/db?x=a@b"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn url_query_password_is_masked_other_parameters_kept() {
        assert_eq!(
            hidden("postgres://app@h/db?sslmode=require&password=S3kr1t&application_name=x"),
            "postgres://app@h/db?sslmode=require&password=[redacted]&application_name=x"
        );
        assert_eq!(
            hidden("postgres://h/db?password=S3kr1t"),
            "postgres://h/db?password=[redacted]"
        );
        hidden("postgres://h/db?pass%77ord=S3kr1t");
        hidden("postgres://h/db?sslpassword=S3kr1t");
        hidden("url = \"postgres://u:S3kr1t@h/db");
    }

    #[test]
    fn key_value_passwords_in_every_quoting() {
        assert_eq!(
            hidden("host=h password=S3kr1t user=u"),
            "host=h password=[redacted] user=u"
        );
        assert_eq!(
            hidden("host=h password = 'a S3kr1t b' user=u"),
            "host=h password = [redacted] user=u"
        );
        hidden(r"host=h password='it\'s S3kr1t' user=u");
        hidden(r"host=h password=a\ S3kr1t user=u");
        hidden("host=h password= S3kr1t");
        hidden("host=h password='unterminated S3kr1t");
        hidden("PGPASSWORD=S3kr1t pgshift up");
        hidden("password = \"S3kr1t\"");
        hidden("{\"password\": \"S3kr1t\"}");
        hidden("a=1&password=S3kr1t&b=2");
    }

    #[test]
    fn prose_about_passwords_is_left_alone() {
        for text in [
            "password authentication failed for user \"app\" (28P01)",
            "use password_env = \"PGSHIFT_PW\" or ~/.pgpass",
            "no password given",
            "passwords=none",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn json_strings_are_redacted_in_place() {
        let mut v =
            serde_json::json!({"url": "postgres://u:S3kr1t@h/db", "n": [1, "password=S3kr1t"]});
        redact_json(&mut v);
        assert!(!v.to_string().contains(S), "{v}");
    }
}
