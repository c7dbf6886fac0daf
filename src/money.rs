//! Money: [`Points`], a whole number of points (KRW, no fractions). Arithmetic on it is checked;
//! a sum that would overflow is an error, never a wrapped number.

use crate::db::sql::{FromCol, Param, Row, ToParam};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of points: a price, a balance, a charge, a refund. Negative in the ledger for
/// spending.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Points(i64);

impl Points {
    /// No points.
    pub const ZERO: Points = Points(0);

    /// `n` points.
    pub const fn new(n: i64) -> Points {
        Points(n)
    }

    /// The number of points.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Points) -> Option<Points> {
        self.0.checked_add(other.0).map(Points)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Points) -> Option<Points> {
        self.0.checked_sub(other.0).map(Points)
    }

    /// `-self`, or `None` on overflow.
    pub fn checked_neg(self) -> Option<Points> {
        self.0.checked_neg().map(Points)
    }

    /// `self × percent / 100`, rounded down (for fees), or `None` on overflow.
    pub fn percent(self, percent: u32) -> Option<Points> {
        self.0
            .checked_mul(i64::from(percent))
            .map(|n| Points(n.div_euclid(100)))
    }

    /// The sum of `items`, or `None` on overflow.
    pub fn sum(items: impl IntoIterator<Item = Points>) -> Option<Points> {
        items
            .into_iter()
            .try_fold(Points::ZERO, |acc, p| acc.checked_add(p))
    }
}

impl From<i64> for Points {
    fn from(n: i64) -> Points {
        Points(n)
    }
}

/// A whole number of points, as written on a command line.
impl std::str::FromStr for Points {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> std::result::Result<Points, Self::Err> {
        s.trim().parse().map(Points)
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ToParam for Points {
    fn to_param(&self) -> Param<'_> {
        Param::Int(self.0)
    }
}

impl FromCol for Points {
    fn from_col(row: &dyn Row, i: usize) -> Result<Self> {
        row.get::<i64>(i).map(Points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Points(2).checked_add(Points(3)), Some(Points(5)));
        assert_eq!(Points(i64::MAX).checked_add(Points(1)), None);
        assert_eq!(Points(i64::MIN).checked_neg(), None);
        assert_eq!(Points::sum([Points(1), Points(2)]), Some(Points(3)));
        assert_eq!(Points::sum([Points(i64::MAX), Points(1)]), None);
    }

    #[test]
    fn a_percentage_rounds_down() {
        assert_eq!(Points(99_999).percent(10), Some(Points(9_999)));
        assert_eq!(Points(5).percent(0), Some(Points(0)));
        assert_eq!(Points(i64::MAX).percent(10), None);
    }
}
