//! `pgshift_backfill_runs` as the engine uses it: one row per run, its cursor saved with each
//! batch, and the `requested` column through which another session asks the running engine to
//! pause or cancel. The table's queries and row types live in [`crate::db::backfill_runs`].

pub use crate::db::backfill_runs::{
    Request, RunRow, RunState, SAVE_BATCH, Saved, TABLE, cancel_stopped, finish, insert, latest,
    latest_all, prepare_save, request, requested, resume, save,
};
