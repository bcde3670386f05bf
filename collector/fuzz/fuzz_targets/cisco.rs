#![no_main]

use infralog_collector_fuzz::{CTX, check, parse, within};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((seq, rest)) = parse::cisco::sequence(data) {
        assert!(seq.iter().all(u8::is_ascii_digit));
        assert_eq!(seq.len() + 2 + rest.len(), data.len());
    }
    let stripped = parse::cisco::strip_clock_marker(data);
    assert!(within(data, stripped) && data.len() - stripped.len() <= 1);
    if let Some(level) = parse::cisco::mnemonic_severity(data) {
        assert!(level <= 7);
    }
    // The same bytes behind a PRI and a sequence number, as a device sends them.
    let mut line = b"<189>29: ".to_vec();
    line.extend_from_slice(data);
    check(&line, &parse::rfc3164::parse(&line, &CTX));
});
