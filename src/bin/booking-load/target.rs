//! Where load goes — and only to this machine: [`Target::parse`] refuses any URL whose host is
//! not loopback, before any client is built.

use anyhow::{bail, Context};
use std::net::{SocketAddr, ToSocketAddrs};

/// A checked base URL: its host resolves to loopback addresses only.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://ADDRESS:PORT` of the first address the host resolved to: the client connects
    /// to the address that was checked, not to whatever the name resolves to later.
    pub url: String,
}

impl Target {
    /// Parses `http://HOST[:PORT][/]`. Every address `HOST` resolves to must be loopback
    /// (127.0.0.0/8 or ::1): this tool never sends load anywhere else.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("only http:// URLs are supported: {url:?}");
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            bail!("give the server's base URL, like http://127.0.0.1:8080 (got {url:?})");
        }
        let with_port = if host.ends_with(']') || !host.contains(':') {
            format!("{host}:80")
        } else {
            host.to_string()
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host:?}"))?
            .collect();
        if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
            bail!("refusing {url:?}: load goes to loopback addresses only (127.0.0.0/8, ::1)");
        }
        Ok(Target {
            url: format!("http://{}", addrs[0]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8080").unwrap().url,
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            Target::parse("http://127.0.0.2:8080/").unwrap().url,
            "http://127.0.0.2:8080"
        );
        assert!(Target::parse("http://localhost:8080").is_ok());
        assert_eq!(
            Target::parse("http://[::1]:8080").unwrap().url,
            "http://[::1]:8080"
        );
        assert_eq!(
            Target::parse("http://127.0.0.1").unwrap().url,
            "http://127.0.0.1:80"
        );
        for bad in [
            "http://10.0.0.1:8080",
            "http://192.168.1.10",
            "http://8.8.8.8:80",
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/tickets",
            "http://127.0.0.1:8080?x=1",
            "http://user@10.0.0.1:8080",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
