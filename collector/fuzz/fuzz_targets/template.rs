#![no_main]

use infralog_collector_fuzz::{mask, miner};
use libfuzzer_sys::fuzz_target;

// Lines, one per `\n`: masking never panics and gives non-empty whitespace-free tokens
// within the cap; a line mined again gets the same positive id, from a template of its
// token count, and the miner stays within its template cap.
fuzz_target!(|data: &[u8]| {
    let mut m = miner::Miner::new(miner::MinerConfig {
        max_templates: 8,
        ..Default::default()
    });
    let mut masked = mask::Masked::new();
    for line in data.split(|&b| b == b'\n') {
        mask::mask(line, &mut masked);
        assert!(masked.len() <= mask::MAX_TOKENS);
        for t in masked.tokens() {
            assert!(!t.is_empty());
            assert!(!t.iter().any(|b| b.is_ascii_whitespace()));
        }
        let id = m.add(line, 0);
        assert!(id > 0);
        assert_eq!(m.add(line, 1), id);
        assert_eq!(m.get(id).map(|t| t.tokens.len()), Some(masked.len()));
        assert!(m.len() <= 8);
    }
});
