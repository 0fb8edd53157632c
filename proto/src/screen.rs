//! Privacy screen for free-text fields.
//!
//! Outpost records must stay anonymous: they are synced between laptops and
//! a hub, exported to spreadsheets and kept for statistics, so a visitor's
//! identity must never get into them. Staff type notes quickly while helping
//! someone, and the easiest way for identity to leak is a number or address
//! copied from the visitor's screen. Before a free-text field (`note`,
//! barrier notes, `referred_to`, `site`, `title`, session notes) is saved it
//! is screened for:
//!
//! - Swedish personal identity numbers (personnummer) and coordination
//!   numbers (samordningsnummer): `YYMMDD-NNNC`, `YYMMDD+NNNC`,
//!   `YYMMDDNNNC`, `YYYYMMDDNNNC` and `YYYYMMDD-NNNC` (also `+`). The date
//!   must exist (day + 60 for a coordination number) and `C` must be the
//!   Luhn check digit of `YYMMDDNNN`.
//! - Phone numbers, Swedish and international: starting with `0`, `00`,
//!   `+` or a parenthesised area code, digit groups joined by single spaces,
//!   hyphens or parentheses, and at least 8 digits in all.
//! - E-mail addresses (`local@domain.tld`).
//! - Payment card numbers: 13–19 digits passing the Luhn check, grouped
//!   or not.
//! - Identity and card numbers with spaces, dots or dashes between any of
//!   their digit groups (`19811218 9876`, `19 81 12 18 98 76`).
//!
//! A refusal names the field and the kind of data, never the value, so the
//! error message itself cannot leak into logs or sync error reports.
//!
//! # False-positive policy
//!
//! A refusal costs the member of staff a retyped note; a miss puts an
//! identity in a record. The screen still errs on the side of *not*
//! refusing ordinary help-desk text, because a screen that cries wolf gets
//! worked around. Concretely:
//!
//! - A personnummer-shaped number is only refused when both its date and its
//!   check digit are right. Such a number that fails those checks is judged
//!   by those rules alone and never re-read as a phone number — with one
//!   exception: a bare ten-digit run that starts with `0` (`0701234567`) is
//!   exactly how Swedish mobile numbers are written, so it is also tried as
//!   a phone number.
//! - Digits are never split out of a longer run or off a letter: `A121212-1212`
//!   and `1121212-12122` are not personnummer, and a phone number may not
//!   start in the middle of another number (`2024-05-13`, `10:00-12:00`,
//!   `2023-2024`), nor continue a thousands-grouped amount (`1 050 000 000`).
//! - Phone numbers need a `0`/`+` prefix (so case numbers, amounts and
//!   postcodes pass), a plausible first digit after it (no `00` area code,
//!   no `+0` country code), and 8 digits reached without passing 12
//!   (national) or 15 (international, the E.164 limit), so that one long
//!   reference number is not taken for a phone number. Dots,
//!   slashes and double spaces do not join groups, which keeps dates like
//!   `01.02.2024` out.
//! - `@handles`, `@` on its own and "name at domain" are not e-mail.
//!
//! - Grouped digits: an amount grouped in thousands (`1 804 865 887 kr`) is
//!   never read as one, and a written date followed by a space ends the
//!   number (`2025-03-04 1030` is a date and a time); an organisation
//!   number (`212000-0613`) has no valid month, so it passes.
//!
//! Text is read as people see it first ([`normalise`]): Unicode NFKC
//! (full-width and mathematical digits and letters, `＠`, `．`),
//! Default_Ignorable code points removed (zero-width joiners, invisible
//! separators, the combining grapheme joiner), every Unicode decimal digit
//! read as ASCII (Arabic-Indic, Devanagari, ...), spaces and dashes of any
//! kind as ` ` and `-`. Text pasted from phones and web pages uses them,
//! an evader uses them on purpose, and an identity number is no less
//! identifying in another script.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// The kind of identifying data found in free text. Display gives a human phrase,
/// e.g. "a personal identity number (personnummer)", "a coordination number (samordningsnummer)",
/// "a phone number", "an e-mail address".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensitiveKind {
    PersonalIdentityNumber,
    CoordinationNumber,
    PhoneNumber,
    Email,
    PaymentCard,
}

impl fmt::Display for SensitiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SensitiveKind::PersonalIdentityNumber => "a personal identity number (personnummer)",
            SensitiveKind::CoordinationNumber => "a coordination number (samordningsnummer)",
            SensitiveKind::PhoneNumber => "a phone number",
            SensitiveKind::Email => "an e-mail address",
            SensitiveKind::PaymentCard => "a payment card number",
        })
    }
}

/// Screening refusal: names the field and the kind, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} contains {kind}; records must stay anonymous, so remove it and try again")]
pub struct ScreenError {
    pub field: String,
    pub kind: SensitiveKind,
}

/// Screen one field: Err(ScreenError) naming `field` if `text` carries identifying data.
///
/// # Errors
///
/// [`ScreenError`] with the first [`SensitiveKind`] that [`find_sensitive`] finds.
pub fn screen_field(field: &str, text: &str) -> Result<(), ScreenError> {
    match find_sensitive(text) {
        Some(kind) => Err(ScreenError {
            field: field.to_string(),
            kind,
        }),
        None => Ok(()),
    }
}

