//! The sd_journal API of `libsystemd.so.0`, loaded at run time with `dlopen`: no build-time
//! dependency on libsystemd, no LGPL crate, and a collector that still starts (without
//! this source) where libsystemd is absent.
//!
//! Only the calls this source needs are bound. Every function returns a negative errno on
//! failure; [`check`] turns that into an error naming the call.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};

/// `sd_journal_wait` results.
pub const SD_JOURNAL_NOP: c_int = 0;

type Journal = c_void;

/// Declares [`Lib`] (one function pointer per bound symbol, with its C signature from
/// sd-journal.h, a stable ABI since systemd 187) and its loader.
macro_rules! bind {
    ($($field:ident: $sym:literal => $ty:ty,)*) => {
        /// The resolved entry points. Loaded once per process and never unloaded.
        pub struct Lib {
            $($field: $ty,)*
        }

        fn resolve(handle: *mut c_void) -> std::result::Result<Lib, String> {
            Ok(Lib {
                $($field: {
                    let name = concat!($sym, "\0");
                    // SAFETY: handle is valid; the name is NUL-terminated.
                    let p = unsafe { libc::dlsym(handle, name.as_ptr().cast()) };
                    if p.is_null() {
                        return Err(format!("{LIBRARY} has no {}: {}", $sym, dlerror()));
                    }
                    // SAFETY: the symbol is the libsystemd function of this name, whose C
                    // signature is the field's type.
                    unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
                },)*
            })
        }
    };
}

bind! {
    open_directory: "sd_journal_open_directory" =>
        unsafe extern "C" fn(*mut *mut Journal, *const c_char, c_int) -> c_int,
    close: "sd_journal_close" => unsafe extern "C" fn(*mut Journal),
    next: "sd_journal_next" => unsafe extern "C" fn(*mut Journal) -> c_int,
    previous: "sd_journal_previous" => unsafe extern "C" fn(*mut Journal) -> c_int,
    get_realtime_usec: "sd_journal_get_realtime_usec" =>
        unsafe extern "C" fn(*mut Journal, *mut u64) -> c_int,
    get_monotonic_usec: "sd_journal_get_monotonic_usec" =>
        unsafe extern "C" fn(*mut Journal, *mut u64, *mut [u8; 16]) -> c_int,
    enumerate_data: "sd_journal_enumerate_data" =>
        unsafe extern "C" fn(*mut Journal, *mut *const c_void, *mut usize) -> c_int,
    restart_data: "sd_journal_restart_data" => unsafe extern "C" fn(*mut Journal),
    get_cursor: "sd_journal_get_cursor" =>
        unsafe extern "C" fn(*mut Journal, *mut *mut c_char) -> c_int,
    seek_cursor: "sd_journal_seek_cursor" =>
        unsafe extern "C" fn(*mut Journal, *const c_char) -> c_int,
    test_cursor: "sd_journal_test_cursor" =>
        unsafe extern "C" fn(*mut Journal, *const c_char) -> c_int,
    seek_head: "sd_journal_seek_head" => unsafe extern "C" fn(*mut Journal) -> c_int,
    seek_tail: "sd_journal_seek_tail" => unsafe extern "C" fn(*mut Journal) -> c_int,
    wait: "sd_journal_wait" => unsafe extern "C" fn(*mut Journal, u64) -> c_int,
    process: "sd_journal_process" => unsafe extern "C" fn(*mut Journal) -> c_int,
    get_fd: "sd_journal_get_fd" => unsafe extern "C" fn(*mut Journal) -> c_int,
    set_data_threshold: "sd_journal_set_data_threshold" =>
        unsafe extern "C" fn(*mut Journal, usize) -> c_int,
    add_match: "sd_journal_add_match" =>
        unsafe extern "C" fn(*mut Journal, *const c_void, usize) -> c_int,
}

static LIB: OnceLock<std::result::Result<Lib, String>> = OnceLock::new();

/// The library name, as the dynamic loader searches it.
pub const LIBRARY: &str = "libsystemd.so.0";

/// Loads libsystemd (once); the error says why it cannot be used.
pub fn lib() -> Result<&'static Lib> {
    LIB.get_or_init(load)
        .as_ref()
        .map_err(|why| anyhow!("{why}"))
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string owned by libc.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn load() -> std::result::Result<Lib, String> {
    let name = CString::new(LIBRARY).expect("no NUL");
    // SAFETY: a valid C string; the handle is kept for the life of the process.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!("cannot load {LIBRARY}: {}", dlerror()));
    }
    resolve(handle)
}

