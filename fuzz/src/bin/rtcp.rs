//! Fuzz target `rtcp`: see `engine::media::fuzzing::rtcp`.
fn main() {
    afl::fuzz!(|data: &[u8]| engine::media::fuzzing::rtcp(data));
}
