//! One function from a matched request to its reply: the guard, then one library call. No
//! business rule lives here — every decision is the library's; this only parses and formats.

use super::assets::OPENAPI_JSON;
use super::input::{
    same_user, ChargeBody, Claimed, HoldBody, Incoming, OneOrMany, PayBody, TokenBody,
};
use super::reply::{Failure, Reply, JSON, PROMETHEUS};
use super::router::{Access, Endpoint, Route};
use super::seatmaps;
use super::Shared;
use crate::{Active, Identity};

/// Who the guard let through.
enum Caller {
    Anyone,
    Known(Identity),
    Admitted(Active),
}

/// Answers `req`, matched to `route`.
pub fn handle(shared: &Shared, route: Route, req: &Incoming) -> Result<Reply, Failure> {
    let b = &*shared.booking;
    let caller = match route.endpoint().access() {
        Access::Public => Caller::Anyone,
        Access::Identity => Caller::Known(b.authorize(req.bearer()?)?),
        Access::Active if writes_as_active(route) => {
            return active_write(shared, route, req);
        }
        Access::Active => Caller::Admitted(b.authorize_active(req.bearer()?)?),
    };
    match caller {
        Caller::Anyone => public(shared, route, req),
        Caller::Known(who) => {
            req.check_query_user(&who)?;
            identified(shared, route, req, &who)
        }
        Caller::Admitted(who) => {
            req.check_query_user(&who)?;
            admitted(shared, route, req, &who)
        }
    }
}

/// A write behind the *active* guard: the library checks the entry inside the write, so a
/// request that succeeds reads nothing before it. One that fails is answered as if the guard
/// had run first: if the entry is not active (now), that is the answer, not the body's fault.
fn active_write(shared: &Shared, route: Route, req: &Incoming) -> Result<Reply, Failure> {
    let b = &*shared.booking;
    let who = b.authorize_active_write(req.bearer()?)?;
    let out = req
        .check_query_user(&who)
        .and_then(|()| admitted(shared, route, req, &who));
    if out.is_err() {
        b.require_active(&who)?;
    }
    out
}

/// Whether `route` is a write behind the *active* guard (the library checks the entry inside
/// the write).
fn writes_as_active(route: Route) -> bool {
    matches!(
        route,
        Route::Plain(Endpoint::Hold) | Route::Ticket(Endpoint::Extend, _)
    )
}

/// The endpoints behind the *active* guard.
fn admitted(shared: &Shared, route: Route, req: &Incoming, who: &Active) -> Result<Reply, Failure> {
    let b = &*shared.booking;
    match route {
        Route::Showtimes(c) => ok(b.showtimes(who, c)?),
        Route::Seats(c, s) => seatmaps::answer(
            b,
            &shared.seat_maps,
            who,
            (c, s),
            req.query_param("since").as_deref(),
            req.if_none_match,
        ),
        Route::Plain(Endpoint::Concerts) => ok(b.concerts(who)?),
        Route::Plain(Endpoint::Hold) => {
            let body: HoldBody = body_of(req, who)?;
            let showtime = body.showtime_id;
            match body.seats()? {
                OneOrMany::One(seat) => Ok(Reply::json(201, &b.hold(who, showtime, seat)?)),
                OneOrMany::Many(seats) => {
                    Ok(Reply::json(201, &b.hold_seats(who, showtime, &seats)?))
                }
            }
        }
        Route::Ticket(Endpoint::Extend, ticket) => ok(b.extend(who, ticket)?),
        other => unreachable!("{} is not an active route", other.endpoint().label()),
    }
}

/// The endpoints behind the *identity* guard.
fn identified(
    shared: &Shared,
    route: Route,
    req: &Incoming,
    who: &Identity,
) -> Result<Reply, Failure> {
    let b = &*shared.booking;
    let endpoint = match route {
        Route::Plain(endpoint) => endpoint,
        Route::Ticket(Endpoint::Release, ticket) => return ok(b.release(who, ticket)?),
        Route::Ticket(Endpoint::Cancel, ticket) => {
            return ok(b.cancel(who, ticket, req.idempotency_key()?.as_ref())?)
        }
        other => unreachable!("{} is not an identity route", other.endpoint().label()),
    };
    match endpoint {
        Endpoint::QueueStatus => ok(b.queue_status(who)?),
        Endpoint::Tickets => ok(b.tickets(who)?),
        Endpoint::Charge => {
            let body: ChargeBody = body_of(req, who)?;
            ok(b.charge(who, body.amount, req.idempotency_key()?.as_ref())?)
        }
        Endpoint::Balance => ok(b.balance(who)?),
        Endpoint::PointHistory => ok(b.point_history(who)?),
        Endpoint::Pay => {
            let body: PayBody = body_of(req, who)?;
            let key = req.idempotency_key()?;
            let payment = match body.tickets()? {
                OneOrMany::One(ticket) => b.pay(who, ticket, key.as_ref())?,
                OneOrMany::Many(tickets) => b.pay_tickets(who, &tickets, key.as_ref())?,
            };
            Ok(Reply::json(201, &payment))
        }
        Endpoint::PaymentHistory => ok(b.payment_history(who)?),
        other => unreachable!("{} is not an identity route", other.label()),
    }
}

/// The endpoints without a guard.
fn public(shared: &Shared, route: Route, req: &Incoming) -> Result<Reply, Failure> {
    match route {
        Route::Asset(a) => Ok(Reply::bytes(200, a.content_type, a.body)),
        Route::Plain(Endpoint::Healthz) => Ok(Reply::bytes(200, JSON, &br#"{"status":"ok"}"#[..])),
        Route::Plain(Endpoint::OpenApi) => Ok(Reply::bytes(200, JSON, OPENAPI_JSON.as_bytes())),
        Route::Plain(Endpoint::Metrics) => Ok(Reply::bytes(
            200,
            PROMETHEUS,
            shared
                .metrics
                .render(&shared.booking, shared.enter_limit.tracked())
                .into_bytes(),
        )),
        Route::Plain(Endpoint::EnterQueue) => {
            if let Some(addr) = req.client {
                shared.enter_limit.check(addr).map_err(|wait| {
                    shared
                        .metrics
                        .rate_limited
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Failure::RateLimited(wait)
                })?;
            }
            let body: TokenBody = req.json_or_empty()?;
            let entered = shared.booking.enter_queue(body.user_id)?;
            Ok(Reply::json(
                if entered.created { 201 } else { 200 },
                &entered,
            ))
        }
        other => unreachable!("{} has no public handler", other.endpoint().label()),
    }
}

/// A `200` with `value` as JSON.
fn ok(value: impl serde::Serialize) -> Result<Reply, Failure> {
    Ok(Reply::json(200, &value))
}

/// Parses a JSON body and checks the `user_id` it may carry against the token.
fn body_of<T: serde::de::DeserializeOwned + Claimed>(
    req: &Incoming,
    who: &Identity,
) -> Result<T, Failure> {
    let body: T = req.json()?;
    same_user(body.claimed_user(), who)?;
    Ok(body)
}