/// A libsystemd return value: `Ok(r)` for `r >= 0`, else the errno as an error naming the
/// call. EPROTONOSUPPORT gets its own explanation: it is how a reader learns that the
/// journal was written with features this libsystemd does not know, and then reads nothing.
fn check(call: &str, r: c_int) -> Result<c_int> {
    if r >= 0 {
        return Ok(r);
    }
    let err = io::Error::from_raw_os_error(-r);
    if -r == libc::EPROTONOSUPPORT {
        tracing::error!(
            "journald: {call}: the journal uses a format feature this {LIBRARY} does not \
             support (EPROTONOSUPPORT): its entries cannot be read; update libsystemd to the \
             host's systemd version"
        );
    }
    Err(anyhow!("{call}: {err}"))
}

/// An open journal. Not `Send`: libsystemd forbids using a handle from another thread
/// (it checks the pid/thread it was opened in), so it lives and dies on its source thread.
/// `SD_JOURNAL_OS_ROOT` of sd-journal.h: the directory is an OS root, whose
/// `/var/log/journal` and `/run/log/journal` are read.
const SD_JOURNAL_OS_ROOT: c_int = 1 << 4;

pub struct JournalHandle {
    lib: &'static Lib,
    j: *mut Journal,
    /// Reused for cursors handed to libsystemd (`seek_cursor`, `test_cursor`).
    cstr: Vec<u8>,
}

impl JournalHandle {
    /// Opens the journal files in `dir` (one namespace directory), with whole field values
    /// (no data threshold).
    pub fn open_directory(dir: &Path) -> Result<JournalHandle> {
        Self::open(dir, 0)
    }

    /// Opens the default namespace of the system journal below `root`
    /// (`<root>/var/log/journal/*` and `<root>/run/log/journal/*` together), as
    /// `journalctl --root` does: an entry journald flushed from /run to /var is seen once.
    pub fn open_os_root(root: &Path) -> Result<JournalHandle> {
        Self::open(root, SD_JOURNAL_OS_ROOT)
    }

    fn open(dir: &Path, flags: c_int) -> Result<JournalHandle> {
        let lib = lib()?;
        let path = CString::new(dir.as_os_str().as_encoded_bytes())
            .with_context(|| format!("journal directory {} contains NUL", dir.display()))?;
        let mut j = std::ptr::null_mut();
        // SAFETY: out-pointer and C string are valid for the call.
        let r = unsafe { (lib.open_directory)(&mut j, path.as_ptr(), flags) };
        check("sd_journal_open_directory", r)
            .with_context(|| format!("opening the journal in {}", dir.display()))?;
        let mut h = JournalHandle {
            lib,
            j,
            cstr: Vec::new(),
        };
        // SAFETY: valid handle.
        check("sd_journal_set_data_threshold", unsafe {
            (lib.set_data_threshold)(h.j, 0)
        })?;
        h.cstr.reserve(256);
        Ok(h)
    }

    /// Restricts reading to entries with this `FIELD=value` (matches on one field are
    /// ORed, on different fields ANDed).
    pub fn add_match(&mut self, m: &[u8]) -> Result<()> {
        // SAFETY: valid handle; libsystemd copies the bytes.
        check("sd_journal_add_match", unsafe {
            (self.lib.add_match)(self.j, m.as_ptr().cast(), m.len())
        })
        .map(drop)
    }

    /// Moves to the next entry (`sd_journal_next`): `Ok(false)` at the end.
    pub fn step(&mut self) -> Result<bool> {
        // SAFETY: valid handle.
        check("sd_journal_next", unsafe { (self.lib.next)(self.j) }).map(|r| r > 0)
    }

    pub fn step_back(&mut self) -> Result<bool> {
        // SAFETY: valid handle.
        check("sd_journal_previous", unsafe {
            (self.lib.previous)(self.j)
        })
        .map(|r| r > 0)
    }

    pub fn seek_head(&mut self) -> Result<()> {
        // SAFETY: valid handle.
        check("sd_journal_seek_head", unsafe {
            (self.lib.seek_head)(self.j)
        })
        .map(drop)
    }

    pub fn seek_tail(&mut self) -> Result<()> {
        // SAFETY: valid handle.
        check("sd_journal_seek_tail", unsafe {
            (self.lib.seek_tail)(self.j)
        })
        .map(drop)
    }

