//! Which records a listing, export or statistics run wants: one type for
//! the laptop store and the hub, which each turn it into their own query.

use chrono::NaiveDate;

use crate::record::Kind;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub kind: Option<Kind>,
    /// Records whose dates reach this day or later.
    pub from: Option<NaiveDate>,
    /// Records whose dates start this day or earlier.
    pub to: Option<NaiveDate>,
    /// A site, compared case-insensitively.
    pub site: Option<String>,
}
