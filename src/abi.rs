// SPDX-License-Identifier: GPL-3.0-or-later
//! Rust mirror of `include/osprey.h` (the kernel/user ABI).
//!
//! Layouts are checked against the BTF of the compiled BPF object by the ABI
//! test in `src/bpf.rs`; keep both files in step.

/// Largest payload one data record can carry.
pub const MAX_PAYLOAD: usize = 16384;
/// Default capture cap per data record.
pub const DEFAULT_CAPTURE: usize = 4096;
/// iovecs inspected per vectored syscall.
pub const MAX_IOV: usize = 16;
/// Sent iovecs after the first up to this size are captured whole.
pub const DEFAULT_IOV_WHOLE: usize = 1024;
/// Bytes captured of a larger one.
pub const IOV_PEEK: usize = 64;
pub const MAX_FILTER_PIDS: usize = 256;
pub const MAX_FILTER_COMMS: usize = 64;
pub const INLINE_FILTER: usize = 8;
pub const COMM_LEN: usize = 16;
/// Record-building slots per CPU in the `scratch` map.
pub const SCRATCH_SLOTS: usize = 4;

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

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Kernel counters (`counters[]` in `.bss`), in header order.
pub const COUNTER_NAMES: [&str; 9] = [
    "events",
    "ringbuf_drops",
    "ringbuf_drop_bytes",
    "read_errors",
    "stash_full",
    "conn_table_full",
    "truncated_bytes",
    "iov_overflow",
    "scratch_busy",
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
