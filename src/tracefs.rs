// SPDX-License-Identifier: GPL-3.0-or-later
//! tracefs: find or mount it, and verify the syscall tracepoint layouts the
//! BPF programs assume (`struct sys_enter_ctx` / `sys_exit_ctx` in
//! bpf/osprey.bpf.c).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Syscall tracepoints Osprey attaches to, with the argument names whose
/// offsets the BPF side assumes (args[i] at offset 16 + 8*i).
pub const SYSCALLS: &[(&str, &[&str])] = &[
    ("read", &["fd", "buf", "count"]),
    ("write", &["fd", "buf", "count"]),
    ("readv", &["fd", "vec", "vlen"]),
    ("writev", &["fd", "vec", "vlen"]),
    ("recvfrom", &["fd", "ubuf", "size"]),
    ("sendto", &["fd", "buff", "len"]),
    ("recvmsg", &["fd", "msg"]),
    ("sendmsg", &["fd", "msg"]),
    ("sendfile64", &["out_fd"]),
    ("splice", &["fd_in", "off_in", "fd_out"]),
    ("sendmmsg", &["fd", "mmsg", "vlen"]),
    ("recvmmsg", &["fd", "mmsg", "vlen"]),
    ("connect", &["fd"]),
    ("accept", &["fd"]),
    ("accept4", &["fd"]),
    ("close", &["fd"]),
];

/// Tracepoints Osprey attaches to: `syscalls/sys_{enter,exit}_NAME`, except
/// close (enter only).
pub fn attached_tracepoints() -> Vec<String> {
    let mut v = Vec::new();
    for (name, _) in SYSCALLS {
        v.push(format!("sys_enter_{name}"));
        if *name != "close" {
            v.push(format!("sys_exit_{name}"));
        }
    }
    v
}

fn is_tracefs(p: &Path) -> bool {
    p.join("events").is_dir()
}

/// Returns the tracefs root, mounting it at /sys/kernel/tracing if needed.
pub fn ensure_mounted() -> Result<PathBuf> {
    if let Some(p) = find() {
        return Ok(p);
    }
    let target = Path::new(CANDIDATES[0]);
    if !target.is_dir() {
        bail!(
            "tracefs is not mounted and {} does not exist (kernel built without CONFIG_TRACING?)",
            target.display()
        );
    }
    let src = c"tracefs";
    let dst = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        bail!(
            "tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {e} \
             (mounting needs CAP_SYS_ADMIN: run as root, or mount it yourself: mount -t tracefs nodev /sys/kernel/tracing)"
        );
    }
    log::info!("mounted tracefs at /sys/kernel/tracing");
    find().context("tracefs mounted but /sys/kernel/tracing/events is missing")
}

/// The tracefs root if it is mounted (no side effects).
pub fn find() -> Option<PathBuf> {
    CANDIDATES.iter().map(PathBuf::from).find(|p| is_tracefs(p))
}

/// One `field:` line of a tracepoint format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub decl: String,
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
}

/// Parse a tracefs `format` file into its fields. Never panics.
pub fn parse_format(text: &str) -> Vec<Field> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else {
            continue;
        };
        let mut decl = None;
        let (mut offset, mut size, mut signed) = (None, None, false);
        for part in rest.split(';') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("offset:") {
                offset = v.trim().parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.trim().parse().ok();
            } else if let Some(v) = part.strip_prefix("signed:") {
                signed = v.trim() == "1";
            } else if decl.is_none() && !part.is_empty() {
                decl = Some(part.to_string());
            }
        }
        let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) else {
            continue;
        };
        let name = decl
            .rsplit(|c: char| c.is_whitespace() || c == '*')
            .next()
            .unwrap_or("")
            .split('[')
            .next()
            .unwrap_or("")
            .to_string();
        out.push(Field {
            decl,
            name,
            offset,
            size,
            signed,
        });
    }
    out
}

/// Offset of `child_pid` in a `sched:sched_process_fork` format (4 bytes,
/// within the 64 bytes the BPF side reads): 20 with the `__data_loc`
/// comm strings of recent kernels, 44 with the `char[16]` comms of older
/// ones.
pub fn fork_child_pid_offset(fields: &[Field]) -> Result<u32, String> {
    let f = fields
        .iter()
        .find(|f| f.name == "child_pid")
        .ok_or("no field child_pid")?;
    if f.size != 4 || f.offset < 8 || f.offset + 4 > 64 {
        return Err(format!(
            "child_pid at offset {} size {} (expected 4 bytes within the first 64)",
            f.offset, f.size
        ));
    }
    Ok(f.offset as u32)
}

