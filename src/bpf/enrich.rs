// SPDX-License-Identifier: GPL-3.0-or-later
//! BTF-less fallback: what user space adds to OPEN records the kernel could
//! not fill — the connection's addresses from `/proc` — and which
//! connections it drops as not TCP.
//!
//! The race this guards against: user space reads an OPEN record some time
//! after the kernel wrote it. By then the process may have closed that
//! connection and opened another on the same fd, and `/proc/<pid>/fd/<fd>`
//! names the new socket: its addresses would be given to the old
//! connection (a wrong local port), or — if the new socket is not in the
//! TCP table yet — the old connection would be dropped as "not TCP" and
//! the new one forgotten in the kernel (its plaintext then went under the
//! old connection's id). The kernel's `conns` map says which connection
//! the fd holds: its entry, keyed by {tgid, fd}, carries the connection's
//! generation from `connect()`/`accept()` until `close()` enters. An
//! answer from `/proc` is this connection's only if that entry still holds
//! its generation *after* `/proc` was read; otherwise the addresses stay
//! `null` (`addr_unresolved`) — never wrong ones.
//!
//! "Not TCP" is the kernel's word on the socket's protocol, never a socket
//! missing from the TCP tables: a TCP connection reset or closed while the
//! process keeps its fd is not listed there (a short HTTPS GET's may be by
//! the time its OPEN record is read). Such a connection is kept, its
//! addresses `null` (`addr_unresolved`).

use std::collections::HashSet;

use crate::event::{ConnId, Event};
use crate::procnet::{self, Lookup};

/// What the enricher needs from the kernel and `/proc`.
pub(super) trait Source {
    /// The socket behind `pid`'s `fd`, as `/proc` shows it now.
    fn lookup(&mut self, pid: u32, fd: i32) -> Lookup;
    /// The generation the kernel's `conns` map holds for {tgid, fd} now.
    fn kernel_gen(&self, tgid: u32, fd: i32) -> Option<u64>;
    /// Forget {tgid, fd} in the kernel (its socket is not TCP).
    fn forget(&mut self, tgid: u32, fd: i32);
}

/// The real source: `/proc` and the loaded object's `conns` map.
pub(super) struct Live<'a> {
    pub resolver: procnet::Resolver,
    pub conns: &'a libbpf_rs::Map<'a>,
}

/// Bytes of `struct conn_key { __u32 tgid; __s32 fd; }`, the `conns` map key.
pub(super) fn conn_key(tgid: u32, fd: i32) -> [u8; 8] {
    let mut key = [0u8; 8];
    key[..4].copy_from_slice(&tgid.to_ne_bytes());
    key[4..].copy_from_slice(&fd.to_ne_bytes());
    key
}

impl Source for Live<'_> {
    fn lookup(&mut self, pid: u32, fd: i32) -> Lookup {
        self.resolver.lookup(pid, fd)
    }

    fn kernel_gen(&self, tgid: u32, fd: i32) -> Option<u64> {
        use libbpf_rs::MapCore;
        let v = self
            .conns
            .lookup(&conn_key(tgid, fd), libbpf_rs::MapFlags::ANY)
            .ok()??;
        // struct conn_state starts with `__u64 gen` (bpf/maps.bpf.h)
        Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?))
    }

    fn forget(&mut self, tgid: u32, fd: i32) {
        use libbpf_rs::MapCore;
        let _ = self.conns.delete(&conn_key(tgid, fd));
    }
}

/// Fallback mode only: give OPEN records without addresses their addresses
/// from /proc, and drop connections that turn out not to be TCP.
pub(super) struct Enricher {
    on: bool,
    not_tcp: HashSet<ConnId>,
    pub non_tcp: u64,
    /// OPEN records left without addresses: the fd closed, or already
    /// holding another connection, when user space looked; or its TCP
    /// socket no longer in the kernel's tables (reset or closed, the fd
    /// still open).
    pub unresolved: u64,
    /// Of those, the fd already held another connection (the race above).
    pub reused: u64,
}

impl Enricher {
    pub fn new(on: bool) -> Self {
        Enricher {
            on,
            not_tcp: Default::default(),
            non_tcp: 0,
            unresolved: 0,
            reused: 0,
        }
    }

