//! A tiny in-memory stand-in for `booking-server`, for the driver's tests: one concert, one
//! showtime, a few seats, the journey's endpoints with the contract's statuses. Every third
//! user starts waiting (admitted on the next poll), seat listings come chunked, and the server
//! drops each connection after a few responses, as a server may close idle keep-alive
//! connections.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const CONCERT: i64 = 1;
const SHOWTIME: i64 = 7;
const PRICE: i64 = 1_000;

#[derive(Default)]
struct State {
    users: AtomicU64,
    /// seat → (ticket id, sold)
    seats: Mutex<HashMap<i64, (i64, bool)>>,
    /// ticket id → (holder token, seat)
    tickets: Mutex<Vec<(String, i64)>>,
    sold: AtomicU64,
}

/// A running fake server; it lives as long as the test process.
pub struct Fake {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Fake {
    /// Starts a fake with `seats` seats, dropping connections after `close_after` responses.
    pub fn start(seats: i64, close_after: u64) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state
            .seats
            .lock()
            .unwrap()
            .extend((1..=seats).map(|s| (s, (0, false))));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(conn, &state, close_after));
            }
        });
        Fake { addr, state }
    }

    /// Seats sold so far.
    pub fn sold(&self) -> u64 {
        self.state.sold.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, state: &State, close_after: u64) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    for _ in 0..close_after {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let (mut length, mut token) = (0, String::new());
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "authorization" => token = value.trim().trim_start_matches("Bearer ").to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, reply) = route(state, &method, &path, &token, &body);
        let reply = reply.to_string();
        // Seat listings come chunked (in two chunks), everything else with a length.
        let answer = if path.contains(':') && reply.len() > 1 {
            let (a, b) = reply.split_at(reply.len() / 2);
            format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
        } else {
            format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                reply.len()
            )
        };
        if w.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn route(state: &State, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let seats_path = format!("/concerts/{CONCERT}:{SHOWTIME}");
    match (method, path) {
        ("POST", "/token") => {
            let n = state.users.fetch_add(1, Ordering::SeqCst);
            let status = if n % 3 == 0 { "waiting" } else { "active" };
            (
                201,
                json!({ "token": format!("u{n}"), "status": status, "position": 0 }),
            )
        }
        ("GET", "/token") => (200, json!({ "status": "active", "position": 0 })),
        ("GET", "/concerts") => (200, json!([{ "id": CONCERT, "title": "T", "venue": "V" }])),
        ("GET", p) if p == format!("/concerts/{CONCERT}") => {
            let seats = state.seats.lock().unwrap();
            let free = seats.values().filter(|(t, _)| *t == 0).count();
            (
                200,
                json!([{ "id": SHOWTIME, "concert_id": CONCERT, "available_seats": free }]),
            )
        }
        ("GET", p) if p == seats_path => {
            let seats = state.seats.lock().unwrap();
            let list: Vec<Value> = seats
                .iter()
                .map(|(id, (t, sold))| {
                    let status = match (t, sold) {
                        (_, true) => "sold",
                        (0, _) => "available",
                        _ => "held",
                    };
                    json!({ "id": id, "number": id, "price": PRICE, "status": status })
                })
                .collect();
            (200, Value::Array(list))
        }
        ("POST", "/tickets") => {
            let seat = body["seat_id"].as_i64().unwrap_or(0);
            let mut seats = state.seats.lock().unwrap();
            match seats.get_mut(&seat) {
                Some((t, _)) if *t == 0 => {
                    let mut tickets = state.tickets.lock().unwrap();
                    tickets.push((token.to_string(), seat));
                    *t = tickets.len() as i64;
                    (
                        201,
                        json!({ "id": *t, "seat_id": seat, "price": PRICE, "status": "held" }),
                    )
                }
                Some(_) => (409, json!({ "error": { "code": "seat_unavailable" } })),
                None => (404, json!({ "error": { "code": "not_found" } })),
            }
        }
        ("POST", "/points") => (200, json!({ "balance": body["amount"] })),
        ("POST", "/payments") => {
            let id = body["ticket_id"].as_i64().unwrap_or(0);
            // Locks are always taken seats first, then tickets (as holds take them).
            let mut seats = state.seats.lock().unwrap();
            let tickets = state.tickets.lock().unwrap();
            match tickets.get((id - 1) as usize) {
                Some((holder, seat)) if holder == token => {
                    seats.get_mut(seat).unwrap().1 = true;
                    state.sold.fetch_add(1, Ordering::SeqCst);
                    (201, json!({ "id": id, "ticket_id": id, "amount": PRICE }))
                }
                _ => (404, json!({ "error": { "code": "not_found" } })),
            }
        }
        _ => (404, json!({ "error": { "code": "not_found" } })),
    }
}
