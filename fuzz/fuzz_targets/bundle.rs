//! Bundles: the reader never panics and never allocates past its bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = entrepot::bundle::BundleReader::new(data) {
        while let Ok(Some(doc)) = r.next_envelope() {
            let _ = entrepot::document::decode(&doc);
        }
    }
});