    pub fn event(&mut self, mut ev: Event, src: &mut impl Source) -> Option<Event> {
        if !self.on {
            return Some(ev);
        }
        if !self.not_tcp.is_empty() && self.not_tcp.contains(ev.conn()) {
            if let Event::Close(c) = &ev {
                self.not_tcp.remove(&c.conn);
            }
            return None;
        }
        let Event::Open(o) = &mut ev else {
            return Some(ev);
        };
        if o.addrs.is_some() {
            return Some(ev);
        }
        let (tgid, fd) = (o.conn.tgid, o.conn.fd);
        let res = src.lookup(tgid, fd);
        // read after /proc: still this connection's fd throughout?
        let ours = src.kernel_gen(tgid, fd) == Some(o.conn.gen);
        log::debug!(
            "fallback: {}/{tgid} fd {fd} resolved as {res:?}{}",
            o.proc.comm,
            if ours {
                ""
            } else {
                " (fd no longer this connection's)"
            }
        );
        match res {
            Lookup::Tcp(a) if ours => o.addrs = Some(a),
            Lookup::NotTcp if ours => {
                self.non_tcp += 1;
                self.not_tcp.insert(o.conn);
                src.forget(tgid, fd);
                return None;
            }
            Lookup::Gone => self.unresolved += 1,
            // a TCP socket out of the tables (reset, closed) or one of no
            // named protocol: kept, its addresses unknown
            Lookup::Unlisted if ours => self.unresolved += 1,
            Lookup::Tcp(_) | Lookup::NotTcp | Lookup::Unlisted => {
                self.unresolved += 1;
                self.reused += 1;
            }
        }
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CloseEvent, ConnOpen, ProcInfo, Role, SockAddrs, Syscall};
    use std::collections::HashMap;

    /// A change to the fake /proc and map between two steps of the enricher.
    type Meanwhile = Box<dyn FnMut(&mut HashMap<i32, Lookup>, &mut HashMap<i32, u64>)>;

    /// A process's fd table, the TCP table and the kernel's `conns` map,
    /// changed by the test between the steps the enricher takes.
    #[derive(Default)]
    struct Fake {
        /// fd → what /proc shows now
        procfs: HashMap<i32, Lookup>,
        /// fd → generation in the kernel's map
        kernel: HashMap<i32, u64>,
        forgotten: Vec<i32>,
        /// run after the /proc lookup, before the map is read: the process
        /// closing the fd and opening another connection on it meanwhile
        between: Option<Meanwhile>,
    }

    impl Source for Fake {
        fn lookup(&mut self, _pid: u32, fd: i32) -> Lookup {
            let r = match self.procfs.get(&fd) {
                Some(Lookup::Tcp(a)) => Lookup::Tcp(*a),
                Some(Lookup::NotTcp) => Lookup::NotTcp,
                Some(Lookup::Unlisted) => Lookup::Unlisted,
                _ => Lookup::Gone,
            };
            if let Some(f) = self.between.as_mut() {
                f(&mut self.procfs, &mut self.kernel);
            }
            r
        }
        fn kernel_gen(&self, _tgid: u32, fd: i32) -> Option<u64> {
            self.kernel.get(&fd).copied()
        }
        fn forget(&mut self, _tgid: u32, fd: i32) {
            self.forgotten.push(fd);
            self.kernel.remove(&fd);
        }
    }

    fn conn(fd: i32, gen: u64) -> ConnId {
        ConnId {
            tgid: 42,
            proc_start_ns: 0,
            fd,
            gen,
        }
    }

    fn proc() -> ProcInfo {
        ProcInfo {
            tgid: 42,
            tid: 42,
            comm: "gotls-client".into(),
        }
    }

    fn open(fd: i32, gen: u64) -> Event {
        Event::open(ConnOpen {
            ts_ns: 1,
            conn: conn(fd, gen),
            proc: proc(),
            role: Role::Client,
            addrs: None,
            midstream: false,
            syscall: Syscall::Connect,
            cgroup_id: 0,
            identity: None,
        })
    }

    fn close(fd: i32, gen: u64) -> Event {
        Event::Close(CloseEvent {
            ts_ns: 2,
            conn: conn(fd, gen),
            proc: proc(),
            tx_bytes: 0,
            rx_bytes: 0,
        })
    }

    fn tcp(local_port: u16) -> Lookup {
        Lookup::Tcp(SockAddrs {
            local: format!("127.0.0.1:{local_port}").parse().unwrap(),
            remote: "127.0.0.1:8443".parse().unwrap(),
        })
    }

    fn addrs(ev: &Event) -> Option<SockAddrs> {
        match ev {
            Event::Open(o) => o.addrs,
            _ => panic!("not an open: {ev:?}"),
        }
    }

    /// The fake with /proc answering `lookup` for `fd` and the kernel's
    /// map holding generation `gen` for it; an enricher for the fallback.
    fn setup(fd: i32, lookup: Lookup, gen: u64) -> (Fake, Enricher) {
        let mut f = Fake::default();
        f.procfs.insert(fd, lookup);
        f.kernel.insert(fd, gen);
        (f, Enricher::new(true))
    }

