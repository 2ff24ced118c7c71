//! The rule book: every rule pgshift reports, its severity, why it is dangerous on a live
//! database, and the safe rewrite. Squawk's rules keep squawk's names so its docs apply; pgshift's
//! own rules fill the gaps (and replace squawk advice that does not fit PostgreSQL < 19).

use squawk_linter::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Weighed and found harmless for this run (a new or small table): shown with the figures,
    /// never blocks.
    Info,
    /// Worth a look, never blocks.
    Warning,
    /// Locks out the application or breaks it: `up` refuses it unless allowed.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RuleDoc {
    pub name: &'static str,
    pub severity: Severity,
    pub why: &'static str,
    pub fix: &'static str,
}

/// Squawk rules pgshift runs. Style rules (prefer-text-field, prefer-bigint...) are left out on
/// purpose: lint here is about locks and breakage, and noise teaches operators to ignore it.
pub const SQUAWK_RULES: [Rule; 20] = [
    Rule::RequireConcurrentIndexCreation,
    Rule::RequireConcurrentIndexDeletion,
    Rule::ConstraintMissingNotValid,
    Rule::AddingFieldWithDefault,
    Rule::AddingForeignKeyConstraint,
    Rule::ChangingColumnType,
    Rule::AddingNotNullableField,
    Rule::AddingRequiredField,
    Rule::AddingSerialPrimaryKeyField,
    Rule::RenamingColumn,
    Rule::RenamingTable,
    Rule::DisallowedUniqueConstraint,
    Rule::BanDropColumn,
    Rule::BanDropTable,
    Rule::BanDropDatabase,
    Rule::BanConcurrentIndexCreationInTransaction,
    Rule::RequireConcurrentReindex,
    Rule::RequireConcurrentPartitionDetach,
    Rule::TransactionNesting,
    Rule::BanTruncateCascade,
];

/// pgshift's own rule names.
pub const BACKFILL_IN_MIGRATION: &str = "backfill-in-migration";
pub const VACUUM_FULL_OR_CLUSTER: &str = "vacuum-full-or-cluster";
pub const UNKNOWN_ALLOW: &str = "unknown-allow";
pub const UNPARSED_SQL: &str = "unparsed-sql";

const fn doc(
    name: &'static str,
    severity: Severity,
    why: &'static str,
    fix: &'static str,
) -> RuleDoc {
    RuleDoc {
        name,
        severity,
        why,
        fix,
    }
}

use Severity::{Error as E, Warning as W};

