//! The online template miner: Drain's idea (lines of one template have the same number of
//! tokens and mostly the same constant tokens) on masked lines, with one configuration for
//! every log.
//!
//! A line is masked ([`super::mask`]), then looked up in the bucket of templates with its
//! token count and first token. The template sharing the largest fraction of its constant
//! tokens with the line takes it if that fraction reaches [`MinerConfig::similarity`];
//! tokens where they differ become `<*>` in the template, which is then a new *version*
//! of the same template (same id). Otherwise the line starts a new template. One
//! exception: a line that differs in a single word starts a sibling template the first
//! time that word changes, and generalises the template only at the third word there
//! (see `Miner::second_word`).
//!
//! Ids are stable: a template's id is a hash of the text of its first version
//! ([`template_id`]), so it never changes when the template is generalised, and two
//! collectors that first see the same template text give it the same id.
//!
//! Memory is bounded: at most [`MinerConfig::max_templates`] templates (the least
//! recently used one is evicted to make room, and evictions are counted and logged), and
//! at most [`super::mask::MAX_TOKENS`] tokens per line.

use std::collections::HashMap;

use super::mask::{Masked, WILDCARD, mask};

/// The one configuration, the same for every log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinerConfig {
    /// Fraction of a template's tokens a line must share to join it (a `<*>` of the
    /// template is shared by any token). Masking makes most variables `<*>` already, so
    /// what still differs is usually a constant: the threshold is high. 0.78 is in the
    /// middle of the plateau measured on Loghub (0.78–0.80 give the same groups on all 8
    /// systems, 0.75 and 0.85 within 0.007 of the mean; BENCHMARKS.md).
    pub similarity: f64,
    /// Templates kept; beyond it the least recently used one is evicted.
    pub max_templates: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        Self {
            similarity: 0.78,
            max_templates: 10_000,
        }
    }
}

/// One template: its current text (tokens), and every version of it that was ever
/// current (the first one gives the id).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: i64,
    /// Current version, 1 for the first text; each generalisation adds one.
    pub version: u32,
    pub tokens: Vec<Box<[u8]>>,
    pub count: u64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// Every text it had, oldest first (the last one is the current text).
    pub versions: Vec<Version>,
    /// The line that started it (its first [`EXAMPLE_BYTES`] bytes).
    pub example: Box<str>,
    /// Miner clock of the last line it took (for least-recently-used eviction).
    pub(crate) last_used: u64,
    /// Took a line or changed since the `templates` table was last written.
    pub dirty: bool,
}

/// One text of a template, and the event time of the line that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub version: u32,
    pub text: Box<str>,
    pub since_us: i64,
}

/// Bytes of a template's example line that are kept.
pub const EXAMPLE_BYTES: usize = 512;

impl Template {
    /// The current text, tokens joined by one space.
    pub fn text(&self) -> String {
        join(self.tokens.iter().map(|t| &t[..]))
    }
}

fn join<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> String {
    let mut out = Vec::new();
    for (i, t) in tokens.enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(t);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What changed in the miner, for the state journal and the `templates` table.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A template appeared (version 1) or was generalised (a higher version).
    Version {
        id: i64,
        version: u32,
        text: String,
        at_us: i64,
        /// The first line, with version 1.
        example: Option<String>,
    },
    /// A template was evicted to make room.
    Evicted { id: i64 },
}

/// 64-bit FNV-1a: simple, fixed forever (ids are compared across collectors and
/// versions, so the hash must never change), and good enough on short texts.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The id of a template whose first text is `text` (tokens joined by one space): below
/// 2^63, so it reads positive as the archive's int64 `template_id`, and never 0.
pub fn template_id(text: &[u8]) -> i64 {
    let id = (fnv1a(text) & (i64::MAX as u64)) as i64;
    id.max(1)
}