/// Returns the first kind of identifying data found in `text`, or None if the text is clean.
/// Never returns or logs the matched text.
///
/// "First" is by position in the text; when an identity number and a phone
/// number start at the same place, the identity number is reported.
pub fn find_sensitive(text: &str) -> Option<SensitiveKind> {
    // Most notes are prose; everything screened needs a digit or an `@`.
    // Most notes are prose; everything screened needs a digit or an `@`
    // (in any script or width: `﹫`, `＠` and digits fold to those).
    if !text
        .chars()
        .any(|c| c.is_numeric() || matches!(c, '@' | '\u{FE6B}' | '\u{FF20}'))
    {
        return None;
    }
    let text = normalise(text);
    let shapes = id_shapes(&text);

    let id = shapes.iter().find_map(|s| s.kind.map(|k| (s.start, k)));
    let email = EMAIL.find(&text).map(|m| (m.start(), SensitiveKind::Email));
    let phone = find_phone(&text, &shapes).map(|at| (at, SensitiveKind::PhoneNumber));
    let grouped = find_grouped(&text);

    // `min_by_key` keeps the first of equal keys, so the order here is the
    // tie-break.
    [id, email, phone, grouped]
        .into_iter()
        .flatten()
        .min_by_key(|&(start, _)| start)
        .map(|(_, kind)| kind)
}

/// Unicode decimal digit zeros (general category Nd): each starts a run of
/// ten digits 0–9. NFKC already folds full-width and mathematical digits;
/// these are the scripts it leaves alone (Arabic-Indic, Devanagari, ...).
const DIGIT_ZEROS: &[u32] = &[
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60, 0x16AC0,
    0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E950,
    0x1FBF0,
];

/// The ASCII digit a Unicode decimal digit stands for.
fn decimal_digit(c: char) -> Option<char> {
    let cp = u32::from(c);
    let i = DIGIT_ZEROS.partition_point(|&z| z <= cp).checked_sub(1)?;
    let value = cp - DIGIT_ZEROS[i];
    (value < 10).then(|| char::from(b'0' + value as u8))
}

/// Unicode's Default_Ignorable_Code_Point: invisible characters (zero-width
/// joiners, invisible separators, the combining grapheme joiner, variation
/// selectors, bidi controls, ...) that a web page, a word processor or an
/// evader slips into a number.
fn default_ignorable(c: char) -> bool {
    matches!(u32::from(c),
        0xAD | 0x34F | 0x61C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// Reads text as people see it, so the patterns below need only handle one
/// spelling: Unicode NFKC (full-width and mathematical letters, digits and
/// punctuation become plain ones), Default_Ignorable code points removed,
/// every decimal digit as its ASCII digit, every space as ` ` and every
/// dash as `-`.
pub fn normalise(text: &str) -> Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    // Plain ASCII without control characters is already in this form.
    if text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.nfkc()
            .filter(|&c| !default_ignorable(c))
            .map(|c| match c {
                _ if c.is_ascii() => c,
                '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' => '-',
                _ if c.is_whitespace() => ' ',
                _ => decimal_digit(c).unwrap_or(c),
            })
            .collect(),
    )
}

/// Anything shaped like an identity number: 6 or 8 date digits, an optional
/// `-`/`+`, 4 digits, with a word boundary on both sides so that digits are
/// never borrowed from a longer run or a neighbouring word.
static ID_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([0-9]{8}|[0-9]{6})([-+]?)([0-9]{4})\b").expect("valid regex"));

/// A local part, `@`, and a dotted domain ending in a letters-only TLD.
/// Requiring the dot and the local part is what keeps `@Skatteverket`
/// handles and bare `@` out.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}")
        .expect("valid regex")
});

/// One identity-number-shaped span and the verdict on it.
#[derive(Debug)]
struct IdShape {
    start: usize,
    /// Written with `-`/`+`: such a span is judged as an identity number
    /// only, never as a phone number.
    separated: bool,
    kind: Option<SensitiveKind>,
}

fn id_shapes(text: &str) -> Vec<IdShape> {
    ID_SHAPE
        .captures_iter(text)
        .filter_map(|caps| {
            let (whole, date, sep, tail) = (caps.get(0)?, caps.get(1)?, caps.get(2)?, caps.get(3)?);
            Some(IdShape {
                start: whole.start(),
                separated: !sep.as_str().is_empty(),
                kind: judge_id(date.as_str().as_bytes(), tail.as_str().as_bytes()),
            })
        })
        .collect()
}

