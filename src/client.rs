//! A small blocking client of `booking-server`'s HTTP API (feature `client`).
