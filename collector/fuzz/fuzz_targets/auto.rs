#![no_main]

use infralog_collector_fuzz::{CTX, check, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = parse::parse_line(parse::Format::Auto, data, &CTX);
    check(data, &r);
    assert_ne!(parse::detect(data), parse::Format::Auto);
});
