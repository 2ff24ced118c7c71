//! up / down / status / history / plan / stamp / new against real PostgreSQL.

use crate::common::*;

#[test]
fn up_head_then_down_base_then_up_head_leaves_an_identical_schema() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok().stderr_has("✅ Database migrations completed successfully");
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    let first = db.schema_dump();
    assert!(first.contains("CREATE TABLE public.documents"), "{first}");
    db.run(&["down", "base", "--yes"]).ok();
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert!(!db.schema_dump().contains("CREATE TABLE"), "base must have no user tables");
    db.run(&["up"]).ok();
    assert_eq!(db.schema_dump(), first);
    let events = db.events();
    assert_eq!(
        events,
        vec![("up".into(), "ok".into()), ("down".into(), "ok".into()), ("up".into(), "ok".into())]
    );
}
