//! The product's two languages: Swedish first (the default), English by
//! choice. One type for the laptop's web app, the hub's dashboard, the
//! annual report and the CLI's `--lang`, so a language picked in one place
//! means the same everywhere.

use crate::schema::Text2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Sv,
    En,
}

impl Lang {
    /// `sv`/`en`, also the languages' names in either language.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_lowercase().as_str() {
            "sv" | "swedish" | "svenska" => Some(Lang::Sv),
            "en" | "english" | "engelska" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Sv => Lang::En,
            Lang::En => Lang::Sv,
        }
    }

    /// Picks the text of this language.
    pub fn t<'a>(self, sv: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Sv => sv,
            Lang::En => en,
        }
    }

    pub fn t2(self, text: Text2) -> &'static str {
        self.t(text.sv, text.en)
    }

    /// The language switch's label: the other language, in itself.
    pub fn switch_label(self) -> &'static str {
        self.t("In English", "På svenska")
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        Lang::parse(s).ok_or_else(|| format!("'{}' is not a language; use sv or en", s.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_either_language_parse_and_others_are_refused() {
        for (s, want) in [
            ("sv", Lang::Sv),
            (" Svenska ", Lang::Sv),
            ("ENGELSKA", Lang::En),
        ] {
            assert_eq!(s.parse::<Lang>(), Ok(want), "{s}");
        }
        let err = "fi".parse::<Lang>().unwrap_err();
        assert!(err.contains("'fi'") && err.contains("sv or en"), "{err}");
        assert_eq!(Lang::default(), Lang::Sv);
        assert_eq!(Lang::Sv.other().code(), "en");
    }
}
