//! The waiting room: admission, positions, TTLs, the guards and tokens.
mod fixture;

use booking::*;
use fixture::*;
use rstest_reuse::apply;
use std::time::Duration;

fn small_room(backend: Backend, max_active: u32) -> Fixture {
    fixture_with(backend, |c| c.with_max_active(max_active))
}

#[apply(backends)]
fn entering_with_room_admits_at_once(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture(backend);
    let e = f.b.enter_queue(None).unwrap();
    assert!(e.created);
    assert_eq!(e.status.status, EntryStatus::Active);
    assert_eq!(e.status.position, 0);
    assert_eq!(e.status.estimated_wait_seconds, None);
    assert_eq!(
        e.status.expires_at,
        Some(f.clock.now() + chrono::Duration::minutes(10))
    );
    let who = f.b.authorize_active(&e.token).unwrap();
    assert_eq!(who.user_id(), e.status.user_id);
}

#[apply(backends)]
fn without_room_users_wait_in_order_with_positions_and_estimates(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = small_room(backend, 2);
    let _a = f.b.enter_queue(None).unwrap();
    let _b = f.b.enter_queue(None).unwrap();
    let c = f.b.enter_queue(None).unwrap();
    let d = f.b.enter_queue(None).unwrap();
    assert_eq!(c.status.status, EntryStatus::Waiting);
    assert_eq!(c.status.position, 1);
    assert_eq!(d.status.position, 2);
    assert_eq!(c.status.estimated_wait_seconds, Some(600));
    assert_eq!(
        c.status.expires_at,
        Some(f.clock.now() + chrono::Duration::minutes(5))
    );
    let p = f.b.authorize(&c.token).unwrap();
    assert_eq!(code(f.b.authorize_active(&c.token)), "queue_not_active");
    assert_eq!(f.b.queue_status(&p).unwrap().position, 1);
}

#[apply(backends)]
fn entering_again_returns_the_same_live_entry(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = small_room(backend, 1);
    f.b.enter_queue(None).unwrap();
    let w = f.b.enter_queue(None).unwrap();
    let user = w.status.user_id;
    let again = f.b.enter_queue(Some(user)).unwrap();
    assert!(!again.created);
    assert_eq!(again.status.position, w.status.position);
    let p1 = f.b.authorize(&w.token).unwrap();
    let p2 = f.b.authorize(&again.token).unwrap();
    assert_eq!(p1.entry_id(), p2.entry_id());
    assert_eq!(f.op().queue_counts().unwrap().waiting, 1);
}

#[apply(backends)]
fn payment_ends_the_turn_and_the_next_poll_admits_the_first_waiting_user(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = small_room(backend, 1);
    let a = f.active_user();
    let w1 = f.b.enter_queue(None).unwrap();
    let w2 = f.b.enter_queue(None).unwrap();
    let p1 = f.b.authorize(&w1.token).unwrap();
    let p2 = f.b.authorize(&w2.token).unwrap();
    let t = f.b.hold(&a, f.showtime, f.seats[0]).unwrap();
    f.b.charge(&a, t.price, None).unwrap();
    f.b.pay(&a, t.id, None).unwrap();
    assert_eq!(f.b.queue_status(&a).unwrap().status, EntryStatus::Expired);
    assert_eq!(code(f.b.authorize_active(&w2.token)), "queue_not_active");
    // The second in line polls first: the slot still goes to the first in line.
    let s2 = f.b.queue_status(&p2).unwrap();
    assert_eq!((s2.status, s2.position), (EntryStatus::Waiting, 1));
    let s1 = f.b.queue_status(&p1).unwrap();
    assert_eq!(s1.status, EntryStatus::Active);
    f.b.authorize_active(&w1.token).unwrap();
}

#[apply(backends)]
fn active_sessions_end_after_the_active_ttl_and_free_their_slot(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = small_room(backend, 1);
    let a = f.active_user();
    let w = f.b.enter_queue(None).unwrap();
    let pw = f.b.authorize(&w.token).unwrap();
    f.advance(Duration::from_secs(4 * 60));
    assert_eq!(f.b.queue_status(&pw).unwrap().status, EntryStatus::Waiting);
    f.advance(Duration::from_secs(4 * 60));
    assert_eq!(f.b.queue_status(&pw).unwrap().status, EntryStatus::Waiting);
    f.advance(Duration::from_secs(2 * 60)); // the active user's 10 minutes are over
    assert_eq!(f.b.queue_status(&a).unwrap().status, EntryStatus::Expired);
    assert_eq!(f.b.queue_status(&pw).unwrap().status, EntryStatus::Active);
}

