// SPDX-License-Identifier: GPL-3.0-or-later
//! Live test of a TLS write whose buffer the kernel cannot read at the
//! uprobe (root): the record says `read_fault`, not `capture_cap`.
//!
//! `bpf_probe_read_user` cannot fault a page in. A Python `ssl` client
//! (comm `tlsfault`, the server a thread of the same process) sends one
//! request from a fresh anonymous mapping: the head in its first page, a
//! body of zeros after it. Both ends' socket buffers are small, so
//! `SSL_write_ex` (the whole 4 MiB in one call) blocks until the server
//! reads, which it does only once another thread of the client saw the
//! first TLS record arrive (`SSL_write` has read the first page by then)
//! and dropped the first 64 KiB of the mapping (`MADV_DONTNEED`: not
//! present, reading as zeros if touched again; `SSL_write` does not touch
//! them again). At the call's return the uprobe reads the buffer's first
//! bytes, and fails: every time, not a race.
//!
//! And a plain `sendmsg` whose `struct msghdr` lies in a page that is not
//! present (a shared file mapping after `MADV_DONTNEED`: the bytes stay in
//! the page cache and the kernel's own copy faults them back in): the
//! syscall hooks cannot read the msghdr at the call's entry, yet the bytes
//! the call moves are counted, as a `read_fault` gap (the socket hooks
//! read it after the kernel's copy brought the page back: no gap).

mod common;

use common::*;

/// After [`PY_TLS_PRELUDE`].
const PY: &str = r#"
import mmap, select
N = 4 << 20
# small buffers: the client's write cannot complete before the server reads
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
ls.bind(("127.0.0.1", port)); ls.listen(1)
srv = {}
ready, go = threading.Event(), threading.Event()
def serve():
    c, _ = ls.accept()
    s = sctx.wrap_socket(c, server_side=True)
    srv["s"] = s
    ready.set()
    go.wait()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    got = len(rest)
    while got < n:
        got += len(s.recv(1 << 20))
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    s.recv(1)
    s.close()
th = threading.Thread(target=serve); th.start()
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
c.connect(("127.0.0.1", port))
cs = cctx.wrap_socket(c)
ready.wait()
# a fresh anonymous mapping: the request head in its first page, the body
# (zeros) untouched
m = mmap.mmap(-1, N)
head = b""
for _ in range(3):
    head = b"POST /fault HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (N - len(head))
m[:len(head)] = head
def spoil():
    # the server's socket is readable: the first TLS record went out, so
    # SSL_write has read the first page; drop it while SSL_write is still
    # blocked on the small buffers
    select.select([srv["s"]], [], [])
    m.madvise(mmap.MADV_DONTNEED, 0, 65536)
    go.set()
t2 = threading.Thread(target=spoil); t2.start()
cs.sendall(memoryview(m))
t2.join()
r = cs.recv(1024)
assert r.startswith(b"HTTP/1.1 200 OK"), r
cs.close(); th.join()
print("done")
"#;

