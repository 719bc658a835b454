//! Personal data that logs never show (STYLE.md §12).
//!
//! Caller and called numbers, keyed digits (PINs, card numbers), a flow's variables and the
//! parameters it sends to connectors are personal data. [`Pii<T>`] holds such a value:
//! `Display` and `Debug` print only its shape (`<redacted: 4 chars>`), so a value that
//! reaches a log macro by mistake (`%x`, `?x`, the derived `Debug` of a struct holding it)
//! leaks nothing. Code that uses the value on purpose calls [`Pii::reveal`]: the flow's own
//! logic, a connector request, the call record. Serde sees through the wrapper (the value is
//! stored and replicated as it is): serialising is storing on purpose, never a log line.
//!
//! One type for the three crates that carry caller data: `sip` (digits in SIP INFO bodies),
//! `ivr-scripts` (call facts, keyed digits, variables, connector parameters) and `engine`
//! (media events, digit collection, calls). It is a crate of its own because `sip` and
//! `ivr-scripts` do not depend on each other.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that is personal data: redacted when formatted, revealed on purpose.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    pub const fn new(value: T) -> Self {
        Pii(value)
    }

    /// The value, for code that uses it on purpose (never for a log line).
    pub fn reveal(&self) -> &T {
        &self.0
    }

    pub fn reveal_mut(&mut self) -> &mut T {
        &mut self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }

    /// The value transformed, still personal data.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Pii<U> {
        Pii(f(self.0))
    }
}

impl<T> From<T> for Pii<T> {
    fn from(value: T) -> Self {
        Pii(value)
    }
}

impl From<&str> for Pii<String> {
    fn from(value: &str) -> Self {
        Pii(value.to_string())
    }
}

/// What a redacted value may show of itself: its kind and size, never its content.
pub trait Redact {
    /// Writes the shape (`4 chars`, `3 fields`...).
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: Redact> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted: ")?;
        self.0.shape(f)?;
        f.write_str(">")
    }
}

impl<T: Redact> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<T: Serialize> Serialize for Pii<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Pii<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Pii)
    }
}

fn count(f: &mut fmt::Formatter<'_>, n: usize, one: &str, many: &str) -> fmt::Result {
    write!(f, "{n} {}", if n == 1 { one } else { many })
}

impl Redact for str {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        count(f, self.chars().count(), "char", "chars")
    }
}

impl Redact for String {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().shape(f)
    }
}

impl Redact for char {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("1 char")
    }
}

impl<T: Redact + ?Sized> Redact for &T {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).shape(f)
    }
}

impl<T: Redact> Redact for Option<T> {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(v) => v.shape(f),
            None => f.write_str("none"),
        }
    }
}

impl<T> Redact for Vec<T> {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        count(f, self.len(), "item", "items")
    }
}

impl<K, V> Redact for BTreeMap<K, V> {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        count(f, self.len(), "entry", "entries")
    }
}

impl<K, V, S> Redact for HashMap<K, V, S> {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        count(f, self.len(), "entry", "entries")
    }
}

#[cfg(feature = "json")]
impl Redact for serde_json::Value {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use serde_json::Value;
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(_) => f.write_str("a boolean"),
            Value::Number(_) => f.write_str("a number"),
            Value::String(s) => s.shape(f),
            Value::Array(a) => count(f, a.len(), "item", "items"),
            Value::Object(o) => o.shape(f),
        }
    }
}

#[cfg(feature = "json")]
impl Redact for serde_json::Map<String, serde_json::Value> {
    fn shape(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        count(f, self.len(), "field", "fields")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)] // read through the derived Debug only
    struct Keyed {
        call: &'static str,
        digits: Pii<String>,
    }

    #[test]
    fn formatting_shows_the_shape_only() {
        let pin = Pii::new("97531864".to_string());
        assert_eq!(pin.to_string(), "<redacted: 8 chars>");
        assert_eq!(format!("{pin:?}"), "<redacted: 8 chars>");
        let k = Keyed {
            call: "c1",
            digits: pin.clone(),
        };
        let text = format!("{k:?} {k:#?}");
        assert!(!text.contains("975"), "{text}");
        assert!(text.contains("c1"), "{text}");
        assert_eq!(Pii::new('7').to_string(), "<redacted: 1 char>");
        assert_eq!(Pii::new(vec![1, 2]).to_string(), "<redacted: 2 items>");
        assert_eq!(Pii::new(None::<String>).to_string(), "<redacted: none>");
        assert_eq!(pin.reveal(), "97531864");
    }

    #[test]
    fn serde_sees_through() {
        let pin = Pii::new("1234".to_string());
        let json = serde_json::to_string(&pin).expect("serialise");
        assert_eq!(json, "\"1234\"");
        let back: Pii<String> = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, pin);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_values_show_their_kind_and_size() {
        let v = serde_json::json!({"pin": "1234", "name": "Ann"});
        assert_eq!(Pii::new(v.clone()).to_string(), "<redacted: 2 fields>");
        let m = v.as_object().cloned().expect("object");
        assert_eq!(Pii::new(m).to_string(), "<redacted: 2 fields>");
        assert_eq!(
            Pii::new(serde_json::json!("4711")).to_string(),
            "<redacted: 4 chars>"
        );
    }
}
