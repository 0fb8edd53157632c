//! An organisation's list of sites, and how a typed site name is matched to it.
//!
//! Staff type the site on each laptop (`Mjölby bibliotek`, `Mjölby Bibliotek`,
//! `Mjolby bibliotek`), so counting by the text as typed splits one library
//! into three. Statistics therefore match each record's site to the org's
//! list ignoring case, accents and spacing, and count it under the listed
//! spelling. Records are never rewritten: the list can be corrected later and
//! old figures follow it. A name that matches nothing on the list is counted
//! as typed (trimmed), so nothing disappears from the totals.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The sites of one organisation, as the hub keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteList {
    /// Listed names in the order given.
    names: Vec<String>,
    /// Folded name → index into `names`.
    by_fold: HashMap<String, usize>,
}

impl SiteList {
    /// A list from names; blank names are dropped, and of two names that fold
    /// alike the first is kept (the list should not hold both).
    pub fn new<I, S>(names: I) -> SiteList
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = SiteList::default();
        for name in names {
            let name = name
                .as_ref()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if name.is_empty() {
                continue;
            }
            let key = fold(&name);
            if !list.by_fold.contains_key(&key) {
                list.by_fold.insert(key, list.names.len());
                list.names.push(name);
            }
        }
        list
    }

    /// The listed names, in the order given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The listed name `typed` matches, if any.
    pub fn lookup(&self, typed: &str) -> Option<&str> {
        self.by_fold
            .get(&fold(typed))
            .map(|&i| self.names[i].as_str())
    }

    /// The name a record's site is counted under: the listed spelling when it
    /// matches one, else the name as typed (trimmed, inner spaces collapsed).
    pub fn canonical(&self, typed: &str) -> String {
        match self.lookup(typed) {
            Some(name) => name.to_string(),
            None => typed.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

/// Case-, accent- and spacing-insensitive form of a name: canonical
/// decomposition with the combining marks dropped, so `ö`, `Ö` and `o` meet.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(
            word.nfd()
                .filter(|c| !is_combining_mark(*c))
                .flat_map(char::to_lowercase),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_spaces_do_not_split_a_site() {
        let list = SiteList::new(["Mjölby bibliotek", "Skänninge bibliotek"]);
        for typed in [
            "Mjölby bibliotek",
            "Mjölby Bibliotek",
            "Mjolby bibliotek",
            "  MJÖLBY   bibliotek ",
        ] {
            assert_eq!(list.canonical(typed), "Mjölby bibliotek", "{typed}");
        }
        assert_eq!(list.canonical("Skanninge Bibliotek"), "Skänninge bibliotek");
    }

    #[test]
    fn a_name_not_on_the_list_is_counted_as_typed() {
        let list = SiteList::new(["Mjölby bibliotek"]);
        assert_eq!(list.canonical(" Väderstad  skola "), "Väderstad skola");
        assert_eq!(list.lookup("Väderstad skola"), None);
        assert_eq!(SiteList::default().canonical("Mjölby"), "Mjölby");
    }

    #[test]
    fn duplicates_and_blanks_are_dropped_from_the_list() {
        let list = SiteList::new(["Mjölby bibliotek", " ", "MJOLBY BIBLIOTEK", "Kalmar"]);
        assert_eq!(list.names(), ["Mjölby bibliotek", "Kalmar"]);
    }
}
