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

/// `--from`, `--to` and `--year` as typed, to a day range (either end open).
///
/// People think in years and months when they ask for figures, so `--from`
/// and `--to` take `YYYY`, `YYYY-MM` or `YYYY-MM-DD`: `--from 2025` is
/// 2025-01-01, `--to 2025` is 2025-12-31 and `--to 2025-02` is 2025-02-28.
/// `--year Y` is `--from Y --to Y` and cannot be combined with them.
pub fn parse_range(
    year: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), String> {
    if let Some(y) = year {
        if from.is_some() || to.is_some() {
            return Err(
                "--year cannot be combined with --from or --to; use one or the other".into(),
            );
        }
        let y = y.trim();
        if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "--year: '{y}' is not a year; write YYYY, e.g. 2025"
            ));
        }
        return parse_range(None, Some(y), Some(y));
    }
    let from = from
        .map(|s| period_bound(s, false).map_err(|m| format!("--from: {m}")))
        .transpose()?;
    let to = to
        .map(|s| period_bound(s, true).map_err(|m| format!("--to: {m}")))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(format!("--from {f} is after --to {t}; swap them"));
    }
    Ok((from, to))
}

/// The first (or, with `end`, the last) day of `YYYY`, `YYYY-MM` or the
/// day `YYYY-MM-DD`.
fn period_bound(s: &str, end: bool) -> Result<NaiveDate, String> {
    let t = s.trim();
    let bad = || format!("'{t}' is not a date; write YYYY-MM-DD, YYYY-MM or YYYY, e.g. 2025-03-04");
    let parts: Vec<&str> = t.split('-').collect();
    let num = |p: &str, len: usize| -> Result<u32, String> {
        if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    match parts.as_slice() {
        [y] => {
            let y = num(y, 4)? as i32;
            let (m, d) = if end { (12, 31) } else { (1, 1) };
            NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)
        }
        [y, m] => {
            let (y, m) = (num(y, 4)? as i32, num(m, 2)?);
            let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
            if !end {
                return Ok(first);
            }
            let next = if m == 12 {
                NaiveDate::from_ymd_opt(y + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(y, m + 1, 1)
            };
            next.and_then(|n| n.pred_opt()).ok_or_else(bad)
        }
        [_, _, _] => crate::record::parse_date(t),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<NaiveDate> {
        Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn years_and_months_mean_their_first_and_last_days() {
        assert_eq!(
            parse_range(None, Some("2025"), Some("2025")),
            Ok((d("2025-01-01"), d("2025-12-31")))
        );
        assert_eq!(
            parse_range(None, Some("2024-02"), Some("2024-02")),
            Ok((d("2024-02-01"), d("2024-02-29")))
        );
        assert_eq!(
            parse_range(None, None, Some("2025-12")),
            Ok((None, d("2025-12-31")))
        );
        assert_eq!(
            parse_range(Some(" 2025 "), None, None),
            Ok((d("2025-01-01"), d("2025-12-31")))
        );
        assert_eq!(
            parse_range(None, Some("2025-03-04"), None),
            Ok((d("2025-03-04"), None))
        );
    }

    #[test]
    fn bad_ranges_say_how_to_write_them() {
        assert!(
            parse_range(None, Some("2025-13"), None)
                .unwrap_err()
                .contains("--from")
        );
        assert!(
            parse_range(None, None, Some("25"))
                .unwrap_err()
                .contains("YYYY")
        );
        assert!(
            parse_range(Some("2025"), Some("2025"), None)
                .unwrap_err()
                .contains("--year")
        );
        assert!(
            parse_range(Some("20x5"), None, None)
                .unwrap_err()
                .contains("not a year")
        );
        assert!(
            parse_range(None, Some("2026"), Some("2025"))
                .unwrap_err()
                .contains("swap")
        );
    }
}
