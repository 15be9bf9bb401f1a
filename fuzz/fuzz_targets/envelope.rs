//! Document envelopes, which are also the gossip payloads: decode must never panic, and an
//! accepted envelope keeps its bytes verbatim.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = entrepot::document::decode(data) {
        assert_eq!(doc.bytes, data);
        let _ = entrepot::document::verify(doc, &[0u8; 32]);
    }
});
