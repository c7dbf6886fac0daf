//! The contract (docs/API.md §1–§7) as a small in-memory, single-threaded model: plain vectors,
//! no SQL, no clock but the `now` it is given. Each operation returns what the contract says the
//! library answers — the value's fields that matter, or the error — and changes the state the
//! way the contract says. Catalog ids (showtimes, seats) are the library's, known up front; ids
//! the library makes as it goes (users, tickets, payments) are handed to the model by the caller
//! when both sides succeed, so the two can be compared field by field.

use booking::{
    Closed, ConcertId, EntryStatus, Error, LedgerKind, PaymentId, QueueState, SeatId, SeatStatus,
    ShowtimeId, TicketId, TicketStatus, UserId,
};
use booking::{Entity, Points};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;

/// Milliseconds since the epoch: the library stores times so, and so does the model.
pub type Ms = i64;

/// The policy of one case, in the units the model needs.
#[derive(Debug, Clone)]
pub struct Policy {
    pub hold_ttl: Ms,
    pub active_ttl: Ms,
    pub idle_timeout: Ms,
    pub max_active: i64,
    pub max_tickets: u32,
    pub max_extensions: u32,
    pub fee_percent: u32,
    pub cancel_cutoff: Ms,
    pub max_charge: i64,
    pub max_balance: i64,
    pub jwt_lifetime_secs: i64,
    pub key_retention: Ms,
}

/// A showtime of the catalog, as the model knows it.
#[derive(Debug, Clone)]
pub struct Show {
    pub id: ShowtimeId,
    pub concert: ConcertId,
    pub starts_at: Ms,
    pub sale_opens_at: Option<Ms>,
    pub cancelled: bool,
    pub seats: Vec<SeatRow>,
}

#[derive(Debug, Clone)]
pub struct SeatRow {
    pub id: SeatId,
    pub number: i64,
    pub price: i64,
}

/// The kinds of instants at which answers change (what [`Model::boundaries`] looks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    HoldLapses,
    SessionEnds,
    DropsOut,
    KeepAliveDue,
    ShowStarts,
    CancelCloses,
    SaleOpens,
    TokenExpires,
    KeyForgotten,
}

impl Boundary {
    pub const ALL: [Boundary; 9] = [
        Boundary::HoldLapses,
        Boundary::SessionEnds,
        Boundary::DropsOut,
        Boundary::KeepAliveDue,
        Boundary::ShowStarts,
        Boundary::CancelCloses,
        Boundary::SaleOpens,
        Boundary::TokenExpires,
        Boundary::KeyForgotten,
    ];
}

/// A token the model handed out: which entry it points at, and when it stops being valid.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub entry: usize,
    pub exp_secs: i64,
}

