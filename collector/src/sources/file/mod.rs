//! The file source: tails log files and container logs, each line once.
//!
//! - [`config`]: the configuration and its checks;
//! - [`discover`]: which files the configured paths and globs name now, and the rotated
//!   siblings of a file;
//! - [`identity`]: telling files apart across renames, truncation, inode reuse, gzip and
//!   restarts, and the checkpoint of each;
//! - [`tail`]: one open file, read by offset; rotation and truncation noticed;
//! - [`framing`]: bytes → lines → records (multi-line, container partial records);
//! - [`format`]: records → rows (`syslog`, `json`, `raw`, `docker`, `cri`).
//!
//! One thread polls every tracked file (`poll_interval_ms`) and rescans the globs
//! (`rescan_interval_secs`, and at once when a path is seen to move on). A file renamed
//! or deleted is read to its end through the descriptor we hold. Each chunk holds the rows
//! of one file and carries that file's checkpoint, so files resume independently. A last
//! line without its newline is not archived while the file may still be completed: only
//! when the file is done (rotated away and drained, or deleted) or, if configured, after
//! `partial_line_timeout_secs`.

pub mod config;
pub mod discover;
pub mod format;
pub mod framing;
pub mod identity;
pub mod tail;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use infralog_schemas::extra_key;

pub use self::config::{ContainersConfig, FileConfig, InputConfig, MultilineConfig};
use self::format::{Format, RowWriter};
use self::framing::{Joining, Multiline};
use self::identity::{Found, Position};
use self::tail::{Opened, READ_BLOCK, State, Tail};
use super::SourceContext;
use crate::parse::ParseContext;
use crate::time::{boot_unix_ns, local_utc_offset_secs};

/// One input as the source runs it.
struct Input {
    patterns: Vec<PathBuf>,
    exclude: Vec<String>,
    format: Format,
    joining: Joining,
    utc_offset_secs: i32,
}

/// The inputs that apply on this host: the configured files, and the container log
/// directories that exist.
fn inputs(file: &FileConfig, containers: &ContainersConfig) -> Vec<Input> {
    let host_offset = local_utc_offset_secs();
    let mut out = Vec::new();
    if file.enabled {
        for i in &file.inputs {
            let joining = match (&i.multiline, i.format) {
                (_, Format::Docker) => Joining::Docker,
                (_, Format::Cri) => Joining::Cri,
                (Some(m), _) => Joining::Multiline(Multiline {
                    start: m.start.as_ref().map(|s| s.as_bytes().to_vec()),
                    timeout: Duration::from_millis(m.timeout_ms),
                }),
                (None, _) => Joining::Lines,
            };
            out.push(Input {
                patterns: i.paths.clone(),
                exclude: i.exclude.clone(),
                format: i.format,
                joining,
                utc_offset_secs: i.utc_offset_secs.unwrap_or(host_offset),
            });
        }
    }
    let container = |root: &Path, glob: &str, format, joining| Input {
        patterns: vec![root.join(glob)],
        exclude: Vec::new(),
        format,
        joining,
        utc_offset_secs: 0,
    };
    if containers.docker && containers.docker_root.is_dir() {
        out.push(container(
            &containers.docker_root,
            "*/*-json.log",
            Format::Docker,
            Joining::Docker,
        ));
    }
    if containers.cri && containers.cri_root.is_dir() {
        out.push(container(
            &containers.cri_root,
            "*/*/*.log",
            Format::Cri,
            Joining::Cri,
        ));
    }
    out
}

/// How container joining times out: a runtime that died mid-line never sends the rest.
const CONTAINER_PARTIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Blocks read from one file before the others get a turn.
const BLOCKS_PER_TURN: usize = 64;

