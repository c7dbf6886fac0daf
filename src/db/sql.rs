//! The storage seam: the little that domain code needs of a database — run a statement with
//! parameters, read the rows of a query — written once for every engine under it.
//!
//! Domain functions take `&dyn Tx` (an open transaction, or a read connection) and write plain
//! SQL with numbered parameters (`?1`, `?2`, ...) in the dialect both engines share. What differs
//! between engines (placeholders, row locks, integrity checks) is the engine module's business.

use crate::error::{Error, Result};
use std::borrow::Cow;

/// A value bound to a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (every integer column is one).
    Int(i64),
    /// Text.
    Text(Cow<'a, str>),
    /// Bytes.
    Bytes(&'a [u8]),
}

/// A Rust value that can be bound to a parameter.
pub(crate) trait ToParam {
    /// The value to bind.
    fn to_param(&self) -> Param<'_>;
}

/// One row of a query's result, read by column index.
pub(crate) trait Row {
    /// An integer column (`None` for NULL).
    fn int(&self, i: usize) -> Result<Option<i64>>;
    /// A text column (`None` for NULL).
    fn text(&self, i: usize) -> Result<Option<&str>>;
    /// A bytes column (`None` for NULL).
    fn bytes(&self, i: usize) -> Result<Option<&[u8]>>;
}

/// A Rust value read from a column.
pub(crate) trait FromCol: Sized {
    /// Reads column `i` of `row`.
    fn from_col(row: &dyn Row, i: usize) -> Result<Self>;
}

/// An open connection or transaction of some engine.
pub(crate) trait Tx {
    /// Runs a statement; returns how many rows it changed.
    fn execute(&self, sql: &str, params: &[&dyn ToParam]) -> Result<usize>;

    /// Runs a query, calling `each` with every row in order.
    fn query(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()>;

    /// [`Tx::query`], locking the rows it reads until the transaction ends, so that no other
    /// writer changes them meanwhile. On an engine whose write transaction already excludes
    /// every other writer (SQLite), the same as `query`.
    fn query_locked(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        self.query(sql, params, each)
    }

    /// Whether [`Tx::query_locked`] takes row locks here. Where it does not (SQLite's write
    /// transaction excludes every other writer, and reads take no locks), a read made only to
    /// take locks in order can be skipped.
    fn takes_row_locks(&self) -> bool {
        false
    }

    /// Runs an `INSERT … RETURNING id` of one row and gives the id. An engine that knows the
    /// new row's id without the `RETURNING` clause may run the statement without it.
    fn insert(&self, sql: &str, params: &[&dyn ToParam]) -> Result<i64> {
        first_value(|each| self.query(sql, params, each), sql)
    }
}

impl dyn Row + '_ {
    /// Column `i` as `T`.
    pub fn get<T: FromCol>(&self, i: usize) -> Result<T> {
        T::from_col(self, i)
    }
}

impl dyn Tx + '_ {
    /// The first row of a query mapped by `f`, if there is one.
    pub fn row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnOnce(&dyn Row) -> Result<T>,
    ) -> Result<Option<T>> {
        first(|each| self.query(sql, params, each), f)
    }

    /// [`row`](Self::row), locking the row read (see [`Tx::query_locked`]).
    pub fn row_locked<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnOnce(&dyn Row) -> Result<T>,
    ) -> Result<Option<T>> {
        first(|each| self.query_locked(sql, params, each), f)
    }

    /// Every row of a query, mapped by `f`.
    pub fn rows<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnMut(&dyn Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        collect(|each| self.query(sql, params, each), f)
    }

    /// [`rows`](Self::rows), locking the rows read (see [`Tx::query_locked`]).
    pub fn rows_locked<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnMut(&dyn Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        collect(|each| self.query_locked(sql, params, each), f)
    }

    /// The first column of the one row a query returns (an aggregate, an id).
    pub fn value<T: FromCol>(&self, sql: &str, params: &[&dyn ToParam]) -> Result<T> {
        first_value(|each| self.query(sql, params, each), sql)
    }
}

