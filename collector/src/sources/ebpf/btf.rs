//! Reads member offsets and enum values from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`). Rust eBPF has no CO-RE relocations, so the programs get
//! every kernel struct offset they use from here, patched in before load. aya parses BTF
//! too, but does not expose member offsets.
//!
//! Format: a header, a type section (records of 12 bytes plus kind-specific trailers) and
//! a string section; type ids count from 1 in section order.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};

const MAGIC: u16 = 0xeb9f;
const BTF_INT: u8 = 1;
const BTF_PTR: u8 = 2;
const BTF_ARRAY: u8 = 3;
const BTF_STRUCT: u8 = 4;
const BTF_UNION: u8 = 5;
const BTF_ENUM: u8 = 6;
const BTF_FWD: u8 = 7;
const BTF_TYPEDEF: u8 = 8;
const BTF_VOLATILE: u8 = 9;
const BTF_CONST: u8 = 10;
const BTF_RESTRICT: u8 = 11;
const BTF_FUNC: u8 = 12;
const BTF_FUNC_PROTO: u8 = 13;
const BTF_VAR: u8 = 14;
const BTF_DATASEC: u8 = 15;
const BTF_FLOAT: u8 = 16;
const BTF_DECL_TAG: u8 = 17;
const BTF_TYPE_TAG: u8 = 18;
const BTF_ENUM64: u8 = 19;

#[derive(Clone, Copy)]
struct TypeRec {
    name_off: u32,
    info: u32,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    /// Offset of the kind-specific trailer in `data`.
    trailer: usize,
}

impl TypeRec {
    fn kind(&self) -> u8 {
        ((self.info >> 24) & 0x1f) as u8
    }
    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
    fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }
}

/// A parsed BTF blob.
pub struct Btf {
    data: Vec<u8>,
    strings: usize,
    strings_end: usize,
    types: Vec<TypeRec>,
    /// Named structs, unions and enums by name (first definition wins).
    by_name: HashMap<(u8, Vec<u8>), u32>,
}

fn u32_at(d: &[u8], at: usize) -> Result<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .ok_or_else(|| anyhow!("BTF truncated at {at}"))
}

impl Btf {
    /// The running kernel's BTF.
    pub fn from_sys_fs() -> Result<Btf> {
        let path = "/sys/kernel/btf/vmlinux";
        let data = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
        Btf::parse(data).with_context(|| format!("cannot parse {path}"))
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            bail!("not little-endian BTF");
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let type_off = hdr_len + u32_at(&data, 8)? as usize;
        let type_end = type_off + u32_at(&data, 12)? as usize;
        let strings = hdr_len + u32_at(&data, 16)? as usize;
        let strings_end = strings + u32_at(&data, 20)? as usize;
        if type_end > data.len() || strings_end > data.len() {
            bail!("BTF sections exceed the blob");
        }
        let mut types = vec![TypeRec {
            name_off: 0,
            info: 0,
            size_or_type: 0,
            trailer: 0,
        }];
        let mut at = type_off;
        while at < type_end {
            let rec = TypeRec {
                name_off: u32_at(&data, at)?,
                info: u32_at(&data, at + 4)?,
                size_or_type: u32_at(&data, at + 8)?,
                trailer: at + 12,
            };
            let vlen = rec.vlen();
            let trailer_len = match rec.kind() {
                BTF_INT | BTF_VAR | BTF_DECL_TAG => 4,
                BTF_ARRAY => 12,
                BTF_STRUCT | BTF_UNION | BTF_DATASEC | BTF_ENUM64 => 12 * vlen,
                BTF_ENUM | BTF_FUNC_PROTO => 8 * vlen,
                BTF_PTR | BTF_FWD | BTF_TYPEDEF | BTF_VOLATILE | BTF_CONST | BTF_RESTRICT
                | BTF_FUNC | BTF_FLOAT | BTF_TYPE_TAG => 0,
                k => bail!("unknown BTF kind {k} at byte {at}"),
            };
            types.push(rec);
            at = rec.trailer + trailer_len;
        }
        let mut btf = Btf {
            data,
            strings,
            strings_end,
            types,
            by_name: HashMap::new(),
        };
        for id in 1..btf.types.len() as u32 {
            let t = btf.types[id as usize];
            if matches!(t.kind(), BTF_STRUCT | BTF_UNION | BTF_ENUM | BTF_ENUM64) && t.name_off != 0
            {
                let key = (t.kind(), btf.name(t.name_off).to_vec());
                btf.by_name.entry(key).or_insert(id);
            }
        }
        Ok(btf)
    }

    fn name(&self, off: u32) -> &[u8] {
        let start = self.strings + off as usize;
        let s = self.data.get(start..self.strings_end).unwrap_or(&[]);
        &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
    }