/// Starts the file source on its own thread; `None` when no input applies (file source
/// off and no container directory).
pub fn spawn(
    ctx: SourceContext,
    file: &FileConfig,
    containers: &ContainersConfig,
    max_message_bytes: usize,
) -> Result<Option<JoinHandle<Result<()>>>> {
    let inputs = inputs(file, containers);
    if inputs.is_empty() {
        return Ok(None);
    }
    let mut source = FileSource {
        ctx,
        inputs,
        tails: Vec::new(),
        done: HashMap::new(),
        poll: Duration::from_millis(file.poll_interval_ms),
        rescan: Duration::from_secs(file.rescan_interval_secs),
        rotate_wait: Duration::from_secs(file.rotate_wait_secs),
        partial_line: (file.partial_line_timeout_secs > 0)
            .then(|| Duration::from_secs(file.partial_line_timeout_secs)),
        max_bytes: max_message_bytes,
        boot_ns: boot_unix_ns(),
    };
    let handle = std::thread::Builder::new()
        .name("source-file".into())
        .spawn(move || source.run())
        .context("cannot start the file source thread")?;
    Ok(Some(handle))
}

struct FileSource {
    ctx: SourceContext,
    inputs: Vec<Input>,
    tails: Vec<Tail>,
    /// Files closed or found read to their end, with how far they were read: a rotated
    /// sibling no longer than that has nothing new.
    done: HashMap<(u64, u64), u64>,
    poll: Duration,
    rescan: Duration,
    rotate_wait: Duration,
    partial_line: Option<Duration>,
    max_bytes: usize,
    boot_ns: i64,
}

impl FileSource {
    fn run(&mut self) -> Result<()> {
        let mut buf = vec![0u8; READ_BLOCK];
        self.discover(true);
        let mut next_rescan = Instant::now() + self.rescan;
        loop {
            let mut rescan_now = false;
            let mut progressed = false;
            let mut i = 0;
            while i < self.tails.len() {
                let (p, moved) = self.turn(i, &mut buf)?;
                progressed |= p;
                rescan_now |= moved;
                if self.tails[i].state == State::Done {
                    let t = self.tails.swap_remove(i);
                    self.done.insert((t.dev, t.ino), t.position().resume);
                } else {
                    i += 1;
                }
            }
            if self.ctx.stopping() {
                return self.send_all();
            }
            if self.ctx.once && !progressed {
                let now = Instant::now();
                for t in &mut self.tails {
                    // The file is complete as far as this run goes; a line without its
                    // newline still waits for the next.
                    t.flush_open(now, false);
                }
                return self.send_all();
            }
            let now = Instant::now();
            if rescan_now || now >= next_rescan {
                self.discover(false);
                next_rescan = now + self.rescan;
            }
            if !progressed {
                std::thread::sleep(self.poll);
            }
        }
    }