/// Every row `query` gives, mapped by `f`.
fn collect<T>(
    query: impl FnOnce(&mut dyn FnMut(&dyn Row) -> Result<()>) -> Result<()>,
    mut f: impl FnMut(&dyn Row) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    query(&mut |r| {
        out.push(f(r)?);
        Ok(())
    })?;
    Ok(out)
}

/// The first column of the first row `query` (running `sql`) gives; no row is an error.
fn first_value<T: FromCol>(
    query: impl FnOnce(&mut dyn FnMut(&dyn Row) -> Result<()>) -> Result<()>,
    sql: &str,
) -> Result<T> {
    first(query, |r| r.get(0))?.ok_or_else(|| Error::internal(format!("no row from: {sql}")))
}

fn first<T>(
    query: impl FnOnce(&mut dyn FnMut(&dyn Row) -> Result<()>) -> Result<()>,
    f: impl FnOnce(&dyn Row) -> Result<T>,
) -> Result<Option<T>> {
    let mut f = Some(f);
    let mut out = None;
    query(&mut |r| {
        if let Some(f) = f.take() {
            out = Some(f(r)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// `&[&dyn ToParam]` from a list of values: `params![user, now.ms]`.
macro_rules! params {
    () => { &[] as &[&dyn $crate::db::sql::ToParam] };
    ($($v:expr),+ $(,)?) => { &[$(&$v as &dyn $crate::db::sql::ToParam),+] as &[&dyn $crate::db::sql::ToParam] };
}
pub(crate) use params;

/// The placeholders of an `IN (…)` list of `n` values bound from parameter `first` on:
/// `list(3, 2)` is `"?3, ?4"`. Statements are cached by their text, so a list's length should
/// be bounded (a request's seats or tickets, at most the per-user limit).
pub(crate) fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Values as statement parameters: the values of a [`list`].
pub(crate) fn to_params<T: ToParam>(values: &[T]) -> Vec<&dyn ToParam> {
    values.iter().map(|v| v as &dyn ToParam).collect()
}

/// A column that was not what the schema says it is.
pub(crate) fn bad_column(i: usize, what: &str) -> Error {
    Error::internal(format!("column {i} is not {what}"))
}

fn required<T>(v: Option<T>, i: usize, what: &str) -> Result<T> {
    v.ok_or_else(|| bad_column(i, what))
}

impl ToParam for i64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}

impl ToParam for u32 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl ToParam for bool {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for &str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}

impl FromCol for i64 {
    fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
        required(row.int(i)?, i, "an integer")
    }
}

impl FromCol for Option<i64> {
    fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
        row.int(i)
    }
}

impl FromCol for bool {
    fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
        match required(row.int(i)?, i, "a flag")? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad_column(i, "a flag (0 or 1)")),
        }
    }
}

impl FromCol for String {
    fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
        required(row.text(i)?, i, "text").map(str::to_owned)
    }
}

impl FromCol for Vec<u8> {
    fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
        required(row.bytes(i)?, i, "bytes").map(<[u8]>::to_vec)
    }
}

/// Stored names of an enum (a status, a kind): written as text, read back strictly — a name the
/// code does not know is an error, never a default.
macro_rules! stored_enum {
    ($ty:ty, $what:literal, { $($variant:path => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name stored in the database (and shown in JSON).
            pub(crate) fn stored(self) -> &'static str {
                match self { $($variant => $name),+ }
            }
        }

        impl $crate::db::sql::ToParam for $ty {
            fn to_param(&self) -> $crate::db::sql::Param<'_> {
                $crate::db::sql::Param::Text(std::borrow::Cow::Borrowed(self.stored()))
            }
        }

        impl $crate::db::sql::FromCol for $ty {
            fn from_col(row: &dyn $crate::db::sql::Row, i: usize) -> $crate::error::Result<Self> {
                match row.text(i)? {
                    $(Some($name) => Ok($variant),)+
                    Some(other) => Err($crate::error::Error::internal(format!(
                        "unknown {} {other:?} stored in the database", $what
                    ))),
                    None => Err($crate::db::sql::bad_column(i, $what)),
                }
            }
        }
    };
}
pub(crate) use stored_enum;
