// SPDX-License-Identifier: GPL-3.0-or-later
//! Go executables that use `crypto/tls`: where `(*Conn).Write`,
//! `(*Conn).Read` and `(*Conn).handshakeContext` are, as file offsets for
//! uprobes, and the file offsets of their RET instructions (Go code gets no
//! uretprobes: its stacks move; bpf/go_tls.bpf.h).
//!
//! The functions are found in `.symtab` or, in a stripped binary (`go
//! build -ldflags=-s -w`), in `.gopclntab`, the function table the Go
//! runtime itself needs (kept by the linker; formats of Go 1.18-1.19,
//! magic `0xfffffff0`, and 1.20+, `0xfffffff1`, whose header is the same).
//! The Go version comes from `.go.buildinfo`; the register ABI the probes
//! read needs Go 1.17 or later, and x86-64 (the RETs are found with the
//! `iced-x86` decoder). Never panics on any input (fuzzed:
//! `fuzz/fuzz_targets/go_pclntab.rs`).

use object::{Object, ObjectSection, ObjectSymbol};

/// `crypto/tls.(*Conn).Write`.
pub const WRITE: &str = "crypto/tls.(*Conn).Write";
/// `crypto/tls.(*Conn).Read`.
pub const READ: &str = "crypto/tls.(*Conn).Read";
/// `crypto/tls.(*Conn).handshakeContext` (Go 1.17+; optional).
pub const HANDSHAKE: &str = "crypto/tls.(*Conn).handshakeContext";

/// Functions whose body is larger than this are not disassembled.
const MAX_FUNC: u64 = 1 << 20;

/// One function to probe, as offsets in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoFunc {
    /// Its entry.
    pub entry: u64,
    /// Each RET instruction.
    pub rets: Vec<u64>,
}

/// A Go binary with `crypto/tls` that can be probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoTls {
    /// `go1.19.8` (from `.go.buildinfo`), if it says.
    pub version: Option<String>,
    /// The symbols came from `.gopclntab` (stripped binary).
    pub from_pclntab: bool,
    pub write: GoFunc,
    pub read: GoFunc,
    pub handshake: Option<GoFunc>,
}

/// What an executable is, for Go TLS capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GoVerdict {
    /// Not a Go binary, or one without `crypto/tls`.
    NotGoTls,
    /// Go with `crypto/tls`, probed.
    Supported(GoTls),
    /// Go with (or maybe with) `crypto/tls` that cannot be probed: why.
    Unsupported(String),
}

/// Look at an ELF file's bytes.
pub fn inspect(data: &[u8]) -> GoVerdict {
    let Ok(file) = object::File::parse(data) else {
        return GoVerdict::NotGoTls;
    };
    let pcln = file.section_by_name(".gopclntab");
    let buildinfo = file.section_by_name(".go.buildinfo");
    if pcln.is_none() && buildinfo.is_none() {
        return GoVerdict::NotGoTls;
    }
    let version = buildinfo
        .as_ref()
        .and_then(|s| s.data().ok())
        .and_then(buildinfo_version);
    // the symbols: .symtab first, .gopclntab else
    let mut found: [Option<(u64, u64)>; 3] = [None; 3];
    for sym in file.symbols() {
        let Ok(name) = sym.name() else { continue };
        if let Some(i) = [WRITE, READ, HANDSHAKE].iter().position(|n| *n == name) {
            if sym.address() != 0 {
                found[i] = Some((sym.address(), sym.address().saturating_add(sym.size())));
            }
        }
    }
    let mut from_pclntab = false;
    if found[0].is_none() || found[1].is_none() {
        let Some(tab) = pcln.as_ref().and_then(|s| s.data().ok()) else {
            return GoVerdict::NotGoTls;
        };
        let text = file
            .section_by_name(".text")
            .map(|s| s.address())
            .unwrap_or(0);
        match Pclntab::parse(tab, text) {
            Some(p) => {
                for (i, n) in [WRITE, READ, HANDSHAKE].iter().enumerate() {
                    found[i] = p.find(n);
                }
                from_pclntab = true;
            }
            None if contains(data, WRITE.as_bytes()) => {
                return GoVerdict::Unsupported(format!(
                    "Go {}: no symbol table and a .gopclntab format this version does not read \
                     (Go 1.18+ is read)",
                    version.as_deref().unwrap_or("(version unknown)")
                ));
            }
            None => return GoVerdict::NotGoTls,
        }
    }
    let (Some(w), Some(r)) = (found[0], found[1]) else {
        return GoVerdict::NotGoTls; // Go without crypto/tls
    };
    if let Some(minor) = version.as_deref().and_then(go_minor) {
        if minor < 17 {
            return GoVerdict::Unsupported(format!(
                "{}: Go before 1.17 has no register ABI, which the probes read",
                version.as_deref().unwrap_or("")
            ));
        }
    }
    if file.architecture() != object::Architecture::X86_64 {
        return GoVerdict::Unsupported(format!(
            "Go TLS capture is x86-64 only (this binary is {:?})",
            file.architecture()
        ));
    }
    let func = |(start, end): (u64, u64)| -> Result<GoFunc, String> {
        let (off, code) = code_at(&file, data, start, end)?;
        let rets = ret_offsets(code, start, off);
        if rets.is_empty() {
            return Err(format!("no RET found in the function at {start:#x}"));
        }
        Ok(GoFunc {
            entry: entry_offset(code, start, off),
            rets,
        })
    };
    let (write, read) = match (func(w), func(r)) {
        (Ok(w), Ok(r)) => (w, r),
        (Err(e), _) | (_, Err(e)) => return GoVerdict::Unsupported(e),
    };
    GoVerdict::Supported(GoTls {
        version,
        from_pclntab,
        write,
        read,
        handshake: found[2].and_then(|h| func(h).ok()),
    })
}

