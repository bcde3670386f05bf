//! uid → user name, cached: a journal repeats a handful of uids millions of times.
//!
//! On the host the name comes from the system's user database (`getpwuid_r`, so NSS
//! sources such as LDAP or systemd's dynamic users count). When the collector reads a
//! host's journal from inside a container (`root = "/host"`), the container's user
//! database would name the wrong users: the host's `<root>/etc/passwd` is read instead.

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::PathBuf;

/// Most uids remembered; past that the cache starts over (a host with more distinct
/// users logging than this pays one lookup per new uid, nothing more).
const MAX_CACHED: usize = 4096;

pub struct UserNames {
    /// `Some(<root>/etc/passwd)` when reading another root's journal.
    passwd: Option<PathBuf>,
    cache: HashMap<u32, Option<Box<[u8]>>>,
    buf: Vec<u8>,
}

impl UserNames {
    pub fn new(root: Option<PathBuf>) -> UserNames {
        UserNames {
            passwd: root.map(|r| r.join("etc/passwd")),
            cache: HashMap::new(),
            buf: vec![0; 1024],
        }
    }

    /// The name of `uid`, `None` when no user has it.
    pub fn name(&mut self, uid: u32) -> Option<&[u8]> {
        if !self.cache.contains_key(&uid) {
            if self.cache.len() >= MAX_CACHED {
                self.cache.clear();
            }
            let name = match &self.passwd {
                Some(path) => std::fs::read(path)
                    .ok()
                    .and_then(|text| passwd_name(&text, uid).map(Box::from)),
                None => lookup(uid, &mut self.buf),
            };
            self.cache.insert(uid, name);
        }
        self.cache.get(&uid).and_then(|n| n.as_deref())
    }
}

fn lookup(uid: u32, buf: &mut Vec<u8>) -> Option<Box<[u8]>> {
    loop {
        // SAFETY: passwd is plain data; getpwuid_r writes into it and buf only.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers valid, buf.len() bytes writable.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            let n = buf.len() * 2;
            buf.resize(n, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pw.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name points into buf, NUL-terminated.
        return Some(Box::from(unsafe { CStr::from_ptr(pw.pw_name) }.to_bytes()));
    }
}

/// The name of `uid` in `/etc/passwd` text (`name:x:uid:gid:...` lines).
pub fn passwd_name(text: &[u8], uid: u32) -> Option<&[u8]> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let mut parts = line.split(|&b| b == b':');
        let name = parts.next()?;
        let _password = parts.next()?;
        let id = crate::parse::journal::decimal_u64(parts.next()?)?;
        (id == uid as u64 && !name.is_empty()).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_root_on_this_host() {
        let mut u = UserNames::new(None);
        assert_eq!(u.name(0), Some(&b"root"[..]));
        assert_eq!(u.name(0), Some(&b"root"[..]), "cached");
        assert_eq!(u.name(4_000_000_000), None);
    }

    #[test]
    fn passwd_of_another_root() {
        let text =
            b"root:x:0:0:root:/root:/bin/bash\n#c\nbroken\nalice:x:1000:1000::/home/a:/bin/sh\n";
        assert_eq!(passwd_name(text, 1000), Some(&b"alice"[..]));
        assert_eq!(passwd_name(text, 0), Some(&b"root"[..]));
        assert_eq!(passwd_name(text, 5), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), text).unwrap();
        let mut u = UserNames::new(Some(dir.path().to_path_buf()));
        assert_eq!(u.name(1000), Some(&b"alice"[..]));
    }
}
