//! Preparing a database for load: a catalog for the journey and, for `wrk`, files of ready
//! requests — active users' tokens, distinct free seats (at most four per user and showtime),
//! and held, fully funded tickets to pay. Done through the library, in the server's database
//! file, before the server starts.

use anyhow::{bail, Context};
use booking::{
    Active, Booking, CatalogFile, ConcertId, Config, Durability, GroupCommit, NewConcert,
    NewShowtime, Points, Pricing, SeatId, ShowtimeId, MAX_SEATS,
};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// What to prepare.
#[derive(Debug, Clone, clap::Args)]
pub struct Plan {
    /// Concerts of the journey catalog (0: none).
    #[arg(long, default_value_t = 10)]
    pub journey_concerts: u32,
    /// Dates per journey concert.
    #[arg(long, default_value_t = 4)]
    pub journey_showtimes: u32,
    /// Seats per journey date.
    #[arg(long, default_value_t = 500)]
    pub journey_seats: u32,
    /// Seats of the showtime listed by `wrk` (GET /concerts/{id}:{id}).
    #[arg(long, default_value_t = 50)]
    pub listing_seats: u32,
    /// Distinct free seats to hold with `wrk` (POST /tickets), four per user.
    #[arg(long, default_value_t = 200_000)]
    pub hold_seats: u64,
    /// Seats per showtime of the seats to hold (at most the per-showtime limit): smaller
    /// showtimes spread the holds over more of them (`scripts/bench-pg.sh`).
    #[arg(long, default_value_t = MAX_SEATS, value_parser = clap::value_parser!(u32).range(1..=MAX_SEATS as i64))]
    pub hold_showtime_seats: u32,
    /// Held and funded tickets to pay with `wrk` (POST /payments).
    #[arg(long, default_value_t = 60_000)]
    pub pay_tickets: u64,
    /// Active users whose tokens `wrk` polls and charges with.
    #[arg(long, default_value_t = 1_000)]
    pub tokens: u64,
}

/// The price of every prepared seat.
const PRICE: Points = Points::new(50_000);

/// Seeds the journey catalog into `db`, and with `out` the `wrk` data too (files in `out`).
pub fn prepare(db: &Path, out: Option<&Path>, plan: &Plan) -> anyhow::Result<()> {
    // Fast and generous: users stay active and holds live for two hours, whatever the
    // server's own policy, so the data outlasts a whole benchmark run.
    let cfg = Config::default()
        .with_durability(Durability::Normal)
        .with_group_commit(Some(GroupCommit::default()))
        .with_max_active(u32::MAX)
        .with_active_ttl(Duration::from_secs(7200))
        .with_hold_ttl(Duration::from_secs(7200));
    let b = Booking::open(db, cfg).with_context(|| format!("cannot open {}", db.display()))?;
    if plan.journey_concerts > 0 {
        let concerts = (1..=plan.journey_concerts)
            .map(|i| {
                concert(
                    &b,
                    &format!("Journey {i}"),
                    plan.journey_showtimes,
                    plan.journey_seats,
                )
            })
            .collect();
        let r = b.operator().seed(&CatalogFile { concerts }, |_| {})?;
        println!(
            "journey catalog: {} concerts, {} showtimes, {} seats",
            r.concerts, r.showtimes, r.seats
        );
    }
    let Some(out) = out else { return Ok(()) };
    std::fs::create_dir_all(out)?;

    let (listed, listing) = seats(
        &b,
        "wrk listing",
        u64::from(plan.listing_seats.max(1)),
        MAX_SEATS,
    )?;
    let (_, holds) = seats(&b, "wrk holds", plan.hold_seats, plan.hold_showtime_seats)?;
    let (_, pays) = seats(&b, "wrk payments", plan.pay_tickets, MAX_SEATS)?;
    let users = enter(
        &b,
        plan.tokens + plan.hold_seats.div_ceil(4) + plan.pay_tickets.div_ceil(4),
    )?;
    let (token_users, rest) = users.split_at(plan.tokens as usize);
    let (hold_users, pay_users) = rest.split_at(plan.hold_seats.div_ceil(4) as usize);

    let tickets = parallel(pays.len() as u64, |i| {
        let (showtime, seat) = pays[i as usize];
        Ok(b.hold(&pay_users[i as usize / 4].0, showtime, seat)?
            .id
            .get())
    })?;
    parallel(pay_users.len() as u64, |u| {
        b.charge(&pay_users[u as usize].0, Points::new(4 * PRICE.get()), None)?;
        Ok(0)
    })?;

    let first = &token_users
        .first()
        .context("--tokens must be at least 1")?
        .1;
    let path = format!("/concerts/{listed}:{}", listing[0].0);
    write(out, "listing.txt", format!("{first} {path}\n"))?;
    write(
        out,
        "tokens.txt",
        lines(token_users.iter().map(|(_, t)| t.clone())),
    )?;
    write(
        out,
        "holds.txt",
        lines(
            holds
                .iter()
                .enumerate()
                .map(|(i, (st, seat))| format!("{} {st} {seat}", hold_users[i / 4].1)),
        ),
    )?;
    write(
        out,
        "pays.txt",
        lines(
            tickets
                .iter()
                .enumerate()
                .map(|(i, t)| format!("{} {t}", pay_users[i / 4].1)),
        ),
    )?;
    println!(
        "wrk data in {}: {} tokens, {} seats to hold, {} tickets to pay",
        out.display(),
        token_users.len(),
        holds.len(),
        tickets.len()
    );
    Ok(())
}

