//! Human output of `booking-cli`: aligned tables, the seat map, short confirmations.
//! Presentation only — no SQL and no rules live here.

use booking::{
    Balance, Cancellation, Concert, ConcertId, NewShowtime, Points, Pricing, Seat, SeatStatus,
    SeedReport, Showtime, ShowtimeCancelled, ShowtimeId, ShowtimeReport, SweepReport, VerifyReport,
};
use std::fmt::Write as _;
use std::path::Path;

/// `1234567` as `1,234,567` (negative numbers keep their sign).
pub fn points(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A column of a table: its header and whether numbers in it align right.
pub struct Col(pub &'static str, pub bool);

/// An aligned table: a header line, then one line per row; no trailing spaces.
pub fn table(cols: &[Col], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([cols[i].0.len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..cols.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = widths[i];
            if cols[i].1 {
                let _ = write!(s, "{cell:>w$}  ");
            } else {
                let _ = write!(s, "{cell:<w$}  ");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(cols.iter().map(|c| c.0).collect());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `init`.
pub fn initialized(db: &Path, schema_version: usize) -> String {
    format!(
        "database {} is ready (schema version {schema_version})",
        db.display()
    )
}

/// `showtime add`.
pub fn showtime_added(id: ShowtimeId, concert: ConcertId, s: &NewShowtime) -> String {
    let price = match &s.price {
        Pricing::Flat(p) => points(p.get()),
        Pricing::Sections(_) => "sectioned".into(),
    };
    format!(
        "added showtime {id} of concert {concert}: {} seats at {price} points, starting {}",
        points(i64::from(s.seats)),
        s.starts_at.to_rfc3339()
    )
}

/// `seed`.
pub fn seeded(r: &SeedReport) -> String {
    let seats = points(i64::try_from(r.seats).unwrap_or(i64::MAX));
    format!(
        "loaded {} concerts, {} showtimes, {seats} seats",
        r.concerts, r.showtimes
    )
}

/// `points charge`.
pub fn charged(amount: Points, b: &Balance) -> String {
    format!(
        "charged {} points to {}; balance {}",
        points(amount.get()),
        b.user_id,
        points(b.balance.get())
    )
}

/// `points show`.
pub fn balance(b: &Balance) -> String {
    format!("{}: {} points", b.user_id, points(b.balance.get()))
}

/// `concert list`.
pub fn concerts(list: &[Concert]) -> String {
    if list.is_empty() {
        return "no concerts yet; add one with `booking-cli concert add --title T --venue V` \
                or load the demo with `booking-cli seed demo`"
            .into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| vec![c.id.to_string(), c.title.clone(), c.venue.clone()])
        .collect();
    table(
        &[Col("ID", true), Col("TITLE", false), Col("VENUE", false)],
        &rows,
    )
}

/// `showtime list`.
pub fn showtimes(list: &[Showtime]) -> String {
    if list.is_empty() {
        return "no showtimes yet; add one with \
                `booking-cli showtime add --concert ID --starts-at TIME --seats N --price P`"
            .into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.starts_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                points(s.total_seats),
                points(s.available_seats),
            ]
        })
        .collect();
    let cols = [
        Col("ID", true),
        Col("STARTS AT", false),
        Col("SEATS", true),
        Col("AVAILABLE", true),
    ];
    table(&cols, &rows)
}

fn cell(status: SeatStatus, color: bool) -> &'static str {
    match (status, color) {
        (SeatStatus::Available, false) => ".",
        (SeatStatus::Held, false) => "h",
        (SeatStatus::Sold, false) => "X",
        (SeatStatus::Available, true) => "\x1b[32m.\x1b[0m",
        (SeatStatus::Held, true) => "\x1b[33mh\x1b[0m",
        (SeatStatus::Sold, true) => "\x1b[31mX\x1b[0m",
    }
}

/// `seats`: a grid of the showtime's seats, a row of the grid per line, labelled with its row
/// and seat numbers, each seat one character (`.` available, `h` held, `X` sold), and the row's
/// price. `color` paints the seats with ANSI colours.
pub fn seat_map(showtime: ShowtimeId, seats: &[Seat], color: bool) -> String {
    let count = |st| seats.iter().filter(|s| s.status == st).count() as i64;
    let mut out = format!(
        "showtime {showtime}: {} seats, {} available, {} held, {} sold\n\
         legend: {} available  {} held  {} sold\n\n",
        points(seats.len() as i64),
        points(count(SeatStatus::Available)),
        points(count(SeatStatus::Held)),
        points(count(SeatStatus::Sold)),
        cell(SeatStatus::Available, color),
        cell(SeatStatus::Held, color),
        cell(SeatStatus::Sold, color),
    );
    let per_row = if seats.len() <= 200 { 10 } else { 20 };
    let last = seats.last().map_or(0, |s| s.number);
    let label_w = 2 * last.to_string().len() + 1;
    let rows_w = seats.len().div_ceil(per_row).to_string().len().max(3);
    let _ = write!(out, "{:>rows_w$}  {:>label_w$}  ", "ROW", "SEATS");
    for k in 1..=per_row {
        let _ = write!(out, "{k:>2} ");
    }
    out.push_str(" PRICE\n");
    for (i, row) in seats.chunks(per_row).enumerate() {
        let (first, last) = (row[0].number, row[row.len() - 1].number);
        let label = format!("{first}-{last}");
        let _ = write!(out, "{:>rows_w$}  {label:>label_w$}  ", i + 1);
        for s in row {
            let _ = write!(out, " {} ", cell(s.status, color));
        }
        out.push_str(&"   ".repeat(per_row - row.len()));
        let lo = row.iter().map(|s| s.price.get()).min().unwrap_or(0);
        let hi = row.iter().map(|s| s.price.get()).max().unwrap_or(0);
        let price = if lo == hi {
            points(lo)
        } else {
            format!("{}-{}", points(lo), points(hi))
        };
        let _ = writeln!(out, " {price}");
    }
    out.trim_end().to_string()
}

/// `ticket cancel`.
pub fn ticket_cancelled(c: &Cancellation) -> String {
    format!(
        "cancelled ticket {} (seat {} of showtime {}): refunded {} points, fee {}; balance of {} now {}",
        c.ticket.id,
        c.ticket.seat_number,
        c.ticket.showtime_id,
        points(c.refund.get()),
        points(c.fee.get()),
        c.ticket.user_id,
        points(c.balance.get())
    )
}

/// `showtime cancel`.
pub fn showtime_cancelled(id: ShowtimeId, d: &ShowtimeCancelled) -> String {
    format!(
        "showtime {id} is called off: {} paid tickets cancelled and {} points refunded in full, {} holds released",
        points(d.cancelled as i64),
        points(d.refunded.get()),
        points(d.released as i64)
    )
}

/// `report`.
pub fn report(rows: &[ShowtimeReport]) -> String {
    if rows.is_empty() {
        return "no showtimes yet".into();
    }
    let cols = [
        Col("SHOWTIME", true),
        Col("CONCERT", true),
        Col("STARTS AT", false),
        Col("TOTAL", true),
        Col("AVAILABLE", true),
        Col("HELD", true),
        Col("SOLD", true),
        Col("REVENUE", true),
        Col("REFUNDED", true),
        Col("FEES", true),
    ];
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let when = r.starts_at.format("%Y-%m-%d %H:%M UTC").to_string();
            vec![
                r.showtime_id.to_string(),
                r.concert_id.to_string(),
                if r.cancelled {
                    format!("{when} (called off)")
                } else {
                    when
                },
                points(r.total),
                points(r.available),
                points(r.held),
                points(r.sold),
                points(r.revenue.get()),
                points(r.refunded.get()),
                points(r.fees.get()),
            ]
        })
        .collect();
    table(&cols, &rows)
}

/// `queue status`.
pub fn queue_counts(c: &booking::QueueCounts) -> String {
    let cols = [
        Col("WAITING", true),
        Col("ACTIVE", true),
        Col("EXPIRED", true),
        Col("PREQUEUE", true),
    ];
    table(
        &cols,
        &[vec![
            points(c.waiting),
            points(c.active),
            points(c.expired),
            points(c.prequeue),
        ]],
    )
}

/// `queue show` and the `queue` commands that change it.
pub fn queue_settings(s: &booking::QueueSettings) -> String {
    let from = |src: booking::Source| match src {
        booking::Source::Flags => "each server's flag (this is the default)",
        booking::Source::Database => "set in the database",
    };
    let per_minute = match s.admit_per_minute {
        0 => "no limit".to_string(),
        n => points(i64::from(n)),
    };
    let opens = match s.opens_at {
        Some(t) => format!("opens at {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
        None => "open".into(),
    };
    let mut out = format!(
        "max active:       {} ({})\nadmit per minute: {per_minute} ({})\nadmission:        {}\nwaiting room:     {opens}",
        points(i64::from(s.max_active)),
        from(s.source.max_active),
        from(s.source.admit_per_minute),
        if s.paused { "PAUSED" } else { "running" },
    );
    if s.prequeue > 0 {
        out.push_str(&format!(
            "\nprequeue:         {} to place",
            points(s.prequeue)
        ));
    }
    out.push_str(&format!("\nadmitted so far:  {}", points(s.admitted_total)));
    out
}

/// `sweep`.
pub fn sweep(r: &SweepReport) -> String {
    format!(
        "swept: {} lapsed holds expired, {} queue entries expired, {} old idempotency keys removed",
        r.expired_holds, r.expired_entries, r.removed_idempotency_keys
    )
}

/// `verify`.
pub fn verify(r: &VerifyReport) -> String {
    if r.ok {
        return "ok: every invariant holds".into();
    }
    let rows: Vec<Vec<String>> = r
        .violations
        .iter()
        .map(|v| vec![v.invariant.to_string(), v.detail.clone()])
        .collect();
    format!(
        "{} violation(s) found:\n{}",
        r.violations.len(),
        table(&[Col("INVARIANT", false), Col("DETAIL", false)], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_have_thousands_separators() {
        assert_eq!(points(0), "0");
        assert_eq!(points(999), "999");
        assert_eq!(points(1000), "1,000");
        assert_eq!(points(-1234567), "-1,234,567");
    }

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let t = table(
            &[Col("ID", true), Col("NAME", false)],
            &[vec!["1".into(), "a".into()], vec!["10".into(), "bb".into()]],
        );
        assert_eq!(t, "ID  NAME\n 1  a\n10  bb");
    }
}