pub struct Miner {
    config: MinerConfig,
    /// Slots; `None` is a free slot (an evicted template).
    slots: Vec<Option<Template>>,
    free: Vec<u32>,
    /// (token count, first token) → slots.
    buckets: HashMap<u64, Vec<u32>>,
    by_id: HashMap<i64, u32>,
    clock: u64,
    masked: Masked,
    scratch: Vec<u8>,
    changes: Vec<Change>,
    pub evicted: u64,
    /// Templates created so far (a line that took a new template raised it).
    pub created: u64,
}

fn bucket_key(masked: &Masked) -> u64 {
    let first = if masked.is_empty() {
        &[][..]
    } else {
        masked.token(0)
    };
    fnv1a(first) ^ (masked.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn bucket_key_tokens(tokens: &[Box<[u8]>]) -> u64 {
    let first = tokens.first().map_or(&[][..], |t| &t[..]);
    fnv1a(first) ^ (tokens.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Miner {
    pub fn new(config: MinerConfig) -> Self {
        Self {
            config: MinerConfig {
                max_templates: config.max_templates.max(1),
                ..config
            },
            slots: Vec::new(),
            free: Vec::new(),
            buckets: HashMap::new(),
            by_id: HashMap::new(),
            clock: 0,
            masked: Masked::new(),
            scratch: Vec::new(),
            changes: Vec::new(),
            evicted: 0,
            created: 0,
        }
    }

    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// Templates currently held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.slots.iter().flatten()
    }

    pub fn get(&self, id: i64) -> Option<&Template> {
        self.by_id
            .get(&id)
            .and_then(|&s| self.slots[s as usize].as_ref())
    }

    /// Changes since the last call (new templates, new versions, evictions).
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Mines one line seen at `at_us` (event time, µs); returns its template id.
    pub fn add(&mut self, line: &[u8], at_us: i64) -> i64 {
        self.clock += 1;
        let mut masked = std::mem::take(&mut self.masked);
        mask(line, &mut masked);
        let key = bucket_key(&masked);
        let best = self.best_match(key, &masked);
        let id = match best {
            // A full match (the common case once templates are learnt) changes no word.
            Some((slot, sim)) if sim == 1.0 || !self.second_word(key, slot, &masked) => {
                self.absorb(slot, &masked, at_us)
            }
            _ => self.create(key, &masked, line, at_us),
        };
        self.masked = masked;
        id
    }

    /// The most similar template of the bucket, if similar enough, and its similarity.
    fn best_match(&self, key: u64, masked: &Masked) -> Option<(u32, f64)> {
        let bucket = self.buckets.get(&key)?;
        let mut best: Option<(u32, f64, usize)> = None;
        for &slot in bucket {
            let Some(t) = self.slots[slot as usize].as_ref() else {
                continue;
            };
            let (sim, wild) = similarity(t, masked);
            let better = match best {
                None => true,
                Some((_, s, w)) => sim > s || (sim == s && wild < w),
            };
            if better {
                best = Some((slot, sim, wild));
            }
        }
        best.filter(|&(_, sim, _)| sim >= self.config.similarity)
            .map(|(s, sim, _)| (s, sim))
    }

    /// Whether the line differs from the template in `slot` in exactly one position, a
    /// word on both sides, and no other template of the bucket is that template with
    /// another word there: then the line starts a sibling template instead of turning
    /// the word into `<*>`. Masking leaves few variables unmasked, so a word that changes
    /// once is more often a constant of another event (`stored as bytes` / `stored as
    /// values`, `view acls` / `modify acls`); a third word at the same place makes it a
    /// variable, and the template generalises. Derived from the templates alone, so it
    /// decides the same after a restart.
    fn second_word(&self, key: u64, slot: u32, masked: &Masked) -> bool {
        let t = self.slots[slot as usize].as_ref().expect("matched slot");
        let mut differs = None;
        for (i, tok) in t.tokens.iter().enumerate() {
            if &tok[..] != WILDCARD && &tok[..] != masked.token(i) {
                if differs.is_some() {
                    return false;
                }
                differs = Some(i);
            }
        }
        let Some(pos) = differs else { return false };
        if !is_word(&t.tokens[pos]) || !is_word(masked.token(pos)) {
            return false;
        }
        let bucket = self.buckets.get(&key).map_or(&[][..], Vec::as_slice);
        !bucket.iter().any(|&other| {
            other != slot
                && self.slots[other as usize].as_ref().is_some_and(|o| {
                    o.tokens.len() == t.tokens.len()
                        && o.tokens[pos] != t.tokens[pos]
                        && (o.tokens.iter().zip(&t.tokens))
                            .enumerate()
                            .all(|(i, (a, b))| i == pos || a == b)
                })
        })
    }

    fn absorb(&mut self, slot: u32, masked: &Masked, at_us: i64) -> i64 {
        let clock = self.clock;
        let t = self.slots[slot as usize].as_mut().expect("matched slot");
        let mut generalised = false;
        for (i, tok) in t.tokens.iter_mut().enumerate() {
            if &tok[..] != WILDCARD && &tok[..] != masked.token(i) {
                *tok = WILDCARD.into();
                generalised = true;
            }
        }
        t.count += 1;
        t.dirty = true;
        t.last_used = clock;
        t.first_seen_us = t.first_seen_us.min(at_us);
        t.last_seen_us = t.last_seen_us.max(at_us);
        if generalised {
            t.version += 1;
            let text = t.text();
            t.versions.push(Version {
                version: t.version,
                text: text.as_str().into(),
                since_us: at_us,
            });
            self.changes.push(Change::Version {
                id: t.id,
                version: t.version,
                text,
                at_us,
                example: None,
            });
        }
        t.id
    }

    fn create(&mut self, key: u64, masked: &Masked, line: &[u8], at_us: i64) -> i64 {
        self.created += 1;
        masked.joined(&mut self.scratch);
        let mut id = template_id(&self.scratch);
        // Two texts with one hash in one miner (odds 2^-63 per pair): the later one takes
        // the next free id, so that ids stay unique here.
        while self.by_id.contains_key(&id) {
            id = if id == i64::MAX { 1 } else { id + 1 };
        }
        if self.by_id.len() >= self.config.max_templates {
            self.evict_one();
        }
        let text = String::from_utf8_lossy(&self.scratch).into_owned();
        let example: Box<str> =
            String::from_utf8_lossy(&line[..line.len().min(EXAMPLE_BYTES)]).into();
        let t = Template {
            id,
            version: 1,
            tokens: masked.tokens().map(Box::from).collect(),
            count: 1,
            first_seen_us: at_us,
            last_seen_us: at_us,
            versions: vec![Version {
                version: 1,
                text: text.as_str().into(),
                since_us: at_us,
            }],
            example: example.clone(),
            last_used: self.clock,
            dirty: true,
        };
        self.changes.push(Change::Version {
            id,
            version: 1,
            text,
            at_us,
            example: Some(example.into()),
        });
        self.insert(key, t);
        id
    }

    fn insert(&mut self, key: u64, t: Template) {
        let id = t.id;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(t);
                s
            }
            None => {
                self.slots.push(Some(t));
                (self.slots.len() - 1) as u32
            }
        };
        self.buckets.entry(key).or_default().push(slot);
        self.by_id.insert(id, slot);
    }

    /// Evicts the least recently used template. A linear scan: it runs only once the cap
    /// is reached, and then at most once per new template.
    fn evict_one(&mut self) {
        let Some((slot, _)) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (i, t.last_used)))
            .min_by_key(|&(_, used)| used)
        else {
            return;
        };
        let t = self.slots[slot].clone().expect("occupied");
        self.forget(t.id);
        self.evicted += 1;
        if self.evicted.is_power_of_two() {
            tracing::info!(
                evicted_total = self.evicted,
                id = t.id,
                count = t.count,
                text = %t.text(),
                "template miner full ({} templates): evicted the least recently used one",
                self.config.max_templates
            );
        }
        self.changes.push(Change::Evicted { id: t.id });
    }

    /// Puts back a version recovered from the journal: a newer version of a template it
    /// knows replaces its text, an unknown template is added.
    pub fn restore_version(&mut self, t: Template) {
        let Some(&slot) = self.by_id.get(&t.id) else {
            self.restore(t);
            return;
        };
        let old = self.slots[slot as usize].as_ref().expect("occupied");
        if t.version <= old.version {
            return;
        }
        let (count, first, example) = (old.count, old.first_seen_us, old.example.clone());
        let mut versions = old.versions.clone();
        versions.extend(
            t.versions
                .iter()
                .filter(|v| v.version > old.version)
                .cloned(),
        );
        self.forget(t.id);
        self.restore(Template {
            count,
            first_seen_us: first.min(t.first_seen_us),
            versions,
            example,
            ..t
        });
    }

    /// Drops a template (evicted before a crash).
    pub fn forget(&mut self, id: i64) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        let t = self.slots[slot as usize].take().expect("occupied");
        let key = bucket_key_tokens(&t.tokens);
        if let Some(b) = self.buckets.get_mut(&key) {
            b.retain(|&s| s != slot);
            if b.is_empty() {
                self.buckets.remove(&key);
            }
        }
        self.free.push(slot);
    }

    /// Marks every template as written to the `templates` table.
    pub fn mark_written(&mut self) {
        for t in self.slots.iter_mut().flatten() {
            t.dirty = false;
        }
    }

    /// Puts back a template recovered from the state directory.
    pub fn restore(&mut self, t: Template) {
        if self.by_id.contains_key(&t.id) || t.tokens.is_empty() {
            return;
        }
        if self.by_id.len() >= self.config.max_templates {
            self.evict_one();
        }
        self.clock = self.clock.max(t.last_used);
        let key = bucket_key_tokens(&t.tokens);
        self.insert(key, t);
    }
}

