// SPDX-License-Identifier: GPL-3.0-or-later
//! Rust mirror of `include/osprey.h` (the kernel/user ABI).
//!
//! Constants are checked against the text of the header, layouts against
//! the types generated from both compiled BPF objects (tests below); keep
//! both files in step.

/// Largest payload one data record can carry.
pub const MAX_PAYLOAD: usize = 16384;
/// Default capture cap per data record.
pub const DEFAULT_CAPTURE: usize = 4096;
/// Further records (`F_CONT`) one plain-buffer syscall may give.
pub const MAX_CONT: usize = 64;
/// ... at most this many on kernels without bpf_loop() (before 5.17).
pub const CONT_NO_LOOP: usize = 4;
/// Default bytes copied of one plain-buffer syscall, all its records.
pub const DEFAULT_CAPTURE_MAX: usize = 256 * 1024;
/// iovecs inspected per vectored syscall.
pub const MAX_IOV: usize = 16;
/// Sent iovecs after the first up to this size are captured whole.
pub const DEFAULT_IOV_WHOLE: usize = 1024;
/// Bytes captured of a larger one.
pub const IOV_PEEK: usize = 64;
pub const MAX_FILTER_PIDS: usize = 256;
pub const MAX_FILTER_COMMS: usize = 64;
pub const MAX_FILTER_CGROUPS: usize = 16384;
/// Descendants of --pid processes followed at once.
pub const MAX_CHILD_PIDS: usize = 16384;
pub const INLINE_FILTER: usize = 8;
pub const COMM_LEN: usize = 16;
/// Record-building slots per CPU in the `scratch` map.
pub const SCRATCH_SLOTS: usize = 4;
/// Messages of one sendmmsg/recvmmsg whose bytes are counted (UIO_MAXIOV).
pub const MAX_MMSG: usize = 1024;
/// TLS calls in flight (one per thread) and TLS sessions tied to sockets.
pub const MAX_TLS_CALLS: usize = 16384;
pub const MAX_TLS_SESSIONS: usize = 65536;
/// Exec notifications queued for the TLS library scan.
pub const MAX_TLS_EXECS: usize = 1024;
/// The `syscall` codes of TLS plaintext DATA records (library calls).
pub const SYS_TLS_FIRST: u8 = 64;
pub const SYS_TLS_LAST: u8 = 73;

pub const KIND_OPEN: u8 = 1;
pub const KIND_DATA: u8 = 2;
pub const KIND_CLOSE: u8 = 3;

pub const DIR_EGRESS: u8 = 0;
pub const DIR_INGRESS: u8 = 1;

pub const ROLE_UNKNOWN: u8 = 0;
pub const ROLE_CLIENT: u8 = 1;
pub const ROLE_SERVER: u8 = 2;

pub const F_MIDSTREAM: u8 = 0x1;
pub const F_ADDRS: u8 = 0x2;
/// Data record: a `SegmentsRaw` table follows the payload.
pub const F_SEGMENTS: u8 = 0x4;
/// Data record: a read of the process's memory failed (the payload, the
/// iovec array, the msghdr): the bytes it lacks are counted, not captured,
/// for that reason and not the capture cap (`read_errors`).
pub const F_READ_FAULT: u8 = 0x8;
/// Data record: a further record of the same syscall as the one before.
pub const F_CONT: u8 = 0x20;
/// Data record: counted, not copied: a body user space asked the kernel to
/// skip (`SkipRaw`).
pub const F_SKIPPED: u8 = 0x40;

/// Entries of the `skips` map (`struct osprey_skip`), a power of two.
pub const SKIP_SLOTS: usize = 4096;

/// `struct osprey_skip`: user space's word that a connection's bytes up to
/// `until` in direction `dir` are a body to count, not copy.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipRaw {
    pub tgid: u32,
    pub fd: i32,
    pub gen: u64,
    pub until: u64,
    pub dir: u32,
    pub _pad: u32,
    pub check: u64,
}

/// `osprey_skip_slot()` of include/osprey.h.
pub fn skip_slot(tgid: u32, fd: i32, dir: u32) -> usize {
    let a = tgid.wrapping_mul(0x9E37_79B1);
    let b = (fd as u32)
        .wrapping_mul(2)
        .wrapping_add(dir)
        .wrapping_mul(0x85EB_CA6B);
    ((a ^ b) as usize) & (SKIP_SLOTS - 1)
}