    #[test]
    fn an_fd_still_holding_its_connection_gets_its_addresses() {
        let (mut f, mut e) = setup(7, tcp(40001), 5);
        let ev = e.event(open(7, 5), &mut f).unwrap();
        assert_eq!(addrs(&ev).unwrap().local.port(), 40001);
        assert_eq!((e.unresolved, e.reused, e.non_tcp), (0, 0, 0));
    }

    /// The regression: connection 5 on fd 7 closed, connection 6 opened on
    /// fd 7 before user space read 5's OPEN. /proc shows 6's socket.
    #[test]
    fn an_fd_reused_by_the_time_of_reading_gives_null_not_the_new_socket() {
        let (mut f, mut e) = setup(7, tcp(40002), 6); // /proc: 6's socket
        let ev = e.event(open(7, 5), &mut f).unwrap();
        assert_eq!(
            addrs(&ev),
            None,
            "the new socket's port given to the old connection"
        );
        assert_eq!((e.unresolved, e.reused), (1, 1));
        // and 6's own OPEN, read next, gets them
        let ev = e.event(open(7, 6), &mut f).unwrap();
        assert_eq!(addrs(&ev).unwrap().local.port(), 40002);
    }

    /// Reused between the /proc read and the map read: the map is read
    /// last, so the change is seen.
    #[test]
    fn reuse_during_the_proc_read_is_seen() {
        let (mut f, mut e) = setup(7, tcp(40003), 5);
        f.between = Some(Box::new(|p, k| {
            p.insert(7, tcp(40004));
            k.insert(7, 6);
        }));
        let ev = e.event(open(7, 5), &mut f).unwrap();
        // /proc answered 40003 (5's own) but nothing proves it was 5's
        // socket when it was read: null, counted
        assert_eq!(addrs(&ev), None);
        assert_eq!(e.reused, 1);
    }

    /// The other face of the race: the new socket is not connected yet (not
    /// in the TCP table), so /proc says "not TCP". Before the fix the old
    /// connection was dropped and the new one's kernel entry deleted.
    #[test]
    fn a_new_unconnected_socket_on_the_fd_drops_nothing_and_forgets_nothing() {
        let (mut f, mut e) = setup(7, Lookup::NotTcp, 6);
        let ev = e.event(open(7, 5), &mut f);
        assert!(ev.is_some(), "connection 5's records would be dropped");
        assert!(
            f.forgotten.is_empty(),
            "connection 6's kernel entry deleted"
        );
        assert_eq!(f.kernel.get(&7), Some(&6));
        assert_eq!((e.non_tcp, e.unresolved, e.reused), (0, 1, 1));
        // 5's later events still pass
        assert!(e.event(close(7, 5), &mut f).is_some());
    }

    #[test]
    fn a_socket_that_is_not_tcp_is_dropped_and_forgotten() {
        let (mut f, mut e) = setup(9, Lookup::NotTcp, 8);
        assert!(e.event(open(9, 8), &mut f).is_none());
        assert_eq!(f.forgotten, [9]);
        assert_eq!(e.non_tcp, 1);
        // its events are dropped until its close, which clears the mark
        assert!(e.event(close(9, 8), &mut f).is_none());
        assert!(e.event(close(9, 8), &mut f).is_some());
    }

    /// The kernel-matrix flake: a TCP connection reset (or closed) before
    /// its OPEN record was read, its fd still open, is in no TCP table.
    /// It was dropped as "not TCP" and forgotten.
    #[test]
    fn a_tcp_socket_out_of_the_tables_is_kept_with_null_addresses() {
        let (mut f, mut e) = setup(7, Lookup::Unlisted, 5);
        let ev = e.event(open(7, 5), &mut f).expect("dropped");
        assert_eq!(addrs(&ev), None);
        assert!(f.forgotten.is_empty(), "forgotten in the kernel");
        assert_eq!((e.non_tcp, e.unresolved, e.reused), (0, 1, 0));
        assert!(e.event(close(7, 5), &mut f).is_some());
        // read while the fd holds another connection: also counted reused
        f.kernel.insert(7, 6);
        assert!(e.event(open(7, 5), &mut f).is_some());
        assert_eq!((e.non_tcp, e.unresolved, e.reused), (0, 2, 1));
    }

    #[test]
    fn a_closed_fd_leaves_null_addresses() {
        let mut f = Fake::default();
        let mut e = Enricher::new(true);
        let ev = e.event(open(7, 5), &mut f).unwrap();
        assert_eq!(addrs(&ev), None);
        assert_eq!((e.unresolved, e.reused), (1, 0));
    }

    #[test]
    fn off_outside_the_fallback() {
        let mut f = Fake::default();
        f.procfs.insert(7, Lookup::NotTcp);
        let mut e = Enricher::new(false);
        assert!(e.event(open(7, 5), &mut f).is_some());
        assert!(f.forgotten.is_empty());
    }
}
