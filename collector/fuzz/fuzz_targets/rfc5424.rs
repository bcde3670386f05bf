#![no_main]

use infralog_collector_fuzz::{check, parse::rfc5424};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = rfc5424::parse(data);
    check(data, &r);
    if r.error.is_none() {
        assert!(rfc5424::looks_like(data));
    }
    // Any bytes as a bare STRUCTURED-DATA field, as the importer may hand them over.
    let mut out = Vec::new();
    for p in rfc5424::sd_params(data) {
        rfc5424::unescape_value(p.value, &mut out);
    }
});