    /// Reads what file `i` has now and sends full or old chunks. Returns whether it read
    /// anything and whether its path moved on.
    fn turn(&mut self, i: usize, buf: &mut [u8]) -> Result<(bool, bool)> {
        let now = Instant::now();
        let mut moved = false;
        let t = &mut self.tails[i];
        if t.state == State::Live && t.path_moved_on() {
            tracing::info!(path = %t.path.display(), "file rotated or deleted: reading it to the end");
            t.state = State::Draining(now);
            moved = true;
        }
        match t.check_truncated() {
            Ok(Some(tr)) => {
                tracing::info!(path = %t.path.display(), "file truncated: reading it from the start");
                let path = t.path.clone();
                let input = t.input;
                // copytruncate: what we had not read yet is in the copy.
                self.adopt_copy(&path, input, &tr.before);
                moved = true;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot check {}: {e}", self.tails[i].path.display()),
        }
        let t = &mut self.tails[i];
        let mut progressed = false;
        for _ in 0..BLOCKS_PER_TURN {
            match t.read_block(buf, now) {
                Ok(0) => break,
                Ok(_) => progressed = true,
                Err(e) => {
                    tracing::warn!("cannot read {}: {e}; closing it", t.path.display());
                    t.state = State::Done;
                    break;
                }
            }
            if t.rows.builder.len() >= self.ctx.chunk_rows {
                send(&self.ctx, t)?;
            }
        }
        let timeout = match self.inputs[t.input].joining {
            Joining::Multiline(ref m) => m.timeout,
            _ => CONTAINER_PARTIAL_TIMEOUT,
        };
        t.expire(now, timeout, self.partial_line);
        if t.at_eof
            && let State::Draining(since) = t.state
            && (self.ctx.once || now.duration_since(since) >= self.rotate_wait)
        {
            t.flush_open(now, true);
            t.state = State::Done;
        }
        let old = t
            .chunk_started
            .is_some_and(|s| now.duration_since(s) >= self.ctx.chunk_max_age);
        if old || t.state == State::Done {
            send(&self.ctx, t)?;
        }
        if t.state == State::Done && t.unlinked() {
            for chunk in t.forget_chunks() {
                self.ctx
                    .chunks
                    .send(chunk)
                    .context("the archive writer stopped")?;
            }
        }
        Ok((progressed, moved))
    }

    fn send_all(&mut self) -> Result<()> {
        for t in &mut self.tails {
            send(&self.ctx, t)?;
        }
        Ok(())
    }

    /// Starts tailing files that appeared. At start-up, also rotated siblings holding data
    /// that was not read before a restart.
    fn discover(&mut self, startup: bool) {
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut found = Vec::new();
        for (i, input) in self.inputs.iter().enumerate() {
            for pattern in &input.patterns {
                for path in discover::expand(pattern) {
                    if discover::excluded(&input.exclude, &path) || !seen.insert(path.clone()) {
                        continue;
                    }
                    found.push((i, path));
                }
                if startup
                    && !discover::has_wildcard(pattern.as_os_str().as_encoded_bytes())
                    && !seen.contains(pattern)
                {
                    // The file may have been rotated away while we were not running.
                    found.push((i, pattern.clone()));
                }
            }
        }
        for (input, path) in found {
            let meta = std::fs::metadata(&path).ok();
            let tracked = meta.as_ref().and_then(|m| {
                self.tails
                    .iter_mut()
                    .find(|t| (t.dev, t.ino) == (m.dev(), m.ino()))
            });
            match (meta.is_some(), tracked) {
                (true, Some(t)) => {
                    if t.path != path && t.state == State::Live {
                        t.rows.set_path(path.display().to_string());
                        t.path = path.clone();
                    }
                }
                (true, None) => self.open_live(input, &path),
                (false, _) => {}
            }
            if startup {
                for sib in discover::rotated_siblings(&path) {
                    if !seen.contains(&sib)
                        && !discover::excluded(&self.inputs[input].exclude, &sib)
                    {
                        self.open_rotated(input, &sib, None);
                    }
                }
            }
        }
    }

    fn open_live(&mut self, input: usize, path: &Path) {
        let opened = match Opened::open(path) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("cannot open {}: {e}", path.display());
                return;
            }
        };
        let pos = match self.lookup(&opened) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot read the checkpoint of {}: {e:#}", path.display());
                return;
            }
        };
        tracing::info!(
            path = %path.display(),
            from = pos.as_ref().map_or(0, |p| p.resume),
            "tailing"
        );
        self.start(input, path, opened, pos.as_ref(), State::Live);
    }

    /// Reads a rotated file from where a checkpoint (or `known`, for a copy made by
    /// copytruncate just now) says its unread part starts; never from its beginning.
    fn open_rotated(&mut self, input: usize, path: &Path, known: Option<&Position>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let id = (meta.dev(), meta.ino());
        if self.tails.iter().any(|t| (t.dev, t.ino) == id)
            || self.done.get(&id).is_some_and(|&len| len >= meta.len())
        {
            return;
        }
        let Ok(opened) = Opened::open(path) else {
            return;
        };
        let pos = match known {
            Some(k) => {
                let same = opened.prefix_fp(k.fp.len) == Some(k.fp)
                    || (discover::is_gz(path) && opened.fp == k.fp);
                same.then(|| k.clone())
            }
            None => self.lookup(&opened).ok().flatten(),
        };
        let unread = pos.as_ref().is_some_and(|p| match opened.len {
            Some(len) => p.resume < len,
            None => opened.gz_size_hint() != Some(p.resume),
        });
        if !unread {
            self.done.insert(id, meta.len());
            return;
        }
        tracing::info!(path = %path.display(), "reading the unread end of a rotated file");
        self.start(
            input,
            path,
            opened,
            pos.as_ref(),
            State::Draining(Instant::now()),
        );
    }

    fn adopt_copy(&mut self, truncated: &Path, input: usize, before: &Position) {
        for sib in discover::rotated_siblings(truncated) {
            self.open_rotated(input, &sib, Some(before));
        }
    }

    fn lookup(&self, o: &Opened) -> Result<Option<Position>> {
        let found = Found {
            dev: o.dev,
            ino: o.ino,
            len: o.len,
            prefix_fp: o.fp,
        };
        identity::lookup(&self.ctx.checkpoints, &found, |n| o.prefix_fp(n))
    }

    fn start(
        &mut self,
        input: usize,
        path: &Path,
        opened: Opened,
        pos: Option<&Position>,
        state: State,
    ) {
        let inp = &self.inputs[input];
        let parse_ctx = ParseContext {
            reference_unix_secs: opened.mtime_secs,
            utc_offset_secs: inp.utc_offset_secs,
            boot_unix_ns: Some(self.boot_ns),
        };
        let rows = RowWriter::new(
            inp.format,
            self.ctx.hostname.clone(),
            path.display().to_string(),
            container_identity(inp.format, path),
            parse_ctx,
            self.max_bytes,
        );
        match Tail::start(
            path.to_path_buf(),
            opened,
            pos,
            inp.joining.clone(),
            self.max_bytes,
            rows,
        ) {
            Ok(mut t) => {
                t.input = input;
                t.state = state;
                self.tails.push(t);
            }
            Err(e) => tracing::warn!("cannot read {}: {e}", path.display()),
        }
    }
}