#[apply(backends)]
fn waiting_entries_not_polled_drop_out_and_stop_counting_ahead(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = small_room(backend, 1);
    f.active_user();
    let gone = f.b.enter_queue(None).unwrap();
    let stay = f.b.enter_queue(None).unwrap();
    let pg = f.b.authorize(&gone.token).unwrap();
    let ps = f.b.authorize(&stay.token).unwrap();
    assert_eq!(stay.status.position, 2);
    for _ in 0..5 {
        f.advance(Duration::from_secs(90));
        assert_eq!(f.b.queue_status(&ps).unwrap().status, EntryStatus::Waiting);
    }
    // `gone` never polled: 7.5 minutes > the 5 minute idle timeout.
    assert_eq!(f.b.queue_status(&pg).unwrap().status, EntryStatus::Expired);
    assert_eq!(f.b.queue_status(&ps).unwrap().position, 1);
    // A user whose entry dropped out gets a new one at the back.
    let back = f.b.enter_queue(Some(gone.status.user_id)).unwrap();
    assert!(back.created);
    assert_eq!(back.status.position, 2);
}

#[apply(backends)]
fn positions_never_grow_while_waiting(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = small_room(backend, 3);
    let entries: Vec<_> = (0..12).map(|_| f.b.enter_queue(None).unwrap()).collect();
    let identities: Vec<_> = entries
        .iter()
        .map(|e| f.b.authorize(&e.token).unwrap())
        .collect();
    let mut last: Vec<i64> = entries.iter().map(|e| e.status.position).collect();
    let mut paid = 0;
    for round in 0..8 {
        // Each round one active user pays, and new users keep arriving behind.
        if let Some(i) = identities
            .iter()
            .position(|p| f.b.queue_status(p).unwrap().status == EntryStatus::Active)
        {
            let who = f.b.authorize_active(&entries[i].token).unwrap();
            let t = f.b.hold(&who, f.showtime, f.seats[round]).unwrap();
            f.b.charge(&who, t.price, None).unwrap();
            f.b.pay(&who, t.id, None).unwrap();
            paid += 1;
        }
        f.b.enter_queue(None).unwrap();
        for (i, p) in identities.iter().enumerate() {
            let s = f.b.queue_status(p).unwrap();
            if s.status == EntryStatus::Waiting {
                assert!(s.position <= last[i], "position grew for entry {i}");
                assert!(s.position >= 1);
            }
            last[i] = s.position;
        }
    }
    assert_eq!(paid, 8, "every round had an active user to pay");
}

#[apply(backends)]
fn admit_per_minute_limits_new_admissions(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| c.with_max_active(100).with_admit_per_minute(2));
    let es: Vec<_> = (0..5).map(|_| f.b.enter_queue(None).unwrap()).collect();
    let statuses: Vec<_> = es.iter().map(|e| e.status.status).collect();
    assert_eq!(statuses[..2], [EntryStatus::Active, EntryStatus::Active]);
    assert!(statuses[2..].iter().all(|s| *s == EntryStatus::Waiting));
    assert_eq!(es[4].status.estimated_wait_seconds, Some(120));
    let p2 = f.b.authorize(&es[2].token).unwrap();
    let p4 = f.b.authorize(&es[4].token).unwrap();
    f.advance(Duration::from_secs(30));
    assert_eq!(f.b.queue_status(&p2).unwrap().status, EntryStatus::Waiting);
    f.advance(Duration::from_secs(31));
    assert_eq!(f.b.queue_status(&p2).unwrap().status, EntryStatus::Active);
    assert_eq!(f.b.queue_status(&p4).unwrap().position, 1);
}

#[apply(backends)]
fn a_poll_that_changes_nothing_takes_no_write_lock(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = fixture_with(backend, |c| {
        c.with_max_active(1)
            .with_busy_timeout(Duration::from_millis(50))
    });
    let active = f.active_user();
    let w = f.b.enter_queue(None).unwrap();
    let waiting = f.b.authorize(&w.token).unwrap();
    // Another process holds the write lock.
    let raw = f.raw();
    raw.lock_writes();
    assert_eq!(
        f.b.queue_status(&active).unwrap().status,
        EntryStatus::Active
    );
    assert_eq!(f.b.queue_status(&waiting).unwrap().position, 1);
    f.b.authorize(&w.token).unwrap();
    // A write has to wait for the lock and reports `busy` once the timeout passes.
    assert_eq!(code(f.b.enter_queue(None)), "busy");
    raw.rollback();
    f.b.enter_queue(None).unwrap();
}