/// Whether `date` (YYMMDD or YYYYMMDD) and `tail` (NNNC) make a real
/// personnummer or samordningsnummer.
fn judge_id(date: &[u8], tail: &[u8]) -> Option<SensitiveKind> {
    if !date.iter().chain(tail).all(u8::is_ascii_digit) || tail.len() != 4 {
        return None;
    }
    let num = |ds: &[u8]| ds.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let (leap, short) = match date.len() {
        8 => {
            let year = num(&date[..4]);
            (
                year % 4 == 0 && (year % 100 != 0 || year % 400 == 0),
                &date[2..],
            )
        }
        // Without the century any year ending in 00, 04, ... can be a leap
        // year in some century.
        6 => (num(&date[..2]) % 4 == 0, date),
        _ => return None,
    };
    let month = num(&short[2..4]);
    let day_field = num(&short[4..6]);
    let (day, kind) = if day_field > 60 {
        (day_field - 60, SensitiveKind::CoordinationNumber)
    } else {
        (day_field, SensitiveKind::PersonalIdentityNumber)
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let body: Vec<u8> = short.iter().chain(&tail[..3]).map(|d| d - b'0').collect();
    (luhn_check_digit(&body) == tail[3] - b'0').then_some(kind)
}

/// The Luhn check digit for `digits` (each 0–9), weighting the first digit 2.
fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let p = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
            p / 10 + p % 10
        })
        .sum();
    // The result is < 10, so the narrowing cannot truncate.
    ((10 - sum % 10) % 10) as u8
}

/// Where the digits of the first phone number in `text` start, if any.
/// The digits rather than a `(` or `+` before them, so that an identity
/// number read from the same digits wins the tie in [`find_sensitive`].
fn find_phone(text: &str, shapes: &[IdShape]) -> Option<usize> {
    let id_starts: Vec<usize> = shapes
        .iter()
        .filter(|s| s.separated)
        .map(|s| s.start)
        .collect();
    text.bytes()
        .enumerate()
        .filter(|&(_, b)| matches!(b, b'0' | b'+' | b'('))
        .find_map(|(i, _)| phone_at(text, i, &id_starts))
}

/// Most digit groups looked at in one run of grouped digits, so a long
/// run of `1 1 1 1 ...` stays linear work.
const MAX_GROUPS: usize = 32;

/// Identity numbers written with spaces, dots or dashes between any of
/// their digit groups (`19811218 9876`, `19 81 12 18 98 76`), and payment
/// card numbers (13–19 digits passing the Luhn check, grouped or not).
/// Returns where the first one starts.
///
/// What keeps ordinary notes out: only runs of groups joined by one
/// separator each are read, never digits out of a word or a longer run;
/// a thousands-grouped amount (`1 234 567 890 123`) is not read; and a
/// written date (`2025-03-04`, `13.05.2024`) followed by a space ends the
/// number (`2025-03-04 1030` is a date and a time).
fn find_grouped(text: &str) -> Option<(usize, SensitiveKind)> {
    let b = text.as_bytes();
    let is_digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = 0;
    while i < b.len() {
        if !is_digit(i) {
            i += 1;
            continue;
        }
        let glued_before = text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        // One run: groups (start, end) and the separator before each.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut seps: Vec<u8> = Vec::new();
        let mut pos = i;
        loop {
            let at = pos;
            while is_digit(pos) {
                pos += 1;
            }
            groups.push((at, pos));
            let sep = b.get(pos).copied();
            if groups.len() < MAX_GROUPS
                && matches!(sep, Some(b' ' | b'.' | b'-'))
                && is_digit(pos + 1)
            {
                seps.push(sep.unwrap_or(b' '));
                pos += 1;
            } else {
                break;
            }
        }
        let glued_after = text[pos..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !glued_before
            && !glued_after
            && let Some(found) = judge_groups(b, &groups, &seps)
        {
            return Some(found);
        }
        i = pos.max(i + 1);
    }
    None
}

/// The first identity or card number in one run of digit groups.
fn judge_groups(
    b: &[u8],
    groups: &[(usize, usize)],
    seps: &[u8],
) -> Option<(usize, SensitiveKind)> {
    let len = |g: usize| groups[g].1 - groups[g].0;
    // `seps[k]` sits between group k and k + 1. A date written with two
    // equal separators, then a space: the date ends there.
    let date_ends = |k: usize| -> bool {
        k >= 2
            && seps.get(k) == Some(&b' ')
            && seps[k - 2] == seps[k - 1]
            && matches!(seps[k - 1], b'-' | b'.')
            && matches!((len(k - 2), len(k - 1), len(k)), (4, 2, 2) | (2, 2, 4))
    };
    let thousands = |from: usize, to: usize| -> bool {
        to > from
            && (1..=3).contains(&len(from))
            && (from + 1..=to).all(|g| len(g) == 3 && seps[g - 1] == b' ')
    };
    if thousands(0, groups.len() - 1) {
        // `1 804 865 887 kr`: one amount, however its digits read.
        return None;
    }
    for first in 0..groups.len() {
        let mut digits: Vec<u8> = Vec::with_capacity(19);
        for last in first..groups.len() {
            if last > first && date_ends(last - 1) {
                break;
            }
            let (s, e) = groups[last];
            digits.extend(b[s..e].iter().map(|d| d - b'0'));
            if digits.len() > 19 {
                break;
            }
            if last > first && matches!(digits.len(), 10 | 12) {
                let (date, tail) = digits.split_at(digits.len() - 4);
                let ascii = |ds: &[u8]| ds.iter().map(|d| d + b'0').collect::<Vec<u8>>();
                if let Some(kind) = judge_id(&ascii(date), &ascii(tail)) {
                    return Some((groups[first].0, kind));
                }
            }
            if digits.len() >= 13 && luhn_valid(&digits) {
                return Some((groups[first].0, SensitiveKind::PaymentCard));
            }
        }
    }
    None
}

/// Whether `digits` (each 0–9) end in their Luhn check digit, as payment
/// card numbers do.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let p = u32::from(d) * if i % 2 == 1 { 2 } else { 1 };
            p / 10 + p % 10
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Digits counted before giving up on a candidate: the longest acceptable
/// number plus the `00` prefix, so reading stays bounded on long digit runs.
const MAX_READ_DIGITS: usize = 17;
const MIN_PHONE_DIGITS: usize = 8;
const MAX_NATIONAL_DIGITS: usize = 12;
/// E.164 limit, excluding the `+`/`00`.
const MAX_INTERNATIONAL_DIGITS: usize = 15;

/// Whether a phone number starts at byte `start` (an ASCII `0`, `+` or `(`),
/// and if so where its digits start.
fn phone_at(text: &str, start: usize, id_starts: &[usize]) -> Option<usize> {
    let b = text.as_bytes();
    let before = Preceding::of(text, start)?;
    let mut pos = start;
    let open = b.get(pos) == Some(&b'(');
    if open {
        pos += 1;
    }
    let plus = b.get(pos) == Some(&b'+');
    if plus {
        pos += 1;
    }
    if !plus && (b.get(pos) != Some(&b'0') || id_starts.contains(&pos)) {
        return None;
    }
    let digits_start = pos;
    let groups = read_groups(text, pos, open);
    let &(at, len) = groups.first()?;
    let first = &b[at..at + len];
    let nonzero = |i: usize| first.get(i).is_some_and(|d| (b'1'..=b'9').contains(d));
    let (skip, max) = if plus {
        if !nonzero(0) {
            return None;
        }
        (0, MAX_INTERNATIONAL_DIGITS)
    } else if first.get(1) == Some(&b'0') {
        // `00` is the international prefix; country codes never start with 0.
        if !nonzero(2) {
            return None;
        }
        (2, MAX_INTERNATIONAL_DIGITS)
    } else {
        // Swedish area codes never start with 0 after the trunk 0.
        if !nonzero(1) {
            return None;
        }
        (0, MAX_NATIONAL_DIGITS)
    };
    if !open && !plus && before == Preceding::DigitThenSpace && groups.iter().all(|g| g.1 == 3) {
        // `1 050 000 000 kr`: the rest of a thousands-grouped amount.
        return None;
    }
    let mut count = 0usize;
    for &(_, len) in &groups {
        count += len;
        let counted = count.saturating_sub(skip);
        if counted > max {
            return None;
        }
        if counted >= MIN_PHONE_DIGITS {
            return Some(digits_start);
        }
    }
    None
}

/// What comes before a phone-number candidate, as far as it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preceding {
    /// Start of text, anything after a non-digit, or a line break or tab
    /// after a digit.
    Clear,
    /// A single space after a digit: possibly the continuation of a grouped
    /// number, which [`phone_at`] looks at more closely.
    DigitThenSpace,
}