pub const RULES: &[RuleDoc] = &[
    doc(
        "require-concurrent-index-creation",
        E,
        "CREATE INDEX without CONCURRENTLY on an existing table takes a SHARE lock: every INSERT, UPDATE and DELETE on the table waits until the whole index is built.",
        "Put `CREATE INDEX CONCURRENTLY ...` in its own migration whose first line is `-- pgshift: no-transaction`; its down is `DROP INDEX CONCURRENTLY`.",
    ),
    doc(
        "require-concurrent-index-deletion",
        W,
        "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table: reads and writes queue behind it, and behind any long transaction it waits for.",
        "Use `DROP INDEX CONCURRENTLY IF EXISTS ...` in a `-- pgshift: no-transaction` migration.",
    ),
    doc(
        "constraint-missing-not-valid",
        E,
        "Adding a CHECK or FOREIGN KEY constraint validates every row while holding a lock that blocks writes (and VALIDATE in the same transaction as the NOT VALID add keeps the ACCESS EXCLUSIVE lock during the scan).",
        "Migration A: `ADD CONSTRAINT ... NOT VALID` (brief lock). Migration B (separate transaction): `ALTER TABLE ... VALIDATE CONSTRAINT ...` (scans under SHARE UPDATE EXCLUSIVE, reads and writes continue).",
    ),
    doc(
        "adding-field-with-default",
        E,
        "ADD COLUMN with a volatile default (now() is fine; random(), gen_random_uuid(), clock_timestamp() are not) or a generated column rewrites the whole table under an ACCESS EXCLUSIVE lock.",
        "Add the column nullable without a default, set the default for new rows (`ALTER COLUMN ... SET DEFAULT ...`), and fill existing rows with a pgshift backfill in batches.",
    ),
    doc(
        "adding-foreign-key-constraint",
        E,
        "Adding a FOREIGN KEY scans the table while holding SHARE ROW EXCLUSIVE locks on both tables, blocking writes to each.",
        "Add it `NOT VALID` in one migration, then `VALIDATE CONSTRAINT` in a later one.",
    ),
    doc(
        "changing-column-type",
        E,
        "ALTER COLUMN TYPE rewrites the table and its indexes under an ACCESS EXCLUSIVE lock (except a few binary-compatible changes), and breaks code that reads the old type.",
        "Expand and contract: add a new column, write both from the app, backfill it in batches, switch reads, then drop the old column in a later release.",
    ),
    doc(
        "adding-not-nullable-field",
        E,
        "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock unless a validated CHECK (col IS NOT NULL) already proves it.",
        "Migration A: `ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID`. Migration B: `VALIDATE CONSTRAINT c`, then `ALTER COLUMN col SET NOT NULL` (no scan), then `DROP CONSTRAINT c`.",
    ),
    doc(
        "adding-required-field",
        E,
        "ADD COLUMN ... NOT NULL without a default fails on any non-empty table, and breaks inserts from code that does not know the column.",
        "Add it nullable (or with a constant default), backfill, then enforce NOT NULL through a validated CHECK.",
    ),
    doc(
        "adding-serial-primary-key-field",
        E,
        "Adding a PRIMARY KEY builds its unique index under an ACCESS EXCLUSIVE lock.",
        "`CREATE UNIQUE INDEX CONCURRENTLY` in a no-transaction migration, then `ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY USING INDEX ...`.",
    ),
    doc(
        "renaming-column",
        E,
        "Renaming a column breaks every running instance of the app that still uses the old name.",
        "Add the new column, write both, backfill, move reads, drop the old one in a later release (or use a view for the transition).",
    ),
    doc(
        "renaming-table",
        E,
        "Renaming a table breaks every running instance of the app that still uses the old name.",
        "Create the new table (or a view with the new name), move the app over, and drop the old name in a later release.",
    ),
    doc(
        "disallowed-unique-constraint",
        E,
        "Adding a UNIQUE constraint builds its index under an ACCESS EXCLUSIVE lock: reads and writes stop for the whole build.",
        "`CREATE UNIQUE INDEX CONCURRENTLY i ...` in a no-transaction migration, then `ALTER TABLE ... ADD CONSTRAINT c UNIQUE USING INDEX i`.",
    ),
    doc(
        "ban-drop-column",
        E,
        "Dropping a column breaks running code that still selects or inserts it, and its data is gone (the down cannot bring it back).",
        "Stop using the column in the app first, ship that, then drop it; allow the finding with the release that stopped using it as the reason.",
    ),
    doc(
        "ban-drop-table",
        E,
        "Dropping a table loses its data and breaks running code that still uses it.",
        "Stop using the table first; keep a dump or rename it aside for a release; allow the finding with the reason.",
    ),
    doc(
        "ban-drop-database",
        E,
        "DROP DATABASE in a migration destroys everything.",
        "Never in a migration: do it by hand with a verified backup.",
    ),
    doc(
        "ban-concurrent-index-creation-in-transaction",
        E,
        "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block: this migration would fail at that statement.",
        "Move it to its own migration whose first line is `-- pgshift: no-transaction`.",
    ),
    doc(
        "require-concurrent-reindex",
        E,
        "REINDEX without CONCURRENTLY locks out writes (and reads that use the index) for the whole rebuild.",
        "`REINDEX INDEX CONCURRENTLY ...` in a `-- pgshift: no-transaction` migration.",
    ),
    doc(
        "require-concurrent-partition-detach",
        W,
        "DETACH PARTITION without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the parent table.",
        "`ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY` in a `-- pgshift: no-transaction` migration.",
    ),
    doc(
        "transaction-nesting",
        E,
        "pgshift already runs the migration in one transaction with its history row; a BEGIN/COMMIT inside would commit part of it early and break all-or-nothing.",
        "Remove BEGIN/COMMIT; if the statements must not run in a transaction, use `-- pgshift: no-transaction`.",
    ),
    doc(
        "ban-truncate-cascade",
        W,
        "TRUNCATE ... CASCADE also empties every table with a foreign key to this one, which is easy to miss.",
        "Name every table to truncate explicitly.",
    ),
    doc(
        BACKFILL_IN_MIGRATION,
        E,
        "UPDATE/DELETE of an existing table inside a migration rewrites rows in one transaction: it holds row locks on every touched row until the end, bloats the table, and can run for minutes while app writes to those rows wait.",
        "Move the data change into a pgshift backfill (keyset batches, throttled, resumable); keep only schema changes in the migration.",
    ),
    doc(
        VACUUM_FULL_OR_CLUSTER,
        E,
        "VACUUM FULL and CLUSTER rewrite the table under an ACCESS EXCLUSIVE lock: reads and writes stop for the whole rewrite (and VACUUM cannot run in a transaction at all).",
        "Not in a migration: use pg_repack (online) during low traffic, or plain VACUUM (no exclusive lock).",
    ),
    doc(
        UNKNOWN_ALLOW,
        W,
        "An `-- pgshift: allow` directive names a rule lint does not know: a typo would leave the intended finding unsuppressed, or suppress nothing.",
        "Use a rule name from `pgshift lint --rules`.",
    ),
    doc(
        UNPARSED_SQL,
        W,
        "Part of the migration could not be parsed, so lint may have missed something there (PostgreSQL may still accept it).",
        "Check the statement by hand; lint covers what it could parse.",
    ),
];

pub fn find(name: &str) -> Option<&'static RuleDoc> {
    RULES.iter().find(|r| r.name == name)
}

