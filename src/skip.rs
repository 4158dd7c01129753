// SPDX-License-Identifier: GPL-3.0-or-later
//! Body skips: user space's word to the kernel that a connection's next
//! bytes are a body of known length, so the kernel counts them instead of
//! copying them and spends its copy budget of a large read or write on what
//! follows the body (the next head). The kernel parses nothing: it compares
//! stream positions (`skip_ahead()` in bpf/records.bpf.h).
//!
//! The table is the `skips` BPF array map (`struct osprey_skip`,
//! include/osprey.h), mmap'ed: a hint is a few stores, no syscall. One
//! entry per connection and direction at [`abi::skip_slot`]; entries are
//! overwritten, never removed (a stale one no longer matches the
//! connection's generation or lies behind its position). An entry is a
//! hint, not a promise: the kernel ignores one whose `check` does not match
//! its fields (a write it raced with), and one that arrives after the bytes
//! moved changes nothing. A wrong hint (a body that was not one) costs the
//! bytes after it: the next head is then missing, a gap like any other.

use std::ptr::NonNull;
use std::sync::atomic::{compiler_fence, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::abi::{self, SkipRaw};
use crate::event::{ConnId, Direction};

/// A body whose bytes still to come are fewer than this is not worth a
/// hint: most of it arrives with its head, and the kernel would split the
/// next read in two records (the counted body, then the rest).
pub const MIN_SKIP: u64 = 64 * 1024;

/// Where hints go. Shared by every tracker worker; the table is attached
/// once the probe is loaded (before that, hints are dropped).
#[derive(Default)]
pub struct SkipHints {
    table: OnceLock<Table>,
    /// Hints written.
    pub written: AtomicU64,
}

struct Table {
    ptr: NonNull<SkipRaw>,
    /// `Some(bytes)`: an mmap of the map, unmapped on drop; `None`: memory
    /// of `_heap` (tests).
    mapped: Option<usize>,
    _heap: Option<Box<[SkipRaw]>>,
}

// SAFETY: the table is plain memory shared with the kernel; every access is
// a volatile read or write of an aligned field, and a torn entry is
// detected by its check (see the module documentation).
unsafe impl Send for Table {}
unsafe impl Sync for Table {}

impl Drop for Table {
    fn drop(&mut self) {
        if let Some(bytes) = self.mapped {
            // SAFETY: ptr/bytes are the mapping made in attach_mmap.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes) };
        }
    }
}

impl std::fmt::Debug for SkipHints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipHints")
            .field("attached", &self.table.get().is_some())
            .field("written", &self.written.load(Ordering::Relaxed))
            .finish()
    }
}

/// One table is one table (the tracker's config compares by identity).
impl PartialEq for SkipHints {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

fn dir_code(d: Direction) -> u32 {
    u32::from(match d {
        Direction::Egress => abi::DIR_EGRESS,
        Direction::Ingress => abi::DIR_INGRESS,
    })
}

impl SkipHints {
    pub fn new() -> Arc<SkipHints> {
        Arc::new(SkipHints::default())
    }

    /// Use the mmap of the `skips` map: `bytes` at `ptr`, at least
    /// `abi::SKIP_SLOTS` entries. False if a table is attached already.
    ///
    /// # Safety
    /// `ptr` must be a shared, writable mapping of `bytes` bytes that
    /// this table may unmap when dropped.
    pub unsafe fn attach_mmap(&self, ptr: NonNull<SkipRaw>, bytes: usize) -> bool {
        assert!(bytes >= abi::SKIP_SLOTS * std::mem::size_of::<SkipRaw>());
        self.table
            .set(Table {
                ptr,
                mapped: Some(bytes),
                _heap: None,
            })
            .is_ok()
    }

    /// A table in ordinary memory (tests, replay): what the kernel would
    /// see is read back with [`SkipHints::skip_ahead`].
    pub fn attach_heap(&self) -> bool {
        let mut heap = vec![SkipRaw::default(); abi::SKIP_SLOTS].into_boxed_slice();
        let ptr = NonNull::new(heap.as_mut_ptr()).expect("non-null");
        self.table
            .set(Table {
                ptr,
                mapped: None,
                _heap: Some(heap),
            })
            .is_ok()
    }

    /// Bytes of `conn` in direction `d` up to stream position `until` are a
    /// body: count them, do not copy them.
    pub fn body_until(&self, conn: &ConnId, d: Direction, until: u64) {
        let Some(t) = self.table.get() else {
            return;
        };
        let dir = dir_code(d);
        let slot = abi::skip_slot(conn.tgid, conn.fd, dir);
        let e = SkipRaw {
            tgid: conn.tgid,
            fd: conn.fd,
            gen: conn.gen,
            until,
            dir,
            _pad: 0,
            check: abi::skip_check(conn.tgid, conn.fd, conn.gen, until, dir),
        };
        // SAFETY: slot < SKIP_SLOTS entries of the table; fields aligned.
        unsafe {
            let p = t.ptr.as_ptr().add(slot);
            // the check first and last: a reader between the two sees a
            // check that does not match (see the module documentation)
            std::ptr::write_volatile(&raw mut (*p).check, !e.check);
            compiler_fence(Ordering::SeqCst);
            std::ptr::write_volatile(&raw mut (*p).tgid, e.tgid);
            std::ptr::write_volatile(&raw mut (*p).fd, e.fd);
            std::ptr::write_volatile(&raw mut (*p).gen, e.gen);
            std::ptr::write_volatile(&raw mut (*p).until, e.until);
            std::ptr::write_volatile(&raw mut (*p).dir, e.dir);
            compiler_fence(Ordering::SeqCst);
            std::ptr::write_volatile(&raw mut (*p).check, e.check);
        }
        self.written.fetch_add(1, Ordering::Relaxed);
    }

