#![no_main]

use infralog_collector_fuzz::{CTX, check, parse::rfc3164, split_ctx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data, &rfc3164::parse(data, &CTX));
    if let Some((ctx, line)) = split_ctx(data) {
        check(line, &rfc3164::parse(line, &ctx));
    }
});
