//! Fuzz target `rtp_stream`: see `engine::media::fuzzing::rtp_stream`.
fn main() {
    afl::fuzz!(|data: &[u8]| engine::media::fuzzing::rtp_stream(data));
}
