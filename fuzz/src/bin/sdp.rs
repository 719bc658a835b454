//! Fuzz target `sdp`: see `sip::fuzzing::sdp`.
fn main() {
    afl::fuzz!(|data: &[u8]| sip::fuzzing::sdp(data));
}