/// What a rule is about, which decides how a run weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A lock held while PostgreSQL does `work` on the table: harmless on a table new in the run
    /// or small on the target, dangerous on a large or busy one.
    Lock { lock: Lock, work: Work },
    /// Breaks the running application (drops, renames, type changes): not about size, so it stays
    /// an error on any existing table, and does not apply to a table new in the run.
    Breaking,
    /// Wrong whatever the table (the statement would fail, a nested transaction, a typo).
    Always,
}

/// The table lock a statement takes, and what it locks out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// SHARE (CREATE INDEX) or SHARE ROW EXCLUSIVE (foreign keys): reads go on, writes wait.
    BlocksWrites(&'static str),
    /// ACCESS EXCLUSIVE: reads and writes wait.
    BlocksAll,
    /// Row locks on every row touched, until commit.
    Rows,
}

impl Lock {
    pub fn name(self) -> &'static str {
        match self {
            Lock::BlocksWrites(name) => name,
            Lock::BlocksAll => "ACCESS EXCLUSIVE",
            Lock::Rows => "row",
        }
    }

    pub fn blocks(self) -> &'static str {
        match self {
            Lock::BlocksWrites(_) => "writes",
            Lock::BlocksAll => "reads and writes",
            Lock::Rows => "writes to the rows it touches",
        }
    }
}

/// What the statement does while it holds the lock (the estimate's model, `estimate.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Scan the heap, sort, write the index.
    IndexBuild,
    /// Read every row to validate a constraint.
    Scan,
    /// Rewrite the table and its indexes.
    Rewrite,
    /// Read every row and look each one up in the referenced table.
    ForeignKey,
    /// Write every row (UPDATE/DELETE).
    RowWrites,
    /// A catalog change: brief once granted (it still queues behind open transactions).
    Brief,
}

/// What a lock rule's statement is, for "... would block writes for an estimated 41 s".
pub fn lock_phrase(rule: &str) -> &'static str {
    match rule {
        "require-concurrent-index-creation" => "CREATE INDEX without CONCURRENTLY",
        "require-concurrent-reindex" => "REINDEX without CONCURRENTLY",
        "adding-serial-primary-key-field" => "ADD PRIMARY KEY",
        "disallowed-unique-constraint" => "ADD UNIQUE",
        "constraint-missing-not-valid" => "a constraint validated in place",
        "adding-not-nullable-field" => "SET NOT NULL",
        "adding-foreign-key-constraint" => "a foreign key validated in place",
        "adding-field-with-default" => "the table rewrite",
        VACUUM_FULL_OR_CLUSTER => "the rewrite",
        "require-concurrent-index-deletion" => "DROP INDEX without CONCURRENTLY",
        "require-concurrent-partition-detach" => "DETACH PARTITION without CONCURRENTLY",
        BACKFILL_IN_MIGRATION => "the UPDATE/DELETE",
        _ => "the statement",
    }
}

const SHARE: Lock = Lock::BlocksWrites("SHARE");

/// How a rule is weighed (`Always` for rules lint does not know, e.g. squawk's).
pub fn kind(rule: &str) -> Kind {
    use Work::*;
    let lock = |lock, work| Kind::Lock { lock, work };
    match rule {
        "require-concurrent-index-creation" | "require-concurrent-reindex" => {
            lock(SHARE, IndexBuild)
        }
        "adding-serial-primary-key-field" | "disallowed-unique-constraint" => {
            lock(Lock::BlocksAll, IndexBuild)
        }
        "constraint-missing-not-valid" | "adding-not-nullable-field" => lock(Lock::BlocksAll, Scan),
        "adding-foreign-key-constraint" => {
            lock(Lock::BlocksWrites("SHARE ROW EXCLUSIVE"), ForeignKey)
        }
        "adding-field-with-default" | VACUUM_FULL_OR_CLUSTER => lock(Lock::BlocksAll, Rewrite),
        "require-concurrent-index-deletion" | "require-concurrent-partition-detach" => {
            lock(Lock::BlocksAll, Brief)
        }
        BACKFILL_IN_MIGRATION => lock(Lock::Rows, RowWrites),
        "changing-column-type"
        | "renaming-column"
        | "renaming-table"
        | "ban-drop-column"
        | "ban-drop-table"
        | "adding-required-field" => Kind::Breaking,
        _ => Kind::Always,
    }
}

/// A rule for `backfill-in-migration` that matched a statement with a WHERE clause: it may touch
/// few rows, so it is a warning.
pub const BACKFILL_WITH_WHERE_SEVERITY: Severity = Severity::Warning;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_rules_and_breaking_rules_are_told_apart() {
        assert!(matches!(
            kind("require-concurrent-index-creation"),
            Kind::Lock {
                work: Work::IndexBuild,
                ..
            }
        ));
        assert_eq!(kind("renaming-column"), Kind::Breaking);
        assert_eq!(kind("changing-column-type"), Kind::Breaking);
        assert_eq!(kind("transaction-nesting"), Kind::Always);
        assert_eq!(kind(UNKNOWN_ALLOW), Kind::Always);
    }

    #[test]
    fn every_squawk_rule_we_run_is_documented() {
        for r in SQUAWK_RULES {
            assert!(find(&r.to_string()).is_some(), "{r} has no entry in RULES");
        }
    }
}
