//! Seat maps served at scale: `GET /concerts/{id}:{id}` answers with an `ETag` naming the map's
//! version and honours `If-None-Match` (`304`, no body); `?since=VERSION` answers only the seats
//! that changed. The JSON of each showtime's latest full map is kept here, keyed by its version:
//! built once per version, shared by every reader, so serving an unchanged big map costs the
//! version lookup (two index seeks) and a copy, not a walk over its seats. The version is read
//! from the database on every request, so a change made by any process is seen at once.

use super::reply::{Failure, Reply};
use crate::{Active, Booking, ConcertId, SeatVersion, ShowtimeId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The most showtimes whose map is kept.
const MAX_MAPS: usize = 64;
/// The most bytes of maps kept in all.
const MAX_BYTES: usize = 64 << 20;

/// The latest full map of each recently asked showtime, as JSON.
#[derive(Default)]
pub struct SeatMaps {
    inner: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    maps: HashMap<ShowtimeId, (SeatVersion, Arc<Vec<u8>>)>,
    order: VecDeque<ShowtimeId>,
    bytes: usize,
}

impl SeatMaps {
    fn get(&self, showtime: ShowtimeId, version: SeatVersion) -> Option<Arc<Vec<u8>>> {
        let cache = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .maps
            .get(&showtime)
            .filter(|(v, _)| *v == version)
            .map(|(_, body)| body.clone())
    }

    fn put(&self, showtime: ShowtimeId, version: SeatVersion, body: Arc<Vec<u8>>) {
        if body.len() > MAX_BYTES {
            return;
        }
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = c.maps.remove(&showtime) {
            c.bytes -= old.len();
            c.order.retain(|s| *s != showtime);
        }
        while !c.order.is_empty() && (c.order.len() >= MAX_MAPS || c.bytes + body.len() > MAX_BYTES)
        {
            if let Some(oldest) = c.order.pop_front() {
                if let Some((_, old)) = c.maps.remove(&oldest) {
                    c.bytes -= old.len();
                }
            }
        }
        c.bytes += body.len();
        c.order.push_back(showtime);
        c.maps.insert(showtime, (version, body));
    }
}

/// `"VERSION"`, as an ETag.
fn etag(v: SeatVersion) -> String {
    format!("\"{v}\"")
}

/// Whether an `If-None-Match` header names this ETag (a list, weak tags or `*` too).
fn matches(if_none_match: Option<&str>, tag: &str) -> bool {
    if_none_match.is_some_and(|h| {
        h.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == tag
        })
    })
}

/// Answers a seat map request.
pub fn answer(
    b: &Booking,
    maps: &SeatMaps,
    who: &Active,
    (concert, showtime): (ConcertId, ShowtimeId),
    since: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<Reply, Failure> {
    let version = b.seat_version(who, concert, showtime)?;
    let tag = etag(version);
    if matches(if_none_match, &tag) {
        return Ok(Reply::not_modified(tag));
    }
    if let Some(since) = since {
        // An unknown or malformed version gets every seat, as the contract says.
        let from = since.parse().unwrap_or(SeatVersion::UNKNOWN);
        let changes = b.seats_since(who, concert, showtime, from)?;
        let tag = etag(changes.version);
        return Ok(Reply::json(200, &changes).with_etag(tag));
    }
    if let Some(body) = maps.get(showtime, version) {
        return Ok(Reply::shared_json(200, body).with_etag(tag));
    }
    let map = b.seat_map(who, concert, showtime)?;
    let body = Arc::new(serde_json::to_vec(&map.seats).map_err(crate::Error::internal)?);
    maps.put(showtime, map.version, body.clone());
    Ok(Reply::shared_json(200, body).with_etag(etag(map.version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let tag = "\"3.0\"";
        assert!(matches(Some("\"3.0\""), tag));
        assert!(matches(Some("W/\"3.0\""), tag));
        assert!(matches(Some("\"1.0\", \"3.0\""), tag));
        assert!(matches(Some("*"), tag));
        assert!(!matches(Some("\"3.1\""), tag));
        assert!(!matches(None, tag));
    }
}
