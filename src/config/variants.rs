//! The values a key of a fixed set (`store.backend`, `ca.key_algorithm`, `log.format`, …)
//! accepts, read from the key's type, so that a value outside the set is refused with the
//! set in configuration terms (`'rocks' is not one of sled, fjall, postgres`) instead of the
//! `config` crate's `enum StoreBackend does not have variant constructor rocks`, which
//! names a Rust type and no alternative. Every such key is covered, without a list to keep.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

/// The values the key `key` (dotted, e.g. `store.backend`) of `T` accepts when that key is
/// an enum of unit variants; `None` when it is anything else or `T` has no such key.
pub(super) fn accepted<T: DeserializeOwned>(key: &str) -> Option<&'static [&'static str]> {
    let path: Vec<&str> = key.split('.').collect();
    match T::deserialize(Probe { path: &path }) {
        Err(Found::Variants(variants)) => Some(variants),
        _ => None,
    }
}

/// Why `value` (its text, when it has one) is refused for a key that accepts `variants`.
pub(super) fn refusal(value: Option<&str>, variants: &[&str]) -> String {
    let names = variants.join(", ");
    match value {
        Some(value) => format!("'{value}' is not one of {names}"),
        None => format!("must be one of {names}"),
    }
}

/// What a probe ended with: the variants of the enum at the end of its path, or anything
/// else (not an enum, no such key).
#[derive(Debug)]
enum Found {
    /// The path ends at an enum with these variants.
    Variants(&'static [&'static str]),
    /// It does not.
    Other,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Variants(variants) => write!(f, "one of {}", variants.join(", ")),
            Found::Other => f.write_str("not a key of a fixed set of values"),
        }
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found::Other
    }
}

/// A deserializer that holds no values: it walks the structs along `path` by their field
/// names and stops at the last one, answering with the variants when it is an enum.
struct Probe<'a> {
    /// The field names still to walk.
    path: &'a [&'a str],
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found::Other)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Found> {
        match self.path.split_first() {
            Some((field, rest)) => visitor.visit_map(OneField {
                field: Some(field),
                rest,
            }),
            None => Err(Found::Other),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        if self.path.is_empty() {
            Err(Found::Variants(variants))
        } else {
            Err(Found::Other)
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Found> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Found> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// A struct of one field, `field`, whose value is probed along `rest`.
struct OneField<'a> {
    /// The field's name, until it has been given.
    field: Option<&'a str>,
    /// The path below it.
    rest: &'a [&'a str],
}

impl<'de> de::MapAccess<'de> for OneField<'_> {
    type Error = Found;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Found> {
        self.field
            .take()
            .map(|field| seed.deserialize(field.into_deserializer()))
            .transpose()
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Found> {
        seed.deserialize(Probe { path: self.rest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_enum_keys_of_the_configuration_are_found_with_their_values() {
        assert_eq!(
            accepted::<Config>("store.backend"),
            Some(&["sled", "fjall", "postgres"][..])
        );
        assert_eq!(
            accepted::<Config>("ca.key_algorithm"),
            Some(&["p256", "p384"][..])
        );
        assert_eq!(
            accepted::<Config>("log.format"),
            Some(&["text", "json"][..])
        );
        for other in [
            "store",
            "store.path",
            "store.postgres.url",
            "ca.key_passphrase_file",
            "store.backend.x",
            "store.nothing",
            "",
        ] {
            assert_eq!(accepted::<Config>(other), None, "{other}");
        }
        assert_eq!(
            refusal(Some("rocks"), &["sled", "fjall"]),
            "'rocks' is not one of sled, fjall"
        );
        assert_eq!(
            refusal(None, &["text", "json"]),
            "must be one of text, json"
        );
    }
}
