//! Media: see the crate docs.
