//! Text that people and clients give: the refusal every value type answers with, names for
//! people, and the one definition of a value whose only outside form is its text (the ID
//! types, serials): its conversions and serde, written once; and how an instant is written.

/// An instant as RFC 3339 text (`2036-12-02T04:11:25Z`), the one form estca shows times in:
/// messages, logs, the command line.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Why a value given by a person or a client was refused; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// A name for people (a contract's or an ID's 利用者名), checked: trimmed, 1 to `max_chars`
/// characters, and none that hides or disguises text where it is shown (history, the
/// operator's terminal, an administrator's screen): control characters (Unicode category Cc),
/// format characters (Cf: bidirectional overrides such as U+202E, zero-width spaces such as
/// U+200B, U+FEFF), and line and paragraph separators (Zl U+2028, Zp U+2029). `what` names
/// the field in the refusal.
pub fn human_text(text: &str, max_chars: usize, what: &str) -> Result<String, InvalidValue> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let text = text.trim();
    let hidden = text.chars().find(|c| {
        matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
    });
    if text.is_empty() || text.chars().count() > max_chars {
        return Err(InvalidValue(format!(
            "{what} is 1 to {max_chars} characters"
        )));
    }
    if let Some(c) = hidden {
        return Err(InvalidValue(format!(
            "{what} contains U+{:04X}, an invisible or layout-changing character (control, format or separator); type the name without it",
            u32::from(c)
        )));
    }
    Ok(text.to_owned())
}

/// What text a name-like ID accepts: 1 to `max_len` characters, each an ASCII letter or digit
/// or one of `punctuation`, so that the value can stand in a certificate's common name, a URL
/// path and a log line without escaping.
#[derive(Debug, Clone, Copy)]
pub(super) struct NameRule {
    /// What the value is, for the refusal ("an ID").
    pub what: &'static str,
    /// Longest value, in characters (all ASCII, so also in bytes).
    pub max_len: usize,
    /// The characters allowed besides `A-Z a-z 0-9`.
    pub punctuation: &'static [char],
}

impl NameRule {
    /// Whether `text` follows the rule; the refusal lists what is allowed.
    pub fn check(&self, text: &str) -> Result<(), InvalidValue> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || self.punctuation.contains(&c);
        if text.is_empty() || text.len() > self.max_len || !text.chars().all(allowed) {
            return Err(InvalidValue(format!(
                "{} is 1 to {} characters from {}",
                self.what,
                self.max_len,
                self.allowed_in_words()
            )));
        }
        Ok(())
    }

    /// The OpenAPI schema of a value that follows the rule: a string with the same length
    /// bounds and a pattern of the same characters, so that clients validating against the
    /// management API's document refuse what estca would.
    pub fn schema(&self) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let mut class = String::from("A-Za-z0-9");
        // In a character class `-` is literal only last; `.`, `_` and `@` are literal anywhere.
        let mut punctuation: Vec<char> = self.punctuation.to_vec();
        punctuation.sort_by_key(|c| *c == '-');
        class.extend(punctuation);
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(self.max_len))
            .pattern(Some(format!("^[{class}]{{1,{}}}$", self.max_len)))
            .description(Some(format!(
                "{}: 1 to {} characters from {}",
                self.what,
                self.max_len,
                self.allowed_in_words()
            )))
            .into()
    }

    /// `A-Z, a-z, 0-9, '.', '_', '@' and '-'`.
    fn allowed_in_words(&self) -> String {
        let mut allowed: Vec<String> = vec!["A-Z".into(), "a-z".into(), "0-9".into()];
        allowed.extend(self.punctuation.iter().map(|c| format!("'{c}'")));
        let last = allowed.pop().unwrap_or_default();
        format!("{} and {last}", allowed.join(", "))
    }
}

/// The conversions of a value whose only form outside the program is its text, given its
/// `FromStr` (with [`InvalidValue`]) and `Display`: `TryFrom<String>`, `From<T> for String`,
/// and serde as that text, so that JSON, URLs, command lines and log lines all read and write
/// the same form.
macro_rules! text_form {
    ($type:ty) => {
        impl TryFrom<String> for $type {
            type Error = $crate::model::InvalidValue;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> Self {
                value.to_string()
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name-like ID type: a newtype over text that follows a [`NameRule`], with `as_str`,
/// `MAX_LEN`, `FromStr`, `Display`, `AsRef<str>` and the [`text_form!`] conversions.
macro_rules! name_type {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            what: $what:literal,
            max_len: $max:literal,
            punctuation: [$($punctuation:literal),* $(,)?] $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Longest value accepted, in characters.
            pub const MAX_LEN: usize = $max;

            const RULE: $crate::model::text::NameRule = $crate::model::text::NameRule {
                what: $what,
                max_len: $max,
                punctuation: &[$($punctuation),*],
            };

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::model::InvalidValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::RULE.check(text)?;
                Ok(Self(text.to_owned()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        text_form!($name);

        /// Its OpenAPI schema: the rule's string.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                Self::RULE.schema()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_invisible_and_layout_changing_characters() {
        for (bad, code) in [
            ("Evil\u{202E}gnp.exe", "U+202E"),
            ("two\u{2028}lines", "U+2028"),
            ("para\u{2029}graph", "U+2029"),
            ("zero\u{200B}width", "U+200B"),
            ("bom\u{FEFF}", "U+FEFF"),
            ("bell\u{7}", "U+0007"),
            ("new\nline", "U+000A"),
            ("isolate\u{2066}x", "U+2066"),
        ] {
            let err = human_text(bad, 128, "a name").unwrap_err().to_string();
            assert!(err.contains(code), "{bad:?}: {err}");
        }
        assert_eq!(
            human_text("  大手町エステート株式会社 ", 128, "a name").unwrap(),
            "大手町エステート株式会社"
        );
        assert_eq!(
            human_text("O'Brien & Söhne, Ltd.", 128, "a name").unwrap(),
            "O'Brien & Söhne, Ltd."
        );
        assert!(human_text("   ", 128, "a name").is_err());
        assert!(human_text(&"x".repeat(129), 128, "a name").is_err());
    }

    #[test]
    fn a_name_rule_lists_what_it_allows() {
        let rule = |punctuation: &'static [char]| NameRule {
            what: "a thing",
            max_len: 3,
            punctuation,
        };
        assert_eq!(
            rule(&['.', '_', '@', '-']).check("").unwrap_err().0,
            "a thing is 1 to 3 characters from A-Z, a-z, 0-9, '.', '_', '@' and '-'"
        );
        assert_eq!(
            rule(&['_', '-']).check("a/b").unwrap_err().0,
            "a thing is 1 to 3 characters from A-Z, a-z, 0-9, '_' and '-'"
        );
        assert_eq!(
            rule(&[]).check("abcd").unwrap_err().0,
            "a thing is 1 to 3 characters from A-Z, a-z and 0-9"
        );
        assert!(rule(&['-']).check("a-1").is_ok());
        assert!(rule(&['-']).check("é").is_err());
    }
}
