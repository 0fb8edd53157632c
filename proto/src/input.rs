//! What people type, read kindly: day words (`today`, `idag`), the allowed
//! value a typo was probably meant to be, and whether a date looks like a
//! slip of the keyboard (`2062`, a day next month).
//!
//! Pure functions: the caller passes today's date, so the CLI, the web app
//! and tests agree on one rule and no clock is read here.

use std::fmt;

use chrono::NaiveDate;

/// A day given as a word, as staff say it: `today`/`idag`,
/// `yesterday`/`igår` (also `igar`). Case and surrounding spaces are
/// ignored. Anything else is `None` (a `YYYY-MM-DD` date is left to the
/// validation that reads dates).
pub fn day_word(s: &str, today: NaiveDate) -> Option<NaiveDate> {
    match s.trim().to_lowercase().as_str() {
        "today" | "idag" => Some(today),
        "yesterday" | "igår" | "igar" => today.pred_opt(),
        _ => None,
    }
}

/// Lowercase, Swedish and other Latin accents folded, and only letters and
/// digits kept: `Mjölby bibliotek`, `mjolby-bibliotek` and `MJOLBYBIBLIOTEK`
/// compare equal.
fn fold(s: &str) -> Vec<char> {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'å' | 'ä' | 'á' | 'à' | 'â' => 'a',
            'ö' | 'ø' | 'ó' | 'ò' | 'ô' => 'o',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'ü' | 'ú' | 'ù' => 'u',
            'í' | 'ì' | 'ï' => 'i',
            c => c,
        })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The candidate `input` was most likely meant to be, or `None` when none
/// is close: the same letters apart from case, accents, spaces and
/// punctuation; at most two letters typed wrong, missing, extra or swapped
/// (and at most a third of the word); or the start of exactly one
/// candidate (three letters or more). Ties go to the earlier candidate.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = fold(input);
    if typed.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    let mut prefix_of: Option<&'a str> = None;
    let mut prefixes = 0;
    for candidate in candidates {
        let folded = fold(candidate);
        if typed.len() >= 3 && folded.len() > typed.len() && folded.starts_with(&typed) {
            prefixes += 1;
            prefix_of.get_or_insert(candidate);
        }
        let distance = strsim::generic_damerau_levenshtein(&typed, &folded);
        let longest = typed.len().max(folded.len());
        if distance <= 2 && distance * 3 <= longest && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
        .or(if prefixes == 1 { prefix_of } else { None })
}

/// ", did you mean X?" for an error message, or nothing.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(input, candidates)
        .map(|c| format!("; did you mean {c}?"))
        .unwrap_or_default()
}

/// A date that is valid but probably not what was meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateConcern {
    /// After today (by this many days).
    Ahead(i64),
    /// More than a year before today (by this many days).
    LongAgo(i64),
}

/// How far back a date may lie before it is questioned: a year, since
/// visits are recorded the same day or caught up within weeks.
pub const LONG_AGO_DAYS: i64 = 366;

/// Whether `date` deserves a second look, seen from `today`: any day ahead,
/// or more than a year back. Such dates are still saved (a catch-up from a
/// paper list is legitimate); callers warn, and ask on a terminal.
pub fn date_concern(date: NaiveDate, today: NaiveDate) -> Option<DateConcern> {
    let days = (date - today).num_days();
    if days > 0 {
        Some(DateConcern::Ahead(days))
    } else if -days > LONG_AGO_DAYS {
        Some(DateConcern::LongAgo(-days))
    } else {
        None
    }
}

impl fmt::Display for DateConcern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DateConcern::Ahead(1) => f.write_str("is tomorrow"),
            DateConcern::Ahead(days) => write!(f, "is {days} days ahead"),
            DateConcern::LongAgo(days) => write!(f, "is more than a year ago ({days} days)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn day_words_in_swedish_and_english() {
        let today = d("2026-03-04");
        assert_eq!(day_word("idag", today), Some(today));
        assert_eq!(day_word(" Today ", today), Some(today));
        assert_eq!(day_word("IGÅR", today), Some(d("2026-03-03")));
        assert_eq!(day_word("yesterday", today), Some(d("2026-03-03")));
        assert_eq!(day_word("2026-03-04", today), None);
        assert_eq!(day_word("imorgon", today), None);
    }

    #[test]
    fn typos_find_what_was_meant() {
        let services = ["Skatteverket", "Försäkringskassan", "BankID", "1177", "CSN"];
        assert_eq!(closest("Skateverket", services), Some("Skatteverket"));
        assert_eq!(
            closest("forsakringskassan", services),
            Some("Försäkringskassan")
        );
        assert_eq!(closest("Forsakrings", services), Some("Försäkringskassan"));
        assert_eq!(closest("1717", services), Some("1177"));
        assert_eq!(closest("bank-id", services), Some("BankID"));
        // Too far from anything: no guess rather than a wrong one.
        assert_eq!(closest("Arbetsförmedlingen", services), None);
        assert_eq!(closest("CS", services), Some("CSN"));
        assert_eq!(closest("XY", services), None);
        assert_eq!(closest("", services), None);
        let channels = ["drop_in", "booked", "outreach", "phone", "course_followup"];
        assert_eq!(closest("dropin", channels), Some("drop_in"));
        // Swedish for booked, two letters off: a fair guess.
        assert_eq!(closest("bokad", channels), Some("booked"));
        assert_eq!(closest("walkin", channels), None);
        assert_eq!(closest("phnoe", channels), Some("phone"));
        assert_eq!(
            did_you_mean("outreech", channels),
            "; did you mean outreach?"
        );
        assert_eq!(did_you_mean("walk_in", channels), "");
    }

    #[test]
    fn a_prefix_of_two_candidates_is_no_guess() {
        assert_eq!(closest("cou", ["course", "county"]), None);
        assert_eq!(closest("cou", ["course", "phone"]), Some("course"));
    }

    #[test]
    fn dates_ahead_or_long_ago_are_questioned() {
        let today = d("2026-03-04");
        assert_eq!(date_concern(today, today), None);
        assert_eq!(date_concern(d("2025-03-04"), today), None);
        assert_eq!(
            date_concern(d("2026-03-05"), today),
            Some(DateConcern::Ahead(1))
        );
        assert_eq!(
            date_concern(d("2062-03-04"), today).map(|c| matches!(c, DateConcern::Ahead(_))),
            Some(true)
        );
        assert_eq!(
            date_concern(d("2024-12-31"), today),
            Some(DateConcern::LongAgo(428))
        );
        assert_eq!(DateConcern::Ahead(1).to_string(), "is tomorrow");
    }
}
