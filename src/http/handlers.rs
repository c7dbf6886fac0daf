//! One function from a matched request to its reply: the guard, then one library call. No
//! business rule lives here — every decision is the library's; this only parses and formats.

use super::assets::OPENAPI_JSON;
use super::input::{same_user, ChargeBody, HoldBody, Incoming, PayBody, TokenBody};
use super::reply::{Reply, JSON, PROMETHEUS};
use super::router::{Access, Endpoint, Route};
use super::Shared;
use crate::error::Result;
use crate::ids::{SeatId, ShowtimeId, TicketId, UserId};
use crate::{Guard, Principal};

/// Answers `req`, matched to `route`.
pub fn handle(shared: &Shared, route: Route, req: &Incoming) -> Result<Reply> {
    let b = &*shared.booking;
    let who = match route.endpoint().access() {
        Access::Public => None,
        Access::Identity => Some(b.authorize(req.bearer()?, Guard::Identity)?),
        Access::Active => Some(b.authorize(req.bearer()?, Guard::Active)?),
    };
    let who = match who {
        Some(who) => {
            req.check_query_user(&who)?;
            who
        }
        None => return public(shared, route, req),
    };
    let user = who.user_id;
    match route {
        Route::Showtimes(c) => ok(b.list_showtimes(c)?),
        Route::Seats(c, s) => ok(b.list_seats(c, s)?),
        Route::Plain(e) => match e {
            Endpoint::QueueStatus => ok(b.queue_status(&who)?),
            Endpoint::Concerts => ok(b.list_concerts()?),
            Endpoint::Hold => {
                let body: HoldBody = body_of(req, &who, |b: &HoldBody| b.user_id.as_deref())?;
                let ticket = b.hold(
                    user,
                    ShowtimeId::new(body.showtime_id)?,
                    SeatId::new(body.seat_id)?,
                )?;
                Ok(Reply::json(201, &ticket))
            }
            Endpoint::Tickets => ok(b.tickets(user)?),
            Endpoint::Charge => {
                let body: ChargeBody = body_of(req, &who, |b: &ChargeBody| b.user_id.as_deref())?;
                ok(b.charge(user, body.amount, req.idempotency_key)?)
            }
            Endpoint::Balance => ok(b.balance(user)?),
            Endpoint::PointHistory => ok(b.point_history(user)?),
            Endpoint::Pay => {
                let body: PayBody = body_of(req, &who, |b: &PayBody| b.user_id.as_deref())?;
                let payment = b.pay(user, TicketId::new(body.ticket_id)?, req.idempotency_key)?;
                Ok(Reply::json(201, &payment))
            }
            Endpoint::PaymentHistory => ok(b.payment_history(user)?),
            other => unreachable!("{} has a guard but no handler", other.label()),
        },
        Route::Asset(_) => unreachable!("assets are public"),
    }
}

/// The endpoints without a guard.
fn public(shared: &Shared, route: Route, req: &Incoming) -> Result<Reply> {
    match route {
        Route::Asset(a) => Ok(Reply::bytes(200, a.content_type, a.body)),
        Route::Plain(Endpoint::Healthz) => Ok(Reply::bytes(200, JSON, &br#"{"status":"ok"}"#[..])),
        Route::Plain(Endpoint::OpenApi) => Ok(Reply::bytes(200, JSON, OPENAPI_JSON.as_bytes())),
        Route::Plain(Endpoint::Metrics) => Ok(Reply::bytes(
            200,
            PROMETHEUS,
            shared.metrics.render(&shared.booking).into_bytes(),
        )),
        Route::Plain(Endpoint::EnterQueue) => {
            let body: TokenBody = req.json_or_empty()?;
            let user = body.user_id.as_deref().map(UserId::parse).transpose()?;
            let entered = shared.booking.enter_queue(user)?;
            Ok(Reply::json(
                if entered.created { 201 } else { 200 },
                &entered,
            ))
        }
        other => unreachable!("{} has no public handler", other.endpoint().label()),
    }
}

/// A `200` with `value` as JSON.
fn ok(value: impl serde::Serialize) -> Result<Reply> {
    Ok(Reply::json(200, &value))
}

/// Parses a JSON body and checks the `user_id` it may carry against the token.
fn body_of<T: serde::de::DeserializeOwned>(
    req: &Incoming,
    who: &Principal,
    user_id: impl Fn(&T) -> Option<&str>,
) -> Result<T> {
    let body: T = req.json()?;
    same_user(user_id(&body), who)?;
    Ok(body)
}
