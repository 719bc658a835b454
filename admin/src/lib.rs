//! Admin web (later issue). Not yet built.
