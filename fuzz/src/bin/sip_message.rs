//! Fuzz target `sip_message`: see `sip::fuzzing::sip_message`.
fn main() {
    afl::fuzz!(|data: &[u8]| sip::fuzzing::sip_message(data));
}
