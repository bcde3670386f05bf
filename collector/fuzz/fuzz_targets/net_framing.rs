#![no_main]

use infralog_collector_fuzz::net_framing::{Decoder, decode_in_pieces};
use libfuzzer_sys::fuzz_target;

// The first three bytes choose the limit, the framing options and how the stream is cut
// into reads; the rest is the stream. Whatever the bytes: no panic, every message within
// the limit, and the same messages however the stream is cut.
fuzz_target!(|data: &[u8]| {
    let Some((head, stream)) = data.split_at_checked(3) else {
        return;
    };
    let max = 1 + head[0] as usize % 96;
    let decoder = Decoder::new(max, head[1] & 1 == 1, head[1] & 2 == 2);
    let whole = decode_in_pieces(decoder.clone(), stream, &[usize::MAX]);
    for (body, _, original_len, _) in &whole {
        assert!(body.len() <= max);
        assert!(original_len.is_none_or(|o| o > max));
    }
    let pieces = [1 + (head[2] & 15) as usize, 1 + (head[2] >> 4) as usize];
    assert_eq!(decode_in_pieces(decoder, stream, &pieces), whole);
});