/// `osprey_skip_check()` of include/osprey.h.
pub fn skip_check(tgid: u32, fd: i32, gen: u64, until: u64, dir: u32) -> u64 {
    ((u64::from(tgid) << 32) | u64::from(fd as u32))
        ^ gen
        ^ until
        ^ (u64::from(dir) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Kernel counters (`counters[]` in `.bss`), in header order.
pub const COUNTER_NAMES: [&str; 25] = [
    "events",
    "ringbuf_drops",
    "ringbuf_drop_bytes",
    "read_errors",
    "stash_full",
    "conn_table_full",
    "truncated_bytes",
    "iov_overflow",
    "scratch_busy",
    "unseen_bytes",
    "cont_records",
    "child_pids",
    "child_pids_full",
    "peeks",
    "tls_records",
    "tls_no_conn",
    "tls_rebound",
    "tls_table_full",
    "tls_failed",
    "tls_exec_lost",
    "tls_filtered",
    "tls_go_no_call",
    "skipped_body_bytes",
    "tls_reentry_dropped",
    "tls_no_conn_pid",
];
pub const CNT_RB_DROPS: usize = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnIdRaw {
    pub tgid: u32,
    pub fd: i32,
    pub proc_start_ns: u64,
    pub gen: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Hdr {
    pub kind: u8,
    pub dir: u8,
    pub role: u8,
    pub flags: u8,
    pub syscall: u8,
    pub _pad: [u8; 3],
    pub tgid: u32,
    pub tid: u32,
    pub ts_ns: u64,
    pub comm: [u8; COMM_LEN],
    pub conn: ConnIdRaw,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Addrs {
    pub family: u16,
    /// network byte order
    pub lport: u16,
    /// network byte order
    pub rport: u16,
    pub _pad: u16,
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenRaw {
    pub hdr: Hdr,
    pub addrs: Addrs,
    /// cgroup v2 id of the task that opened the connection (0: none).
    pub cgroup_id: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CloseRaw {
    pub hdr: Hdr,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
}

/// `struct osprey_data_event` without its payload array; the payload
/// (`cap_len` bytes) follows immediately.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DataHdrRaw {
    pub hdr: Hdr,
    pub start_ns: u64,
    pub pos: u64,
    pub orig_len: u32,
    pub cap_len: u32,
}

/// `struct osprey_segment`: one iovec of a record flagged `F_SEGMENTS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SegmentRaw {
    pub orig_len: u32,
    pub cap_len: u32,
}

/// `struct osprey_segments`, after the payload of an `F_SEGMENTS` record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SegmentsRaw {
    pub count: u32,
    pub _pad: u32,
    pub seg: [SegmentRaw; MAX_IOV],
}

// SAFETY: plain old data, every bit pattern is valid.
unsafe impl plain::Plain for SegmentsRaw {}
// SAFETY: plain old data, every bit pattern is valid.
unsafe impl plain::Plain for Hdr {}
unsafe impl plain::Plain for OpenRaw {}
unsafe impl plain::Plain for CloseRaw {}
unsafe impl plain::Plain for DataHdrRaw {}

/// Size of the data record header (offset of the payload).
pub const DATA_HDR_SIZE: usize = std::mem::size_of::<DataHdrRaw>();

/// The Rust mirror against its source of truth, independently of the
/// decoder's own `encode()`: every constant against the text of
/// `include/osprey.h`, every field offset and size against the types the
/// skeletons generate from the compiled BPF objects (CO-RE and BTF-less),
/// and records laid out through those C types decoded by `decode`.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::mem::{offset_of, size_of};

    mod co_re {
        include!(concat!(env!("OUT_DIR"), "/osprey.skel.rs"));
    }
    mod no_btf {
        include!(concat!(env!("OUT_DIR"), "/osprey_nobtf.skel.rs"));
    }

    const HEADER: &str = include_str!("../include/osprey.h");

    /// `#define NAME NUMBER` and enumerators (explicit `= N` or the
    /// previous value plus one) of a C header, comments stripped.
    fn header_constants(text: &str) -> BTreeMap<String, i64> {
        let mut src = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("/*") {
            src.push_str(&rest[..i]);
            rest = rest[i..].split_once("*/").expect("unterminated comment").1;
        }
        src.push_str(rest);
        let src: String = src
            .lines()
            .map(|l| l.split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let num = |s: &str| -> Option<i64> {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => i64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            }
        };
        let mut out = BTreeMap::new();
        for l in src.lines() {
            let mut w = l.split_whitespace();
            if w.next() == Some("#define") {
                if let (Some(name), Some(v)) = (w.next(), w.next().and_then(num)) {
                    out.insert(name.to_string(), v);
                }
            }
        }
        let mut rest = src.as_str();
        while let Some(i) = rest.find("enum ") {
            let body = &rest[i..];
            let (open, close) = (body.find('{').unwrap(), body.find('}').unwrap());
            let mut next = 0;
            for item in body[open + 1..close]
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let (name, v) = match item.split_once('=') {
                    Some((n, v)) => (
                        n.trim(),
                        num(v).unwrap_or_else(|| panic!("enumerator {item}")),
                    ),
                    None => (item, next),
                };
                out.insert(name.to_string(), v);
                next = v + 1;
            }
            rest = &body[close..];
        }
        out
    }

    #[test]
    fn header_parser_reads_defines_and_enumerators() {
        let h = header_constants(
            "#define A 12 /* x */\n#define B 0x4\n#define S (sizeof(x))\nenum e {\n X = 3, /* c */\n Y,\n Z = 0x10,\n W\n};\n",
        );
        let want: BTreeMap<String, i64> = [
            ("A", 12),
            ("B", 4),
            ("X", 3),
            ("Y", 4),
            ("Z", 16),
            ("W", 17),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        assert_eq!(h, want);
    }

    #[test]
    fn constants_match_the_c_header() {
        let h = header_constants(HEADER);
        let pairs: [(&str, i64); 39] = [
            ("OSPREY_MAX_PAYLOAD", MAX_PAYLOAD as i64),
            ("OSPREY_DEFAULT_CAPTURE", DEFAULT_CAPTURE as i64),
            ("OSPREY_MAX_IOV", MAX_IOV as i64),
            ("OSPREY_DEFAULT_IOV_WHOLE", DEFAULT_IOV_WHOLE as i64),
            ("OSPREY_IOV_PEEK", IOV_PEEK as i64),
            ("OSPREY_MAX_FILTER_PIDS", MAX_FILTER_PIDS as i64),
            ("OSPREY_MAX_FILTER_COMMS", MAX_FILTER_COMMS as i64),
            ("OSPREY_MAX_FILTER_CGROUPS", MAX_FILTER_CGROUPS as i64),
            ("OSPREY_INLINE_FILTER", INLINE_FILTER as i64),
            ("OSPREY_COMM_LEN", COMM_LEN as i64),
            ("OSPREY_SCRATCH_SLOTS", SCRATCH_SLOTS as i64),
            ("OSPREY_MAX_MMSG", MAX_MMSG as i64),
            ("OSPREY_MAX_TLS_CALLS", MAX_TLS_CALLS as i64),
            ("OSPREY_MAX_TLS_SESSIONS", MAX_TLS_SESSIONS as i64),
            ("OSPREY_MAX_TLS_EXECS", MAX_TLS_EXECS as i64),
            ("OSPREY_SYS_TLS_FIRST", SYS_TLS_FIRST as i64),
            ("OSPREY_SYS_TLS_LAST", SYS_TLS_LAST as i64),
            ("OSPREY_KIND_OPEN", KIND_OPEN as i64),
            ("OSPREY_KIND_DATA", KIND_DATA as i64),
            ("OSPREY_KIND_CLOSE", KIND_CLOSE as i64),
            ("OSPREY_DIR_EGRESS", DIR_EGRESS as i64),
            ("OSPREY_DIR_INGRESS", DIR_INGRESS as i64),
            ("OSPREY_ROLE_UNKNOWN", ROLE_UNKNOWN as i64),
            ("OSPREY_ROLE_CLIENT", ROLE_CLIENT as i64),
            ("OSPREY_ROLE_SERVER", ROLE_SERVER as i64),
            ("OSPREY_F_MIDSTREAM", F_MIDSTREAM as i64),
            ("OSPREY_F_ADDRS", F_ADDRS as i64),
            ("OSPREY_F_SEGMENTS", F_SEGMENTS as i64),
            ("OSPREY_F_READ_FAULT", F_READ_FAULT as i64),
            ("OSPREY_F_CONT", F_CONT as i64),
            ("OSPREY_F_SKIPPED", F_SKIPPED as i64),
            ("OSPREY_SKIP_SLOTS", SKIP_SLOTS as i64),
            ("OSPREY_MAX_CONT", MAX_CONT as i64),
            ("OSPREY_CONT_NO_LOOP", CONT_NO_LOOP as i64),
            ("OSPREY_MAX_CHILD_PIDS", MAX_CHILD_PIDS as i64),
            ("OSPREY_CNT_RB_DROPS", CNT_RB_DROPS as i64),
            ("OSPREY_CNT__MAX", COUNTER_NAMES.len() as i64),
            // the kernel's values, which the header relies on
            ("OSPREY_MAX_CONNS", 65536),
            ("OSPREY_SYS_RECVMSG", 12),
        ];
        for (name, rust) in pairs {
            assert_eq!(
                h.get(name),
                Some(&rust),
                "{name}: include/osprey.h vs src/abi.rs"
            );
        }
        // every record kind, direction, role and flag of the header is mirrored
        let mirrored: Vec<&str> = pairs.iter().map(|p| p.0).collect();
        for name in h.keys().filter(|n| {
            ["KIND_", "DIR_", "ROLE_", "F_"]
                .iter()
                .any(|p| n.starts_with(&format!("OSPREY_{p}")))
        }) {
            assert!(
                mirrored.contains(&name.as_str()),
                "{name} is in include/osprey.h but not checked against src/abi.rs"
            );
        }
        assert_eq!(AF_INET as i32, libc::AF_INET);
        assert_eq!(AF_INET6 as i32, libc::AF_INET6);
    }

    #[test]
    fn counter_names_follow_the_c_enum() {
        let h = header_constants(HEADER);
        let map = [
            ("OSPREY_CNT_EVENTS", "events"),
            ("OSPREY_CNT_RB_DROPS", "ringbuf_drops"),
            ("OSPREY_CNT_RB_DROP_BYTES", "ringbuf_drop_bytes"),
            ("OSPREY_CNT_READ_ERRORS", "read_errors"),
            ("OSPREY_CNT_STASH_FULL", "stash_full"),
            ("OSPREY_CNT_CONN_TABLE_FULL", "conn_table_full"),
            ("OSPREY_CNT_TRUNC_BYTES", "truncated_bytes"),
            ("OSPREY_CNT_IOV_OVERFLOW", "iov_overflow"),
            ("OSPREY_CNT_SCRATCH_BUSY", "scratch_busy"),
            ("OSPREY_CNT_UNSEEN_BYTES", "unseen_bytes"),
            ("OSPREY_CNT_CONT_RECORDS", "cont_records"),
            ("OSPREY_CNT_CHILD_PIDS", "child_pids"),
            ("OSPREY_CNT_CHILD_PIDS_FULL", "child_pids_full"),
            ("OSPREY_CNT_PEEKS", "peeks"),
            ("OSPREY_CNT_TLS_RECORDS", "tls_records"),
            ("OSPREY_CNT_TLS_NO_CONN", "tls_no_conn"),
            ("OSPREY_CNT_TLS_REBOUND", "tls_rebound"),
            ("OSPREY_CNT_TLS_TABLE_FULL", "tls_table_full"),
            ("OSPREY_CNT_TLS_FAILED", "tls_failed"),
            ("OSPREY_CNT_TLS_EXEC_LOST", "tls_exec_lost"),
            ("OSPREY_CNT_TLS_FILTERED", "tls_filtered"),
            ("OSPREY_CNT_TLS_GO_NO_CALL", "tls_go_no_call"),
            ("OSPREY_CNT_SKIPPED_BYTES", "skipped_body_bytes"),
            ("OSPREY_CNT_TLS_REENTRY_DROPPED", "tls_reentry_dropped"),
            ("OSPREY_CNT_TLS_NO_CONN_PID", "tls_no_conn_pid"),
        ];
        let in_header = h
            .keys()
            .filter(|n| n.starts_with("OSPREY_CNT_") && *n != "OSPREY_CNT__MAX")
            .count();
        assert_eq!(
            in_header,
            map.len(),
            "a counter was added to include/osprey.h: name it here and in COUNTER_NAMES"
        );
        for (cname, rust) in map {
            let slot = COUNTER_NAMES
                .iter()
                .position(|n| *n == rust)
                .unwrap_or_else(|| panic!("{rust} not in COUNTER_NAMES"));
            assert_eq!(
                h.get(cname),
                Some(&(slot as i64)),
                "{cname} vs COUNTER_NAMES[{slot}] = {rust}"
            );
        }
    }

    #[test]
    fn syscall_numbers_decode_as_the_c_enum_names_them() {
        let h = header_constants(HEADER);
        let sys: Vec<(&String, &i64)> = h
            .iter()
            .filter(|(n, _)| n.starts_with("OSPREY_SYS_") && !n.starts_with("OSPREY_SYS_TLS_"))
            .collect();
        assert_eq!(sys.len(), 27, "{sys:?}");
        for (name, &v) in sys {
            // OSPREY_SYS_OPENSSL_READ_EX names OpensslReadEx
            let want = name
                .trim_start_matches("OSPREY_SYS_")
                .replace('_', "")
                .to_lowercase();
            let got = format!("{:?}", crate::decode::syscall(v as u8)).to_lowercase();
            assert_eq!(got, want, "{name} = {v}");
            // and encode (tests, --synthetic) writes the same number back
            assert_eq!(
                crate::decode::syscall_code(crate::decode::syscall(v as u8)),
                v as u8,
                "{name}"
            );
        }
        // and numbers the header does not name are not guessed
        assert_eq!(crate::decode::syscall(17), crate::event::Syscall::Unknown);
        assert_eq!(crate::decode::syscall(74), crate::event::Syscall::Unknown);
        // the TLS range holds exactly the library calls
        for v in 0..=255u8 {
            let tls = crate::decode::syscall(v).tls_library().is_some();
            assert_eq!(tls, (SYS_TLS_FIRST..=SYS_TLS_LAST).contains(&v), "{v}");
        }
    }

    /// size_of and the offset of every field of a Rust mirror struct against
    /// the C type of the same shape (field names are the C names).
    macro_rules! same_layout {
        ($rust:ty, $c:ty, [$($f:ident),+ $(,)?]) => {{
            assert_eq!(size_of::<$rust>(), size_of::<$c>(), "size of {}", stringify!($c));
            $(assert_eq!(offset_of!($rust, $f), offset_of!($c, $f), "{}.{}", stringify!($c), stringify!($f));)+
        }};
    }

    macro_rules! layouts_match {
        ($c:path) => {{
            use $c as c;
            same_layout!(ConnIdRaw, c::osprey_conn_id, [tgid, fd, proc_start_ns, gen]);
            same_layout!(
                Hdr,
                c::osprey_hdr,
                [kind, dir, role, flags, syscall, _pad, tgid, tid, ts_ns, comm, conn]
            );
            same_layout!(
                Addrs,
                c::osprey_addrs,
                [family, lport, rport, _pad, laddr, raddr]
            );
            same_layout!(OpenRaw, c::osprey_open_event, [hdr, addrs, cgroup_id]);
            same_layout!(CloseRaw, c::osprey_close_event, [hdr, tx_bytes, rx_bytes]);
            same_layout!(SegmentRaw, c::osprey_segment, [orig_len, cap_len]);
            same_layout!(SegmentsRaw, c::osprey_segments, [count, _pad, seg]);
            // DataHdrRaw is osprey_data_event without its payload array
            for (f, rust, cv) in [
                (
                    "hdr",
                    offset_of!(DataHdrRaw, hdr),
                    offset_of!(c::osprey_data_event, hdr),
                ),
                (
                    "start_ns",
                    offset_of!(DataHdrRaw, start_ns),
                    offset_of!(c::osprey_data_event, start_ns),
                ),
                (
                    "pos",
                    offset_of!(DataHdrRaw, pos),
                    offset_of!(c::osprey_data_event, pos),
                ),
                (
                    "orig_len",
                    offset_of!(DataHdrRaw, orig_len),
                    offset_of!(c::osprey_data_event, orig_len),
                ),
                (
                    "cap_len",
                    offset_of!(DataHdrRaw, cap_len),
                    offset_of!(c::osprey_data_event, cap_len),
                ),
            ] {
                assert_eq!(rust, cv, "osprey_data_event.{f}");
            }
            assert_eq!(DATA_HDR_SIZE, offset_of!(c::osprey_data_event, payload));
            assert_eq!(
                size_of::<c::osprey_data_event>(),
                DATA_HDR_SIZE + MAX_PAYLOAD
            );
            // SAFETY: plain integers and byte arrays; all-zero is valid.
            let bss: c::bss = unsafe { std::mem::zeroed() };
            assert_eq!(bss.counters.len(), COUNTER_NAMES.len());
        }};
    }

    #[test]
    fn layouts_match_both_compiled_objects() {
        layouts_match!(co_re::types);
        layouts_match!(no_btf::types);
    }

    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: the skeleton's types are repr(C) plain data; reading their bytes is sound.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }.to_vec()
    }

    /// Records written through the C types (as the BPF programs write
    /// them), not through `decode::encode`, decode to what they say.
    #[test]
    fn records_laid_out_by_the_c_types_decode() {
        use crate::event::*;
        use co_re::types as c;
        let h = header_constants(HEADER);
        let k = |n: &str| h[n] as u8;
        let mut hdr = c::osprey_hdr {
            tgid: 4242,
            tid: 4243,
            ts_ns: 77,
            ..Default::default()
        };
        for (i, b) in b"curl".iter().enumerate() {
            hdr.comm[i] = *b as i8;
        }
        hdr.conn = c::osprey_conn_id {
            tgid: 4242,
            fd: 7,
            proc_start_ns: 99,
            gen: 5,
        };
        let conn = ConnId {
            tgid: 4242,
            proc_start_ns: 99,
            fd: 7,
            gen: 5,
        };
        let proc_ = ProcInfo {
            tgid: 4242,
            tid: 4243,
            comm: "curl".into(),
        };

        let mut open = c::osprey_open_event {
            hdr,
            ..Default::default()
        };
        open.hdr.kind = k("OSPREY_KIND_OPEN");
        open.hdr.role = k("OSPREY_ROLE_SERVER");
        open.hdr.flags = k("OSPREY_F_ADDRS") | k("OSPREY_F_MIDSTREAM");
        open.hdr.syscall = k("OSPREY_SYS_ACCEPT4");
        open.addrs.family = libc::AF_INET as u16;
        open.addrs.lport = 8080u16.to_be();
        open.addrs.rport = 40000u16.to_be();
        open.addrs.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        open.addrs.raddr[..4].copy_from_slice(&[10, 1, 2, 3]);
        open.cgroup_id = 0x1234_5678_9abc;
        let want = Event::open(ConnOpen {
            ts_ns: 77,
            conn,
            proc: proc_.clone(),
            role: Role::Server,
            addrs: Some(SockAddrs {
                local: "127.0.0.1:8080".parse().unwrap(),
                remote: "10.1.2.3:40000".parse().unwrap(),
            }),
            midstream: true,
            syscall: Syscall::Accept4,
            cgroup_id: 0x1234_5678_9abc,
            identity: None,
        });
        assert_eq!(crate::decode::decode_all(&bytes_of(&open)).unwrap(), [want]);

        let mut data = Box::<c::osprey_data_event>::default();
        data.hdr = hdr;
        data.hdr.kind = k("OSPREY_KIND_DATA");
        data.hdr.dir = k("OSPREY_DIR_INGRESS");
        data.hdr.syscall = k("OSPREY_SYS_RECVFROM");
        data.start_ns = 70;
        data.pos = 1000;
        data.orig_len = 9000;
        data.cap_len = 5;
        data.payload[..5].copy_from_slice(b"GET /");
        let off = std::mem::offset_of!(c::osprey_data_event, payload);
        let rec = &bytes_of(&*data)[..off + 5];
        let want = Event::Data(DataEvent {
            ts_ns: 77,
            start_ns: 70,
            conn,
            proc: proc_.clone(),
            dir: Direction::Ingress,
            pos: 1000,
            orig_len: 9000,
            payload: b"GET /".to_vec(),
            syscall: Syscall::Recvfrom,
            fault: false,
        });
        assert_eq!(
            crate::decode::decode_all(rec).unwrap(),
            std::slice::from_ref(&want)
        );
        // the same record whose payload read failed part-way
        data.hdr.flags = k("OSPREY_F_READ_FAULT");
        let rec = &bytes_of(&*data)[..off + 5];
        let Event::Data(mut want) = want else {
            unreachable!()
        };
        want.fault = true;
        assert_eq!(crate::decode::decode_all(rec).unwrap(), [Event::Data(want)]);

        let mut close = c::osprey_close_event {
            hdr,
            tx_bytes: 11,
            rx_bytes: 22,
        };
        close.hdr.kind = k("OSPREY_KIND_CLOSE");
        close.hdr.syscall = k("OSPREY_SYS_CLOSE");
        let want = Event::Close(CloseEvent {
            ts_ns: 77,
            conn,
            proc: proc_,
            tx_bytes: 11,
            rx_bytes: 22,
        });
        assert_eq!(
            crate::decode::decode_all(&bytes_of(&close)).unwrap(),
            [want]
        );
    }
}