#[apply(backends)]
fn sweep_tidies_lapsed_entries_without_changing_any_answer(#[case] backend: Backend) {
    if backend.skipped() {
        return;
    }
    let f = small_room(backend, 1);
    let a = f.active_user();
    let w = f.b.enter_queue(None).unwrap();
    f.advance(Duration::from_secs(11 * 60));
    let report = f.op().sweep().unwrap();
    assert_eq!(report.expired_entries, 2, "{report:?}");
    assert_eq!(f.b.queue_status(&a).unwrap().status, EntryStatus::Expired);
    let pw = f.b.authorize(&w.token).unwrap();
    assert_eq!(f.b.queue_status(&pw).unwrap().status, EntryStatus::Expired);
    let counts = f.op().queue_counts().unwrap();
    assert_eq!((counts.waiting, counts.active, counts.expired), (0, 0, 2));
}

mod tokens {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn parts(t: &str) -> Vec<String> {
        t.split('.').map(str::to_string).collect()
    }

    #[apply(backends)]
    fn tokens_survive_reopening_and_are_shared_by_handles_on_one_file(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let e = f.b.enter_queue(None).unwrap();
        let other = Booking::open(f.location(), test_config(backend)).unwrap();
        let p = other.authorize_active(&e.token).unwrap();
        assert_eq!(p.user_id(), e.status.user_id);
    }

    #[apply(backends)]
    fn forged_tokens_are_unauthorized(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let e = f.b.enter_queue(None).unwrap();
        let p = parts(&e.token);
        // alg none, no signature.
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        for forged in [
            format!("{none_header}.{}.", p[1]),
            format!("{none_header}.{}", p[1]),
        ] {
            assert_eq!(code(f.b.authorize(&forged)), "unauthorized");
        }
        // Another algorithm named in the header, same signature.
        let hs512 = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        assert_eq!(
            code(f.b.authorize(&format!("{hs512}.{}.{}", p[1], p[2]))),
            "unauthorized"
        );
        // Tampered payload: another user's id, original signature.
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[1]).unwrap()).unwrap();
        claims["sub"] = serde_json::json!(UserId::new_random().to_string());
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert_eq!(
            code(f.b.authorize(&format!("{}.{body}.{}", p[0], p[2]))),
            "unauthorized"
        );
        // Signed with another key.
        let other = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(&p[1]).unwrap())
                .unwrap(),
            &jsonwebtoken::EncodingKey::from_secret(b"not the server's secret"),
        )
        .unwrap();
        assert_eq!(code(f.b.authorize(&other)), "unauthorized");
        // Garbage.
        for junk in ["", "abc", "a.b.c", "Bearer x"] {
            assert_eq!(code(f.b.authorize(junk)), "unauthorized");
        }
        // The active guard rejects what the identity guard rejects.
        assert_eq!(code(f.b.authorize_active(&other)), "unauthorized");
    }

    #[apply(backends)]
    fn tokens_past_their_lifetime_are_unauthorized(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let e = f.b.enter_queue(None).unwrap();
        f.advance(Duration::from_secs(24 * 3600 - 1));
        f.b.authorize(&e.token).unwrap();
        f.advance(Duration::from_secs(1));
        assert_eq!(code(f.b.authorize(&e.token)), "unauthorized");
    }

    #[apply(backends)]
    fn a_token_from_another_database_is_unauthorized(#[case] backend: Backend) {
        if backend.skipped() {
            return;
        }
        let f = fixture(backend);
        let secret = b"shared-secret-shared-secret-0123".to_vec();
        let a = fresh(
            backend,
            test_config(backend).with_jwt_secret(secret.clone()),
            std::sync::Arc::new(f.clock.clone()),
        );
        let b = fresh(
            backend,
            test_config(backend).with_jwt_secret(secret),
            std::sync::Arc::new(f.clock.clone()),
        );
        b.enter_queue(None).unwrap();
        let e = a.enter_queue(None).unwrap();
        let p = b.authorize(&e.token).unwrap();
        // Same secret, but b's entry #1 belongs to another user.
        assert_eq!(code(b.queue_status(&p)), "unauthorized");
        assert_eq!(code(b.authorize_active(&e.token)), "unauthorized");
    }
}
