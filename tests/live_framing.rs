// SPDX-License-Identifier: GPL-3.0-or-later
//! Live tests of message framing past `--capture-bytes` (issue 17, item
//! 1), under whichever hook set `OSPREY_TEST_HOOKS` names: a large read
//! or write is copied in several records (up to `--capture-max-per-call`),
//! so heads and chunk-size lines deep inside one syscall are seen while
//! the kernel parses nothing. The reference is the wire: tcpdump captures
//! the same loopback traffic and tshark decodes it (tests/common/tshark.rs);
//! both ends' records must agree with it exactly, and with what the
//! programs themselves counted.

mod common;

use std::process::Command;

use common::tshark::{agree, Capture};
use common::*;
use serde_json::Value;

/// One connection: three pipelined requests in one write (the third
/// starts past 4096 bytes), a 20 KB response head written in three
/// pieces, a chunked response with a 70,000-byte chunk then a 1,008-byte
/// one (71,008 bytes, in one write), and a response whose head follows a
/// 6,000-byte body of the previous one in the same write. Both read with
/// `rd()` ([`with_reader`]); the client prints each response's status and
/// body bytes.
const SERVER: &str = r#"
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(1)
c, _ = ls.accept()
buf = b""
def head():
    global buf
    while b"\r\n\r\n" not in buf:
        d = rd(c)
        assert d, "eof"
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    h, buf = buf[:i], buf[i:]
    return h.split(b" ")[1].decode()
for i in range(3):
    p = head()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 + i) + b"p" * (10 + i))
p = head(); assert p == "/bighead", p
pad = [b"X-Pad-%d: %s\r\n" % (k, b"h" * 990) for k in range(20)]
h = b"HTTP/1.1 200 OK\r\n" + b"".join(pad) + b"Content-Length: 100\r\n\r\n"
c.sendall(h[:7000]); c.sendall(h[7000:14000]); c.sendall(h[14000:] + b"b" * 100)
p = head(); assert p == "/chunked", p
c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          + b"%x\r\n" % 70000 + b"c" * 70000 + b"\r\n"
          + b"%x\r\n" % 1008 + b"d" * 1008 + b"\r\n0\r\n\r\n")
p = head(); assert p == "/two", p
p = head(); assert p == "/three", p
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6000\r\n\r\n" + b"e" * 6000
          + b"HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\nmissing")
while c.recv(65536):
    pass
c.close()
"#;

const CLIENT: &str = r#"
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
buf = b""
def more():
    global buf
    d = rd(s)
    assert d, "eof"
    buf += d
