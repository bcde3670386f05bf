#![no_main]

use infralog_collector_fuzz::{parse, within};
use libfuzzer_sys::fuzz_target;
use parse::container::{Text, cri_path_names, parse_cri};

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = parse_cri(data) {
        assert!(within(data, l.stream));
        let Text::Plain(t) = l.text else {
            panic!("cri text is plain")
        };
        assert!(within(data, t));
        assert!(l.timestamp_ns.is_some());
    }
    if let Some((ns, pod, c)) = cri_path_names(data) {
        assert!(within(data, ns) && within(data, pod) && within(data, c));
    }
});
