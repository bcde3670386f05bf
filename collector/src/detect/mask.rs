//! Tokenising and masking of one message in a single pass over its bytes.
//!
//! A message is split on ASCII whitespace into at most [`MAX_TOKENS`] tokens; within a
//! token, the parts that vary between lines of one template (numbers, hex, addresses,
//! ids, times, sizes, paths, URLs, e-mail addresses) become `<*>`. The result is written
//! into a reusable [`Masked`] buffer, so masking allocates nothing once the buffer has
//! grown to the longest line.
//!
//! Why a hand-written scanner rather than regexes: each regex is another pass over the
//! line, and in Drain3 six of them cost 5–10× the tree search (notes/detection.md). Here
//! each byte is classified once, by a table, and the decisions are made per word.
//!
//! The rules, in the order they are tried for a token:
//! - a URL (`scheme://…`), a path (starting with `/`, `./`, `../` or `~/` and holding a
//!   second `/`, or a Windows `C:\…`), an e-mail address (`a@b.c`) is one `<*>`, so that
//!   paths and URLs with a different number of segments still give one template;
//! - otherwise the token is cut into words at punctuation that separates fields
//!   (`= : , ; ( ) [ ] { } < > " ' |`); a word holding a digit is a variable (this covers
//!   numbers, hex ids of 4+ characters with a digit, IPv4, IPv6, ports, MACs, UUIDs,
//!   dates, times, durations like `15ms`, sizes like `4KB`, ids like `blk_-42`); so is a
//!   word of 8+ hex letters (`deadbeef`); the separators are kept, so
//!   `port=8080` → `port=<*>` and `10.0.0.1:22` → `<*>:<*>`;
//!   a token that is nothing but variables and separators (`03:40:59`, `10.0.0.1:22`, a
//!   MAC) is one `<*>`;
//! - month and weekday names right before a token with a digit are one `<*>` (`Mon Jun
//!   20` is a date, `May I` is not).
//!
//! Adjacent `<*>` tokens are one `<*>`, so that lists of ids of any length and dates of
//! several tokens do not change the token count; a variable token in brackets keeps them
//! (`(<*>)`), so that an empty field `()` and a filled one `(host.example)` still have
//! the same number of tokens.

/// The masked text of a variable.
pub const WILDCARD: &[u8] = b"<*>";

/// Tokens kept per line: the rest of a longer line is one trailing `<*>`. Loki's miner ran
/// out of memory until it capped tokens per line (notes/detection.md).
pub const MAX_TOKENS: usize = 128;

/// Longest token kept as it is; a longer one is a variable (a blob, a base64 value).
const MAX_TOKEN_BYTES: usize = 256;

/// A masked line: its tokens' text one after the other in `text`, token `i` being
/// `text[spans[i].0..spans[i].1]`.
#[derive(Debug, Default, Clone)]
pub struct Masked {
    pub text: Vec<u8>,
    pub spans: Vec<(u32, u32)>,
}

impl Masked {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn token(&self, i: usize) -> &[u8] {
        let (s, e) = self.spans[i];
        &self.text[s as usize..e as usize]
    }

    pub fn tokens(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.token(i))
    }

    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }

    fn push_wildcard(&mut self) {
        // A run of variables is one variable: lists of ids of any length (`blk_1 blk_2
        // …`), dates of several tokens.
        if self
            .spans
            .last()
            .is_some_and(|&(s, e)| &self.text[s as usize..e as usize] == WILDCARD)
        {
            return;
        }
        let s = self.text.len() as u32;
        self.text.extend_from_slice(WILDCARD);
        self.spans.push((s, self.text.len() as u32));
    }

    /// The masked line as text, tokens joined by one space.
    pub fn joined(&self, out: &mut Vec<u8>) {
        out.clear();
        for (i, t) in self.tokens().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(t);
        }
    }
}

/// Byte classes, one table lookup per byte.
const SPACE: u8 = 1;
const DIGIT: u8 = 2;
const HEXLETTER: u8 = 4;
const SEP: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => SPACE,
            b'0'..=b'9' => DIGIT,
            b'a'..=b'f' | b'A'..=b'F' => HEXLETTER,
            b'=' | b':' | b',' | b';' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>'
            | b'"' | b'\'' | b'|' => SEP,
            _ => 0,
        };
        i += 1;
    }
    t
};

