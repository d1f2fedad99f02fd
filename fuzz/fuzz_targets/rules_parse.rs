//! Any text as a rules file: parsing and validation must answer with a
//! rules set or a located diagnostic, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tierd::rules::load(&tierd::rules::Candidate::new("fuzz.yaml", text));
    }
});
