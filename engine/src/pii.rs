//! Personal data (caller numbers, keyed digits) wrapped so that logs redact it by default
//! (STYLE.md §12). `Display`/`Debug` print a short masked form; `reveal()` gives the value
//! to code that stores it on purpose (call records), never to a log macro.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    pub fn new(v: T) -> Self {
        Pii(v)
    }

    pub fn reveal(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsRef<str>> fmt::Display for Pii<T> {
    /// Keeps the last two characters of a number (enough to tell calls apart in a log).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_ref();
        let n = s.chars().count();
        if n <= 2 {
            return f.write_str("**");
        }
        let tail: String = s.chars().skip(n - 2).collect();
        write!(f, "***{tail}")
    }
}

impl<T: AsRef<str>> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pii({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_in_display_and_debug() {
        let p = Pii::new("+33612345678".to_string());
        assert_eq!(p.to_string(), "***78");
        assert_eq!(format!("{p:?}"), "Pii(***78)");
        assert!(!format!("{p} {p:?}").contains("612345"));
        assert_eq!(p.reveal(), "+33612345678");
        assert_eq!(Pii::new("1").to_string(), "**");
    }
}