/// The `child_pid` offset of this kernel's sched_process_fork tracepoint.
pub fn fork_child_offset(root: &Path) -> Result<u32, String> {
    let path = root.join("events/sched/sched_process_fork/format");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    fork_child_pid_offset(&parse_format(&text))
}

/// Check a sys_enter format: argument `i` named `args[i]` at 16 + 8*i, 8 bytes.
pub fn check_enter_layout(fields: &[Field], args: &[&str]) -> Result<(), String> {
    let nr = fields
        .iter()
        .find(|f| f.name == "__syscall_nr")
        .ok_or("no __syscall_nr field")?;
    if nr.offset != 8 {
        return Err(format!("__syscall_nr at offset {} (expected 8)", nr.offset));
    }
    for (i, want) in args.iter().enumerate() {
        let f = fields
            .iter()
            .find(|f| f.name == *want)
            .ok_or_else(|| format!("argument `{want}` not found"))?;
        let off = 16 + 8 * i;
        if f.offset != off || f.size != 8 {
            return Err(format!(
                "argument `{want}` at offset {} size {} (expected offset {off} size 8)",
                f.offset, f.size
            ));
        }
    }
    Ok(())
}

/// Check a sys_exit format: `long ret` at offset 16, 8 bytes, signed.
pub fn check_exit_layout(fields: &[Field]) -> Result<(), String> {
    let f = fields
        .iter()
        .find(|f| f.name == "ret")
        .ok_or("no `ret` field")?;
    if f.offset != 16 || f.size != 8 || !f.signed {
        return Err(format!(
            "`ret` at offset {} size {} signed {} (expected offset 16 size 8 signed)",
            f.offset, f.size, f.signed
        ));
    }
    Ok(())
}

/// Verify every tracepoint Osprey attaches to exists and has the assumed
/// layout. Returns one line per tracepoint; Err lines are failures.
pub fn verify_layouts(root: &Path) -> Vec<(String, Result<(), String>)> {
    let mut out = Vec::new();
    for (name, args) in SYSCALLS {
        let mut kinds = vec!["enter"];
        if *name != "close" {
            kinds.push("exit");
        }
        for kind in kinds {
            let tp = format!("sys_{kind}_{name}");
            let path = root.join("events/syscalls").join(&tp).join("format");
            let res = match fs::read_to_string(&path) {
                Err(e) => Err(format!(
                    "tracepoint syscalls:{tp} missing ({}: {e})",
                    path.display()
                )),
                Ok(text) => {
                    let fields = parse_format(&text);
                    if kind == "enter" {
                        check_enter_layout(&fields, args)
                    } else {
                        check_exit_layout(&fields)
                    }
                }
            };
            out.push((format!("syscalls:{tp}"), res));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTER: &str = "name: sys_enter_recvmsg
ID: 2210
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int fd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:struct user_msghdr * msg;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned int flags;\toffset:32;\tsize:8;\tsigned:0;

print fmt: \"fd: 0x%08lx\"
";
    const EXIT: &str = "format:
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;
";

    #[test]
    fn fork_child_pid_offset_old_and_new_layouts() {
        let new = "format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;
\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;
";
        let old = "format:
\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:0;
\tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;
";
        assert_eq!(fork_child_pid_offset(&parse_format(new)), Ok(20));
        assert_eq!(fork_child_pid_offset(&parse_format(old)), Ok(44));
        assert!(fork_child_pid_offset(&parse_format("format:\n")).is_err());
        let far = old.replace("offset:44", "offset:64");
        assert!(fork_child_pid_offset(&parse_format(&far)).is_err());
    }

    #[test]
    fn parses_real_format() {
        let f = parse_format(ENTER);
        assert_eq!(f.len(), 8);
        assert_eq!(f[6].name, "msg");
        assert_eq!(f[6].offset, 24);
        assert!(check_enter_layout(&f, &["fd", "msg"]).is_ok());
        assert!(check_exit_layout(&parse_format(EXIT)).is_ok());
    }

    #[test]
    fn detects_layout_changes() {
        let moved = ENTER.replace("offset:24", "offset:20");
        let err = check_enter_layout(&parse_format(&moved), &["fd", "msg"]).unwrap_err();
        assert!(err.contains("`msg` at offset 20"), "{err}");
        let missing = check_enter_layout(&parse_format(ENTER), &["fd", "buf"]).unwrap_err();
        assert!(missing.contains("`buf` not found"));
        let unsigned = EXIT.replace("size:8;\tsigned:1", "size:8;\tsigned:0");
        assert!(check_exit_layout(&parse_format(&unsigned)).is_err());
        assert!(parse_format("garbage\nfield:;;;\nfield:x;offset:a;size:1;").is_empty());
    }
}