    fn c_cursor(&mut self, cursor: &str) -> Result<*const c_char> {
        anyhow::ensure!(!cursor.contains('\0'), "cursor contains NUL");
        self.cstr.clear();
        self.cstr.extend_from_slice(cursor.as_bytes());
        self.cstr.push(0);
        Ok(self.cstr.as_ptr().cast())
    }

    pub fn seek_cursor(&mut self, cursor: &str) -> Result<()> {
        let c = self.c_cursor(cursor)?;
        // SAFETY: valid handle and NUL-terminated cursor.
        check("sd_journal_seek_cursor", unsafe {
            (self.lib.seek_cursor)(self.j, c)
        })
        .map(drop)
    }

    /// Whether the current entry is the one `cursor` names.
    pub fn test_cursor(&mut self, cursor: &str) -> Result<bool> {
        let c = self.c_cursor(cursor)?;
        // SAFETY: valid handle and NUL-terminated cursor.
        check("sd_journal_test_cursor", unsafe {
            (self.lib.test_cursor)(self.j, c)
        })
        .map(|r| r > 0)
    }

    /// The cursor of the current entry, written into `out` (replacing its contents).
    pub fn cursor_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let mut p: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid handle and out-pointer; libsystemd mallocs the string.
        check("sd_journal_get_cursor", unsafe {
            (self.lib.get_cursor)(self.j, &mut p)
        })?;
        out.clear();
        // SAFETY: on success p is a NUL-terminated string we own and must free().
        unsafe {
            out.extend_from_slice(CStr::from_ptr(p).to_bytes());
            libc::free(p.cast());
        }
        Ok(())
    }

    pub fn realtime_usec(&mut self) -> Result<u64> {
        let mut v = 0u64;
        // SAFETY: valid handle and out-pointer.
        check("sd_journal_get_realtime_usec", unsafe {
            (self.lib.get_realtime_usec)(self.j, &mut v)
        })?;
        Ok(v)
    }

    /// Monotonic time of the entry and the boot it belongs to.
    pub fn monotonic_usec(&mut self) -> Result<(u64, [u8; 16])> {
        let mut v = 0u64;
        let mut boot = [0u8; 16];
        // SAFETY: valid handle and out-pointers (sd_id128_t is 16 bytes).
        check("sd_journal_get_monotonic_usec", unsafe {
            (self.lib.get_monotonic_usec)(self.j, &mut v, &mut boot)
        })?;
        Ok((v, boot))
    }

    /// Calls `f` with each field (`NAME=value` bytes) of the current entry. The slice is
    /// valid only during the call: libsystemd reuses its buffer for the next field.
    /// Returns the error of a field that could not be read (corrupt, or compressed in a way
    /// this libsystemd does not know); the fields before it were passed to `f`.
    pub fn for_each_field(&mut self, mut f: impl FnMut(&[u8])) -> Option<io::Error> {
        // SAFETY: valid handle.
        unsafe { (self.lib.restart_data)(self.j) };
        loop {
            let mut data: *const c_void = std::ptr::null();
            let mut len = 0usize;
            // SAFETY: valid handle and out-pointers.
            let r = unsafe { (self.lib.enumerate_data)(self.j, &mut data, &mut len) };
            match r {
                0 => return None,
                r if r < 0 => return Some(io::Error::from_raw_os_error(-r)),
                // SAFETY: on success data points to len bytes valid until the next call.
                _ => f(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }),
            }
        }
    }

    /// Waits up to `timeout_usec` for changes. `Ok(true)` when something changed (new
    /// entries, or files added or removed).
    pub fn wait(&mut self, timeout_usec: u64) -> Result<bool> {
        // SAFETY: valid handle.
        check("sd_journal_wait", unsafe {
            (self.lib.wait)(self.j, timeout_usec)
        })
        .map(|r| r != SD_JOURNAL_NOP)
    }

    /// Processes pending inotify events (new, rotated or deleted files).
    pub fn process(&mut self) -> Result<bool> {
        // SAFETY: valid handle.
        check("sd_journal_process", unsafe { (self.lib.process)(self.j) })
            .map(|r| r != SD_JOURNAL_NOP)
    }

    /// The inotify descriptor that becomes readable when the journal changes.
    pub fn fd(&mut self) -> Result<c_int> {
        // SAFETY: valid handle.
        check("sd_journal_get_fd", unsafe { (self.lib.get_fd)(self.j) })
    }
}

impl Drop for JournalHandle {
    fn drop(&mut self) {
        // SAFETY: valid handle, closed once.
        unsafe { (self.lib.close)(self.j) };
    }
}
