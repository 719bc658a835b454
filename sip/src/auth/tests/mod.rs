//! Digest tests: RFC vectors and header grammar, client/server round trips, garbage input.

mod fuzz;
mod roundtrip;
mod vectors;
