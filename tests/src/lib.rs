//! svi end-to-end test harness.