impl Preceding {
    /// `None` when the candidate would be cut out of a word or out of
    /// another number (`2024-05-13`, `10:00`, `3,05`, `A070...`).
    fn of(text: &str, start: usize) -> Option<Preceding> {
        let mut rev = text[..start].chars().rev();
        let Some(prev) = rev.next() else {
            return Some(Preceding::Clear);
        };
        if prev.is_alphanumeric() || prev == '_' {
            return None;
        }
        let digit_before = rev.next().is_some_and(|c| c.is_ascii_digit());
        match (prev, digit_before) {
            (_, false) => Some(Preceding::Clear),
            (' ', true) => Some(Preceding::DigitThenSpace),
            (c, true) if c.is_whitespace() => Some(Preceding::Clear),
            (_, true) => None,
        }
    }
}

/// Digit groups of a phone-number candidate from `pos`, as (start, length).
/// Groups are joined by one space, one hyphen, ` - `, or a parenthesised
/// part such as `(08) ` or `+46 (0)70`; anything else ends the candidate.
/// A run glued to a letter (`04622071c8f6`, a hex id) is not a group.
fn read_groups(text: &str, mut pos: usize, mut open: bool) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let digit_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut groups = Vec::new();
    let mut total = 0;
    loop {
        let at = pos;
        while digit_at(pos) {
            pos += 1;
        }
        let glued = text[pos..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if pos == at || glued {
            break;
        }
        groups.push((at, pos - at));
        total += pos - at;
        if total > MAX_READ_DIGITS {
            break;
        }
        let next = match (b.get(pos), b.get(pos + 1), b.get(pos + 2)) {
            (Some(b' '), Some(b'-'), Some(b' ')) => pos + 3,
            (Some(b' '), Some(b'('), _) if !open => {
                open = true;
                pos + 2
            }
            (Some(b'('), _, _) if !open => {
                open = true;
                pos + 1
            }
            (Some(b')'), Some(b' '), _) if open => {
                open = false;
                pos + 2
            }
            (Some(b')'), _, _) if open => {
                open = false;
                pos + 1
            }
            (Some(b' ' | b'-'), _, _) => pos + 1,
            _ => break,
        };
        if !digit_at(next) {
            break;
        }
        pos = next;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use SensitiveKind::*;
    use proptest::prelude::*;

    /// Appends the Luhn check digit to a 9-digit YYMMDDNNN, or to a
    /// 11-digit YYYYMMDDNNN (the century is not in the sum).
    fn with_check(digits: &str) -> String {
        let body: Vec<u8> = digits.bytes().map(|d| d - b'0').collect();
        let luhn_part = &body[body.len() - 9..];
        format!("{digits}{}", luhn_check_digit(luhn_part))
    }

    /// Formats a full identity number (YYYYMMDDNNNC) in one of the
    /// accepted layouts.
    fn layout(full: &str, style: usize) -> String {
        let (century, short) = full.split_at(2);
        let (date, tail) = short.split_at(6);
        match style {
            0 => format!("{date}-{tail}"),
            1 => format!("{date}+{tail}"),
            2 => format!("{date}{tail}"),
            3 => format!("{century}{date}{tail}"),
            4 => format!("{century}{date}-{tail}"),
            _ => format!("{century}{date}+{tail}"),
        }
    }

    fn check(cases: &[(&str, Option<SensitiveKind>)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter(|(text, want)| find_sensitive(text) != *want)
            .map(|(text, want)| format!("{text:?}: want {want:?}, got {:?}", find_sensitive(text)))
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn luhn_matches_the_skatteverket_test_person() {
        assert_eq!(with_check("121212121"), "1212121212");
        assert_eq!(with_check("19121212121"), "191212121212");
        assert_eq!(with_check("121272121"), "1212721219");
    }

    #[test]
    fn personnummer_in_every_layout_is_found() {
        check(&[
            ("121212-1212", Some(PersonalIdentityNumber)),
            ("121212+1212", Some(PersonalIdentityNumber)),
            ("1212121212", Some(PersonalIdentityNumber)),
            ("191212121212", Some(PersonalIdentityNumber)),
            ("19121212-1212", Some(PersonalIdentityNumber)),
            ("19121212+1212", Some(PersonalIdentityNumber)),
            (
                "hjälpte 19121212-1212 med deklarationen",
                Some(PersonalIdentityNumber),
            ),
            ("pnr: 121212-1212.", Some(PersonalIdentityNumber)),
            ("(121212-1212)", Some(PersonalIdentityNumber)),
            (
                "Besökaren 121212–1212 ville logga in",
                Some(PersonalIdentityNumber),
            ),
            ("رقمه ١٢١٢١٢-١٢١٢ في النظام", Some(PersonalIdentityNumber)),
            ("pn 051212-1211 ok", Some(PersonalIdentityNumber)),
            ("pn 0512121211 ok", Some(PersonalIdentityNumber)),
        ]);
    }

    #[test]
    fn coordination_numbers_are_found() {
        let leap_short = with_check("000289123"); // 29 Feb, +60
        let leap_full = with_check("20000289123");
        check(&[
            ("121272-1219", Some(CoordinationNumber)),
            ("19121272-1219", Some(CoordinationNumber)),
            ("1212721219", Some(CoordinationNumber)),
            ("samordningsnr 191212721219", Some(CoordinationNumber)),
            (&with_check("990191456"), Some(CoordinationNumber)), // 31 Jan
            (&leap_short, Some(CoordinationNumber)),
            (&leap_full, Some(CoordinationNumber)),
        ]);
    }

    #[test]
    fn leap_days_follow_the_calendar() {
        // Dashed, so that the bare ten-digit `01...` form is not read as a phone.
        let s = |d: &str| {
            let full = with_check(d);
            let (date, tail) = full.split_at(full.len() - 4);
            format!("{date}-{tail}")
        };
        check(&[
            (&s("000229123"), Some(PersonalIdentityNumber)),
            (&s("960229123"), Some(PersonalIdentityNumber)),
            (&s("20000229123"), Some(PersonalIdentityNumber)),
            (&s("19960229123"), Some(PersonalIdentityNumber)),
            // 1900 was not a leap year; 2001 neither.
            (&s("19000229123"), None),
            (&s("010229123"), None),
            (&s("20010229123"), None),
            (&s("970229123"), None),
        ]);
    }

    #[test]
    fn wrong_check_digits_are_not_identity_numbers() {
        for wrong in (0..10).filter(|&d| d != 2) {
            for text in [
                format!("121212-121{wrong}"),
                format!("121212+121{wrong}"),
                format!("121212121{wrong}"),
                format!("19121212121{wrong}"),
                format!("19121212-121{wrong}"),
                format!("ärende 19121212-121{wrong} klart"),
            ] {
                assert_eq!(find_sensitive(&text), None, "{text}");
            }
        }
    }

    #[test]
    fn impossible_dates_are_not_identity_numbers_even_with_a_right_check_digit() {
        let cases = [
            ("991332123", None), // month 13
            ("990032123", None), // month 0
            ("991200123", None), // day 0
            ("990230123", None), // 30 Feb
            ("990431123", None), // 31 Apr
            ("991232123", None), // 32 Dec
            ("991260123", None), // coordination day 0
            ("991292123", None), // coordination day 32
            ("990491123", None), // coordination 31 Apr
            ("19991332123", None),
            ("20240230123", None),
            ("051332123", None), // leading 0 and a dash: not a phone either
            // Control: same shapes with real dates.
            ("990490123", Some(CoordinationNumber)), // coordination 30 Apr
            ("991231123", Some(PersonalIdentityNumber)),
        ];
        let texts: Vec<(String, Option<SensitiveKind>)> = cases
            .iter()
            .map(|&(digits, want)| {
                let full = with_check(digits);
                let (date, tail) = full.split_at(full.len() - 4);
                (format!("{date}-{tail}"), want)
            })
            .collect();
        let borrowed: Vec<(&str, Option<SensitiveKind>)> =
            texts.iter().map(|(t, w)| (t.as_str(), *w)).collect();
        check(&borrowed);
    }

    #[test]
    fn digits_are_not_borrowed_from_words_or_longer_runs() {
        check(&[
            ("A121212-1212", None),
            ("1121212-12122", None),
            ("x19121212-1212", None),
            ("121212-12123", None),
            ("91212121212", None),
            ("12121212121212", None),
            ("build 09204500c9572b73", None),
            ("0701234567abc", None),
            ("id_121212-1212", None),
        ]);
    }

    #[test]
    fn phone_numbers_are_found() {
        check(&[
            ("070-123 45 67", Some(PhoneNumber)),
            ("0701234567", Some(PhoneNumber)),
            ("08-123 456 78", Some(PhoneNumber)),
            ("+46 70 123 45 67", Some(PhoneNumber)),
            ("+46701234567", Some(PhoneNumber)),
            ("0046 70 123 45 67", Some(PhoneNumber)),
            ("(08) 123 456 78", Some(PhoneNumber)),
            ("+1 415 555 0132", Some(PhoneNumber)),
            ("+46 (0)70 123 45 67", Some(PhoneNumber)),
            ("+46(0)70-1234567", Some(PhoneNumber)),
            ("070 - 123 45 67", Some(PhoneNumber)),
            ("08-12 34 56", Some(PhoneNumber)),
            ("0771-567 567", Some(PhoneNumber)),
            ("+4681234567", Some(PhoneNumber)),
            ("call 070-123 45 67", Some(PhoneNumber)),
            ("ring tel:070-1234567 imorgon", Some(PhoneNumber)),
            ("ring henne på 070 123 45 67.", Some(PhoneNumber)),
            ("2024-05-13 070-123 45 67", Some(PhoneNumber)),
            ("ärende 4711 070-123 45 67", Some(PhoneNumber)),
            ("070\u{a0}123\u{a0}45\u{a0}67", Some(PhoneNumber)),
            ("070–123 45 67", Some(PhoneNumber)),
            ("رقم الهاتف ٠٧٠١٢٣٤٥٦٧", Some(PhoneNumber)),
            ("هاتف 070-123 45 67 شكرا", Some(PhoneNumber)),
        ]);
    }

    #[test]
    fn e_mail_addresses_are_found() {
        check(&[
            ("anna.svensson@example.se", Some(Email)),
            ("x+y@sub.domain.org", Some(Email)),
            ("mejla ANNA_S@Example.COM snarast", Some(Email)),
            ("<kontakt@kommun.se>", Some(Email)),
            ("björn@räksmörgås.se", Some(Email)),
            ("@", None),
            ("följ @Skatteverket på X", None),
            ("anna.svensson at example dot se", None),
            ("anna@localhost", None),
            ("hej @ alla", None),
            ("anna@example.", None),
        ]);
    }

    #[test]
    fn ordinary_text_and_harmless_numbers_pass() {
        check(&[
            ("2023-2024", None),
            ("2019–2024", None),
            ("2024-05-13", None),
            ("10:00-12:00", None),
            ("kl 08:30–16:00", None),
            ("Ärende 123456789", None),
            ("ordernummer 4711-2233", None),
            ("1 250 kr", None),
            ("12 500 000", None),
            ("1 050 000 000 kr", None),
            ("121212-1213", None),
            ("19121212-1213", None),
            ("051212-1213", None),
            ("582 22", None),
            ("SE-582 22 Linköping", None),
            ("13.05.2024", None),
            ("01.02.2024", None),
            ("01/02/2024", None),
            ("0,5 liter", None),
            ("version 1.0.12", None),
            ("10.0.0.1", None),
            (
                "2024-05-13 kl 10:00-12:00, 1 250 kr, ärende 123456789",
                None,
            ),
            (
                "Besökaren behövde hjälp med BankID och Mina meddelanden.",
                None,
            ),
            (
                "The visitor could not log in to 1177 and needed help resetting the app.",
                None,
            ),
            ("ساعدت الزائر في تسجيل الدخول إلى خدمة الضرائب", None),
            ("Hänvisad till Försäkringskassan, 3 av 4 steg klara", None),
            ("", None),
        ]);
    }

    /// Issue 9's evasions: each hides a number or address the screen must
    /// still find once the text is normalised.
    #[test]
    fn evasions_are_found_after_normalising() {
        check(&[
            // Zero-width joiner and non-joiner inside a personnummer.
            ("19811218\u{200D}-9876", Some(PersonalIdentityNumber)),
            ("1981\u{200C}1218-9876", Some(PersonalIdentityNumber)),
            // Invisible separator, combining grapheme joiner.
            ("811218\u{2063}-9876", Some(PersonalIdentityNumber)),
            ("811218-98\u{034F}76", Some(PersonalIdentityNumber)),
            ("070\u{2063}123\u{2063}45\u{2063}67", Some(PhoneNumber)),
            // Mathematical bold and Devanagari digits.
            (
                "\u{1D7CF}\u{1D7D7}\u{1D7D6}\u{1D7CF}\u{1D7CF}\u{1D7D0}\u{1D7CF}\u{1D7D6}-\u{1D7D7}\u{1D7D6}\u{1D7D5}\u{1D7D4}",
                Some(PersonalIdentityNumber),
            ),
            ("१९८११२१८-९८७६", Some(PersonalIdentityNumber)),
            ("०७०-१२३ ४५ ६७", Some(PhoneNumber)),
            // Spaces, dots and dashes between digit groups.
            ("19811218 9876", Some(PersonalIdentityNumber)),
            ("811218 9876", Some(PersonalIdentityNumber)),
            ("19 81 12 18 98 76", Some(PersonalIdentityNumber)),
            ("1981.12.18.9876", Some(PersonalIdentityNumber)),
            ("1981-12-18-9876", Some(PersonalIdentityNumber)),
            // Full-width and small forms in an e-mail address.
            ("anna\u{FF20}example\u{FF0E}se", Some(Email)),
            ("anna@example\u{FF0E}se", Some(Email)),
            ("ａｎｎａ＠ｅｘａｍｐｌｅ．ｓｅ", Some(Email)),
            ("anna\u{200B}@example.se", Some(Email)),
            // Payment cards, grouped or not.
            ("4111 1111 1111 1111", Some(PaymentCard)),
            ("kort 4111-1111-1111-1111 spärrat", Some(PaymentCard)),
            ("5555555555554444", Some(PaymentCard)),
            ("378282246310005", Some(PaymentCard)),
            (
                "4111\u{200B}1111\u{200B}1111\u{200B}1111",
                Some(PaymentCard),
            ),
        ]);
    }

    /// What staff ordinarily type must pass, beside the refusals above.
    #[test]
    fn ordinary_notes_pass() {
        check(&[
            ("Besök 2025-03-04 kl 10:30", None),
            ("2025-03-04 1030", None),
            ("Möte 2019-12-04 1234 kr", None),
            ("13.05.2024 1234", None),
            ("kl 08:30–16:00, lunch 12.00-13.00", None),
            ("Betalade 1 250 kr, sedan 12 500,50 kr", None),
            ("Summa 1 234 567 890 123 kr", None),
            ("Ärende 2024-1234 hos Försäkringskassan", None),
            ("Dnr 123456789", None),
            ("Postnummer 582 22 Linköping", None),
            ("Org.nr 212000-0613 (kommunen)", None),
            ("Skatteverket 202100-5448", None),
            ("Appen version 1.0.12, Android 14.2.1", None),
            ("BankID 7.12.0 på iOS 17.4", None),
            ("10.0.0.1 och 192.168.1.10", None),
            ("3 av 4 steg, 50 %, 2 timmar", None),
            ("Ärende 4711-2233", None),
            ("01.02.2024", None),
            ("2023–2024", None),
            ("Kvitto nr 100 200 300", None),
            ("1177 Vårdguiden, 112 vid nödfall", None),
            ("ok\u{200D}👍", None),
        ]);
    }

    #[test]
    fn the_leftmost_finding_is_reported() {
        check(&[
            ("anna@example.se 121212-1212", Some(Email)),
            ("121212-1212 anna@example.se", Some(PersonalIdentityNumber)),
            ("070-123 45 67 eller 121212-1212", Some(PhoneNumber)),
            // Same digits read both ways: the identity number wins.
            ("(0512121211)", Some(PersonalIdentityNumber)),
            ("0512121211", Some(PersonalIdentityNumber)),
        ]);
    }

    #[test]
    fn screen_field_names_field_and_kind_only() {
        assert_eq!(
            screen_field("note", "hjälpte till med e-legitimation"),
            Ok(())
        );
        let err = screen_field("barrier note", "call 070-123 45 67").unwrap_err();
        assert_eq!(
            err,
            ScreenError {
                field: "barrier note".into(),
                kind: PhoneNumber
            }
        );
        assert_eq!(
            err.to_string(),
            "barrier note contains a phone number; records must stay anonymous, so remove it and try again"
        );
        let err = screen_field("referred_to", "121272-1219").unwrap_err();
        assert_eq!(
            err.to_string(),
            "referred_to contains a coordination number (samordningsnummer); records must stay \
             anonymous, so remove it and try again"
        );
        assert_eq!(
            screen_field("site", "ingen@example.se")
                .unwrap_err()
                .kind
                .to_string(),
            "an e-mail address"
        );
        assert_eq!(
            PersonalIdentityNumber.to_string(),
            "a personal identity number (personnummer)"
        );
    }

    /// A real calendar date as (year, month, day).
    fn date() -> impl Strategy<Value = (u32, u32, u32)> {
        (1890u32..=2025, 1u32..=12, 1u32..=31).prop_filter_map("real date", |(y, m, d)| {
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            (d <= len).then_some((y, m, d))
        })
    }

    /// A valid identity number, its kind and one of its layouts.
    fn identity() -> impl Strategy<Value = (String, SensitiveKind)> {
        (date(), 0u32..1000, any::<bool>(), 0usize..6).prop_map(|((y, m, d), serial, co, style)| {
            let (day, kind) = if co {
                (d + 60, CoordinationNumber)
            } else {
                (d, PersonalIdentityNumber)
            };
            let full = with_check(&format!("{y:04}{m:02}{day:02}{serial:03}"));
            (layout(&full, style), kind)
        })
    }

    const SENTENCES: [(&str, &str); 4] = [
        ("Besökaren ", " ville byta adress."),
        ("", ""),
        ("Visitor (", ") needed BankID."),
        ("الزائر ", " يحتاج مساعدة"),
    ];

    proptest! {
        #[test]
        fn generated_identity_numbers_are_found(
            (number, kind) in identity(),
            sentence in 0usize..SENTENCES.len(),
        ) {
            let (before, after) = SENTENCES[sentence];
            let text = format!("{before}{number}{after}");
            prop_assert_eq!(find_sensitive(&text), Some(kind), "{}", text);
        }

        #[test]
        fn errors_never_echo_the_value((number, _) in identity()) {
            let err = screen_field("note", &format!("hjälpte {number} idag")).unwrap_err();
            let msg = err.to_string();
            prop_assert!(!msg.chars().any(|c| c.is_ascii_digit()), "{}", msg);
            prop_assert!(!msg.contains(&number));
        }

        #[test]
        fn errors_for_phone_numbers_never_echo_digits(
            area in 1u32..100, a in 100u32..1000, b in 10u32..100, c in 10u32..100,
        ) {
            let text = format!("ring 0{area}-{a} {b} {c}");
            let err = screen_field("note", &text).unwrap_err();
            prop_assert_eq!(err.kind, PhoneNumber);
            prop_assert!(!err.to_string().chars().any(|ch| ch.is_ascii_digit()));
        }

        #[test]
        fn generated_mobile_numbers_are_found(
            op in 0u32..10, a in 0u32..1000, b in 0u32..100, c in 0u32..100, style in 0usize..4,
        ) {
            let text = match style {
                0 => format!("ring 07{op}-{a:03} {b:02} {c:02}"),
                1 => format!("ring +46 7{op} {a:03} {b:02} {c:02}"),
                2 => format!("ring 0046 7{op} {a:03} {b:02} {c:02}"),
                _ => format!("ring +467{op}{a:03}{b:02}{c:02}"),
            };
            prop_assert_eq!(find_sensitive(&text), Some(PhoneNumber), "{}", text);
        }

        #[test]
        fn a_wrong_check_digit_is_judged_as_not_an_identity_number(
            (number, _) in identity(),
            bump in 1u8..10,
        ) {
            let mut bytes = number.into_bytes();
            let last = bytes.len() - 1;
            bytes[last] = b'0' + (bytes[last] - b'0' + bump) % 10;
            let wrong = String::from_utf8(bytes).expect("ASCII digits");
            let found = find_sensitive(&format!("ärende {wrong}"));
            if wrong.len() == 10 && wrong.starts_with('0') {
                // The one shape that is also how mobile numbers are written.
                prop_assert!(matches!(found, None | Some(PhoneNumber)), "{}", wrong);
            } else {
                prop_assert_eq!(found, None, "{}", wrong);
            }
        }

        #[test]
        fn dates_times_amounts_and_case_numbers_pass(
            (y, m, d) in date(),
            (h1, m1, h2, m2) in (0u32..24, 0u32..60, 0u32..24, 0u32..60),
            first in 1u32..1000,
            groups in proptest::collection::vec(0u32..1000, 0..4),
            case in 100_000u32..1_000_000_000,
            post in (100u32..1000, 0u32..100),
            y2 in 1990u32..2030,
        ) {
            let amount = std::iter::once(first.to_string())
                .chain(groups.iter().map(|g| format!("{g:03}")))
                .collect::<Vec<_>>()
                .join(" ");
            let texts = [
                format!("{y:04}-{m:02}-{d:02}"),
                format!("{d:02}.{m:02}.{y:04}"),
                format!("{y}-{y2}"),
                format!("{y}–{y2}"),
                format!("{h1:02}:{m1:02}-{h2:02}:{m2:02}"),
                format!("{amount} kr"),
                format!("Ärende {case}"),
                format!("{} {:02}", post.0, post.1),
                format!(
                    "Den {y:04}-{m:02}-{d:02} kl {h1:02}:{m1:02}–{h2:02}:{m2:02} betalade hen \
                     {amount} kr, ärende {case}, postnummer {} {:02}.",
                    post.0, post.1
                ),
            ];
            for text in texts {
                prop_assert_eq!(find_sensitive(&text), None, "{}", text);
            }
        }
    }
}