fn contains(data: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(data, needle).is_some()
}

/// `go1.19.8` → 19.
fn go_minor(v: &str) -> Option<u32> {
    let rest = v.strip_prefix("go1.")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The Go version in a `.go.buildinfo` section (Go 1.18+ writes it inline:
/// flag bit 2 at byte 15, then a varint-prefixed string at byte 32).
pub fn buildinfo_version(d: &[u8]) -> Option<String> {
    if d.len() < 33 || &d[..14] != b"\xff Go buildinf:" || d[15] & 2 == 0 {
        return None;
    }
    let (len, n) = uvarint(&d[32..])?;
    let start = 32usize.checked_add(n)?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let s = std::str::from_utf8(d.get(start..end)?).ok()?;
    s.starts_with("go").then(|| s.to_string())
}

fn uvarint(d: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in d.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The bytes of [start, end) (virtual addresses) and their file offset.
fn code_at<'a>(
    file: &object::File<'a>,
    data: &'a [u8],
    start: u64,
    end: u64,
) -> Result<(u64, &'a [u8]), String> {
    if end <= start || end - start > MAX_FUNC {
        return Err(format!(
            "function at {start:#x}: size {} not usable",
            end.wrapping_sub(start)
        ));
    }
    for s in file.sections() {
        let (a, size) = (s.address(), s.size());
        if start < a || end > a.saturating_add(size) {
            continue;
        }
        let Some((off, fsize)) = s.file_range() else {
            continue;
        };
        let rel = start - a;
        if rel.saturating_add(end - start) > fsize {
            continue;
        }
        let from = off + rel;
        let to = from + (end - start);
        let code = usize::try_from(from)
            .ok()
            .zip(usize::try_from(to).ok())
            .and_then(|(f, t)| data.get(f..t))
            .ok_or_else(|| format!("function at {start:#x}: outside the file"))?;
        return Ok((from, code));
    }
    Err(format!("function at {start:#x}: in no section of the file"))
}

/// The file offset where an entry uprobe goes in the Go function `code`
/// (loaded at `ip`, found at file offset `off`): past its stack check.
/// A Go function begins `[LEA/MOV/SUB r12 ...;] CMP rsp|r12, [r14+0x10];
/// Jcc morestack`, and the morestack path ends with a jump back to the
/// function's first instruction once the goroutine's stack has grown: an
/// uprobe there would fire twice for one call (a request recorded twice,
/// seen in the kernel matrix with 8 new goroutines at a time). The
/// instruction after the Jcc runs once per call, with the arguments
/// still in their registers (the check touches only R12 and the flags).
/// Anything else (no such check: a function with no frame): `off`.
pub fn entry_offset(code: &[u8], ip: u64, off: u64) -> u64 {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};
    let mut d = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut ins = iced_x86::Instruction::default();
    let mut checked = false;
    for _ in 0..6 {
        if !d.can_decode() {
            break;
        }
        d.decode_out(&mut ins);
        if ins.is_invalid() {
            break;
        }
        let r12_only = ins.op_count() >= 1
            && ins.op0_kind() == OpKind::Register
            && ins.op0_register() == Register::R12;
        match ins.mnemonic() {
            Mnemonic::Lea | Mnemonic::Mov | Mnemonic::Sub if r12_only && !checked => {}
            Mnemonic::Cmp
                if !checked
                    && (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory)
                    && ins.memory_base() == Register::R14
                    && ins.memory_displacement64() == 0x10 =>
            {
                checked = true;
            }
            // a bounds check of a huge frame (JB/JCS) before the compare
            Mnemonic::Jb | Mnemonic::Jbe | Mnemonic::Jae | Mnemonic::Ja
                if ins.op0_kind() == OpKind::NearBranch64
                    && ins.near_branch_target() > ins.ip() =>
            {
                if checked {
                    return off + (ins.next_ip() - ip);
                }
            }
            _ => break,
        }
    }
    off
}

/// File offsets of the RET instructions of x86-64 `code` (loaded at `ip`,
/// found at file offset `off`).
pub fn ret_offsets(code: &[u8], ip: u64, off: u64) -> Vec<u64> {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let mut d = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut out = Vec::new();
    let mut ins = iced_x86::Instruction::default();
    while d.can_decode() {
        d.decode_out(&mut ins);
        if ins.is_invalid() {
            continue;
        }
        if ins.mnemonic() == Mnemonic::Ret {
            out.push(off + (ins.ip() - ip));
        }
    }
    out
}

/// A Go 1.18+ `.gopclntab`: its function table.
#[derive(Clone, Debug)]
pub struct Pclntab<'a> {
    data: &'a [u8],
    ptr: usize,
    nfunc: usize,
    text: u64,
    funcname: usize,
    pcln: usize,
}

