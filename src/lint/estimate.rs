//! How long a statement holds its lock on a live table: a model, not a measurement.
//!
//! Method: PostgreSQL's own figures for the table (`reltuples` rows, `relpages` × block size heap
//! bytes, and with its indexes and TOAST for the total), times a cost per byte or per row for the work
//! the statement does while holding the lock:
//!
//! | work | estimate |
//! |---|---|
//! | index build (CREATE INDEX, REINDEX, ADD PRIMARY KEY/UNIQUE) | heap bytes / 400 MB/s + rows × 1.2 µs |
//! | validating scan (CHECK, SET NOT NULL) | heap bytes / 400 MB/s |
//! | foreign key validation | heap bytes / 400 MB/s + rows × 2 µs |
//! | table rewrite (volatile default, VACUUM FULL, CLUSTER) | total bytes / 100 MB/s |
//! | UPDATE/DELETE of every row | rows × 8 µs |
//! | catalog-only change (DROP INDEX, DETACH) | 1 ms once granted |
//!
//! The constants were measured on this project's machine (PostgreSQL 15, 2 cores, table in cache,
//! default `maintenance_work_mem`): 1 M rows / 149 MB heap built btree indexes in 0.65 s (constant
//! timestamps) to 2.15 s (text), and validated a CHECK in 0.30 s. Faster disks and more
//! `maintenance_work_mem` build faster, a cold cache slower: read the estimate as its order of
//! magnitude. `tests/it/lint.rs` (`index_build_estimate_is_within_a_factor_of_a_real_build`)
//! builds a real index and checks the estimate against the measured time.

use super::rules::Work;

const SCAN_BYTES_PER_S: f64 = 400e6;
const INDEX_S_PER_ROW: f64 = 1.2e-6;
const FK_S_PER_ROW: f64 = 2e-6;
const REWRITE_BYTES_PER_S: f64 = 100e6;
const ROW_WRITE_S_PER_ROW: f64 = 8e-6;
const BRIEF_S: f64 = 0.001;

/// The size of a table, as the estimate needs it.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub rows: f64,
    pub heap_bytes: f64,
    pub total_bytes: f64,
}

/// Seconds `work` holds its lock on a table of `size`.
pub fn lock_seconds(work: Work, size: Size) -> f64 {
    let rows = size.rows.max(0.0);
    let scan = size.heap_bytes.max(0.0) / SCAN_BYTES_PER_S;
    match work {
        Work::IndexBuild => scan + rows * INDEX_S_PER_ROW,
        Work::Scan => scan,
        Work::ForeignKey => scan + rows * FK_S_PER_ROW,
        Work::Rewrite => size.total_bytes.max(0.0) / REWRITE_BYTES_PER_S,
        Work::RowWrites => rows * ROW_WRITE_S_PER_ROW,
        Work::Brief => BRIEF_S,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_build_grows_with_rows_and_bytes() {
        let size = |rows: f64, mb: f64| Size {
            rows,
            heap_bytes: mb * 1e6,
            total_bytes: mb * 1.2e6,
        };
        let small = lock_seconds(Work::IndexBuild, size(800.0, 0.1));
        let big = lock_seconds(Work::IndexBuild, size(1e6, 149.0));
        assert!(small < 0.01, "{small}");
        assert!((1.0..2.5).contains(&big), "{big}");
        assert_eq!(lock_seconds(Work::Brief, size(1e9, 1e6)), BRIEF_S);
        assert!(lock_seconds(Work::Rewrite, size(1e6, 1000.0)) > 10.0);
    }
}