/// A concert with `dates` showtimes of `seats` seats, on evenings a week ahead and on.
fn concert(b: &Booking, title: &str, dates: u32, seats: u32) -> NewConcert {
    NewConcert {
        title: title.into(),
        venue: "Loopback Arena".into(),
        showtimes: (0..dates)
            .map(|d| NewShowtime {
                sale_opens_at: None,
                starts_at: (b.now() + chrono::Duration::days(7 + i64::from(d))).fixed_offset(),
                seats,
                price: Pricing::Flat(PRICE),
            })
            .collect(),
    }
}

/// A concert with `n` seats in all, in showtimes of `per` seats (the last one the rest): its
/// id and each seat with its showtime, in order.
fn seats(
    b: &Booking,
    title: &str,
    n: u64,
    per: u32,
) -> anyhow::Result<(ConcertId, Vec<(ShowtimeId, SeatId)>)> {
    let per = u64::from(per.clamp(1, MAX_SEATS));
    let dates = n.div_ceil(per).max(1) as u32;
    let mut c = concert(b, title, dates, per as u32);
    if let Some(last) = c.showtimes.last_mut() {
        last.seats = (n - per * u64::from(dates - 1)).max(1) as u32;
    }
    b.operator()
        .seed(&CatalogFile { concerts: vec![c] }, |_| {})?;
    let concert = b
        .operator()
        .concerts()?
        .pop()
        .context("the concert just added")?;
    let mut all = Vec::with_capacity(n as usize);
    for st in b.operator().showtimes(concert.id)? {
        all.extend(
            b.operator()
                .seats(st.id)?
                .into_iter()
                .map(|s| (st.id, s.id)),
        );
    }
    all.truncate(n as usize);
    Ok((concert.id, all))
}

/// A waiting room of `active` admitted users and `waiting` users in line behind them (for the
/// queue's scale benchmark), entered through the library; writes the tokens of up to 1,000
/// active users (`active.txt`) and of up to 1,000 waiting ones spread along the line
/// (`waiting.txt`). The server that serves it should run with `--max-active ACTIVE`.
pub fn prepare_queue(
    db: &Path,
    out: &Path,
    active: u64,
    waiting: u64,
    prequeue: u64,
) -> anyhow::Result<()> {
    let long = Duration::from_secs(7200);
    let cfg = Config::default()
        .with_durability(Durability::Normal)
        .with_group_commit(Some(GroupCommit::default()))
        .with_max_active(u32::try_from(active).context("--active is too large")?)
        .with_active_ttl(long)
        .with_idle_timeout(long);
    let b = Booking::open(db, cfg).with_context(|| format!("cannot open {}", db.display()))?;
    let tokens = Mutex::new(Vec::new());
    let sample = |n: u64| (n / 1_000).max(1);
    parallel(active + waiting, |i| {
        let e = b.enter_queue(None)?;
        let keep = if i < active {
            i % sample(active) == 0
        } else {
            (i - active) % sample(waiting) == 0
        };
        if keep {
            tokens.lock().unwrap().push((i, e.status.status, e.token));
        }
        Ok(0)
    })?;
    let mut tokens = tokens.into_inner().unwrap();
    tokens.sort_by_key(|t| t.0);
    std::fs::create_dir_all(out)?;
    let of = |status: booking::EntryStatus| {
        lines(tokens.iter().filter(|t| t.1 == status).map(|t| t.2.clone()))
    };
    write(out, "active.txt", of(booking::EntryStatus::Active))?;
    write(out, "waiting.txt", of(booking::EntryStatus::Waiting))?;
    if prequeue > 0 {
        // An opening far ahead: these users wait in the prequeue until `queue open-at now`.
        b.operator().change_queue(booking::QueueChange {
            opens_at: Some(Some(b.now() + chrono::Duration::days(365))),
            ..Default::default()
        })?;
        let pre = Mutex::new(Vec::new());
        parallel(prequeue, |i| {
            let e = b.enter_queue(None)?;
            if i % sample(prequeue) == 0 {
                pre.lock().unwrap().push(e.token);
            }
            Ok(0)
        })?;
        write(
            out,
            "prequeue.txt",
            lines(pre.into_inner().unwrap().into_iter()),
        )?;
    }
    let c = b.operator().queue_counts()?;
    println!(
        "queue: {} active, {} waiting, {} in the prequeue",
        c.active, c.waiting, c.prequeue
    );
    Ok(())
}

