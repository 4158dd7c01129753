// SPDX-License-Identifier: GPL-3.0-or-later
//! Live test of what Osprey does not see (root): HTTPS, h2c, an unknown
//! binary protocol and a unix-socket exchange give no records, and the
//! summary names each with its count of connections.

mod common;

use common::*;

/// A python client and server in one process (comm `blindpy`, inherited
/// by its threads): HTTP/1.1 bytes over a unix socket, then binary bytes
/// over TCP to `port`. Both ends of each exchange are in the process.
const PY: &str = r#"
import ctypes, os, socket, sys, threading
ctypes.CDLL(None).prctl(15, b"blindpy", 0, 0, 0)
d = sys.argv[1]; port = int(sys.argv[2])
def serve(lsock):
    c, _ = lsock.accept()
    c.recv(4096); c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" if lsock.family == socket.AF_UNIX else b"\x00\x07\x00\x00reply")
    c.recv(10); c.close()
u = socket.socket(socket.AF_UNIX); u.bind(os.path.join(d, "u.sock")); u.listen(1)
t = socket.socket(); t.bind(("127.0.0.1", port)); t.listen(1)
for l in (u, t):
    th = threading.Thread(target=serve, args=(l,)); th.start()
    c = socket.socket(l.family)
    c.connect(os.path.join(d, "u.sock") if l is u else ("127.0.0.1", port))
    c.sendall(b"GET / HTTP/1.1\r\nHost: u\r\n\r\n" if l is u else b"\x00\x05\x00\x01hello")
    assert c.recv(4096)
    c.close(); th.join()
print("done")
"#;

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn tls_h2c_unknown_and_unix_traffic_are_named_in_the_summary() {
    let (tls_port, h2_port, raw_port) = (free_port(), free_port(), free_port());
    let dir = tmpdir("blind-certs");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = make_cert(&dir);
    let extra = format!(
        "server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {c}; ssl_certificate_key {k}; root {w}; }}\n  \
         server {{ listen 127.0.0.1:{h2_port} http2; root {w}; }}",
        c = cert.display(),
        k = key.display(),
        w = dir.join("www").display(),
    );
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/small.txt"), body(123)).unwrap();
    let site = Site::nginx_with("blind", &[("small.txt", &body(123))], &extra);
    wait_port(tls_port);
    wait_port(h2_port);
    // --tls off: HTTPS as Osprey sees it without the TLS library uprobes
    // (tests/live_tls.rs has it captured with them)
    let probe = site.probe(&[
        "--comm", "curl", "--comm", "nginx", "--comm", "blindpy", "--tls", "off",
    ]);
    // HTTP/1.1 (records), HTTPS (one connection), h2c (one connection)
    curl(&["--http1.1", "-o", "/dev/null", &site.url("/small.txt")]);
    curl(&[
        "-k",
        "-o",
        "/dev/null",
        &format!("https://127.0.0.1:{tls_port}/small.txt"),
    ]);
    curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        &format!("http://127.0.0.1:{h2_port}/small.txt"),
    ]);
    run_python(PY, &[&site.dir, &raw_port.to_string()]);
    let (recs, err) = probe.stop_ok();
    let t: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction")
        .collect();
    // the plain HTTP/1.1 exchange and the h2c one (HTTP/2 is parsed), at
    // both ends; nothing else
    let proto = |p: &str| t.iter().filter(|r| r["protocol"] == p).count();
    assert_eq!(
        (proto("http1"), proto("http2"), t.len()),
        (2, 2, 4),
        "{t:#?}\n{err}"
    );
    assert!(
        t.iter()
            .all(|r| r["target"] == "/small.txt" && r["status"] == 200),
        "{t:#?}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("osprey: connections with traffic but no records: "))
        .unwrap_or_else(|| panic!("no blind-spot line in\n{err}"));
    // each exchange is seen at both ends (client and server traced)
    assert!(
        line.contains(": 2 TLS (encrypted at the syscalls)"),
        "{line}"
    );
    assert!(line.contains(", 2 unknown protocol"), "{line}");
    // the unix socket: left out in the kernel (socket and CO-RE syscall hooks)
    assert!(line.ends_with(", not TCP: not traced (unix-domain and UDP sockets are left out in the kernel, uncounted)"), "{line}");
    let blind = summary(&err)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["blind_tls"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(blind, 2);
}