    /// What the kernel would count, not copy, of `len` bytes at stream
    /// position `pos` of `conn` in direction `d` (`skip_ahead()` in
    /// bpf/records.bpf.h, for tests).
    pub fn skip_ahead(&self, conn: &ConnId, d: Direction, pos: u64, len: u64) -> u64 {
        let Some(t) = self.table.get() else {
            return 0;
        };
        let dir = dir_code(d);
        let slot = abi::skip_slot(conn.tgid, conn.fd, dir);
        // SAFETY: as in body_until.
        let s = unsafe { std::ptr::read_volatile(t.ptr.as_ptr().add(slot)) };
        if s.until <= pos
            || s.tgid != conn.tgid
            || s.fd != conn.fd
            || s.dir != dir
            || s.gen != conn.gen
            || s.check != abi::skip_check(s.tgid, s.fd, s.gen, s.until, s.dir)
        {
            return 0;
        }
        (s.until - pos).min(len)
    }

    #[cfg(test)]
    fn raw(&self, slot: usize) -> SkipRaw {
        let t = self.table.get().expect("attached");
        // SAFETY: as in body_until.
        unsafe { std::ptr::read_volatile(t.ptr.as_ptr().add(slot)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(tgid: u32, fd: i32, gen: u64) -> ConnId {
        ConnId {
            tgid,
            proc_start_ns: 1,
            fd,
            gen,
        }
    }

    #[test]
    fn a_hint_covers_the_bytes_up_to_its_position_and_no_further() {
        let h = SkipHints::new();
        assert!(h.attach_heap());
        let c = conn(100, 7, 3);
        h.body_until(&c, Direction::Ingress, 1_000_000);
        assert_eq!(h.skip_ahead(&c, Direction::Ingress, 0, 65536), 65536);
        assert_eq!(h.skip_ahead(&c, Direction::Ingress, 990_000, 65536), 10_000);
        assert_eq!(h.skip_ahead(&c, Direction::Ingress, 1_000_000, 65536), 0);
        // the other direction, another fd, a reused fd (new generation)
        assert_eq!(h.skip_ahead(&c, Direction::Egress, 0, 100), 0);
        assert_eq!(
            h.skip_ahead(&conn(100, 8, 3), Direction::Ingress, 0, 100),
            0
        );
        assert_eq!(
            h.skip_ahead(&conn(100, 7, 4), Direction::Ingress, 0, 100),
            0
        );
        assert_eq!(h.written.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn before_the_table_is_attached_hints_are_dropped() {
        let h = SkipHints::new();
        let c = conn(1, 3, 1);
        h.body_until(&c, Direction::Egress, 10);
        assert_eq!(h.skip_ahead(&c, Direction::Egress, 0, 10), 0);
        assert_eq!(h.written.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_torn_entry_is_ignored() {
        let h = SkipHints::new();
        h.attach_heap();
        let c = conn(9, 4, 2);
        h.body_until(&c, Direction::Ingress, 5000);
        let slot = abi::skip_slot(9, 4, u32::from(abi::DIR_INGRESS));
        assert_eq!(h.raw(slot).until, 5000);
        // another writer's until with this entry's check: no match
        let t = h.table.get().unwrap();
        unsafe { (*t.ptr.as_ptr().add(slot)).until = 9000 };
        assert_eq!(h.skip_ahead(&c, Direction::Ingress, 0, 100), 0);
    }

    #[test]
    fn slots_spread_connections_and_directions() {
        let mut seen = std::collections::HashSet::new();
        for fd in 3..1003 {
            for dir in 0..2 {
                seen.insert(abi::skip_slot(4242, fd, dir));
            }
        }
        // 2000 keys into 4096 slots: few collisions
        assert!(seen.len() > 1500, "{}", seen.len());
        assert_ne!(abi::skip_slot(1, 3, 0), abi::skip_slot(1, 3, 1));
    }

    // include/osprey.h's functions, computed by hand for one entry: the
    // C and Rust forms must agree (the live test checks the kernel's use).
    #[test]
    fn slot_and_check_match_the_c_formulas() {
        let (tgid, fd, dir) = (1234u32, 5i32, 1u32);
        let a = tgid.wrapping_mul(0x9E37_79B1);
        let b = (5u32 * 2 + 1).wrapping_mul(0x85EB_CA6B);
        assert_eq!(abi::skip_slot(tgid, fd, dir), ((a ^ b) & 4095) as usize);
        let check = ((1234u64 << 32) | 5) ^ 77 ^ 999 ^ 2u64.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        assert_eq!(abi::skip_check(tgid, fd, 77, 999, dir), check);
    }
}