/// A sold-out showtime of `seats` seats (four per buyer, each buyer paying once for four), for
/// timing `booking-cli showtime cancel` on it. Prints the showtime's id.
pub fn prepare_sold_out(db: &Path, seats: u32) -> anyhow::Result<()> {
    let cfg = Config::default()
        .with_durability(Durability::Normal)
        .with_group_commit(Some(GroupCommit::default()))
        .with_max_active(u32::MAX)
        .with_active_ttl(Duration::from_secs(7200));
    let b = Booking::open(db, cfg).with_context(|| format!("cannot open {}", db.display()))?;
    let c = concert(&b, "Sold out", 1, seats);
    b.operator()
        .seed(&CatalogFile { concerts: vec![c] }, |_| {})?;
    let concert = b
        .operator()
        .concerts()?
        .pop()
        .context("the concert just added")?;
    let showtime = b.operator().showtimes(concert.id)?[0].id;
    let ids: Vec<SeatId> = b.operator().seats(showtime)?.iter().map(|s| s.id).collect();
    let buyers = ids.len().div_ceil(4) as u64;
    parallel(buyers, |i| {
        let e = b.enter_queue(None)?;
        let who = b.authorize_active(&e.token)?;
        let mine = &ids[(i as usize * 4)..((i as usize + 1) * 4).min(ids.len())];
        let held = b.hold_seats(&who, showtime, mine)?;
        let sum = held.iter().map(|t| t.price.get()).sum::<i64>();
        b.charge(&who, Points::new(sum), None)?;
        let tickets: Vec<_> = held.iter().map(|t| t.id).collect();
        b.pay_tickets(&who, &tickets, None)?;
        Ok(0)
    })?;
    println!("{showtime}");
    Ok(())
}

/// `n` new users, entered (and admitted) now: their ids and tokens.
fn enter(b: &Booking, n: u64) -> anyhow::Result<Vec<(Active, String)>> {
    let out = Mutex::new(Vec::with_capacity(n as usize));
    parallel(n, |_| {
        let e = b.enter_queue(None)?;
        if e.status.status != booking::EntryStatus::Active {
            bail!("a prepared user was not admitted: {:?}", e.status);
        }
        let who = b.authorize_active(&e.token)?;
        out.lock().unwrap().push((who, e.token));
        Ok(0)
    })?;
    Ok(out.into_inner().unwrap())
}

/// `f(0..n)` on eight threads (group commit batches their writes); results in index order.
fn parallel<F>(n: u64, f: F) -> anyhow::Result<Vec<i64>>
where
    F: Fn(u64) -> anyhow::Result<i64> + Sync,
{
    const THREADS: u64 = 8;
    let results: Vec<Mutex<Vec<(u64, i64)>>> = (0..THREADS).map(|_| Mutex::default()).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (f, mine) = (&f, &results[t as usize]);
                s.spawn(move || -> anyhow::Result<()> {
                    for i in (t..n).step_by(THREADS as usize) {
                        mine.lock().unwrap().push((i, f(i)?));
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a preparing thread panicked"))
    })?;
    let mut all: Vec<(u64, i64)> = results
        .into_iter()
        .flat_map(|m| m.into_inner().unwrap())
        .collect();
    all.sort_unstable();
    Ok(all.into_iter().map(|(_, v)| v).collect())
}

fn lines(items: impl Iterator<Item = String>) -> String {
    items.fold(String::new(), |mut s, l| {
        let _ = writeln!(s, "{l}");
        s
    })
}

fn write(dir: &Path, name: &str, text: String) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
