//! Sync requests and responses: no panic, and accepted messages round-trip.
#![no_main]
use entrepot::sync::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = wire::decode_request(data) {
        assert_eq!(wire::decode_request(&wire::encode_request(&r)), Ok(r));
    }
    if let Ok(r) = wire::decode_response(data) {
        assert_eq!(wire::decode_response(&wire::encode_response(&r)), Ok(r));
    }
});