/// The two transactions of `comm` (a client and a server in one
/// process): exactly one of each, (server, client).
fn server_and_client<'a>(
    recs: &'a [serde_json::Value],
    comm: &str,
) -> (&'a serde_json::Value, &'a serde_json::Value) {
    let t = txns(recs, comm);
    assert_eq!(t.len(), 2, "{recs:#?}");
    let one = |role: &str| {
        let v: Vec<_> = t.iter().filter(|r| r["role"] == role).collect();
        assert_eq!(v.len(), 1, "{role}: {t:#?}");
        *v[0]
    };
    (one("server"), one("client"))
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn a_tls_write_of_a_page_not_present_is_a_read_fault_gap_not_the_capture_cap() {
    let dir = tmpdir("tls-fault");
    let cert = make_cert(&dir);
    // The page is dropped by another thread while SSL_write_ex blocks; once
    // in a CI run (2026-12-05) the read at its return still succeeded (the
    // record had its head, no read error): the fault this test is about did
    // not happen. Such a run shows nothing either way: the exchange runs
    // again with a new probe, at most three times, saying so; a third run
    // without a failed read fails the test.
    let mut attempt = 0;
    let (recs, err, s) = loop {
        attempt += 1;
        let port = free_port();
        let probe = Osprey::start(
            &["--comm", "tlsfault"],
            dir.join(format!("out{attempt}.jsonl")),
        );
        run_python_tls("tlsfault", PY, &cert, port, &[]);
        probe.wait_for_records("both ends' transaction", |r| txns(r, "tlsfault").len() >= 2);
        let (recs, err) = probe.stop_ok();
        let s = summary(&err);
        if s["kernel"]["read_errors"].as_u64() > Some(0) {
            break (recs, err, s);
        }
        assert!(
            attempt < 3,
            "the uprobe's read must have failed (attempt {attempt}):\n{err}"
        );
        eprintln!("attempt {attempt}: no uprobe read failed (the page was readable at SSL_write_ex's return); running the exchange again");
    };
    let (server, c) = server_and_client(&recs, "tlsfault");
    // the server read the request whole: no gap
    assert_eq!(server["target"], "/fault");
    // 4 MiB in all, the head 58 bytes of it
    assert_eq!(server["req_body_bytes"], (4 << 20) - 58);
    assert_eq!(server["gap"], false, "{server:#?}");
    // the client's request head lay in the bytes the uprobe could not
    // read: its response comes without it, and says why
    assert_eq!(
        (c["status"].as_u64(), c["tls"].as_bool()),
        (Some(200), Some(true))
    );
    assert_eq!(c["gap"], true, "{c:#?}");
    assert_eq!(c["gap_cause"], serde_json::json!(["read_fault"]), "{c:#?}");
    let sum = |k: &str| sum_workers(&s, k);
    assert_eq!(
        (sum("gap_read_fault"), sum("gap_capture_cap")),
        (1, 0),
        "{err}"
    );
    assert!(
        err.contains("records with gap by cause: read_fault 1"),
        "{err}"
    );
    assert_eq!(ringbuf_drops(&err), 0);
}

const PY_MSG: &str = r#"
import ctypes, mmap, os, socket, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, b"msgfault", 0, 0, 0)
port = int(sys.argv[1])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(1)
def serve():
    s, _ = ls.accept(); buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    s.recv(1)
    s.close()
th = threading.Thread(target=serve); th.start()
cs = socket.create_connection(("127.0.0.1", port))
# a shared mapping of a tmpfs file: the msghdr and its iovec in the first
# page, the request in the second
f = open("/dev/shm/osprey-msgfault-%d" % os.getpid(), "w+b"); f.truncate(8192); os.unlink(f.name)
m = mmap.mmap(f.fileno(), 8192)
req = b"GET /msgfault HTTP/1.1\r\nHost: x\r\n\r\n"
m[4096:4096 + len(req)] = req
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
iov = iovec.from_buffer(m, 64); iov.base = base + 4096; iov.len = len(req)
mh = msghdr.from_buffer(m, 0); mh.iov = base + 64; mh.iovlen = 1
# not present from now on; its bytes kept in the page cache
m.madvise(mmap.MADV_DONTNEED, 0, 4096)
n = libc.sendmsg(cs.fileno(), ctypes.c_void_p(base), 0)
assert n == len(req), (n, ctypes.get_errno())
r = b""
while not r.endswith(b"ok"):
    r += cs.recv(1024)
assert r.startswith(b"HTTP/1.1 200 OK"), r
cs.close(); th.join()
print("done")
"#;

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn a_sendmsg_whose_msghdr_is_not_present_is_counted_as_a_read_fault_gap() {
    let port = free_port();
    let dir = tmpdir("msg-fault");
    let probe = Osprey::start(&["--comm", "msgfault"], dir.join("out.jsonl"));
    run_python(PY_MSG, &[&port.to_string()]);
    probe.wait_for_records("both ends' transaction", |r| txns(r, "msgfault").len() >= 2);
    let hooks = probe.hooks.clone();
    let (recs, err) = probe.stop_ok();
    let s = summary(&err);
    let (server, c) = server_and_client(&recs, "msgfault");
    assert_eq!(server["target"], "/msgfault");
    assert_eq!(server["gap"], false, "{server:#?}");
    assert_eq!(c["status"], 200, "{c:#?}");
    if hooks == "syscalls" {
        // read at the syscall's entry, before the kernel's copy: the
        // request's bytes counted, none copied, and why
        assert!(
            s["kernel"]["read_errors"].as_u64() > Some(0),
            "the msghdr read must have failed:\n{err}"
        );
        assert_eq!(c["gap"], true, "{c:#?}");
        assert_eq!(c["gap_cause"], serde_json::json!(["read_fault"]), "{c:#?}");
        assert!(
            err.contains("records with gap by cause: read_fault 1"),
            "{err}"
        );
    } else {
        // the socket hooks read it after the kernel's copy faulted it in
        assert_eq!(s["kernel"]["read_errors"], 0, "{err}");
        assert_eq!(c["target"], "/msgfault", "{c:#?}");
        assert_eq!(c["gap"], false, "{c:#?}");
    }
    assert_eq!(ringbuf_drops(&err), 0);
}