const MONTHS_DAYS: [&[u8]; 26] = [
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
    b"January",
    b"February",
    b"March",
    b"April",
    b"June",
    b"July",
    b"August",
    b"Mon",
    b"Tue",
    b"Wed",
    b"Thu",
    b"Fri",
    b"Sat",
    b"Sun",
];

fn is_month_or_day(t: &[u8]) -> bool {
    MONTHS_DAYS.contains(&t)
}

/// Tokenises and masks `line` into `out` (cleared first).
pub fn mask(line: &[u8], out: &mut Masked) {
    out.clear();
    let n = line.len();
    let mut i = 0;
    // Month and weekday names wait for the next token: before a token with a digit they
    // are part of a date (`Mon Jun 20 03:40:59 2005` is one `<*>`).
    let mut pending: [&[u8]; 4] = [&[]; 4];
    let mut np = 0;
    while i < n {
        while i < n && CLASS[line[i] as usize] == SPACE {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        let mut digits = false;
        while i < n && CLASS[line[i] as usize] != SPACE {
            digits |= CLASS[line[i] as usize] == DIGIT;
            i += 1;
        }
        let tok = &line[start..i];
        if !digits && np < pending.len() && is_month_or_day(tok) {
            pending[np] = tok;
            np += 1;
            continue;
        }
        if digits && np > 0 {
            np = 0;
            out.push_wildcard();
        }
        for p in pending[..std::mem::take(&mut np)].iter() {
            if out.len() + 1 >= MAX_TOKENS {
                break;
            }
            push_token(p, false, out);
        }
        if out.len() + 1 >= MAX_TOKENS {
            out.push_wildcard();
            return;
        }
        push_token(tok, digits, out);
    }
    for p in pending[..np].iter() {
        if out.len() + 1 >= MAX_TOKENS {
            out.push_wildcard();
            return;
        }
        push_token(p, false, out);
    }
}

/// Whether a token is one variable as a whole: URL, path, e-mail address.
fn whole_variable(tok: &[u8]) -> bool {
    if tok.len() > MAX_TOKEN_BYTES {
        return true;
    }
    // Leading punctuation such as `(` or `"` does not make a path less of one.
    let t = trim_open(tok);
    if t.len() >= 2 {
        let path_start =
            t[0] == b'/' || t.starts_with(b"./") || t.starts_with(b"../") || t.starts_with(b"~/");
        if path_start && t[1..].contains(&b'/') {
            return true;
        }
        if t.len() >= 3 && t[0].is_ascii_alphabetic() && t[1] == b':' && t[2] == b'\\' {
            return true;
        }
    }
    let mut at = None;
    for (k, w) in t.windows(3).enumerate() {
        if w == b"://"
            && k > 0
            && t[..k]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'+')
        {
            return true;
        }
        if w[0] == b'@' && at.is_none() {
            at = Some(k);
        }
    }
    if let Some(k) = at {
        // local@domain.tld: a dot after the @ and a name before it.
        if k > 0 && t[k + 1..].contains(&b'.') && t[..k].iter().all(|b| CLASS[*b as usize] != SEP) {
            return true;
        }
    }
    false
}

fn trim_open(t: &[u8]) -> &[u8] {
    let k = t
        .iter()
        .position(|b| !matches!(b, b'(' | b'[' | b'{' | b'<' | b'"' | b'\''))
        .unwrap_or(t.len());
    &t[k..]
}

