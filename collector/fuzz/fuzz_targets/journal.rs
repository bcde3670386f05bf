#![no_main]

use infralog_collector_fuzz::journal_entry::Entry;
use infralog_collector_fuzz::parse::journal;
use libfuzzer_sys::fuzz_target;

// The input is a journal entry: fields separated by NUL (field data itself may hold any
// byte but NUL here, which is enough to reach every branch of the split and the mapping).
fuzz_target!(|data: &[u8]| {
    if let Some((name, value)) = journal::split_field(data) {
        assert_eq!(name.len() + 1 + value.len(), data.len());
    }
    if let Some(c) = journal::cursor_seq(data) {
        assert_eq!(journal::entries_missing_between(&c, &c), 0);
    }
    let mut e = Entry::default();
    for f in data.split(|&b| b == 0) {
        e.push(f);
    }
    let m = e.map(1);
    // Every field is either a column or in extra: at most 11 columns come from fields.
    let rest = e.rest(&m).count();
    assert!(rest <= e.len() && e.len() - rest <= 11);
    if m.priority.is_none() {
        assert!(m.facility.is_none());
    }
});
