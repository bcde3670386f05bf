#![no_main]

use infralog_collector_fuzz::{parse, within};
use libfuzzer_sys::fuzz_target;
use parse::container::{Text, parse_docker};

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = parse_docker(data) {
        assert!(l.stream.is_empty() || within(data, l.stream));
        let Text::Escaped(t) = l.text else {
            panic!("docker text is escaped JSON")
        };
        assert!(within(data, t));
        let mut out = Vec::new();
        l.text.write(&mut out);
    }
});
