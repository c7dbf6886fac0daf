//! Seat maps at scale (docs/API.md §6.1): the version of a showtime's map changes with every
//! kind of seat change — holds, releases, payments, cancels, sweeps, and a hold lapsing with no
//! write at all, as seen by another handle — and what changed since a version is exactly the
//! seats whose status differs.
mod fixture;

use booking::*;
use fixture::*;
use rstest_reuse::apply;
use std::collections::HashMap;
use std::time::Duration;

fn statuses(f: &Fixture, me: &Active) -> HashMap<SeatId, SeatStatus> {
    f.b.seats(me, f.concert, f.showtime)
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.status))
        .collect()
}

/// A client keeping its copy of the map current with `since` diffs.
struct Mirror {
    version: SeatVersion,
    seats: HashMap<SeatId, SeatStatus>,
}

impl Mirror {
    fn new(f: &Fixture, me: &Active) -> Mirror {
        let map = f.b.seat_map(me, f.concert, f.showtime).unwrap();
        Mirror {
            version: map.version,
            seats: map.seats.into_iter().map(|s| (s.id, s.status)).collect(),
        }
    }

    /// Catches up; returns how many seats the diff carried.
    fn catch_up(&mut self, f: &Fixture, me: &Active) -> usize {
        let d =
            f.b.seats_since(me, f.concert, f.showtime, self.version)
                .unwrap();
        let n = d.seats.len();
        for s in d.seats {
            self.seats.insert(s.id, s.status);
        }
        self.version = d.version;
        n
    }
}

#[apply(backends)]
fn every_kind_of_seat_change_moves_the_version_and_the_diff_carries_it(#[case] backend: Backend) {
    let f = fixture_with(backend, |c| c.with_active_ttl(Duration::from_secs(86_400)));
    let a = f.active_user();
    let viewer = f.active_user();
    let mut mirror = Mirror::new(&f, &viewer);
    let mut seen = vec![mirror.version];
    let mut step = |f: &Fixture, what: &str, changed: usize| {
        let v = f.b.seat_version(&viewer, f.concert, f.showtime).unwrap();
        assert!(!seen.contains(&v), "{what}: the version did not move ({v})");
        seen.push(v);
        assert_eq!(
            mirror.catch_up(f, &viewer),
            changed,
            "{what}: seats in the diff"
        );
        assert_eq!(mirror.version, v);
        assert_eq!(
            mirror.seats,
            statuses(f, &viewer),
            "{what}: the mirror is current"
        );
    };
    // A hold of two seats.
    let held =
        f.b.hold_seats(&a, f.showtime, &[f.seats[0], f.seats[1]])
            .unwrap();
    step(&f, "hold", 2);
    // A release.
    f.b.release(&a, held[1].id).unwrap();
    step(&f, "release", 1);
    // A payment.
    f.b.charge(&a, pts(10_000), None).unwrap();
    f.b.pay(&a, held[0].id, None).unwrap();
    step(&f, "payment", 1);
    // A cancel.
    f.op().cancel_ticket(held[0].id, true).unwrap();
    step(&f, "cancel", 1);
    // A lapse, with no write at all.
    let b = f.active_user();
    f.b.hold(&b, f.showtime, f.seats[5]).unwrap();
    step(&f, "second hold", 1);
    f.advance(Duration::from_secs(301));
    step(&f, "lapse", 1);
    // The sweep frees the lapsed seat's claim: no status changes, but the version moves and the
    // seat comes again in the diff (a client that missed the lapse must not keep "held").
    f.op().sweep().unwrap();
    step(&f, "sweep", 1);
    // An unchanged map keeps its version, and the diff is empty.
    let v = f.b.seat_version(&viewer, f.concert, f.showtime).unwrap();
    assert_eq!(v, mirror.version);
    assert_eq!(mirror.catch_up(&f, &viewer), 0);
    // Another showtime's changes do not move this one.
    let other = f.seats_of(f.other_showtime)[0].id;
    f.b.hold(&b, f.other_showtime, other).unwrap();
    assert_eq!(f.b.seat_version(&viewer, f.concert, f.showtime).unwrap(), v);
    // A showtime called off: every claimed seat is in the diff.
    f.b.hold(&b, f.showtime, f.seats[7]).unwrap();
    mirror.catch_up(&f, &viewer);
    f.op().cancel_showtime(f.showtime).unwrap();
    let v2 = f.b.seat_version(&viewer, f.concert, f.showtime).unwrap();
    assert_ne!(v2, mirror.version);
    assert_eq!(mirror.catch_up(&f, &viewer), 1);
    assert_eq!(mirror.seats, statuses(&f, &viewer));
}