// ---- what the model answers (the library's answers are brought to the same shapes) --------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QView {
    pub status: EntryStatus,
    pub position: i64,
    pub wait: Option<i64>,
    pub expires_at: Option<Ms>,
    pub opens_at: Option<Ms>,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TView {
    pub id: TicketId,
    pub user: UserId,
    pub concert: ConcertId,
    pub showtime: ShowtimeId,
    pub seat: SeatId,
    pub seat_number: i64,
    pub price: i64,
    pub status: TicketStatus,
    pub held_until: Ms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PView {
    pub id: PaymentId,
    pub user: UserId,
    pub ticket_id: TicketId,
    pub ticket_ids: Vec<TicketId>,
    pub amount: i64,
    pub refunded: i64,
    pub paid_at: Ms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LView {
    pub kind: LedgerKind,
    pub amount: i64,
    pub balance_after: i64,
    pub at: Ms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RView {
    pub showtime: ShowtimeId,
    pub cancelled: bool,
    pub total: i64,
    pub available: i64,
    pub held: i64,
    pub sold: i64,
    pub revenue: i64,
    pub refunded: i64,
    pub fees: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Entered {
        user: UserId,
        created: bool,
        q: QView,
    },
    Queue(QView),
    Tickets(Vec<TView>),
    Ticket(TView),
    Balance {
        user: UserId,
        balance: i64,
    },
    Payment(PView),
    Payments(Vec<PView>),
    Ledger(Vec<LView>),
    Cancelled {
        ticket: TView,
        refund: i64,
        fee: i64,
        balance: i64,
    },
    ShowtimeCancelled {
        cancelled: u64,
        refunded: i64,
        released: u64,
    },
    Seats(Vec<(SeatId, i64, i64, SeatStatus)>),
    Reports(Vec<RView>),
    /// Bookable showtimes: id, total seats, available seats, sale opening.
    Showtimes(Vec<Listed>),
    Counts {
        waiting: i64,
        active: i64,
        expired: i64,
        prequeue: i64,
    },
    Done,
}

/// A bookable showtime as listed: id, total seats, available seats, sale opening.
pub type Listed = (ShowtimeId, i64, i64, Option<Ms>);

/// An answer: the value, or the error as [`err_key`] writes it.
pub type Answer = Result<Out, String>;

/// How an error is compared: its code, and for the errors that name something (a seat, a ticket,
/// a balance, a time, a state) also its message, which names it. `invalid_request`,
/// `invalid_amount` and `unauthorized` are compared by code (their messages are prose).
pub fn err_key(e: &Error) -> String {
    match e {
        Error::InvalidRequest(_) | Error::InvalidAmount(_) | Error::Unauthorized(_) => {
            e.code().to_string()
        }
        _ => format!("{}: {e}", e.code()),
    }
}

fn err<T>(e: Error) -> Result<T, String> {
    Err(err_key(&e))
}

pub fn time(ms: Ms) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

pub fn ms(t: DateTime<Utc>) -> Ms {
    t.timestamp_millis()
}

// ---- the state -------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Waiting,
    Active,
    Expired,
}

#[derive(Debug, Clone)]
struct Entry {
    user: usize,
    stored: Stored,
    seq: i64,
    last_seen: Ms,
    active_until: Ms,
}

#[derive(Debug, Clone)]
struct KeyRecord {
    request: String,
    answer: Out,
    at: Ms,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    balance: i64,
    ledger: Vec<LView>,
    keys: BTreeMap<String, KeyRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TState {
    Held,
    Paid,
    Released,
    Cancelled,
}

#[derive(Debug, Clone)]
struct Ticket {
    id: TicketId,
    user: usize,
    show: usize,
    seat: usize,
    price: i64,
    state: TState,
    held_until: Ms,
    extensions: u32,
    payment: Option<PaymentId>,
    refund: i64,
    fee: i64,
}

#[derive(Debug, Clone)]
struct Payment {
    id: PaymentId,
    user: usize,
    tickets: Vec<TicketId>,
    amount: i64,
    paid_at: Ms,
}

/// Who cancels a paid ticket.
#[derive(Debug, Clone, Copy)]
pub enum By {
    User(usize),
    Operator { no_fee: bool },
}

#[derive(Debug)]
pub struct Model {
    pub now: Ms,
    pub p: Policy,
    pub shows: Vec<Show>,
    pub users: Vec<User>,
    entries: Vec<Entry>,
    /// The highest place admitted or skipped.
    frontier: i64,
    /// The last place handed out.
    next_seq: i64,
    tickets: Vec<Ticket>,
    payments: Vec<Payment>,
    /// When each token handed out stops being valid.
    token_expiries: Vec<Ms>,
}

/// An id for the model's side when the library gave none (it failed where the model did not:
/// the case fails on this answer anyway).
fn placeholder_ticket() -> TicketId {
    TicketId::new(i64::MAX).unwrap()
}

impl Model {
    pub fn new(now: Ms, p: Policy, shows: Vec<Show>) -> Model {
        Model {
            now,
            p,
            shows,
            users: Vec::new(),
            entries: Vec::new(),
            frontier: 0,
            next_seq: 0,
            tickets: Vec::new(),
            payments: Vec::new(),
            token_expiries: Vec::new(),
        }
    }

    pub fn advance_clock(&mut self, ms: Ms) {
        self.now += ms;
    }

    /// The instants ahead at which some answer changes, of one kind (`kind` modulo
    /// [`Boundary::ALL`]), sorted; if there is none of that kind, those of every kind.
    pub fn boundaries(&self, kind: usize) -> Vec<Ms> {
        let kind = Boundary::ALL[kind % Boundary::ALL.len()];
        let of = |k: Boundary| {
            let mut v = self.boundaries_of(k);
            v.retain(|t| *t > self.now);
            v
        };
        let mut v = of(kind);
        if v.is_empty() {
            v = Boundary::ALL.iter().flat_map(|k| of(*k)).collect();
        }
        v.sort();
        v.dedup();
        v
    }

    fn boundaries_of(&self, kind: Boundary) -> Vec<Ms> {
        let entries = |stored: Stored| self.entries.iter().filter(move |e| e.stored == stored);
        match kind {
            Boundary::HoldLapses => self
                .tickets
                .iter()
                .filter(|t| t.state == TState::Held)
                .map(|t| t.held_until)
                .collect(),
            Boundary::SessionEnds => entries(Stored::Active).map(|e| e.active_until).collect(),
            Boundary::DropsOut => entries(Stored::Waiting)
                .map(|e| e.last_seen + self.p.idle_timeout)
                .collect(),
            Boundary::KeepAliveDue => entries(Stored::Waiting)
                .map(|e| e.last_seen + self.p.idle_timeout / 4)
                .collect(),
            Boundary::ShowStarts => self.shows.iter().map(|s| s.starts_at).collect(),
            Boundary::CancelCloses => self
                .shows
                .iter()
                .map(|s| s.starts_at - self.p.cancel_cutoff)
                .collect(),
            Boundary::SaleOpens => self.shows.iter().filter_map(|s| s.sale_opens_at).collect(),
            Boundary::TokenExpires => self.token_expiries.clone(),
            Boundary::KeyForgotten => self
                .users
                .iter()
                .flat_map(|u| u.keys.values().map(|k| k.at + self.p.key_retention))
                .collect(),
        }
    }

    // ---- lookups the harness uses to pick arguments -------------------------------------------

    /// The ids of `user`'s tickets (of that status now, if given), oldest first.
    pub fn tickets_of(&self, user: usize, status: Option<TicketStatus>) -> Vec<TicketId> {
        self.tickets
            .iter()
            .filter(|t| t.user == user && status.is_none_or(|s| self.status(t) == s))
            .map(|t| t.id)
            .collect()
    }

    /// Every ticket id (of that status now, if given), oldest first.
    pub fn all_tickets(&self, status: Option<TicketStatus>) -> Vec<TicketId> {
        self.tickets
            .iter()
            .filter(|t| status.is_none_or(|s| self.status(t) == s))
            .map(|t| t.id)
            .collect()
    }

    /// Whether `tok` is still a valid JWT now.
    pub fn token_valid(&self, tok: &Token) -> bool {
        self.now.div_euclid(1000) < tok.exp_secs
    }

    // ---- the waiting room ------------------------------------------------------------------------

    fn effective(&self, e: &Entry) -> EntryStatus {
        match e.stored {
            Stored::Active if e.active_until > self.now => EntryStatus::Active,
            Stored::Waiting if e.last_seen > self.now - self.p.idle_timeout => EntryStatus::Waiting,
            _ => EntryStatus::Expired,
        }
    }

    fn active_count(&self) -> i64 {
        self.entries
            .iter()
            .filter(|e| self.effective(e) == EntryStatus::Active)
            .count() as i64
    }

    /// Lapsed sessions end; then waiting users are admitted in order of place while there is
    /// room, and entries that went idle are skipped (and end) on the way.
    fn admit(&mut self) {
        let now = self.now;
        for e in &mut self.entries {
            if e.stored == Stored::Active && e.active_until <= now {
                e.stored = Stored::Expired;
            }
        }
        let mut budget = (self.p.max_active - self.active_count()).max(0);
        let mut line: Vec<usize> = (0..self.entries.len())
            .filter(|i| {
                let e = &self.entries[*i];
                e.stored == Stored::Waiting && e.seq > self.frontier
            })
            .collect();
        line.sort_by_key(|i| self.entries[*i].seq);
        for i in line {
            let e = &mut self.entries[i];
            if e.last_seen <= now - self.p.idle_timeout {
                e.stored = Stored::Expired;
            } else if budget > 0 {
                e.stored = Stored::Active;
                e.active_until = now + self.p.active_ttl;
                budget -= 1;
            } else {
                break;
            }
            self.frontier = e.seq;
        }
    }

    fn qview(&self, entry: usize) -> QView {
        let e = &self.entries[entry];
        let status = self.effective(e);
        let (position, expires_at, wait) = match status {
            EntryStatus::Waiting => {
                let position = (e.seq - self.frontier).max(1);
                let free = self.p.max_active - self.active_count();
                (
                    position,
                    Some(e.last_seen + self.p.idle_timeout),
                    Some(self.estimate(position, free)),
                )
            }
            EntryStatus::Active => (0, Some(e.active_until), None),
            _ => (0, None, None),
        };
        QView {
            status,
            position,
            wait,
            expires_at,
            opens_at: None,
            paused: false,
        }
    }

    /// §3.4: beyond the free slots, each `max_active` users ahead take at most one active TTL.
    fn estimate(&self, position: i64, free: i64) -> i64 {
        let needing = position - free.max(0);
        if needing <= 0 {
            return 0;
        }
        let rounds = (needing + self.p.max_active - 1) / self.p.max_active;
        rounds * (self.p.active_ttl / 1000)
    }

    fn live_entry_of(&self, user: usize) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.user == user && e.stored != Stored::Expired)
    }

    /// `enter_queue`: `user` is `Ok(index)` of a known user, or `Err(id)` for a new one (the id
    /// the library made). Returns the answer and, on success, the user's index and token.
    pub fn enter(&mut self, user: Result<usize, UserId>) -> (Answer, usize, Token) {
        let u = match user {
            Ok(u) => u,
            Err(id) => {
                self.users.push(User {
                    id,
                    balance: 0,
                    ledger: Vec::new(),
                    keys: BTreeMap::new(),
                });
                self.users.len() - 1
            }
        };
        let reuse = match self.live_entry_of(u) {
            Some(e) if self.effective(&self.entries[e]) != EntryStatus::Expired => Some(e),
            Some(e) => {
                self.entries[e].stored = Stored::Expired;
                None
            }
            None => None,
        };
        let (entry, created) = match reuse {
            Some(e) => {
                if self.effective(&self.entries[e]) == EntryStatus::Waiting {
                    self.entries[e].last_seen = self.now;
                }
                (e, false)
            }
            None => {
                self.next_seq += 1;
                self.entries.push(Entry {
                    user: u,
                    stored: Stored::Waiting,
                    seq: self.next_seq,
                    last_seen: self.now,
                    active_until: 0,
                });
                (self.entries.len() - 1, true)
            }
        };
        self.admit();
        let token = Token {
            entry,
            exp_secs: self.now.div_euclid(1000) + self.p.jwt_lifetime_secs,
        };
        self.token_expiries.push(token.exp_secs * 1000);
        let out = Out::Entered {
            user: self.users[u].id,
            created,
            q: self.qview(entry),
        };
        (Ok(out), u, token)
    }

    fn identity(&self, tok: &Token) -> Result<(), String> {
        if self.token_valid(tok) {
            Ok(())
        } else {
            err(Error::Unauthorized("expired".into()))
        }
    }

    fn active(&self, tok: &Token) -> Result<(), String> {
        self.identity(tok)?;
        match self.effective(&self.entries[tok.entry]) {
            EntryStatus::Active => Ok(()),
            EntryStatus::Expired => err(Error::QueueNotActive(QueueState::Expired)),
            _ => err(Error::QueueNotActive(QueueState::Waiting)),
        }
    }

    /// `queue_status`: the keep-alive (at most once per quarter of the idle timeout), admission,
    /// then the token's entry as it is now.
    pub fn poll(&mut self, tok: &Token) -> Answer {
        self.identity(tok)?;
        let e = tok.entry;
        if self.effective(&self.entries[e]) == EntryStatus::Waiting
            && self.now - self.entries[e].last_seen >= self.p.idle_timeout / 4
        {
            self.entries[e].last_seen = self.now;
        }
        self.admit();
        Ok(Out::Queue(self.qview(e)))
    }

    // ---- tickets -----------------------------------------------------------------------------------

    fn status(&self, t: &Ticket) -> TicketStatus {
        match t.state {
            TState::Held if t.held_until > self.now => TicketStatus::Held,
            TState::Held => TicketStatus::Expired,
            TState::Paid => TicketStatus::Paid,
            TState::Released => TicketStatus::Released,
            TState::Cancelled => TicketStatus::Cancelled,
        }
    }

    fn view(&self, t: &Ticket) -> TView {
        let show = &self.shows[t.show];
        let seat = &show.seats[t.seat];
        TView {
            id: t.id,
            user: self.users[t.user].id,
            concert: show.concert,
            showtime: show.id,
            seat: seat.id,
            seat_number: seat.number,
            price: t.price,
            status: self.status(t),
            held_until: t.held_until,
        }
    }

    fn ticket_index(&self, id: TicketId) -> Option<usize> {
        self.tickets.iter().position(|t| t.id == id)
    }

    fn own(&self, user: usize, id: TicketId) -> Result<usize, String> {
        match self.ticket_index(id) {
            Some(i) if self.tickets[i].user == user => Ok(i),
            _ => err(Error::NotFound(Entity::Ticket)),
        }
    }

    /// Whether a seat is claimed now: a paid ticket, or a live hold.
    fn taken(&self, show: usize, seat: usize) -> bool {
        self.tickets.iter().any(|t| {
            t.show == show
                && t.seat == seat
                && matches!(self.status(t), TicketStatus::Paid | TicketStatus::Held)
        })
    }

    fn distinct<T: PartialEq>(ids: &[T]) -> Result<(), String> {
        let twice = ids
            .iter()
            .enumerate()
            .any(|(i, a)| ids[..i].iter().any(|b| b == a));
        if ids.is_empty() || twice {
            return err(Error::InvalidRequest("ids".into()));
        }
        Ok(())
    }

    /// `hold` / `hold_seats`, in the order of checks of §6 (Decided). `new_ids` are the ids the
    /// library gave the new tickets, in the order of `seats`.
    pub fn hold(
        &mut self,
        user: usize,
        tok: &Token,
        showtime: ShowtimeId,
        seats: &[SeatId],
        new_ids: Option<Vec<TicketId>>,
    ) -> Answer {
        self.active(tok)?;
        Self::distinct(seats)?;
        let Some(s) = self.shows.iter().position(|s| s.id == showtime) else {
            return err(Error::NotFound(Entity::Showtime));
        };
        let limit = self.p.max_tickets;
        if seats.len() > limit as usize {
            return err(Error::HoldLimitReached(limit));
        }
        let mut idx = Vec::new();
        for seat in seats {
            match self.shows[s].seats.iter().position(|r| r.id == *seat) {
                Some(i) => idx.push(i),
                None => return err(Error::NotFound(Entity::Seat)),
            }
        }
        let show = &self.shows[s];
        if show.cancelled {
            return err(Error::ShowtimeClosed(showtime, Closed::CalledOff));
        }
        if show.starts_at <= self.now {
            return err(Error::ShowtimeClosed(showtime, Closed::Started));
        }
        if let Some(opens) = show.sale_opens_at.filter(|t| *t > self.now) {
            return err(Error::SaleNotOpen {
                showtime,
                opens_at: time(opens),
            });
        }
        if let Some(k) = idx.iter().position(|i| self.taken(s, *i)) {
            return err(Error::SeatUnavailable(seats[k]));
        }
        let claims = self
            .tickets
            .iter()
            .filter(|t| {
                t.user == user
                    && t.show == s
                    && matches!(self.status(t), TicketStatus::Held | TicketStatus::Paid)
            })
            .count();
        if claims + seats.len() > limit as usize {
            return err(Error::HoldLimitReached(limit));
        }
        let ids = new_ids
            .filter(|v| v.len() == seats.len())
            .unwrap_or_else(|| vec![placeholder_ticket(); seats.len()]);
        let until = self.now + self.p.hold_ttl;
        let mut out = Vec::new();
        for (seat, id) in idx.into_iter().zip(ids) {
            let t = Ticket {
                id,
                user,
                show: s,
                seat,
                price: self.shows[s].seats[seat].price,
                state: TState::Held,
                held_until: until,
                extensions: 0,
                payment: None,
                refund: 0,
                fee: 0,
            };
            out.push(self.view(&t));
            self.tickets.push(t);
        }
        Ok(Out::Tickets(out))
    }

    /// `release`: a live hold given back.
    pub fn release(&mut self, user: usize, tok: &Token, id: TicketId) -> Answer {
        self.identity(tok)?;
        let i = self.own(user, id)?;
        if self.status(&self.tickets[i]) != TicketStatus::Held {
            return err(Error::TicketNotHeld(id));
        }
        self.tickets[i].state = TState::Released;
        Ok(Out::Ticket(self.view(&self.tickets[i])))
    }

    /// `extend`: a live hold to now + hold TTL, at most `max_extensions` times.
    pub fn extend(&mut self, user: usize, tok: &Token, id: TicketId) -> Answer {
        self.active(tok)?;
        let i = self.own(user, id)?;
        match self.status(&self.tickets[i]) {
            TicketStatus::Held => {}
            TicketStatus::Expired => return err(Error::HoldExpired(id)),
            _ => return err(Error::TicketNotHeld(id)),
        }
        if self.tickets[i].extensions >= self.p.max_extensions {
            return err(Error::ExtensionLimit {
                ticket: id,
                max: self.p.max_extensions,
            });
        }
        self.tickets[i].extensions += 1;
        self.tickets[i].held_until = self.now + self.p.hold_ttl;
        Ok(Out::Ticket(self.view(&self.tickets[i])))
    }

    /// `tickets`: the user's, newest first.
    pub fn tickets(&self, user: usize, tok: &Token) -> Answer {
        self.identity(tok)?;
        let mut v: Vec<TView> = self
            .tickets
            .iter()
            .filter(|t| t.user == user)
            .map(|t| self.view(t))
            .collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.id));
        Ok(Out::Tickets(v))
    }

    // ---- money ------------------------------------------------------------------------------------

    /// Changes a balance and writes its ledger row; `balance_limit` past the most a wallet holds
    /// (for a credit), `insufficient_points` below 0.
    fn apply(&mut self, user: usize, delta: i64, kind: LedgerKind) -> Result<i64, String> {
        let balance = self.users[user].balance;
        let after = balance + delta;
        if after < 0 {
            return err(Error::InsufficientPoints {
                balance: Points::new(balance),
                price: Points::new(-delta),
            });
        }
        if delta > 0 && after > self.p.max_balance {
            return err(Error::BalanceLimit {
                balance: Points::new(balance),
                max: Points::new(self.p.max_balance),
            });
        }
        let now = self.now;
        let u = &mut self.users[user];
        u.balance = after;
        u.ledger.push(LView {
            kind,
            amount: delta,
            balance_after: after,
            at: now,
        });
        Ok(after)
    }

    /// §3.8: the same key and request replays the first answer; another request under the key
    /// is `idempotency_key_reused`; only a success consumes the key.
    fn keyed(
        &mut self,
        user: usize,
        key: Option<&str>,
        request: String,
        op: impl FnOnce(&mut Model) -> Answer,
    ) -> Answer {
        if let Some(k) = key {
            if let Some(rec) = self.users[user].keys.get(k) {
                if rec.request != request {
                    return err(Error::IdempotencyKeyReused);
                }
                return Ok(rec.answer.clone());
            }
        }
        let out = op(self)?;
        if let Some(k) = key {
            let at = self.now;
            self.users[user].keys.insert(
                k.to_string(),
                KeyRecord {
                    request,
                    answer: out.clone(),
                    at,
                },
            );
        }
        Ok(out)
    }

    /// `charge` (the user's, with a token) or the operator's (`tok` None).
    pub fn charge(
        &mut self,
        user: usize,
        tok: Option<&Token>,
        amount: i64,
        key: Option<&str>,
    ) -> Answer {
        if let Some(tok) = tok {
            self.identity(tok)?;
        }
        self.keyed(user, key, format!("charge amount={amount}"), |m| {
            if amount <= 0 || amount > m.p.max_charge {
                return err(Error::InvalidAmount("amount".into()));
            }
            let balance = m.apply(user, amount, LedgerKind::Charge)?;
            Ok(Out::Balance {
                user: m.users[user].id,
                balance,
            })
        })
    }

    pub fn balance(&self, user: usize, tok: Option<&Token>) -> Answer {
        if let Some(tok) = tok {
            self.identity(tok)?;
        }
        Ok(Out::Balance {
            user: self.users[user].id,
            balance: self.users[user].balance,
        })
    }

    pub fn point_history(&self, user: usize, tok: &Token) -> Answer {
        self.identity(tok)?;
        Ok(Out::Ledger(
            self.users[user].ledger.iter().rev().cloned().collect(),
        ))
    }

    fn pview(&self, p: &Payment) -> PView {
        PView {
            id: p.id,
            user: self.users[p.user].id,
            ticket_id: p.tickets[0],
            ticket_ids: p.tickets.clone(),
            amount: p.amount,
            refunded: self
                .tickets
                .iter()
                .filter(|t| t.payment == Some(p.id) && t.state == TState::Cancelled)
                .map(|t| t.refund)
                .sum(),
            paid_at: p.paid_at,
        }
    }

    pub fn payment_history(&self, user: usize, tok: &Token) -> Answer {
        self.identity(tok)?;
        let mut v: Vec<PView> = self
            .payments
            .iter()
            .filter(|p| p.user == user)
            .map(|p| self.pview(p))
            .collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.id));
        Ok(Out::Payments(v))
    }

    /// `pay` / `pay_tickets`: one debit of the sum, every ticket paid, the seats sold, the turn
    /// over. `new_id` is the id the library gave the payment.
    pub fn pay(
        &mut self,
        user: usize,
        tok: &Token,
        ids: &[TicketId],
        key: Option<&str>,
        new_id: Option<PaymentId>,
    ) -> Answer {
        self.identity(tok)?;
        let mut sorted = ids.to_vec();
        sorted.sort();
        let request = match sorted.as_slice() {
            [one] => format!("pay ticket_id={one}"),
            many => format!(
                "pay ticket_ids={}",
                many.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let ids = ids.to_vec();
        self.keyed(user, key, request, move |m| {
            Self::distinct(&ids)?;
            let mut idx = Vec::new();
            for id in &sorted {
                idx.push(m.own(user, *id)?);
            }
            for id in &ids {
                let i = m.ticket_index(*id).unwrap();
                match m.status(&m.tickets[i]) {
                    TicketStatus::Held => {}
                    TicketStatus::Paid => return err(Error::AlreadyPaid(*id)),
                    TicketStatus::Expired => return err(Error::HoldExpired(*id)),
                    _ => return err(Error::TicketNotHeld(*id)),
                }
            }
            let amount: i64 = idx.iter().map(|i| m.tickets[*i].price).sum();
            let id = new_id.unwrap_or(PaymentId::new(i64::MAX).unwrap());
            m.apply(user, -amount, LedgerKind::Payment)?;
            for i in &idx {
                let t = &mut m.tickets[*i];
                t.state = TState::Paid;
                t.payment = Some(id);
            }
            if let Some(e) = m.live_entry_of(user) {
                m.entries[e].stored = Stored::Expired;
            }
            let p = Payment {
                id,
                user,
                tickets: sorted.clone(),
                amount,
                paid_at: m.now,
            };
            let out = Out::Payment(m.pview(&p));
            m.payments.push(p);
            Ok(out)
        })
    }

    /// `cancel` (the user's, with a key) and the operator's `cancel_ticket`.
    pub fn cancel(
        &mut self,
        by: By,
        tok: Option<&Token>,
        id: TicketId,
        key: Option<&str>,
    ) -> Answer {
        if let Some(tok) = tok {
            self.identity(tok)?;
        }
        match by {
            By::User(user) => self.keyed(user, key, format!("cancel ticket_id={id}"), |m| {
                m.cancel_ticket(by, id)
            }),
            By::Operator { .. } => self.cancel_ticket(by, id),
        }
    }

    fn cancel_ticket(&mut self, by: By, id: TicketId) -> Answer {
        let i = match (self.ticket_index(id), by) {
            (Some(i), By::User(u)) if self.tickets[i].user == u => i,
            (Some(i), By::Operator { .. }) => i,
            _ => return err(Error::NotFound(Entity::Ticket)),
        };
        if self.status(&self.tickets[i]) != TicketStatus::Paid {
            return err(Error::TicketNotPaid(id));
        }
        let starts = self.shows[self.tickets[i].show].starts_at;
        let (closes, percent, closed) = match by {
            By::User(_) => {
                let closes = starts - self.p.cancel_cutoff;
                (closes, self.p.fee_percent, self.now > closes)
            }
            By::Operator { no_fee } => (
                starts,
                if no_fee { 0 } else { self.p.fee_percent },
                self.now >= starts,
            ),
        };
        if closed {
            return err(Error::CancelClosed {
                ticket: id,
                closed_at: time(closes),
            });
        }
        let price = self.tickets[i].price;
        let fee = price * i64::from(percent.min(100)) / 100;
        let refund = price - fee;
        let user = self.tickets[i].user;
        let balance = if refund > 0 {
            self.apply(user, refund, LedgerKind::Refund)?
        } else {
            self.users[user].balance
        };
        let t = &mut self.tickets[i];
        t.state = TState::Cancelled;
        t.refund = refund;
        t.fee = fee;
        Ok(Out::Cancelled {
            ticket: self.view(&self.tickets[i]),
            refund,
            fee,
            balance,
        })
    }

    /// The operator's `cancel_showtime`: all of it, or (a refund past a wallet's limit) none.
    pub fn cancel_showtime(&mut self, showtime: ShowtimeId) -> Answer {
        let Some(s) = self.shows.iter().position(|x| x.id == showtime) else {
            return err(Error::NotFound(Entity::Showtime));
        };
        let mut paid: Vec<usize> = (0..self.tickets.len())
            .filter(|i| self.tickets[*i].show == s && self.tickets[*i].state == TState::Paid)
            .collect();
        paid.sort_by_key(|i| self.tickets[*i].id);
        let mut balances: BTreeMap<usize, i64> = BTreeMap::new();
        for i in &paid {
            let t = &self.tickets[*i];
            let b = balances.entry(t.user).or_insert(self.users[t.user].balance);
            if *b + t.price > self.p.max_balance {
                return err(Error::BalanceLimit {
                    balance: Points::new(*b),
                    max: Points::new(self.p.max_balance),
                });
            }
            *b += t.price;
        }
        self.shows[s].cancelled = true;
        let mut released = 0;
        for i in 0..self.tickets.len() {
            if self.tickets[i].show == s && self.status(&self.tickets[i]) == TicketStatus::Held {
                self.tickets[i].state = TState::Released;
                released += 1;
            }
        }
        let mut refunded = 0;
        for i in &paid {
            let (user, price) = (self.tickets[*i].user, self.tickets[*i].price);
            self.apply(user, price, LedgerKind::Refund)?;
            let t = &mut self.tickets[*i];
            t.state = TState::Cancelled;
            t.refund = price;
            t.fee = 0;
            refunded += price;
        }
        Ok(Out::ShowtimeCancelled {
            cancelled: paid.len() as u64,
            refunded,
            released,
        })
    }

    // ---- operators ----------------------------------------------------------------------------------

    /// `sweep`: lapsed sessions and idle waiting entries end (without moving the line), users
    /// are admitted, old keys are forgotten. Lapsed holds need nothing: they are expired for
    /// every read already.
    pub fn sweep(&mut self) -> Answer {
        let now = self.now;
        for e in &mut self.entries {
            match e.stored {
                Stored::Active if e.active_until <= now => e.stored = Stored::Expired,
                Stored::Waiting if e.last_seen <= now - self.p.idle_timeout => {
                    e.stored = Stored::Expired
                }
                _ => {}
            }
        }
        self.admit();
        let cutoff = now - self.p.key_retention;
        for u in &mut self.users {
            u.keys.retain(|_, r| r.at >= cutoff);
        }
        Ok(Out::Done)
    }

    /// The operator's seat map of show `s`.
    pub fn seats(&self, s: usize) -> Answer {
        Ok(Out::Seats(
            self.shows[s]
                .seats
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let status = self
                        .tickets
                        .iter()
                        .filter(|t| t.show == s && t.seat == i)
                        .map(|t| self.status(t))
                        .fold(SeatStatus::Available, |acc, st| match st {
                            TicketStatus::Paid => SeatStatus::Sold,
                            TicketStatus::Held if acc == SeatStatus::Available => SeatStatus::Held,
                            _ => acc,
                        });
                    (r.id, r.number, r.price, status)
                })
                .collect(),
        ))
    }

    /// `showtimes` as an active user sees them: those not started nor called off, by start.
    pub fn showtimes(&self, tok: &Token) -> Answer {
        self.active(tok)?;
        let mut v: Vec<(Ms, Listed)> = Vec::new();
        for (s, show) in self.shows.iter().enumerate() {
            if show.cancelled || show.starts_at <= self.now {
                continue;
            }
            let claimed = self
                .tickets
                .iter()
                .filter(|t| {
                    t.show == s && matches!(self.status(t), TicketStatus::Held | TicketStatus::Paid)
                })
                .count() as i64;
            let total = show.seats.len() as i64;
            v.push((
                show.starts_at,
                (show.id, total, total - claimed, show.sale_opens_at),
            ));
        }
        v.sort_by_key(|(at, s)| (*at, s.0));
        Ok(Out::Showtimes(v.into_iter().map(|(_, s)| s).collect()))
    }

    /// The operator's report of every showtime.
    pub fn report(&self) -> Answer {
        let mut out = Vec::new();
        for (s, show) in self.shows.iter().enumerate() {
            let ts = || self.tickets.iter().filter(move |t| t.show == s);
            let held = ts()
                .filter(|t| self.status(t) == TicketStatus::Held)
                .count() as i64;
            let sold = ts().filter(|t| t.state == TState::Paid).count() as i64;
            let paid: i64 = ts()
                .filter(|t| t.state == TState::Paid)
                .map(|t| t.price)
                .sum();
            let cancelled = || ts().filter(|t| t.state == TState::Cancelled);
            let fees: i64 = cancelled().map(|t| t.fee).sum();
            let refunded: i64 = cancelled().map(|t| t.refund).sum();
            let total = show.seats.len() as i64;
            out.push(RView {
                showtime: show.id,
                cancelled: show.cancelled,
                total,
                available: total - held - sold,
                held,
                sold,
                revenue: paid + fees,
                refunded,
                fees,
            });
        }
        out.sort_by_key(|r| r.showtime);
        Ok(Out::Reports(out))
    }

    /// The operator's queue counts, as of now.
    pub fn counts(&self) -> Answer {
        let waiting = self
            .entries
            .iter()
            .filter(|e| e.stored == Stored::Waiting && self.effective(e) == EntryStatus::Waiting)
            .count() as i64;
        let active = self.active_count();
        Ok(Out::Counts {
            waiting,
            active,
            expired: self.entries.len() as i64 - waiting - active,
            prequeue: 0,
        })
    }
}
