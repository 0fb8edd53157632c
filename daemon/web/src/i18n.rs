//! Swedish first, English second: the app's words, the labels of enum
//! values, and Swedish dates, times and numbers.
//!
//! Field labels and help come from `proto::schema` (one table for the CLI
//! and the form); only what the table does not hold lives here: the names
//! of enum values as staff say them, and the page's own sentences.

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate};
use outpost_proto::screen::SensitiveKind;

/// The language, shared with the hub's dashboard.
pub use outpost_web_kit::Lang;

/// Enum values are named alike in both apps.
pub use outpost_web_kit::value_label;

/// Languages help is most often given in, for the form's suggestions
/// (ISO 639-1 code, Swedish name, English name). Any other code is
/// accepted too.
pub const LANGUAGES: &[(&str, &str, &str)] = &[
    ("sv", "svenska", "Swedish"),
    ("ar", "arabiska", "Arabic"),
    ("so", "somaliska", "Somali"),
    ("ti", "tigrinja", "Tigrinya"),
    ("fa", "persiska", "Persian"),
    ("uk", "ukrainska", "Ukrainian"),
    ("en", "engelska", "English"),
    ("pl", "polska", "Polish"),
    ("bs", "bosniska", "Bosnian"),
    ("fi", "finska", "Finnish"),
    ("ku", "kurdiska", "Kurdish"),
    ("tr", "turkiska", "Turkish"),
    ("ru", "ryska", "Russian"),
    ("es", "spanska", "Spanish"),
    ("de", "tyska", "German"),
    ("dr", "dari", "Dari"),
];

pub fn language_name(lang: Lang, code: &str) -> String {
    LANGUAGES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, sv, en)| lang.t(sv, en).to_string())
        .unwrap_or_else(|| code.to_string())
}

/// The kind of data the privacy screen found, as a noun phrase.
pub fn sensitive_kind(lang: Lang, kind: SensitiveKind) -> &'static str {
    match kind {
        SensitiveKind::PersonalIdentityNumber => {
            lang.t("ett personnummer", "a personal identity number")
        }
        SensitiveKind::CoordinationNumber => {
            lang.t("ett samordningsnummer", "a coordination number")
        }
        SensitiveKind::PhoneNumber => lang.t("ett telefonnummer", "a phone number"),
        SensitiveKind::Email => lang.t("en e-postadress", "an e-mail address"),
        SensitiveKind::PaymentCard => lang.t("ett kortnummer", "a payment card number"),
    }
}

/// The privacy screen's refusal of `label`'s text, naming the kind of
/// data and never the data.
pub fn refusal(lang: Lang, label: &str, kind: SensitiveKind) -> String {
    match lang {
        Lang::Sv => format!(
            "{label}: innehåller {}. Posterna ska vara anonyma – ta bort det och spara igen.",
            sensitive_kind(lang, kind)
        ),
        Lang::En => format!(
            "{label}: contains {}. Records must stay anonymous – remove it and save again.",
            sensitive_kind(lang, kind)
        ),
    }
}

/// Swedish number: groups of three with a no-break space (`12 345`); the
/// report's formatting, so the app and the annual report write numbers alike.
pub fn number(lang: Lang, n: u64) -> String {
    outpost_files::report::number(n, lang)
}

const WEEKDAYS_SV: [&str; 7] = ["mån", "tis", "ons", "tor", "fre", "lör", "sön"];
const MONTHS_SV: [&str; 12] = [
    "jan", "feb", "mars", "apr", "maj", "juni", "juli", "aug", "sep", "okt", "nov", "dec",
];
const WEEKDAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A day as people say it: `idag`, `igår`, `tis 3 mars` (the year only
/// when it is not this year, so a mistyped year stands out).
pub fn day(lang: Lang, date: NaiveDate, today: NaiveDate) -> String {
    if date == today {
        return lang.t("idag", "today").to_string();
    }
    if Some(date) == today.pred_opt() {
        return lang.t("igår", "yesterday").to_string();
    }
    let wd = date.weekday().num_days_from_monday() as usize;
    let m = date.month0() as usize;
    let base = match lang {
        Lang::Sv => format!("{} {} {}", WEEKDAYS_SV[wd], date.day(), MONTHS_SV[m]),
        Lang::En => format!("{} {} {}", WEEKDAYS_EN[wd], date.day(), MONTHS_EN[m]),
    };
    if date.year() == today.year() {
        base
    } else {
        format!("{base} {}", date.year())
    }
}

/// How long ago `at` was, in words, with the local clock time:
/// `för 5 minuter sedan (14:05)`.
pub fn relative(lang: Lang, at: DateTime<FixedOffset>, now: DateTime<Local>) -> String {
    let local = at.with_timezone(&Local);
    let secs = (now.timestamp() - at.timestamp()).max(0);
    let clock = local.format("%H:%M").to_string();
    let today = now.date_naive();
    let when = day(lang, local.date_naive(), today);
    let ago = match (lang, secs) {
        (Lang::Sv, 0..60) => "nyss".to_string(),
        (Lang::En, 0..60) => "just now".to_string(),
        (Lang::Sv, 60..3600) => plural_sv(secs / 60, "minut", "minuter") + " sedan",
        (Lang::En, 60..3600) => plural_en(secs / 60, "minute") + " ago",
        (Lang::Sv, 3600..86400) => plural_sv(secs / 3600, "timme", "timmar") + " sedan",
        (Lang::En, 3600..86400) => plural_en(secs / 3600, "hour") + " ago",
        (Lang::Sv, _) => plural_sv(secs / 86400, "dag", "dagar") + " sedan",
        (Lang::En, _) => plural_en(secs / 86400, "day") + " ago",
    };
    let ago = match lang {
        Lang::Sv if secs >= 60 => format!("för {ago}"),
        _ => ago,
    };
    format!("{ago} ({when} {clock})")
}

fn plural_sv(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn plural_en(n: i64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// A validation message from `proto` (English), said in `lang` where we
/// know the phrase; the rest stays as `proto` wrote it.
pub fn explain(lang: Lang, message: &str) -> String {
    if lang == Lang::En {
        return message.to_string();
    }
    if message == "is required" || message == "must not be empty" {
        return "måste fyllas i".to_string();
    }
    if message.starts_with("is required when") || message.starts_with("is required:") {
        return "ange minst en tjänst (bara kategorierna mobil/surfplatta/dator, grunderna i internet, säkerhet, sociala medier och annat får sakna tjänst)".to_string();
    }
    if message.starts_with("unknown value") {
        return "välj ett av alternativen".to_string();
    }
    if message.contains("is not a date") {
        return "är inget datum; skriv ÅÅÅÅ-MM-DD".to_string();
    }
    if message.contains("is not a time") {
        return "är ingen tid; skriv TT:MM".to_string();
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_numbers_and_days() {
        assert_eq!(number(Lang::Sv, 1234567), "1\u{a0}234\u{a0}567");
        assert_eq!(number(Lang::Sv, 999), "999");
        assert_eq!(number(Lang::En, 100000), "100,000");
        let today = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
        assert_eq!(day(Lang::Sv, today, today), "idag");
        assert_eq!(day(Lang::Sv, today.pred_opt().unwrap(), today), "igår");
        assert_eq!(
            day(
                Lang::Sv,
                NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
                today
            ),
            "sön 1 mars"
        );
        assert_eq!(
            day(
                Lang::Sv,
                NaiveDate::from_ymd_opt(2062, 3, 1).unwrap(),
                today
            ),
            "ons 1 mars 2062"
        );
    }
}