fn send(ctx: &SourceContext, t: &mut Tail) -> Result<()> {
    if let Some(chunk) = t.take_chunk() {
        ctx.chunks
            .send(chunk)
            .context("the archive writer stopped")?;
    }
    Ok(())
}

/// The `extra` entries naming the container a log file belongs to.
fn container_identity(format: Format, path: &Path) -> Vec<(&'static str, String)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match format {
        Format::Docker => {
            let Some(dir) = path.parent() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            if let Some(id) = dir.file_name() {
                out.push((extra_key::CONTAINER_ID, id.to_string_lossy().into_owned()));
            }
            if let Some(name) = docker_name(&dir.join("config.v2.json")) {
                out.push((extra_key::CONTAINER_NAME, name));
            }
            out
        }
        Format::Cri => {
            match crate::parse::container::cri_path_names(path.as_os_str().as_encoded_bytes()) {
                Some((ns, pod, container)) => vec![
                    (extra_key::K8S_NAMESPACE, text(ns)),
                    (extra_key::K8S_POD, text(pod)),
                    (extra_key::K8S_CONTAINER, text(container)),
                ],
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The container's name from Docker's `config.v2.json` (`"Name": "/web"` → `web`).
fn docker_name(config: &Path) -> Option<String> {
    let text = std::fs::read(config).ok()?;
    let object = crate::parse::json::parse(&text).ok()?;
    let mut name = None;
    object.leaves(|path, v| {
        if let ([b"Name"], crate::parse::json::Value::Str(s)) = (path, v) {
            let mut out = Vec::new();
            crate::parse::json::unescape(s, &mut out);
            name =
                Some(String::from_utf8_lossy(out.strip_prefix(b"/").unwrap_or(&out)).into_owned());
        }
    });
    name
}
