// SPDX-License-Identifier: GPL-3.0-or-later
//! Live tests of the probe (issue: syscall capture → ring buffer → JSON).
//! Run as root; they load the real BPF programs and drive curl and python.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::*;
use serde_json::Value;

fn events<'a>(recs: &'a [Value], kind: &str, pid: u32) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| r["kind"] == kind && r["pid"] == pid)
        .collect()
}

/// Concatenate a direction's payloads after checking positions are contiguous.
fn stream(data: &[&Value], dir: &str) -> (String, u64) {
    let mut s = String::new();
    let mut next = None;
    for d in data.iter().filter(|d| d["dir"] == dir) {
        let pos = d["pos"].as_u64().unwrap();
        if let Some(n) = next {
            assert_eq!(pos, n, "positions not contiguous in {dir}: {d}");
        }
        let len = d["orig_len"].as_u64().unwrap();
        assert_eq!(d["cap_len"].as_u64().unwrap(), len.min(4096));
        next = Some(pos + len);
        s.push_str(d["payload"].as_str().unwrap());
    }
    (s, next.unwrap_or(0))
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn curl_and_python_server_both_ends() {
    let site = Site::python("curl-python", &[("hello.txt", b"hello from osprey\n")]);
    let py_pid = site.server.0.id();
    let probe = site.probe(&["--records", "events", "--comm", "curl", "--comm", "python3"]);
    assert_eq!(
        curl(&["--http1.1", &site.url("/hello.txt")]),
        "hello from osprey\n"
    );
    // python closes its end after curl has its response
    probe.wait_for_records("python's close", |r| {
        r.iter().any(|r| r["kind"] == "close" && r["pid"] == py_pid)
    });
    let (recs, err) = probe.stop_ok();
    assert_eq!(ringbuf_drops(&err), 0, "{err}");

    // client side: curl's connect, its request out, the response in
    let opens: Vec<&Value> = recs
        .iter()
        .filter(|r| r["kind"] == "open" && r["comm"] == "curl")
        .collect();
    assert_eq!(opens.len(), 1, "{opens:?}");
    let c = opens[0];
    let curl_pid = c["pid"].as_u64().unwrap() as u32;
    assert_eq!(c["role"], "client");
    assert_eq!(c["syscall"], "connect");
    assert_eq!(c["remote_addr"], "127.0.0.1");
    assert_eq!(c["remote_port"], site.port);
    assert_eq!(c["local_addr"], "127.0.0.1");
    let cport = c["local_port"].as_u64().unwrap();
    assert!(cport > 1024);

    let cdata = events(&recs, "data", curl_pid);
    assert!(cdata.iter().all(|d| d["conn_id"] == c["conn_id"]));
    let (req, req_len) = stream(&cdata, "egress");
    assert!(
        req.starts_with("GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:"),
        "{req:?}"
    );
    assert!(req.ends_with("\r\n\r\n"));
    assert_eq!(req_len as usize, req.len());
    let (resp, _) = stream(&cdata, "ingress");
    assert!(resp.starts_with("HTTP/1.0 200 OK\r\n"), "{resp:?}");
    assert!(resp.ends_with("hello from osprey\n"));

    // server side: python's accept of the same 4-tuple, mirror-image bytes
    let sopen = events(&recs, "open", py_pid);
    assert_eq!(sopen.len(), 1, "{sopen:?}");
    let s = sopen[0];
    assert_eq!(s["role"], "server");
    assert!(s["syscall"] == "accept" || s["syscall"] == "accept4");
    assert_eq!(s["local_port"], site.port);
    assert_eq!(s["remote_port"], cport);
    let sdata = events(&recs, "data", py_pid);
    assert_eq!(stream(&sdata, "ingress").0, req);
    assert_eq!(stream(&sdata, "egress").0, resp);

    // both ends close, with final positions
    let closes = events(&recs, "close", curl_pid);
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0]["tx_bytes"].as_u64().unwrap(), req_len);
    assert_eq!(closes[0]["rx_bytes"].as_u64().unwrap() as usize, resp.len());
    assert_eq!(events(&recs, "close", py_pid).len(), 1);
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn connection_opened_before_the_probe_is_seen_midstream() {
    // a plain TCP connection to a tiny echo server, both predating the probe
    let echo_port = free_port();
    let echo = py_server(
        "import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('127.0.0.1',int(sys.argv[1])));s.listen()\nc,_=s.accept()\n\
         while True:\n  d=c.recv(65536)\n  if not d: break\n  c.sendall(d.upper())\n",
        echo_port,
    );
    let dir = tmpdir("midstream");
    let mut conn = TcpStream::connect(("127.0.0.1", echo_port)).unwrap();
    conn.write_all(b"before\n").unwrap();
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"BEFORE\n");

    let me = std::process::id();
    let probe = Osprey::start(
        &["--records", "events", "--pid", &echo.0.id().to_string()],
        dir.join("out.jsonl"),
    );
    let probe_hooks = probe.hooks.clone();
    // The server is blocked in recv() since before the probe attached.
    // Syscall hooks: that read's sys_enter was never seen, so its bytes are
    // missed (the tracker sees a mid-stream start); its reply, and
    // everything after, is seen. Socket hooks see the bytes where the read
    // returns: nothing is missed.
    conn.write_all(b"first\n").unwrap();
    let mut buf = [0u8; 6];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"FIRST\n");
    conn.write_all(b"after the probe started\n").unwrap();
    let mut buf = [0u8; 24];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"AFTER THE PROBE STARTED\n");
    drop(conn);
    // the server sees the end of the stream, exits, and its fd is closed
    let echo_pid = echo.0.id();
    probe.wait_for_records("the echo server's close", |r| {
        r.iter()
            .any(|r| r["kind"] == "close" && r["pid"] == echo_pid)
    });
    let (recs, err) = probe.stop_ok();

    // the test process itself is not in the allowlist
    assert!(
        recs.iter().all(|r| r["pid"] != me),
        "pid filter leaked: {err}"
    );
    let opens = events(&recs, "open", echo_pid);
    assert_eq!(opens.len(), 1, "{recs:?}");
    let o = opens[0];
    assert_eq!(o["midstream"], true);
    assert_eq!(o["role"], "unknown");
    assert_eq!(o["local_port"], echo_port);
    assert_eq!(o["remote_addr"], "127.0.0.1");
    let data = events(&recs, "data", echo_pid);
    let ingress = if probe_hooks == "socket" {
        "first\nafter the probe started\n"
    } else {
        "after the probe started\n"
    };
    assert_eq!(stream(&data, "ingress").0, ingress);
    assert_eq!(
        stream(&data, "egress").0,
        "FIRST\nAFTER THE PROBE STARTED\n"
    );
    assert_eq!(events(&recs, "close", echo_pid).len(), 1);
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn comm_filter_excludes_other_processes_and_self() {
    let site = Site::python("filter", &[("f", b"x")]);
    let probe = site.probe(&["--records", "events", "--comm", "curl"]);
    for _ in 0..3 {
        curl(&[&site.url("/f")]);
    }
    let (recs, _) = probe.stop_ok();
    assert!(!recs.is_empty());
    assert!(
        recs.iter().all(|r| r["comm"] == "curl"),
        "non-curl events leaked"
    );
    // (curls of tests running in parallel may show up too: count ours)
    assert_eq!(
        recs.iter()
            .filter(|r| r["kind"] == "open" && r["remote_port"] == site.port)
            .count(),
        3
    );
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn no_bpf_program_is_left_behind() {
    require_root();
    let (progs, links) = osprey_bpf_baseline();
    let dir = tmpdir("leftover");
    let probe = Osprey::start(
        &[
            "--records",
            "events",
            "--comm",
            "nothing-matches",
            "--tls",
            "off",
        ],
        dir.join("out.jsonl"),
    );
    // only the chosen hook set is loaded, one link per program
    let n = if probe.hooks == "socket" { 4 } else { 31 };
    assert_eq!(
        loaded_osprey_bpf(),
        (progs + n, links + n),
        "expected our {n} {} programs and links (--tls off)",
        probe.hooks
    );
    probe.stop_ok();
    wait_unloaded((progs, links), "programs and links unloaded after exit");
    // with the TLS uprobes (the default) there are more, and they go too
    let probe = Osprey::start(
        &["--records", "events", "--comm", "nothing-matches"],
        dir.join("out-tls.jsonl"),
    );
    let (p, l) = loaded_osprey_bpf();
    assert!(
        p > progs + n && l > links + n,
        "expected the TLS programs beside the {n} {}: {:?}",
        probe.hooks,
        (p - progs, l - links)
    );
    probe.stop_ok();
    wait_unloaded((progs, links), "TLS programs and links unloaded after exit");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn sigterm_detaches_and_summarises() {
    let (progs, links) = osprey_bpf_baseline();
    let dir = tmpdir("sigterm");
    let probe = Osprey::start(&["--comm", "nothing-matches"], dir.join("out.jsonl"));
    let (status, _, err) = probe.stop_with(libc::SIGTERM);
    assert!(status.success(), "{status:?}\n{err}");
    assert!(err.contains("records written"), "no summary:\n{err}");
    assert_eq!(summary(&err)["pipeline"]["records"], 0, "{err}");
    wait_unloaded((progs, links), "programs and links unloaded after SIGTERM");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn clear_errors_for_bad_input_and_missing_privileges() {
    require_root();
    let out = Command::new(BIN)
        .args(["--ringbuf-size", "1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--ringbuf-size 1000: must be a power of two"));
    assert!(out.stdout.is_empty());

    let out = Command::new(BIN)
        .args(["--capture-bytes", "99999"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 16384"));

    let out = Command::new(BIN).args(["--pid", "abc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'abc'"));

    // as an unprivileged user
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied") && err.contains("root"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn check_verifies_tracepoint_layouts() {
    require_root();
    let out = Command::new(BIN).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("syscalls:sys_exit_recvmsg") && text.contains("layout as assumed"));
    // which hook set a run would attach, and why
    assert!(
        text.lines().any(|l| l.contains("hooks (--hooks auto)")
            && (l.contains("socket:") || l.contains("syscalls: the socket hooks cannot run"))),
        "{text}"
    );
    assert!(text.contains("all checks passed"));
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn socket_hooks_are_refused_with_the_reason_where_they_cannot_run() {
    require_root();
    // with a BTF file instead of the kernel's own BTF, tp_btf cannot attach
    let out = Command::new(BIN)
        .args([
            "--hooks",
            "socket",
            "--btf",
            "/sys/kernel/btf/vmlinux",
            "--duration",
            "1",
            "-o",
            "/dev/null",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--hooks socket: not available here") && err.contains("--hooks syscalls"),
        "{err}"
    );
}

#[test]
fn binary_is_static() {
    let out = Command::new("file").arg(BIN).output().unwrap();
    let f = String::from_utf8_lossy(&out.stdout);
    assert!(
        f.contains("statically linked") || f.contains("static-pie linked"),
        "{f}"
    );
    let ldd = Command::new("ldd").arg(BIN).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        text.contains("not a dynamic executable") || text.contains("statically linked"),
        "{text}"
    );
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn closed_output_pipe_stops_the_probe() {
    use std::io::{BufRead, BufReader};
    let site = Site::python("epipe", &[("f", b"x")]);
    // `osprey | head -n 1`
    let (mut probe, stdout) = Osprey::start_piped(&["--records", "events", "--comm", "curl"]);
    let url = site.url("/f");
    curl(&[&url]);
    let mut out = BufReader::new(stdout);
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("\"type\":\"event\""), "{first}");
    drop(out); // the reader goes away, like head after one line
               // osprey notices at its next write: keep traffic coming until it exits
    let mut status = None;
    wait_until(
        "osprey to exit with nobody reading its output",
        || {
            curl(&[&url]);
            status = probe.child.try_wait().unwrap();
            status.is_some()
        },
        String::new,
    );
    assert!(status.unwrap().success(), "{status:?}\n{}", probe.stderr());
}

/// One process, both ends, vectored I/O only: writev/sendmsg gather their
/// iovecs into one DATA record (orig_len = bytes moved, the captured prefix
/// contiguous), iovecs past OSPREY_MAX_IOV are counted but not captured,
/// and recvmsg into several buffers is one ingress record too. Run with the
/// CO-RE build (task-local stash) and the BTF-less one (hash stash).
const VECTORED_PY: &str = r#"
import os, socket, sys, time
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
c = socket.create_connection(ls.getsockname()); s, _ = ls.accept()
def settle(n):
    got = b""
    while len(got) < n:
        bufs = [bytearray(7), bytearray(65536)]
        k = s.recvmsg_into(bufs)[0]
        got += (bytes(bufs[0]) + bytes(bufs[1]))[:k]
    time.sleep(0.05)
    return got
os.writev(c.fileno(), [b"a" * 5, b"b" * 7, b"c" * 9]); settle(21)
c.sendmsg([bytes([65 + i]) * 10 for i in range(20)]); settle(200)
os.writev(c.fileno(), [b"x" * 3000, b"y" * 3000]); settle(6000)
c.close(); s.close()
print(os.getpid())
"#;

/// A server answering with head and body in separate iovecs of one
/// writev/sendmsg: pipelined responses in one call, and a chunked body.
const IOV_SERVER_PY: &str = r#"
import os, socket, time
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
c = socket.create_connection(ls.getsockname()); s, _ = ls.accept()
def take(sock, n):
    got = b""
    while len(got) < n:
        got += sock.recv(65536)
def head(n):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n" % n
def req(p):
    return b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % p
def answer(reqs, send, parts):
    c.sendall(b"".join(reqs)); take(s, sum(map(len, reqs)))
    send(parts); take(c, sum(map(len, parts)))
    time.sleep(0.02)
answer([req(b"a")], lambda p: os.writev(s.fileno(), p), [head(8192), b"z" * 8192])
answer([req(b"b"), req(b"c")], s.sendmsg, [head(3000), b"q" * 3000, head(5000), b"r" * 5000])
answer([req(b"d")], lambda p: os.writev(s.fileno(), p),
       [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1000\r\n", b"c" * 4096,
        b"\r\n", b"800\r\n", b"d" * 2048, b"\r\n0\r\n\r\n"])
c.close(); s.close()
print(os.getpid())
"#;

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn large_sent_iovecs_are_counted_not_copied() {
    let mut seen = Vec::new();
    for (whole, btf) in [("1024", true), ("1024", false), ("16384", true)] {
        let dir = tmpdir(&format!("iov-{whole}-{btf}"));
        let out = dir.join("out.jsonl");
        let args = ["--comm", "python3", "--iov-whole", whole];
        let probe = if btf {
            Osprey::start(&args, out)
        } else {
            Osprey::start_without_btf(&args, out)
        };
        let pid: u32 = run_ok(Command::new("python3").args(["-c", IOV_SERVER_PY]))
            .trim()
            .parse()
            .unwrap();
        let (recs, err) = probe.stop_ok();
        let server: Vec<(String, u64, u64, bool, bool)> = txns(&recs, "python3")
            .into_iter()
            .filter(|t| t["pid"] == pid && t["role"] == "server")
            .map(|t| {
                (
                    t["path"].as_str().unwrap().to_string(),
                    t["status"].as_u64().unwrap(),
                    t["resp_body_bytes"].as_u64().unwrap(),
                    t["gap"].as_bool().unwrap(),
                    t["truncated"].as_bool().unwrap(),
                )
            })
            .collect();
        let want = |p: &str, len, gap, trunc| (p.to_string(), 200, len, gap, trunc);
        if whole == "1024" {
            // bodies counted exactly and no gap, though only the first 64
            // bytes of each large body iovec were captured; the chunk-size
            // lines in iovecs of their own were captured whole
            let all = [
                want("/a", 8192, false, true),
                want("/b", 3000, false, true),
                want("/c", 5000, false, true),
                want("/d", 6144, false, true),
            ];
            assert_eq!(server, all, "btf={btf}\n{err}");
        } else {
            // everything up to the 4096-byte cap: the second chunk-size line
            // fell past it and the chunked body lost its framing
            assert_eq!(server.len(), 4, "{server:?}\n{err}");
            let first = [
                want("/a", 8192, false, true),
                want("/b", 3000, false, false),
                want("/c", 5000, false, true),
            ];
            assert_eq!(server[..3], first, "{err}");
            assert!(server[3].3, "/d: {:?}", server[3]);
        }
        seen.push(
            summary(&err)["kernel"]["truncated_bytes"]
                .as_u64()
                .unwrap_or_else(|| panic!("no truncated_bytes:\n{err}")),
        );
    }
    // the default left far more bytes uncaptured than --iov-whole 16384
    assert!(seen[0] > seen[2] + 10_000, "truncated bytes {seen:?}");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn vectored_syscalls_gather_into_one_record() {
    for btf in [true, false] {
        let dir = tmpdir(if btf { "vectored" } else { "vectored-nobtf" });
        let out = dir.join("out.jsonl");
        let args = [
            "--records",
            "events",
            "--comm",
            "python3",
            "--capture-bytes",
            "4096",
        ];
        let probe = if btf {
            Osprey::start(&args, out)
        } else {
            Osprey::start_without_btf(&args, out)
        };
        let pid: u32 = run_ok(Command::new("python3").args(["-c", VECTORED_PY]))
            .trim()
            .parse()
            .unwrap();
        let (recs, err) = probe.stop_ok();
        let data = events(&recs, "data", pid);
        let client: Vec<&Value> = data
            .iter()
            .copied()
            .filter(|d| d["dir"] == "egress" && d["role"] != "server")
            .collect();
        let shape: Vec<(u64, u64, &str)> = client
            .iter()
            .map(|d| {
                (
                    d["orig_len"].as_u64().unwrap(),
                    d["cap_len"].as_u64().unwrap(),
                    d["syscall"].as_str().unwrap(),
                )
            })
            .collect();
        // the second iovec of the last writev is larger than --iov-whole
        // (1024): only its first 64 bytes are captured
        assert_eq!(
            shape,
            [
                (21, 21, "writev"),
                (200, 160, "sendmsg"),
                (6000, 3064, "writev")
            ],
            "btf={btf}\n{client:?}"
        );
        assert_eq!(client[0]["payload"], "aaaaabbbbbbbccccccccc");
        let want: String = (0..16)
            .map(|i| char::from(65 + i as u8).to_string().repeat(10))
            .collect();
        assert_eq!(client[1]["payload"], want.as_str());
        assert_eq!(
            client[2]["payload"],
            format!("{}{}", "x".repeat(3000), "y".repeat(64)).as_str()
        );
        assert_eq!(client[1]["pos"], 21);
        assert_eq!(client[2]["pos"], 221);
        assert_eq!(
            summary(&err)["kernel"]["iov_overflow"],
            1,
            "btf={btf}: overflow not counted:\n{err}"
        );
        // the server's recvmsg_into([7 B, 64 KiB]) records: the same bytes
        let server: Vec<&Value> = data
            .iter()
            .copied()
            .filter(|d| d["dir"] == "ingress")
            .collect();
        assert!(
            server.iter().all(|d| d["syscall"] == "recvmsg"),
            "{server:?}"
        );
        let (got, end) = stream(&server, "ingress");
        assert_eq!(end, 6221, "btf={btf}");
        assert!(got.starts_with("aaaaabbbbbbbccccccccc"), "{got:.40}");
    }
}

/// A connection ends when its process lets go of it, not when the peer
/// resets it: over loopback the peer's close() delivers its RST to this
/// socket synchronously, while this process may still have a send or
/// receive on its way. (Socket hooks: an early CLOSE there re-opened the
/// connection mid-stream under a new generation.)
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn peer_reset_does_not_end_the_connection_before_its_owner_closes() {
    let dir = tmpdir("reset");
    let port = free_port();
    // One process, both ends: the client resets (SO_LINGER 0) right after
    // its request; the server reads it, waits 300 ms, then closes.
    let script = format!(
        r#"
import socket, struct, sys, threading, time
sys.stdin.readline()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", {port})); srv.listen(1)
def server():
    c, _ = srv.accept()
    c.recv(100)
    time.sleep(0.3)
    c.close()
t = threading.Thread(target=server); t.start()
cl = socket.create_connection(("127.0.0.1", {port}))
cl.sendall(b"hello")
time.sleep(0.1)
cl.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
cl.close()
t.join()
print("done", flush=True)
"#
    );
    let mut py = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = py.id();
    let probe = Osprey::start(
        &["--records", "events", "--pid", &pid.to_string()],
        dir.join("out.jsonl"),
    );
    py.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("done"));
    let (recs, _) = probe.stop_ok();

    let opens = events(&recs, "open", pid);
    let server: Vec<_> = opens.iter().filter(|o| o["local_port"] == port).collect();
    assert_eq!(
        server.len(),
        1,
        "one server connection, opened once: {opens:?}"
    );
    let id = &server[0]["conn_id"];
    let of = |kind: &str| {
        recs.iter()
            .filter(|r| r["kind"] == kind && &r["conn_id"] == id)
            .collect::<Vec<_>>()
    };
    let data = of("data");
    let close = of("close");
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["payload"], "hello");
    assert_eq!(close.len(), 1, "{recs:?}");
    // the server closed 300 ms after it read; the client's reset came ~100 ms after the read
    let waited = close[0]["mono_ns"].as_u64().unwrap() - data[0]["mono_ns"].as_u64().unwrap();
    assert!(
        waited >= 250_000_000,
        "CLOSE {waited} ns after the read: at the peer's reset, not the owner's close"
    );
    assert_eq!(close[0]["rx_bytes"], 5);
}

/// The summary readers the live tests rely on (no root needed): numbers
/// are parsed, not matched as substrings ("0 drops" in "10 drops").
#[test]
fn summary_readers_parse_numbers_not_substrings() {
    use std::panic::catch_unwind;
    let line = "osprey: 1.0s, 9 events (10 ring-buffer drops, 0 bytes lost, 0 lost to busy scratch slots), 3 records written\n";
    assert_eq!(ringbuf_drops(line), 10);
    let json = |n: u64| format!("{line}osprey: summary {{\"kernel\":{{\"ringbuf_drops\":{n}}}}}\n");
    assert_eq!(ringbuf_drops(&json(10)), 10);
    assert_eq!(summary(&json(10))["kernel"]["ringbuf_drops"], 10);
    assert!(
        catch_unwind(|| ringbuf_drops(&json(0))).is_err(),
        "line and JSON disagree"
    );
    assert!(
        catch_unwind(|| ringbuf_drops("osprey: 1.0s, 9 events (many ring-buffer drops)")).is_err()
    );
    assert!(catch_unwind(|| ringbuf_drops("osprey: exiting")).is_err());
    assert!(catch_unwind(|| summary(line)).is_err());
}

/// A test that fails while its probe runs must not leave the probe (or its
/// programs) behind: the helper stops it on drop.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn a_failing_test_leaves_no_probe_behind() {
    let before = osprey_bpf_baseline();
    let dir = tmpdir("panic");
    let pid = std::sync::Mutex::new(0);
    let failed = std::panic::catch_unwind(|| {
        let probe = Osprey::start(&["--comm", "nothing-matches"], dir.join("out.jsonl"));
        *pid.lock().unwrap() = probe.pid();
        panic!("an assertion fails while the probe runs");
    });
    assert!(failed.is_err());
    let pid = *pid.lock().unwrap();
    assert!(
        pid > 0 && !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "osprey {pid} still running"
    );
    wait_unloaded(before, "programs and links unloaded");
}
