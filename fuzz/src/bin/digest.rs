//! Fuzz target `digest`: see `sip::fuzzing::digest`.
fn main() {
    afl::fuzz!(|data: &[u8]| sip::fuzzing::digest(data));
}
