//! WAL checkpoints run on a background thread: committed pages reach the database file
//! without any request paying for the copy (the write connection's own auto-checkpoint is only
//! a far-off backstop).
#[path = "fixture/mod.rs"]
mod fixture;
#[allow(dead_code)]
const GROUP_COMMIT: bool = false;

use booking::*;
use fixture::*;
use std::time::{Duration, Instant};

#[test]
fn committed_pages_are_copied_into_the_database_file_in_the_background() {
    let f = fixture();
    let size = || std::fs::metadata(f.b.path()).unwrap().len();
    let wal = f.b.path().with_extension("db-wal");
    let before = size();
    // Far fewer pages than the backstop: without the background thread, the database file
    // would not grow until the WAL reached 20,000 pages.
    for _ in 0..2_000 {
        f.b.charge(UserId::new_random(), 100, None).unwrap();
    }
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 1_000_000,
        "the writes went to the WAL"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while size() <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        size() > before,
        "a background checkpoint copied pages into {}",
        f.b.path().display()
    );
    f.assert_verified();
}