impl<'a> Pclntab<'a> {
    /// Parses the header; `text` (the `.text` address) stands in for a
    /// `textStart` of 0 (a position-independent build relocates it).
    pub fn parse(data: &'a [u8], text: u64) -> Option<Pclntab<'a>> {
        let magic = u32::from_le_bytes(data.get(..4)?.try_into().ok()?);
        if magic != 0xffff_fff0 && magic != 0xffff_fff1 {
            return None;
        }
        if data.get(4..6)? != [0, 0] {
            return None;
        }
        let ptr = usize::from(*data.get(7)?);
        if ptr != 8 && ptr != 4 {
            return None;
        }
        let word = |i: usize| -> Option<u64> {
            let at = 8 + i * ptr;
            let b = data.get(at..at + ptr)?;
            Some(if ptr == 8 {
                u64::from_le_bytes(b.try_into().ok()?)
            } else {
                u64::from(u32::from_le_bytes(b.try_into().ok()?))
            })
        };
        let nfunc = usize::try_from(word(0)?).ok()?;
        let text_start = word(2)?;
        let funcname = usize::try_from(word(3)?).ok()?;
        let pcln = usize::try_from(word(7)?).ok()?;
        // the function table: nfunc + 1 pairs of u32 must fit
        let table_end = nfunc.checked_add(1)?.checked_mul(8)?.checked_add(pcln)?;
        if table_end > data.len() || funcname >= data.len() {
            return None;
        }
        Some(Pclntab {
            data,
            ptr,
            nfunc,
            text: if text_start != 0 { text_start } else { text },
            funcname,
            pcln,
        })
    }

    /// Functions in the table.
    pub fn len(&self) -> usize {
        self.nfunc
    }

    pub fn is_empty(&self) -> bool {
        self.nfunc == 0
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.data.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    /// Function `i`: its name and [entry, end) addresses.
    pub fn func(&self, i: usize) -> Option<(&'a [u8], u64, u64)> {
        if i >= self.nfunc {
            return None;
        }
        let at = self.pcln.checked_add(i.checked_mul(8)?)?;
        let entry = self.u32_at(at)?;
        let funcoff = usize::try_from(self.u32_at(at + 4)?).ok()?;
        let end = self.u32_at(at + 8)?; // the next entry (the last: end of text)
        let f = self.pcln.checked_add(funcoff)?;
        let name_off = usize::try_from(self.u32_at(f.checked_add(4)?)?).ok()?;
        let name_at = self.funcname.checked_add(name_off)?;
        let rest = self.data.get(name_at..)?;
        let name = &rest[..memchr::memchr(0, rest)?];
        let start = self.text.checked_add(u64::from(entry))?;
        let end = self.text.checked_add(u64::from(end))?;
        (end > start).then_some((name, start, end))
    }

    /// The [entry, end) of the function named `name`.
    pub fn find(&self, name: &str) -> Option<(u64, u64)> {
        (0..self.nfunc).find_map(|i| {
            let (n, s, e) = self.func(i)?;
            (n == name.as_bytes()).then_some((s, e))
        })
    }

    /// Pointer size the table was written for.
    pub fn ptr_size(&self) -> usize {
        self.ptr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(go_minor("go1.19.8"), Some(19));
        assert_eq!(go_minor("go1.21rc2"), Some(21));
        assert_eq!(go_minor("devel +abc"), None);
        let mut b = b"\xff Go buildinf:\x08\x02".to_vec();
        b.resize(32, 0);
        b.push(8);
        b.extend_from_slice(b"go1.19.8");
        assert_eq!(buildinfo_version(&b).as_deref(), Some("go1.19.8"));
        b[15] = 0;
        assert_eq!(buildinfo_version(&b), None);
        assert_eq!(buildinfo_version(&[]), None);
    }

    #[test]
    fn the_entry_probe_goes_past_the_stack_check() {
        // Go 1.19's crypto/tls.(*Conn).Write (a frame > 0x80 bytes):
        // lea r12,[rsp-68h]; cmp r12,[r14+10h]; jbe +0x764; sub rsp,0e8h
        let big = [
            0x4c, 0x8d, 0x64, 0x24, 0x98, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x64, 0x07, 0x00,
            0x00, 0x48, 0x81, 0xec, 0xe8, 0x00, 0x00, 0x00,
        ];
        assert_eq!(entry_offset(&big, 0x594a60, 0x194a60), 0x194a60 + 15);
        // a small frame: cmp rsp,[r14+10h]; jbe +0x40; push rbp
        let small = [0x49, 0x3b, 0x66, 0x10, 0x76, 0x40, 0x55];
        assert_eq!(entry_offset(&small, 0x1000, 0x200), 0x206);
        // no stack check (a leaf): the function's first instruction
        let leaf = [0x48, 0x89, 0xc3, 0xc3];
        assert_eq!(entry_offset(&leaf, 0x1000, 0x200), 0x200);
        // a compare with something else than the stack bound: not skipped
        let other = [0x48, 0x3b, 0x43, 0x10, 0x76, 0x40];
        assert_eq!(entry_offset(&other, 0x1000, 0x200), 0x200);
        // a backward branch after the check: not the morestack jump
        let back = [0x49, 0x3b, 0x66, 0x10, 0x76, 0xf0];
        assert_eq!(entry_offset(&back, 0x1000, 0x200), 0x200);
        assert_eq!(entry_offset(&[], 0, 0x200), 0x200);
    }

    #[test]
    fn rets_are_found() {
        // push rbp; mov rbp,rsp; pop rbp; ret; int3; ret imm16
        let code = [0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3, 0xcc, 0xc2, 0x08, 0x00];
        assert_eq!(ret_offsets(&code, 0x1000, 0x200), vec![0x205, 0x207]);
        assert!(ret_offsets(&[], 0, 0).is_empty());
    }

    /// A table with two functions built by hand (Go 1.18 layout).
    fn table() -> Vec<u8> {
        let mut d = vec![0u8; 8 + 8 * 8];
        d[..4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        d[6] = 1;
        d[7] = 8;
        let names = b"main.a\0crypto/tls.(*Conn).Read\0";
        let funcname = d.len();
        d.extend_from_slice(names);
        let pcln = d.len();
        // functab: (entry, funcoff) x 2, then the end entry
        let functab = [(0u32, 24u32), (0x40, 32), (0x100, 0)];
        for (e, f) in functab {
            d.extend_from_slice(&e.to_le_bytes());
            d.extend_from_slice(&f.to_le_bytes());
        }
        // _func records at pcln+24 and pcln+32: entryOff, nameOff
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&0x40u32.to_le_bytes());
        d.extend_from_slice(&7u32.to_le_bytes());
        let put = |d: &mut Vec<u8>, i: usize, v: u64| {
            d[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut d, 0, 2);
        put(&mut d, 2, 0x401000);
        put(&mut d, 3, funcname as u64);
        put(&mut d, 7, pcln as u64);
        d
    }

    #[test]
    fn a_hand_made_table() {
        let d = table();
        let p = Pclntab::parse(&d, 0).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.find("main.a"), Some((0x401000, 0x401040)));
        assert_eq!(p.find(READ), Some((0x401040, 0x401100)));
        assert_eq!(p.find(WRITE), None);
        // every truncation parses or not, never panics
        for n in 0..d.len() {
            if let Some(p) = Pclntab::parse(&d[..n], 0) {
                for i in 0..p.len() + 1 {
                    let _ = p.func(i);
                }
            }
        }
    }

    #[test]
    fn this_test_binary_is_not_go() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(inspect(&exe), GoVerdict::NotGoTls);
        assert_eq!(inspect(b""), GoVerdict::NotGoTls);
    }
}