#[apply(backends)]
fn an_unknown_version_gets_every_seat(#[case] backend: Backend) {
    let f = fixture(backend);
    let me = f.active_user();
    let all =
        f.b.seats_since(&me, f.concert, f.showtime, "999999.0".parse().unwrap())
            .unwrap();
    assert_eq!(all.seats.len(), 10);
    let future =
        f.b.seats_since(
            &me,
            f.concert,
            f.showtime,
            "0.99999999999999".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(future.seats.len(), 10);
    assert_eq!(
        code(f.b.seat_version(&me, f.concert, f.other_showtime.next_unknown())),
        "not_found"
    );
    assert!("nope".parse::<SeatVersion>().is_err());
}

#[apply(backends)]
fn a_lapse_is_seen_by_a_handle_that_did_not_make_the_hold(#[case] backend: Backend) {
    let f = fixture(backend);
    // A second handle on the same database, with its own clock set to the same time.
    let clock = ManualClock::new(f.clock.now());
    let other = Booking::open_with_clock(
        f.b.location().clone(),
        test_config(backend),
        std::sync::Arc::new(clock.clone()),
    )
    .unwrap();
    let me = f.active_user();
    let viewer = other
        .authorize_active(&other.enter_queue(None).unwrap().token)
        .unwrap();
    f.b.hold(&me, f.showtime, f.seats[3]).unwrap();
    let before = other.seat_version(&viewer, f.concert, f.showtime).unwrap();
    clock.advance(Duration::from_secs(300));
    let after = other.seat_version(&viewer, f.concert, f.showtime).unwrap();
    assert_ne!(before, after, "the lapse moved the version with no write");
    let d = other
        .seats_since(&viewer, f.concert, f.showtime, before)
        .unwrap();
    assert_eq!(d.seats.len(), 1);
    assert_eq!(
        (d.seats[0].id, d.seats[0].status),
        (f.seats[3], SeatStatus::Available)
    );
}

trait NextUnknown {
    fn next_unknown(self) -> ShowtimeId;
}

impl NextUnknown for ShowtimeId {
    fn next_unknown(self) -> ShowtimeId {
        ShowtimeId::new(self.get() + 1_000).unwrap()
    }
}

#[apply(backends)]
fn a_client_that_missed_a_lapse_swept_since_still_learns_of_it(#[case] backend: Backend) {
    let f = fixture(backend);
    let me = f.active_user();
    let viewer = f.active_user();
    f.b.hold(&me, f.showtime, f.seats[2]).unwrap();
    let before = f.b.seat_version(&viewer, f.concert, f.showtime).unwrap();
    f.advance(Duration::from_secs(301));
    f.op().sweep().unwrap();
    let d =
        f.b.seats_since(&viewer, f.concert, f.showtime, before)
            .unwrap();
    assert_eq!(d.seats.len(), 1);
    assert_eq!(
        (d.seats[0].id, d.seats[0].status),
        (f.seats[2], SeatStatus::Available)
    );
}

/// Writers on many seats (so many version slots) at once while a client keeps its mirror with
/// diffs: whenever a full map is at the mirror's version it is the mirror, and once the writers
/// stop one more diff makes the mirror the map. A diff that missed a change committed out of
/// its slot's order would leave the mirror wrong for good.
#[apply(backends)]
fn diffs_taken_while_writers_run_miss_nothing(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let f = Arc::new(fixture(backend));
    let viewer = f.active_user();
    let mut mirror = Mirror::new(&f, &viewer);
    let running = Arc::new(AtomicUsize::new(8));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (f, running) = (f.clone(), running.clone());
            let me = f.active_user();
            std::thread::spawn(move || {
                let mut held = 0;
                for k in 0..40 {
                    let seat = f.seats[(w * 3 + k * 7) % f.seats.len()];
                    if let Ok(t) = f.b.hold(&me, f.showtime, seat) {
                        held += 1;
                        // Every other hold is left in place until the next round frees it.
                        if k % 2 == 0 {
                            f.b.release(&me, t.id).unwrap();
                        }
                    }
                    if k % 2 == 1 {
                        for t in f.b.tickets(&me).unwrap() {
                            if t.status == TicketStatus::Held {
                                f.b.release(&me, t.id).unwrap();
                            }
                        }
                    }
                }
                running.fetch_sub(1, Ordering::SeqCst);
                held
            })
        })
        .collect();
    let (mut rounds, mut same_version) = (0, 0);
    while running.load(Ordering::SeqCst) > 0 {
        mirror.catch_up(&f, &viewer);
        rounds += 1;
        let map = f.b.seat_map(&viewer, f.concert, f.showtime).unwrap();
        if map.version == mirror.version {
            same_version += 1;
            let full: HashMap<SeatId, SeatStatus> =
                map.seats.into_iter().map(|s| (s.id, s.status)).collect();
            assert_eq!(
                mirror.seats, full,
                "a map at the mirror's version differs from it"
            );
        }
    }
    let held: usize = writers.into_iter().map(|h| h.join().unwrap()).sum();
    mirror.catch_up(&f, &viewer);
    assert_eq!(mirror.seats, statuses(&f, &viewer));
    assert!(held > 40, "the writers held {held} seats");
    assert!(
        rounds > 1,
        "the client caught up {rounds} times while they ran"
    );
    eprintln!("{rounds} diffs while writing, {same_version} maps at the mirror's version");
    f.assert_verified();
}
