//! Fuzz target `rfc4733`: see `engine::media::fuzzing::rfc4733`.
fn main() {
    afl::fuzz!(|data: &[u8]| engine::media::fuzzing::rfc4733(data));
}
