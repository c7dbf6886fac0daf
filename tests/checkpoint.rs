//! WAL checkpoints run on a background thread: committed pages reach the database file
//! without any request paying for the copy (the write connection's own auto-checkpoint is only
//! a far-off backstop). About the file, not a write path: one backend is enough.
// This file does not use the `backends` template (its tests pick their backend).
#[allow(unused_macros)]
mod fixture;

use booking::*;
use fixture::*;
use std::time::{Duration, Instant};

#[test]
fn committed_pages_are_copied_into_the_database_file_in_the_background() {
    let f = fixture(Backend::Direct);
    let size = || {
        std::fs::metadata(f.location().file().unwrap())
            .unwrap()
            .len()
    };
    let wal = f.location().file().unwrap().with_extension("db-wal");
    let before = size();
    // Far fewer pages than the backstop: without the background thread, the database file
    // would not grow until the WAL reached 20,000 pages.
    for _ in 0..2_000 {
        f.op().charge(UserId::new_random(), pts(100), None).unwrap();
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
        f.location().file().unwrap().display()
    );
    f.assert_verified();
}
