#![no_main]

use infralog_collector_fuzz::{CTX, check, parse::kmsg, split_ctx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = kmsg::parse_record(data) {
        assert!(kmsg::looks_like(data));
        for (k, v) in kmsg::dict_entries(r.dict) {
            assert!(!k.contains(&b'\n') && !v.contains(&b'\n'));
        }
    }
    check(data, &kmsg::parse_line(data, &CTX));
    if let Some((ctx, line)) = split_ctx(data) {
        check(line, &kmsg::parse_line(line, &ctx));
    }
});
