//! A small SQL lexer: split a script into statements (for no-transaction migrations, which must run
//! one statement at a time) and quote identifiers. It understands what can hide a `;`: quotes,
//! dollar quotes, and comments. It does not parse SQL.

/// One statement of a script and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub text: String,
    pub line: usize,
}

/// Split `sql` into statements, dropping empty ones and pure comments.
pub fn statements(sql: &str) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut has_code = false;
    let mut code_start: Option<usize> = None;
    let mark = |i: usize, has_code: &mut bool, code_start: &mut Option<usize>| {
        *has_code = true;
        code_start.get_or_insert(i);
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // Block comments nest in PostgreSQL.
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'\'' | b'"' => {
                mark(i, &mut has_code, &mut code_start);
                let escapes = c == b'\''
                    && i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !bytes[i - 2].is_ascii_alphanumeric());
                i += 1;
                while i < bytes.len() {
                    if escapes && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == c {
                        if bytes.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'$' => {
                mark(i, &mut has_code, &mut code_start);
                if let Some(tag_len) = dollar_tag(&bytes[i..]) {
                    let tag = &bytes[i..i + tag_len];
                    i += tag_len;
                    while i < bytes.len() && !bytes[i..].starts_with(tag) {
                        i += 1;
                    }
                    i = (i + tag_len).min(bytes.len());
                    continue;
                }
            }
            b';' => {
                if has_code {
                    push(&mut out, sql, code_start.unwrap_or(start), i);
                }
                has_code = false;
                code_start = None;
                start = i + 1;
            }
            c if c.is_ascii_whitespace() => {}
            _ => mark(i, &mut has_code, &mut code_start),
        }
        i += 1;
    }
    if has_code {
        push(&mut out, sql, code_start.unwrap_or(start), bytes.len());
    }
    out
}

fn push(out: &mut Vec<Statement>, sql: &str, from: usize, to: usize) {
    let text = sql[from..to].trim().to_string();
    let line = sql[..from].matches('\n').count() + 1;
    out.push(Statement { text, line });
}

/// `$tag$` or `$$` at the start of `b`: its length. A `$1` parameter is not a tag.
fn dollar_tag(b: &[u8]) -> Option<usize> {
    let mut j = 1;
    while j < b.len() {
        match b[j] {
            b'$' => return Some(j + 1),
            c if c.is_ascii_alphabetic() || c == b'_' || (j > 1 && c.is_ascii_digit()) => j += 1,
            _ => return None,
        }
    }
    None
}

/// The first statement of `sql` that ends or starts a transaction at top level (`BEGIN`, `START
/// TRANSACTION`, `COMMIT`, `END`, `ROLLBACK` but not `ROLLBACK TO`, `ABORT`, `PREPARE TRANSACTION`):
/// in a migration pgshift runs in its own transaction, such a statement would commit part of the
/// migration or run the rest outside it. The `END` closing a `BEGIN ATOMIC` function body is not one.
pub fn transaction_control(sql: &str) -> Option<Statement> {
    let mut in_atomic_body = false;
    for stmt in statements(sql) {
        let lower = stmt.text.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().take(3).collect();
        let first = words.first().map(|w| w.trim_end_matches(';')).unwrap_or("");
        if in_atomic_body {
            // The splitter cut the body at its `;`s: skip up to the END that closes it.
            in_atomic_body = first != "end";
            continue;
        }
        let all: Vec<&str> = lower.split_whitespace().collect();
        if all.windows(2).any(|w| w == ["begin", "atomic"]) {
            in_atomic_body = all.last() != Some(&"end");
            continue;
        }
        let ends = match first {
            "begin" | "commit" | "end" | "abort" => true,
            "start" => words.get(1) == Some(&"transaction"),
            "rollback" => !matches!(words.get(1), Some(&"to")),
            "prepare" => words.get(1) == Some(&"transaction"),
            _ => false,
        };
        if ends {
            return Some(stmt);
        }
    }
    None
}

/// Quote an identifier for SQL (`"my ""table"""`). The one place identifiers meet SQL text.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quote a literal for SQL text, for the few places where parameters cannot be used (SET, DDL).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        statements(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let sql = "-- a; comment\nselect 'a;b';\n/* x; /* nested; */ y; */ select \"c;d\" ;\nselect $$ ; $$; select $fn$ a;$$ $fn$;\nselect E'it\\'s;';";
        assert_eq!(
            texts(sql),
            vec![
                "select 'a;b'",
                "select \"c;d\"",
                "select $$ ; $$",
                "select $fn$ a;$$ $fn$",
                "select E'it\\'s;'"
            ]
        );
    }

    #[test]
    fn reports_start_lines_and_drops_empty_statements() {
        let s = statements(
            "\n\ncreate index concurrently i on t(x);;\n-- only a comment\n;\nselect $1",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].line, 3);
        assert_eq!(s[1].text, "select $1");
        assert!(statements("  -- nothing\n/* here */").is_empty());
    }

    #[test]
    fn finds_top_level_transaction_control_only() {
        let found = |sql: &str| transaction_control(sql).map(|s| (s.line, s.text));
        assert_eq!(
            found("create table a (id int);\ncommit;\nselect 1/0;"),
            Some((2, "commit".into()))
        );
        for sql in [
            "BEGIN;\ncreate table a (id int);",
            "start transaction isolation level serializable",
            "create table a (id int); ROLLBACK",
            "end",
            "abort;",
            "prepare transaction 'x'",
        ] {
            assert!(found(sql).is_some(), "{sql}");
        }
        for sql in [
            "savepoint s; select 1; rollback to savepoint s; release s;",
            "do $$ begin commit; end $$;",
            "-- commit;\nselect 'rollback;';",
            "create function f() returns int language sql\nbegin atomic\n  select 1;\nend;\nselect f();",
            "create table begin_log (id int); update commit_log set x = 1",
        ] {
            assert_eq!(found(sql), None, "{sql}");
        }
    }

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}

/// A table or index named in a statement, as PostgreSQL folds it (unquoted names lowercased).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    /// `None`: unqualified, found through the search path.
    pub schema: Option<String>,
    pub name: String,
    pub kind: RelKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelKind {
    Table,
    /// An index (DROP INDEX, REINDEX INDEX): the live lookup reports its table.
    Index,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl serde::Serialize for Relation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether `stmt` is a CONCURRENTLY index build, drop or reindex (which locks out no reads or
/// writes while it waits). Parsed, so a comment or string mentioning the word does not count.
pub fn runs_concurrently(stmt: &str) -> bool {
    use squawk_syntax::ast;
    squawk_syntax::SourceFile::parse(stmt)
        .tree()
        .stmts()
        .any(|s| match s {
            ast::Stmt::CreateIndex(i) => i.concurrently_token().is_some(),
            ast::Stmt::DropIndex(i) => i.concurrently_token().is_some(),
            ast::Stmt::Reindex(r) => r
                .reindex_target()
                .is_some_and(|t| t.concurrently_token().is_some()),
            _ => false,
        })
}
