//! HA (issue 5): openraft replicated state. Not yet built.