    /// Follows typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize).map(TypeRec::kind) {
                Some(BTF_TYPEDEF | BTF_VOLATILE | BTF_CONST | BTF_RESTRICT | BTF_TYPE_TAG) => {
                    id = self.types[id as usize].size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// Bit offset and type of member `name` of struct/union `id`, looking through
    /// anonymous struct/union members.
    fn member(&self, id: u32, name: &[u8]) -> Option<(u32, u32)> {
        let t = *self.types.get(id as usize)?;
        if !matches!(t.kind(), BTF_STRUCT | BTF_UNION) {
            return None;
        }
        for i in 0..t.vlen() {
            let at = t.trailer + 12 * i;
            let m_name = u32_at(&self.data, at).ok()?;
            let m_type = self.resolve(u32_at(&self.data, at + 4).ok()?);
            let m_off = u32_at(&self.data, at + 8).ok()?;
            let bits = if t.kind_flag() {
                m_off & 0xff_ffff
            } else {
                m_off
            };
            if m_name != 0 && self.name(m_name) == name {
                return Some((bits, m_type));
            }
            if m_name == 0
                && let Some((inner, ty)) = self.member(m_type, name)
            {
                return Some((bits + inner, ty));
            }
        }
        None
    }

    fn named(&self, kinds: &[u8], name: &str) -> Result<u32> {
        kinds
            .iter()
            .find_map(|&k| self.by_name.get(&(k, name.as_bytes().to_vec())).copied())
            .ok_or_else(|| anyhow!("kernel BTF has no type `{name}`"))
    }

    /// Byte offset of `path` (dot-separated members, e.g. `path.dentry`) in struct `ty`.
    pub fn offset_of(&self, ty: &str, path: &str) -> Result<u32> {
        let mut id = self.named(&[BTF_STRUCT, BTF_UNION], ty)?;
        let mut bits = 0;
        for part in path.split('.') {
            let (b, next) = self
                .member(id, part.as_bytes())
                .ok_or_else(|| anyhow!("kernel BTF: `{ty}` has no member `{path}`"))?;
            bits += b;
            id = next;
        }
        if bits % 8 != 0 {
            bail!("kernel BTF: `{ty}.{path}` is a bit field");
        }
        Ok(bits / 8)
    }

    /// Whether struct `ty` has member `path`.
    pub fn has_member(&self, ty: &str, path: &str) -> bool {
        self.offset_of(ty, path).is_ok()
    }

    /// Value of enumerator `variant` of enum `ty`.
    pub fn enum_value(&self, ty: &str, variant: &str) -> Result<u64> {
        let id = self.named(&[BTF_ENUM, BTF_ENUM64], ty)?;
        let t = self.types[id as usize];
        let width = if t.kind() == BTF_ENUM { 8 } else { 12 };
        for i in 0..t.vlen() {
            let at = t.trailer + width * i;
            if self.name(u32_at(&self.data, at)?) == variant.as_bytes() {
                let lo = u32_at(&self.data, at + 4)? as u64;
                let hi = if width == 12 {
                    u32_at(&self.data, at + 8)? as u64
                } else {
                    0
                };
                return Ok(hi << 32 | lo);
            }
        }
        bail!("kernel BTF: enum `{ty}` has no `{variant}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob: `struct outer { int a; union { long b; struct { int c; int d; }; }; }`
    /// and `enum e { X = 7 }`.
    fn synthetic() -> Vec<u8> {
        let strings = b"\0int\0long\0outer\0a\0b\0c\0d\0e\0X\0".to_vec();
        let s = |name: &str| {
            let needle = format!("\0{name}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types = Vec::new();
        let mut rec = |name: u32, kind: u32, vlen: u32, size: u32, trailer: &[u32]| {
            types.extend_from_slice(&name.to_le_bytes());
            types.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
            types.extend_from_slice(&size.to_le_bytes());
            for t in trailer {
                types.extend_from_slice(&t.to_le_bytes());
            }
        };
        rec(s("int"), 1, 0, 4, &[32]); // 1: int
        rec(s("long"), 1, 0, 8, &[64]); // 2: long
        rec(0, 4, 2, 8, &[s("c"), 1, 0, s("d"), 1, 32]); // 3: anon struct {c, d}
        rec(0, 5, 2, 8, &[s("b"), 2, 0, 0, 3, 0]); // 4: anon union {b, struct}
        rec(s("outer"), 4, 2, 16, &[s("a"), 1, 0, 0, 4, 64]); // 5: outer
        rec(s("e"), 6, 1, 4, &[s("X"), 7]); // 6: enum e
        let mut blob = Vec::new();
        blob.extend_from_slice(&MAGIC.to_le_bytes());
        blob.extend_from_slice(&[1, 0]); // version, flags
        blob.extend_from_slice(&24u32.to_le_bytes());
        blob.extend_from_slice(&0u32.to_le_bytes());
        blob.extend_from_slice(&(types.len() as u32).to_le_bytes());
        blob.extend_from_slice(&(types.len() as u32).to_le_bytes());
        blob.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        blob.extend_from_slice(&types);
        blob.extend_from_slice(&strings);
        blob
    }

    #[test]
    fn offsets_through_anonymous_members() {
        let btf = Btf::parse(synthetic()).unwrap();
        assert_eq!(btf.offset_of("outer", "a").unwrap(), 0);
        assert_eq!(btf.offset_of("outer", "b").unwrap(), 8);
        assert_eq!(btf.offset_of("outer", "c").unwrap(), 8);
        assert_eq!(btf.offset_of("outer", "d").unwrap(), 12);
        assert!(btf.offset_of("outer", "z").is_err());
        assert!(btf.offset_of("nope", "a").is_err());
        assert_eq!(btf.enum_value("e", "X").unwrap(), 7);
        assert!(Btf::parse(vec![0; 8]).is_err());
    }

    #[test]
    fn running_kernel_offsets() {
        // /sys/kernel/btf/vmlinux is world-readable where it exists.
        let Ok(btf) = Btf::from_sys_fs() else {
            eprintln!("no kernel BTF here; skipping");
            return;
        };
        // Stable facts: the first members of these structs.
        assert_eq!(btf.offset_of("msghdr", "msg_name").unwrap(), 0);
        assert_eq!(btf.offset_of("inode", "i_mode").unwrap(), 0);
        let dentry = btf.offset_of("unix_sock", "path.dentry").unwrap();
        assert_eq!(dentry, btf.offset_of("unix_sock", "path").unwrap() + 8);
        assert_eq!(btf.enum_value("iter_type", "ITER_UBUF").unwrap(), 0);
    }
}