/// A token that is a word: letters, no `<*>` in it (masking leaves words as they are).
fn is_word(tok: &[u8]) -> bool {
    tok.iter().any(u8::is_ascii_alphabetic) && !tok.windows(3).any(|w| w == WILDCARD)
}

/// The fraction of the template's tokens the line matches: equal tokens and the
/// template's `<*>` count (so a line, once absorbed, always matches its template again:
/// mining the same line twice gives the same id, which recovery after a crash relies
/// on; Drain3 does not count `<*>` and can send a line it just absorbed elsewhere); and
/// how many `<*>` the template has (fewer is a better, more specific match on a tie).
fn similarity(t: &Template, masked: &Masked) -> (f64, usize) {
    let mut same = 0usize;
    let mut wild = 0usize;
    for (i, tok) in t.tokens.iter().enumerate() {
        let line_tok = masked.token(i);
        if &tok[..] == WILDCARD {
            wild += 1;
            same += 1;
        } else if &tok[..] == line_tok {
            same += 1;
        }
    }
    let n = t.tokens.len();
    let sim = if n == 0 {
        1.0
    } else {
        (same as f64) / (n as f64)
    };
    (sim, wild)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalises_keeping_the_id() {
        let mut m = Miner::new(MinerConfig::default());
        let a = m.add(b"user alice logged in from host1", 1);
        // A second word where the template has one is another event's constant...
        let b = m.add(b"user bob logged in from host1", 2);
        assert_ne!(a, b);
        assert_eq!(m.get(b).unwrap().text(), "user bob logged in from <*>");
        // ... a third makes it a variable: the first template generalises, same id.
        let c = m.add(b"user carol logged in from host1", 3);
        assert_eq!(a, c);
        let t = m.get(a).unwrap();
        assert_eq!(t.text(), "user <*> logged in from <*>");
        assert_eq!(t.version, 2);
        assert_eq!(t.count, 2);
        assert_eq!(a, template_id(b"user alice logged in from <*>"));
        // The sibling keeps its own lines; every other word goes to the general one.
        assert_eq!(m.add(b"user bob logged in from host2", 4), b);
        assert_eq!(m.add(b"user dave logged in from host2", 5), a);
        // Two words changed at once are no sibling: the template generalises at once.
        let x = m.add(b"the disk sda is full on node1 since the last boot", 6);
        assert_eq!(
            m.add(b"the disk sdb is empty on node1 since the last boot", 7),
            x
        );
        assert_eq!(
            m.get(x).unwrap().text(),
            "the disk <*> is <*> on <*> since the last boot"
        );
        assert_ne!(a, x);
    }

    #[test]
    fn ids_are_positive_and_shared_between_miners() {
        let mut m1 = Miner::new(MinerConfig::default());
        let mut m2 = Miner::new(MinerConfig::default());
        for line in ["a b 1", "x y z 2", "connection from 10.0.0.1 closed"] {
            let (a, b) = (m1.add(line.as_bytes(), 0), m2.add(line.as_bytes(), 0));
            assert_eq!(a, b);
            assert!(a > 0);
        }
    }

    #[test]
    fn eviction_keeps_the_cap() {
        let mut m = Miner::new(MinerConfig {
            max_templates: 3,
            ..MinerConfig::default()
        });
        let first = m.add(b"alpha", 0);
        for w in ["beta", "gamma", "delta", "epsilon"] {
            m.add(w.as_bytes(), 0);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.evicted, 2);
        assert!(m.get(first).is_none());
        assert!(m.take_changes().contains(&Change::Evicted { id: first }));
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;
    use crate::detect::mask::{MAX_TOKENS, Masked, mask};

    /// xorshift64*: reproducible mutations without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that mean something to the scanner.
    const SPECIAL: &[u8] = b"=:,;()[]{}<>\"'|/@.-_#0123456789abcdefABCDEF \t\r\n\0\xff\xc3";

    #[test]
    fn mutated_lines_never_panic_and_keep_the_invariants() {
        let log = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/loghub-2k/Linux/Linux_2k.log"
        ))
        .expect("the shared loghub data");
        let mut seeds: Vec<Vec<u8>> = log
            .split(|&b| b == b'\n')
            .step_by(20)
            .map(<[u8]>::to_vec)
            .collect();
        seeds.push("x ".repeat(300).into_bytes());
        seeds.push(b"Mon Tue Wed Thu Fri 12 http://a/b a@b.c /x/y 0xff".to_vec());
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut m = Miner::new(MinerConfig {
            max_templates: 50,
            ..MinerConfig::default()
        });
        let mut masked = Masked::new();
        let mut buf = Vec::new();
        for _ in 0..30_000 {
            buf.clear();
            buf.extend_from_slice(&seeds[rng.below(seeds.len())]);
            for _ in 0..=rng.below(4) {
                let len = buf.len();
                match rng.below(4) {
                    0 if len > 0 => {
                        let i = rng.below(len);
                        buf[i] = SPECIAL[rng.below(SPECIAL.len())];
                    }
                    1 => buf.insert(rng.below(len + 1), rng.next() as u8),
                    2 => buf.truncate(rng.below(len + 1)),
                    _ if len > 0 => {
                        let a = rng.below(len);
                        let b = (a + rng.below(8)).min(len);
                        buf.drain(a..b);
                    }
                    _ => {}
                }
            }
            mask(&buf, &mut masked);
            assert!(masked.len() <= MAX_TOKENS);
            assert!(
                masked
                    .tokens()
                    .all(|t| !t.is_empty() && !t.iter().any(|b| b.is_ascii_whitespace()))
            );
            let id = m.add(&buf, 0);
            assert!(id > 0);
            assert_eq!(m.add(&buf, 0), id, "{:?}", String::from_utf8_lossy(&buf));
            assert_eq!(m.get(id).map(|t| t.tokens.len()), Some(masked.len()));
            assert!(m.len() <= 50);
        }
    }
}
