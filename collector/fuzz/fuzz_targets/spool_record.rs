#![no_main]

use infralog_collector_fuzz::spool_record::{HEADER_LEN, MAGIC, parse_payload, scan};
use libfuzzer_sys::fuzz_target;

// Recovery reads whatever a crash or a bad disk left in a segment: it must never panic,
// and what it keeps must be intact records, in order, within the input.
fuzz_target!(|data: &[u8]| {
    let s = scan(data);
    assert!(s.valid_end <= data.len());
    let mut last = 0;
    for r in &s.records {
        assert!(r.start >= last + HEADER_LEN && r.end <= s.valid_end);
        assert_eq!(data[r.start - HEADER_LEN..r.start - HEADER_LEN + 4], MAGIC);
        last = r.end;
        let _ = parse_payload(&data[r.clone()]);
    }
    for k in &s.skipped {
        assert!(k.end <= data.len() && k.start < k.end);
    }
});
