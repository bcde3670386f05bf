#![no_main]

use infralog_collector_fuzz::{CTX, check_payload, parse, split_ctx, within};
use libfuzzer_sys::fuzz_target;
use parse::payload::{self, Payload};

fuzz_target!(|data: &[u8]| {
    check_payload(data, payload::detect(data));
    // Each grammar on any bytes, whatever `detect` says.
    for p in [
        Payload::KeyValue(data),
        Payload::Cef(data),
        Payload::CheckPoint(data),
    ] {
        check_payload(data, p);
    }
    let (host, _) = payload::kv_header(data, &CTX);
    if let Some(h) = host {
        assert!(within(data, h));
    }
    if let Some((ctx, line)) = split_ctx(data) {
        let _ = payload::kv_header(line, &ctx);
    }
});
