#![no_main]

use infralog_collector_fuzz::{parse, within};
use libfuzzer_sys::fuzz_target;
use parse::json::{self, Value};

fuzz_target!(|data: &[u8]| {
    let valid = json::parse(data).is_ok();
    let Ok(r) = json::parse_app(data) else {
        assert!(!valid);
        return;
    };
    let _ = (r.time_ns(0), r.level(), r.pid());
    let mut out = Vec::new();
    r.object.leaves(|path, v| {
        for k in path {
            assert!(within(data, k), "key outside the line");
        }
        if let Value::Str(s) | Value::Num(s) | Value::Raw(s) = v {
            assert!(within(data, s), "value outside the line");
        }
        out.clear();
        v.write_text(&mut out);
        if let Value::Str(s) = v {
            // Every escape decodes to fewer bytes than it takes.
            assert!(out.len() <= s.len());
        }
    });
});