def response():
    global buf
    while b"\r\n\r\n" not in buf:
        more()
    i = buf.index(b"\r\n\r\n") + 4
    h, buf = buf[:i], buf[i:]
    status = int(h.split(b" ")[1])
    if b"Transfer-Encoding: chunked" in h:
        n = 0
        while True:
            while b"\r\n" not in buf:
                more()
            j = buf.index(b"\r\n")
            size = int(buf[:j], 16)
            while len(buf) < j + 2 + size + 2:
                more()
            buf = buf[j + 2 + size + 2:]
            n += size
            if size == 0:
                return status, n
    size = int(h.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(buf) < size:
        more()
    buf = buf[size:]
    return status, size
pad = b"".join(b"X-Pad-%d: %s\r\n" % (k, b"q" * 2500) for k in range(1))
s.sendall(b"".join(b"GET /pipe%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (i, pad) for i in range(3)))
for i in range(3):
    print(*response(), flush=True)
s.sendall(b"GET /bighead HTTP/1.1\r\nHost: x\r\n\r\n")
print(*response(), flush=True)
s.sendall(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
print(*response(), flush=True)
s.sendall(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\n\r\n")
print(*response(), flush=True)
print(*response(), flush=True)
s.close()
"#;

/// The records of one side, by role (both ends are python3).
fn side<'a>(recs: &'a [Value], role: &str) -> Vec<&'a Value> {
    let mut t: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction" && r["role"] == role)
        .collect();
    t.sort_by_key(|r| r["ts_start_ns"].as_i64());
    t
}

/// No gap cause: `gap_cause` empty.
fn no_cause(r: &Value) -> bool {
    r["gap_cause"].as_array().is_some_and(|a| a.is_empty())
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn heads_pipelines_and_chunk_lines_past_the_capture_cap_are_exact() {
    past_the_cap_exact("framing", "recv", "recv");
}

/// The same exchange read with vectored calls: the server with
/// recvmsg() and the client with readv(), each into a 1,000-byte and a
/// 64,536-byte buffer, so the bytes past `--capture-bytes` lie in the
/// second iovec (further records walk the iovec array).
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn vectored_reads_past_the_capture_cap_are_exact() {
    past_the_cap_exact("framing-vec", "recvmsg", "readv");
}

/// What SERVER and CLIENT read with: `rd(sock)` is a recv(65536), or
/// (MODE readv/recvmsg) a vectored read into a 1,000-byte and a
/// 64,536-byte buffer.
fn with_reader(script: &str, mode: &str) -> String {
    format!(
        r#"import os, socket, sys
MODE = "{mode}"
def rd(s):
    if MODE == "recv":
        return s.recv(65536)
    a, b = bytearray(1000), bytearray(64536)
    if MODE == "readv":
        n = os.readv(s.fileno(), [a, b])
    else:
        n = s.recvmsg_into([a, b])[0]
    return bytes((a + b)[:n])
{script}"#
    )
}

/// One run of SERVER and CLIENT, reading with `server_read` and
/// `client_read` (recv, readv or recvmsg), checked against the programs'
/// own account and tshark on both ends.
fn past_the_cap_exact(name: &str, server_read: &str, client_read: &str) {
    require_root();
    let (server_py, client_py) = (
        with_reader(SERVER, server_read),
        with_reader(CLIENT, client_read),
    );
    let dir = tmpdir(name);
    let port = free_port();
    let cap = Capture::start(&dir, port);
    let probe = Osprey::start(&["--comm", "python3"], dir.join("out.jsonl"));
    let server = py_server(&server_py, port);
    let out = run_ok(Command::new("python3").args(["-c", &client_py, &port.to_string()]));
    let seen: Vec<(u64, u64)> = out
        .lines()
        .map(|l| {
            let (s, n) = l.split_once(' ').unwrap();
            (s.parse().unwrap(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (200, 10),
            (200, 11),
            (200, 12),
            (200, 100),
            (200, 71_008),
            (200, 6000),
            (404, 7)
        ],
        "the client's own account"
    );
    let wire = cap.finish(7);
    drop(server);
    let probe_recs = |r: &[Value]| side(r, "client").len() >= 7 && side(r, "server").len() >= 7;
    probe.wait_for_records("7 transactions on each side", probe_recs);
    let (recs, err) = probe.stop_ok();
    let paths: Vec<&str> = wire.iter().map(|w| w.uri.as_str()).collect();
    assert_eq!(
        paths,
        ["/pipe0", "/pipe1", "/pipe2", "/bighead", "/chunked", "/two", "/three"],
        "tshark: {wire:#?}"
    );
    for role in ["client", "server"] {
        let s = side(&recs, role);
        agree(&s, &wire, role);
        // the 20 KB head: its size, exact (the head is not cut)
        assert!(
            s[3]["resp_header_bytes"].as_u64().unwrap() > 20_000,
            "{role}: {}",
            s[3]
        );
        assert_eq!(s[3]["resp_header_count"], 21, "{role}: {}", s[3]);
        // no record lost a byte: the further records carried them
        for r in &s {
            assert!(no_cause(r), "{role}: {r}");
        }
    }
    let k = &summary(&err)["kernel"];
    assert!(k["cont_records"].as_u64().unwrap() > 0, "{err}");
    assert_eq!(k["ringbuf_drops"], 0, "{err}");
    assert_eq!(k["unseen_bytes"], 0, "{err}");
}

/// The same traffic with further records turned off
/// (`--capture-max-per-call` 0): what is lost past the cap is never
/// invented; records that lost framing say so (`gap`, cause
/// `capture_cap`).
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn without_further_records_the_cap_is_named_as_the_cause() {
    require_root();
    let dir = tmpdir("framing-off");
    let port = free_port();
    let probe = Osprey::start(
        &["--comm", "python3", "--capture-max-per-call", "0"],
        dir.join("out.jsonl"),
    );
    let server = py_server(&with_reader(SERVER, "recv"), port);
    let client = with_reader(CLIENT, "recv");
    run_ok(Command::new("python3").args(["-c", &client, &port.to_string()]));
    drop(server);
    let (recs, err) = probe.stop_ok();
    let k = &summary(&err)["kernel"];
    assert_eq!(k["cont_records"], 0, "{err}");
    assert_eq!(k["ringbuf_drops"], 0, "{err}");
    let all: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction")
        .collect();
    // something was lost to the cap, and every record that has a gap
    // names the cap as its cause (no drop, no other cause)
    let gapped: Vec<&&Value> = all.iter().filter(|r| r["gap"] == true).collect();
    assert!(!gapped.is_empty(), "{all:#?}");
    for r in gapped {
        let causes = r["gap_cause"].to_string();
        assert!(causes.contains("capture_cap"), "{r}");
        assert!(!causes.contains("ring_buffer_drop"), "{r}");
    }
}

/// nginx: an 8 KiB Cookie request head from curl, and a 1.5 MB gzip'd
/// (chunked) response read by curl; both ends against tshark and curl's
/// own account.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn nginx_cookie_head_and_gzip_chunked_body_match_the_wire() {
    require_root();
    // incompressible: the gzip'd body stays about 1.5 MB
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..1_500_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let site = Site::nginx_with(
        "framing-nginx",
        &[("small.txt", &body(300)), ("big.txt", &noise)],
        "large_client_header_buffers 4 32k; gzip on; gzip_types *; gzip_min_length 0; sendfile off;",
    );
    let cap = Capture::start(&site.dir, site.port);
    let probe = site.probe(&["--comm", "nginx", "--comm", "curl"]);
    let cookie = format!("Cookie: session={}", "k".repeat(8192));
    let w = "%{http_code} %{size_download}\\n";
    let out = curl(&[
        "--http1.1",
        "-H",
        &cookie,
        "-o",
        "/dev/null",
        "-w",
        w,
        &site.url("/small.txt"),
        "--next",
        "-H",
        "Accept-Encoding: gzip",
        "-o",
        "/dev/null",
        "-w",
        w,
        &site.url("/big.txt"),
    ]);
    let seen: Vec<(u64, u64)> = out
        .lines()
        .map(|l| {
            let (s, n) = l.split_once(' ').unwrap();
            (s.parse().unwrap(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(seen.len(), 2, "curl: {out}");
    assert_eq!(seen[0], (200, 300), "curl: {out}");
    assert_eq!(seen[1].0, 200, "curl: {out}");
    assert!(seen[1].1 > 1_400_000, "gzip'd size {out}");
    let wire = cap.finish(2);
    assert_eq!(wire[1].resp_body, seen[1].1, "tshark vs curl: {wire:#?}");
    probe.wait_for_records("2 transactions per side", |r| {
        txns(r, "curl").len() >= 2 && txns(r, "nginx").len() >= 2
    });
    let (recs, err) = probe.stop_ok();
    agree(&txns(&recs, "curl"), &wire, "client");
    agree(&txns(&recs, "nginx"), &wire, "server");
    for r in txns(&recs, "curl").iter().chain(&txns(&recs, "nginx")) {
        assert!(no_cause(r), "{r}");
    }
    let head = txns(&recs, "nginx")[0]["req_header_bytes"]
        .as_u64()
        .unwrap();
    assert!(head > 8192, "the cookie head: {head}");
    assert_eq!(ringbuf_drops(&err), 0, "{err}");
}

/// Body skips (`--body-skip`, on by default): a 1,000,000-byte body of
/// known length with the next response's head right behind it in the same
/// write. Once Osprey has parsed the first head on both ends it tells the
/// kernel the body's end (the `skips` map); only then does the server send
/// the rest, so the kernel counts the body instead of copying it, on both
/// ends, and copies the second head wherever it falls in a read or write.
const SKIP_SERVER: &str = r#"
import socket, sys
N = 1000000
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(1)
c, _ = ls.accept()
buf = b""
while buf.count(b"\r\n\r\n") < 2:
    d = c.recv(65536)
    assert d, "eof"
    buf += d
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % N + b"x" * 1000)
assert sys.stdin.readline().strip() == "go"
c.sendall(b"x" * (N - 1000) + b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ntail")
while c.recv(65536):
    pass
"#;

const SKIP_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
want = 44 + 1000000 + 45 + 4
n, tail = 0, b""
while n < want:
    d = s.recv(1 << 22)
    assert d, "eof"
    n += len(d)
    tail = (tail + d)[-100:]
assert tail.endswith(b"404 Not Found\r\nContent-Length: 4\r\n\r\ntail"), tail
print(n, flush=True)
s.close()
"#;

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn a_long_body_is_counted_not_copied_and_the_head_behind_it_is_exact() {
    use std::io::Write;
    use std::process::Stdio;
    require_root();
    let dir = tmpdir("framing-skip");
    let port = free_port();
    let cap = Capture::start(&dir, port);
    let probe = Osprey::start(&["--comm", "python3"], dir.join("out.jsonl"));
    let mut server = Guard(
        Command::new("python3")
            .args(["-c", SKIP_SERVER, &port.to_string()])
            .stdin(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    wait_listening(port);
    let client = Command::new("python3")
        .args(["-c", SKIP_CLIENT, &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    // the body ends at 44 + 1,000,000 in the server's sent bytes and the
    // client's received ones: wait until both hints are in the map
    let until = 44 + 1_000_000u64;
    let hints = || -> usize {
        let out = Command::new("bpftool")
            .args(["-j", "map", "dump", "name", "skips"])
            .output()
            .expect("bpftool");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["formatted"]["value"]["until"].as_u64() == Some(until))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until(
        "both ends' body hints in the skips map",
        || hints() == 2,
        || format!("{} entries with until {until}", hints()),
    );
    writeln!(server.0.stdin.as_mut().unwrap(), "go").unwrap();
    let out = client.wait_with_output().expect("client");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (44 + 1_000_000 + 45 + 4).to_string()
    );
    let wire = cap.finish(2);
    drop(server);
    let probe_recs = |r: &[Value]| side(r, "client").len() >= 2 && side(r, "server").len() >= 2;
    probe.wait_for_records("2 transactions on each side", probe_recs);
    let (recs, err) = probe.stop_ok();
    for role in ["client", "server"] {
        let s = side(&recs, role);
        agree(&s, &wire, role);
        for r in &s {
            assert!(no_cause(r), "{role}: {r}");
        }
        assert_eq!(s[1]["status"], 404, "{role}: {}", s[1]);
    }
    let k = &summary(&err)["kernel"];
    // everything after the first 1,000 body bytes, on both ends
    assert_eq!(k["skipped_body_bytes"], 2 * (1_000_000 - 1000), "{err}");
    assert_eq!(k["ringbuf_drops"], 0, "{err}");
}
