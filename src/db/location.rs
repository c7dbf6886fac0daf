//! Where a database is: a SQLite file (the embedded default) or a PostgreSQL database named by
//! a `postgres://` / `postgresql://` URL. `--db`, `BOOKING_DB` and [`crate::Booking::open`] all
//! take either.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a database is. Made from a string or a path: one that starts with `postgres://` or
/// `postgresql://` names a PostgreSQL database, anything else is a SQLite file.
///
/// ```
/// use booking::Location;
/// assert!(matches!(Location::from("booking.db"), Location::File(_)));
/// let pg = Location::from("postgres://app:secret@db.internal/booking");
/// assert!(pg.is_postgres());
/// // Shown without the password.
/// assert_eq!(pg.to_string(), "postgres://app:***@db.internal/booking");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// An embedded SQLite database file (created if missing).
    File(PathBuf),
    /// A PostgreSQL database, by URL (`postgres://user:password@host:port/dbname?options`). The
    /// database is created if missing and the role may create databases.
    Postgres(String),
}

impl Location {
    /// The SQLite file, if it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// The PostgreSQL URL, if it is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            Location::File(_) => None,
            Location::Postgres(url) => Some(url),
        }
    }

    /// Whether this names a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }

    fn of_os(s: &OsStr) -> Location {
        match s.to_str() {
            Some(url) if is_url(url) => {
                // The scheme in lower case, as the client library takes it.
                let (scheme, rest) = url.split_once("://").unwrap_or((url, ""));
                Location::Postgres(format!("{}://{rest}", scheme.to_ascii_lowercase()))
            }
            _ => Location::File(PathBuf::from(s)),
        }
    }
}

fn is_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A URL with its password (if any) replaced by `***`.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The file's path, or the URL without its password.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

/// As [`Display`](fmt::Display): a URL's password never reaches a log.
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => f.debug_tuple("File").field(p).finish(),
            Location::Postgres(_) => f.debug_tuple("Postgres").field(&self.to_string()).finish(),
        }
    }
}

/// For flags: `--db ./booking.db` or `--db postgres://...`.
impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Location::from(s))
    }
}

impl From<&str> for Location {
    fn from(s: &str) -> Self {
        Location::of_os(OsStr::new(s))
    }
}

impl From<String> for Location {
    fn from(s: String) -> Self {
        Location::from(s.as_str())
    }
}

impl From<&String> for Location {
    fn from(s: &String) -> Self {
        Location::from(s.as_str())
    }
}

impl From<&OsStr> for Location {
    fn from(s: &OsStr) -> Self {
        Location::of_os(s)
    }
}

impl From<OsString> for Location {
    fn from(s: OsString) -> Self {
        Location::of_os(&s)
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::of_os(p.as_os_str())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::of_os(p.as_os_str())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::of_os(p.as_os_str())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_everything_else_a_file() {
        for url in [
            "postgres://localhost/booking",
            "postgresql://u@h:5433/db?sslmode=disable",
            "POSTGRES://h/db",
        ] {
            assert!(Location::from(url).is_postgres(), "{url}");
        }
        for file in [
            "booking.db",
            "./postgres",
            "/var/lib/postgres://x",
            "postgres:/x",
        ] {
            assert_eq!(Location::from(file), Location::File(file.into()), "{file}");
        }
        assert!(Location::from(PathBuf::from("postgres://h/db")).is_postgres());
        assert_eq!(
            Location::from("PostgreSQL://U@H/Db").url(),
            Some("postgresql://U@H/Db")
        );
    }

    #[test]
    fn passwords_are_never_shown() {
        let l = Location::from("postgres://app:s3cret@db:5432/booking?application_name=x");
        assert_eq!(
            l.to_string(),
            "postgres://app:***@db:5432/booking?application_name=x"
        );
        assert!(!format!("{l:?}").contains("s3cret"));
        assert_eq!(
            Location::from("postgres://app@db/booking").to_string(),
            "postgres://app@db/booking"
        );
        assert_eq!(
            Location::from("postgres://db/booking").to_string(),
            "postgres://db/booking"
        );
    }
}