/// Appends the masked form of one whitespace-free token; returns whether anything in it
/// was masked.
fn push_token(tok: &[u8], digits: bool, out: &mut Masked) -> bool {
    let long_hex = tok.len() >= 8;
    if !digits && !long_hex && !tok.contains(&b'/') && !tok.contains(&b'@') {
        // The common case: a word with nothing to mask, copied as it is.
        let s = out.text.len() as u32;
        out.text.extend_from_slice(tok);
        out.spans.push((s, out.text.len() as u32));
        return false;
    }
    if whole_variable(tok) {
        out.push_wildcard();
        return true;
    }
    let s = out.text.len();
    let mut masked = false;
    let mut w = 0;
    let n = tok.len();
    while w <= n {
        // Find the end of the word starting at `w`.
        let mut e = w;
        let mut has_digit = false;
        let mut all_hex = true;
        while e < n && CLASS[tok[e] as usize] != SEP {
            let c = CLASS[tok[e] as usize];
            has_digit |= c == DIGIT;
            all_hex &= c == DIGIT || c == HEXLETTER;
            e += 1;
        }
        let word = &tok[w..e];
        if !word.is_empty() {
            if has_digit || (all_hex && word.len() >= 8) {
                out.text.extend_from_slice(WILDCARD);
                masked = true;
            } else {
                out.text.extend_from_slice(word);
            }
        }
        if e < n {
            out.text.push(tok[e]);
        }
        w = e + 1;
    }
    if masked
        && out.text[s..]
            .iter()
            .all(|&b| CLASS[b as usize] == SEP || b == b'<' || b == b'*' || b == b'>')
    {
        // Nothing but variables and separators (`03:40:59`, `10.0.0.1:22`, a MAC): one
        // variable, which joins a variable before it. Brackets around it stay, so that
        // `(host-1.example)` and `()` keep the same number of tokens.
        let (first, last) = (tok[0], tok[tok.len() - 1]);
        let wrapped = tok.len() >= 2
            && matches!(
                (first, last),
                (b'(', b')')
                    | (b'[', b']')
                    | (b'{', b'}')
                    | (b'<', b'>')
                    | (b'"', b'"')
                    | (b'\'', b'\'')
            );
        out.text.truncate(s);
        if wrapped {
            out.text.push(first);
            out.text.extend_from_slice(WILDCARD);
            out.text.push(last);
            out.spans.push((s as u32, out.text.len() as u32));
        } else {
            out.push_wildcard();
        }
        return true;
    }
    out.spans.push((s as u32, out.text.len() as u32));
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(line: &str) -> String {
        let mut out = Masked::new();
        mask(line.as_bytes(), &mut out);
        let mut j = Vec::new();
        out.joined(&mut j);
        String::from_utf8(j).unwrap()
    }

    #[test]
    fn masks_variables_in_one_pass() {
        assert_eq!(
            m("PacketResponder 1 for block blk_-6952295868487656571 terminating"),
            "PacketResponder <*> for block <*> terminating"
        );
        assert_eq!(
            m("Received from /10.251.30.85:50010 ok"),
            "Received from <*> ok"
        );
        assert_eq!(m("connect 10.0.0.1:22 port=8080"), "connect <*> port=<*>");
        assert_eq!(m("addr [fe80::1%eth0]:22 up"), "addr <*> up");
        assert_eq!(m("mac 00:1a:2b:3c:4d:5e"), "mac <*>");
        assert_eq!(m("f(x=1, y=abc)"), "f(x=<*>, y=abc)");
        assert_eq!(
            m("req 550e8400-e29b-41d4-a716-446655440000 done"),
            "req <*> done"
        );
        assert_eq!(m("GET https://example.com/a/b?c=1 200"), "GET <*>");
        assert_eq!(m("open /var/log/syslog failed"), "open <*> failed");
        assert_eq!(m("mail to bob@example.com"), "mail to <*>");
        assert_eq!(m("took 15ms, sent 4KB"), "took <*> sent <*>");
        assert_eq!(m("at Mon Jun 14 15:16:01 ok"), "at <*> ok");
        assert_eq!(m("May I come in"), "May I come in");
        assert_eq!(
            m("sent 1190 bytes (1.16 KB) now"),
            "sent <*> bytes <*> KB) now"
        );
        assert_eq!(m("GET /index.html"), "GET /index.html");
        assert_eq!(m("hash deadbeefcafe and face"), "hash <*> and face");
        assert_eq!(m("  "), "");
        assert_eq!(m("delete blk_1 blk_2 blk_3 now"), "delete <*> now");
        assert_eq!(m("from 1.2.3.4 (h-1.example) at"), "from <*> (<*>) at");
    }

    #[test]
    fn tokens_are_capped() {
        let line = "a ".repeat(1000);
        let mut out = Masked::new();
        mask(line.as_bytes(), &mut out);
        assert_eq!(out.len(), MAX_TOKENS);
        assert_eq!(out.token(MAX_TOKENS - 1), WILDCARD);
    }
}
