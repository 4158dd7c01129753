// SPDX-License-Identifier: GPL-3.0-or-later
//! Live tests of TLS plaintext capture (root): uprobes on OpenSSL's libssl
//! (dynamically linked, as Debian ships it) give HTTPS exchanges the same
//! records as plaintext ones, with `tls: true` and `tls_library`.
//!
//! The oracle is the wire: the clients write their TLS secrets
//! (`SSLKEYLOGFILE`), tshark captures the loopback traffic and decrypts it
//! with them, and the decrypted HTTP transactions (method, target, status,
//! body sizes, client port) must be exactly Osprey's, on the client side
//! and on the server side.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// tcpdump capturing TCP on `port` over loopback into `dir/cap.pcap`
/// (tshark decodes it afterwards), once it says it is listening; its
/// stderr (drop counts at the end) in `dir/capture.log`. Stopped (and the
/// file complete) by [`Capture::finish`]; killed on drop.
///
/// As the other wire oracles capture ([`common::tshark::tcpdump`]):
/// immediate mode, packet-buffered output, no snap length, a 64 MiB
/// kernel buffer.
/// tshark's own capture (dumpcap, block-buffered ring) was used here
/// before; twice it lost part of an exchange the others never lost.
struct Capture {
    guard: Guard,
    file: PathBuf,
    log: PathBuf,
}

impl Capture {
    fn start(dir: &Path, port: u16) -> Capture {
        let file = dir.join("cap.pcap");
        let log = dir.join("capture.log");
        let _ = std::fs::remove_file(&file);
        let child = common::tshark::tcpdump(&file, port)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tcpdump (scripts/setup.sh installs it)");
        let c = Capture {
            guard: Guard(child),
            file,
            log,
        };
        wait_until(
            "tcpdump to listen",
            || {
                std::fs::read_to_string(&c.log)
                    .unwrap_or_default()
                    .contains("listening on")
            },
            || std::fs::read_to_string(&c.log).unwrap_or_default(),
        );
        c
    }

    /// Once the capture file has stopped growing (the last packets of a
    /// 2 MiB response can still be on their way into it; without them
    /// tshark cannot reassemble that response), SIGINT: tcpdump writes out
    /// what it has and exits.
    fn finish(mut self) -> PathBuf {
        let size = |f: &Path| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        let (mut last, mut same) = (size(&self.file), 0);
        wait_until(
            "the capture file to stop growing",
            || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let now = size(&self.file);
                same = if now == last { same + 1 } else { 0 };
                last = now;
                same >= 3
            },
            String::new,
        );
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe { libc::kill(self.guard.0.id() as i32, libc::SIGINT) };
        wait_until(
            "tcpdump to exit",
            || matches!(self.guard.0.try_wait(), Ok(Some(_))),
            String::new,
        );
        self.file.clone()
    }
}

/// Osprey's records of the `client` and `server` comms, each exactly the
/// decrypted capture's `want` (OpenSSL plaintext, no gap).
fn assert_both_sides(recs: &[Value], client: &str, server: &str, want: &[Txn], err: &str) {
    let side = |comm, role| probed_tls(recs, comm, role, "openssl");
    assert_eq!(side(client, "client"), want, "client side\n{err}");
    assert_eq!(side(server, "server"), want, "server side\n{err}");
}

/// The HTTP transactions of a capture decrypted with `keys`, paired per
/// connection (client port) in order; panics if the decoding is not
/// whole (see [`try_decrypted`]).
fn decrypted(pcap: &Path, keys: &Path, server_port: u16) -> Vec<Txn> {
    try_decrypted(pcap, keys, server_port).unwrap_or_else(|e| panic!("{e}"))
}

/// [`decrypted`], or why tshark's decoding is not whole: a request without
/// its response (or the reverse), with tshark's lines, its capture log and
/// its expert notes on the TCP stream (segments not captured, out of
/// order), so a run that lost the oracle says how.
fn try_decrypted(pcap: &Path, keys: &Path, server_port: u16) -> Result<Vec<Txn>, String> {
    let out = run_ok(
        Command::new("tshark")
            .arg("-r")
            .arg(pcap)
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keys.display()))
            .args([
                "-Y",
                "http",
                "-T",
                "fields",
                "-E",
                "separator=|",
                "-e",
                "tcp.srcport",
                "-e",
                "tcp.dstport",
                "-e",
                "http.request.method",
                "-e",
                "http.request.uri",
                "-e",
                "http.response.code",
                "-e",
                "http.content_length_header",
            ]),
    );
    // per client port: requests and responses in order
    let mut reqs: std::collections::BTreeMap<u16, Vec<(String, String, u64)>> = Default::default();
    let mut resps: std::collections::BTreeMap<u16, Vec<(u16, u64)>> = Default::default();
    for line in out.lines() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 6, "tshark line {line:?}");
        let (src, dst): (u16, u16) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let len = |s: &str| {
            s.split(',')
                .next()
                .unwrap_or("")
                .parse::<u64>()
                .unwrap_or(0)
        };
        if f[2].is_empty() && f[4].is_empty() {
            continue; // a continuation (body bytes), no message start
        }
        if !f[2].is_empty() {
            assert_eq!(dst, server_port, "{line}");
            reqs.entry(src)
                .or_default()
                .push((f[2].to_string(), f[3].to_string(), len(f[5])));
        } else if !f[4].is_empty() {
            assert_eq!(src, server_port, "{line}");
            resps
                .entry(dst)
                .or_default()
                .push((f[4].parse().unwrap(), len(f[5])));
        }
    }
    let mut v = Vec::new();
    for (port, rq) in reqs {
        let rs = resps.remove(&port).unwrap_or_default();
        if rq.len() != rs.len() {
            return Err(format!(
                "tshark's decoding, port {port}: requests {rq:?} vs responses {rs:?}\n{out}\n{}",
                oracle_notes(pcap)
            ));
        }
        for ((method, target, req_body), (status, resp_body)) in rq.into_iter().zip(rs) {
            v.push(Txn {
                client_port: port,
                method,
                target,
                status,
                req_body,
                resp_body,
            });
        }
    }
    if !resps.is_empty() {
        return Err(format!(
            "tshark's decoding: responses without requests: {resps:?}\n{out}\n{}",
            oracle_notes(pcap)
        ));
    }
    v.sort();
    Ok(v)
}

/// The capture's log beside `pcap` (tcpdump's counts of packets captured
/// and dropped) and tshark's TCP expert notes on it.
fn oracle_notes(pcap: &Path) -> String {
    let log = std::fs::read_to_string(pcap.with_file_name("capture.log")).unwrap_or_default();
    let expert = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-Y",
            "tcp.analysis.lost_segment || tcp.analysis.out_of_order || \
             tcp.analysis.retransmission || tcp.analysis.ack_lost_segment",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("tshark: {e}"));
    format!("capture log:\n{log}\nTCP expert notes (lost, out of order, retransmitted):\n{expert}")
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn curl_to_nginx_over_https_matches_the_decrypted_capture() {
    let dir = tmpdir("tls-nginx-certs");
    let big = body(2 * 1024 * 1024);
    let (site, tls_port) = Site::nginx_https(
        "tls-nginx",
        &dir,
        "",
        NGINX_POST,
        &[("small.txt", &body(123)), ("big.bin", &big)],
    );
    let keys = dir.join("keys.txt");
    let url = |p: &str| https_url(tls_port, p);
    let post_body = dir.join("post.txt");
    std::fs::write(&post_body, body(1000)).unwrap();
    let curl_tls = |args: &[&str]| curl_https(Some(&keys), args);
    // The oracle itself can come out incomplete: one CI run's capture
    // decoded the GET of the 2 MiB file without its response (curl had
    // the whole file; a body segment missing from the capture leaves
    // tshark that response's reassembly, and so the response, and a
    // lost segment is how that was reproduced here). Osprey has nothing
    // to be compared with then, so the exchange is run again, with a new
    // capture and a new probe, at most three times; each such attempt
    // says why on stderr and a third fails the test.
    let nginx = site.server.0.id().to_string();
    let mut attempt = 0;
    let (recs, err, want) = loop {
        attempt += 1;
        let _ = std::fs::remove_file(&keys);
        let cap = Capture::start(&dir, tls_port);
        // nginx by its pid (master and worker), not by name: the kernel's
        // tls_no_conn, checked below to be 0, counts any traced process,
        // and once (in CI, with every exchange recorded exactly) it was 2,
        // from nothing this test ran: another test's nginx is the suspect
        let probe = site.probe(&["--comm", "curl", "--pid", &nginx]);
        // keep-alive: two requests on one connection
        curl_tls(&[
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &url("/small.txt"),
            &url("/small.txt"),
        ]);
        // POST with a body
        let posted = curl_tls(&[
            "--data-binary",
            &format!("@{}", post_body.display()),
            &url("/post"),
        ]);
        assert_eq!(posted, "posted\n");
        // a 2 MiB response, and a 404
        let got = dir.join("got.bin");
        curl_tls(&["-o", got.to_str().unwrap(), &url("/big.bin")]);
        assert_eq!(std::fs::read(&got).unwrap(), big);
        curl_tls(&["-o", "/dev/null", &url("/missing")]);
        // the server's records come when its responses are done: wait for all
        probe.wait_for_records("nginx's five transactions", |r| {
            txns(r, "nginx").len() >= 5 && txns(r, "curl").len() >= 5
        });
        let (recs, err) = probe.stop_ok();
        // five exchanges happened (curl checked each): an oracle with
        // fewer, or without the 2 MiB body, is incomplete too
        let pcap = cap.finish();
        let oracle = try_decrypted(&pcap, &keys, tls_port).and_then(|w| {
            if w.len() == 5 && w.iter().map(|t| t.resp_body).max() == Some(2 * 1024 * 1024) {
                Ok(w)
            } else {
                Err(format!("{w:#?}\n{}", oracle_notes(&pcap)))
            }
        });
        match oracle {
            Ok(want) => break (recs, err, want),
            Err(why) if attempt < 3 => {
                eprintln!("attempt {attempt}: the oracle is incomplete, again:\n{why}")
            }
            Err(why) => panic!("the oracle was incomplete three times; the last:\n{why}"),
        }
    };
    assert_both_sides(&recs, "curl", "nginx", &want, &err);
    // keep-alive: the two GETs of /small.txt share a connection id
    let small: Vec<&Value> = txns(&recs, "curl")
        .into_iter()
        .filter(|r| r["target"] == "/small.txt")
        .collect();
    assert_eq!(small.len(), 2);
    assert_eq!(small[0]["conn_id"], small[1]["conn_id"]);
    // no HTTPS connection is blind; the ciphertext was counted, not parsed
    let s = summary(&err);
    let sum = |k: &str| sum_workers(&s, k);
    assert_eq!(sum("blind_tls"), 0, "{err}");
    assert_eq!(sum("tls_conns"), 8, "four connections, both ends\n{err}");
    assert!(sum("tls_ciphertext_events") > 0, "{err}");
    assert!(s["kernel"]["tls_libraries"].as_u64().unwrap() >= 1, "{err}");
    assert_eq!(s["kernel"]["tls_no_conn"], 0, "{err}");
    assert_eq!(ringbuf_drops(&err), 0);
}

/// A Python client and server in one process (comm `tlspy`, inherited by
/// its threads): `ssl` reads and writes with SSL_read_ex/SSL_write_ex.
/// The server answers each request with `1000 + request body` bytes.
/// After [`PY_TLS_PRELUDE`]; its own argument: the key log file.
const PY: &str = r#"
import http.client
keylog = sys.argv[5]
ls.bind(("127.0.0.1", port)); ls.listen(1)
def serve():
    c, _ = ls.accept()
    s = sctx.wrap_socket(c, server_side=True)
    f = s.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            break
        n = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            k, v = h.split(b":", 1)
            if k.strip().lower() == b"content-length":
                n = int(v)
        f.read(n)
        resp = b"r" * (1000 + n)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(resp) + resp)
    s.close()
th = threading.Thread(target=serve); th.start()
cctx.keylog_filename = keylog
conn = http.client.HTTPSConnection("127.0.0.1", port, context=cctx)
conn.request("GET", "/first"); assert len(conn.getresponse().read()) == 1000
conn.request("POST", "/second", body=b"p" * 5000); assert len(conn.getresponse().read()) == 6000
conn.request("GET", "/third?x=1"); assert len(conn.getresponse().read()) == 1000
conn.close(); th.join()
print("done")
"#;

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn python_ssl_client_and_server_ex_calls_match_the_decrypted_capture() {
    let port = free_port();
    let dir = tmpdir("tls-python");
    let cert = make_cert(&dir);
    let keys = dir.join("keys.txt");
    let cap = Capture::start(&dir, port);
    let probe = Osprey::start(&["--comm", "tlspy"], dir.join("out.jsonl"));
    run_python_tls("tlspy", PY, &cert, port, &[&keys]);
    probe.wait_for_records("both ends' three transactions", |r| {
        txns(r, "tlspy").len() >= 6
    });
    let (recs, err) = probe.stop_ok();
    let pcap = cap.finish();
    let want = decrypted(&pcap, &keys, port);
    assert_eq!(
        want.iter()
            .map(|t| (
                t.method.as_str(),
                t.target.as_str(),
                t.req_body,
                t.resp_body
            ))
            .collect::<Vec<_>>(),
        [
            ("GET", "/first", 0, 1000),
            ("GET", "/third?x=1", 0, 1000),
            ("POST", "/second", 5000, 6000)
        ],
        "{want:#?}"
    );
    assert_both_sides(&recs, "tlspy", "tlspy", &want, &err);
    assert_eq!(ringbuf_drops(&err), 0);
}

/// TLS over a Unix socket pair (Python's `ssl`, one process `tlsunix`
/// after [`PY_TLS_PRELUDE`]; its own argument: a file for its pid). The
/// uprobes see every call, but no TCP connection carries them.
const PY_UNIX: &str = r#"
import os
open(sys.argv[5], "w").write(str(os.getpid()))
a, b = socket.socketpair()
def serve():
    s = sctx.wrap_socket(a, server_side=True)
    s.sendall(b"pong:" + s.recv(100))
    s.close()
th = threading.Thread(target=serve); th.start()
c = cctx.wrap_socket(b, server_hostname="x")
c.sendall(b"ping"); got = c.recv(100)
th.join(); c.close()
assert got == b"pong:ping", got
print("done")
"#;

/// The calls of [`PY_UNIX`] are counted as `tls_no_conn`, never recorded
/// (its plaintext is not on any connection Osprey traces), and the
/// summary names the process they came from (`tls_no_conn_pid`).
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn tls_over_a_unix_socket_is_counted_and_its_process_named() {
    let dir = tmpdir("tls-unix");
    let cert = make_cert(&dir);
    let pid_file = dir.join("pid");
    let probe = Osprey::start(&["--comm", "tlsunix"], dir.join("out.jsonl"));
    // the port is not used: the script makes no TCP connection
    run_python_tls("tlsunix", PY_UNIX, &cert, 0, &[&pid_file]);
    let pid: u64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let (recs, err) = probe.stop_ok();
    let k = &summary(&err)["kernel"];
    // at least the client's write and read and the server's read and
    // write: every one moved bytes
    assert!(k["tls_no_conn"].as_u64().unwrap() >= 4, "{k}\n{err}");
    assert_eq!(k["tls_no_conn_pid"], pid, "{k}");
    assert_eq!(k["tls_records"], 0, "{k}");
    assert!(
        err.contains(&format!("came last from process {pid} (exited)")),
        "{err}"
    );
    assert!(txns(&recs, "tlsunix").is_empty(), "{recs:#?}");
}

/// With `--tls off` no uprobe is attached: HTTPS stays ciphertext, no
/// record, and the summary counts it as blind (what Osprey cannot read).
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn tls_off_leaves_https_blind() {
    let dir = tmpdir("tls-off-certs");
    let (site, tls_port) = Site::nginx_https("tls-off", &dir, "", "", &[("small.txt", &body(10))]);
    let probe = site.probe(&["--comm", "curl", "--comm", "nginx", "--tls", "off"]);
    curl_https(
        None,
        &["-o", "/dev/null", &https_url(tls_port, "/small.txt")],
    );
    let (recs, err) = probe.stop_ok();
    assert!(
        txns(&recs, "curl").is_empty() && txns(&recs, "nginx").is_empty(),
        "{recs:?}"
    );
    assert!(!err.contains("TLS: uprobes on"), "{err}");
    let s = summary(&err);
    assert_eq!(s["kernel"]["tls_records"], 0, "{err}");
    assert_eq!(s["kernel"]["tls_libraries"], 0, "{err}");
}

/// A small HTTPS server in C, linked statically against Debian's
/// `libssl.a`: serves `conns` connections, keep-alive, each response a
/// 2000-byte body. Usage: `server CERT KEY PORT CONNS`.
const STATIC_SERVER_C: &str = r#"
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (SSL_CTX_use_certificate_file(ctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1)
		return 3;
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 8))
		return 4;
	static char body[2000];
	memset(body, 'b', sizeof(body));
	for (int i = 0; i < atoi(argv[4]); i++) {
		int c = accept(ls, NULL, NULL);
		SSL *s = SSL_new(ctx);
		SSL_set_fd(s, c);
		if (SSL_accept(s) == 1) {
			char buf[16384], *end;
			int have = 0, n;
			while ((n = SSL_read(s, buf + have, sizeof(buf) - 1 - have)) > 0) {
				have += n;
				buf[have] = 0;
				while ((end = strstr(buf, "\r\n\r\n"))) {
					char head[128];
					int hl = snprintf(head, sizeof(head),
							  "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
							  sizeof(body));
					SSL_write(s, head, hl);
					SSL_write(s, body, sizeof(body));
					have -= end + 4 - buf;
					memmove(buf, end + 4, have + 1);
				}
			}
			SSL_shutdown(s);
		}
		SSL_free(s);
		close(c);
	}
	return 0;
}
"#;

/// `gcc -static` the server above into `dir/name`.
fn build_static_server(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join("server.c");
    std::fs::write(&src, STATIC_SERVER_C).unwrap();
    let exe = dir.join(name);
    run_ok(
        Command::new("gcc")
            .args(["-O1", "-static", "-o"])
            .arg(&exe)
            .arg(&src)
            .args(["-lssl", "-lcrypto", "-lpthread"]),
    );
    exe
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn static_openssl_server_is_found_by_its_symbols_and_a_stripped_one_is_named() {
    let dir = tmpdir("tls-static");
    let (cert, key) = make_cert(&dir);
    let exe = build_static_server(&dir, "tlsstatic");
    // nothing imported: the executable holds OpenSSL itself
    let ldd = Command::new("ldd").arg(&exe).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ldd.stdout).contains("libssl"),
        "{ldd:?}"
    );
    let stripped = dir.join("tlsstatic-strip");
    run_ok(Command::new("strip").arg("-o").arg(&stripped).arg(&exe));
    // `exe` serving one connection on a free port, listening
    let serve = |exe: &Path| {
        let port = free_port();
        let args = [cert.as_os_str(), key.as_os_str()];
        let c = Command::new(exe)
            .args(args)
            .arg(port.to_string())
            .arg("1")
            .spawn();
        let server = Guard(c.unwrap());
        wait_listening(port);
        (server, port)
    };

    // with symbols: both ends' records, as the decrypted capture has them
    let (server, port) = serve(&exe);
    let cap = Capture::start(&dir, port);
    let probe = Osprey::start(
        &["--comm", "tlsstatic", "--comm", "curl"],
        dir.join("out.jsonl"),
    );
    let keys = dir.join("keys.txt");
    let url = |p: &str| https_url(port, p);
    curl_https(
        Some(&keys),
        &[
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &url("/one"),
            &url("/two?x=y"),
        ],
    );
    probe.wait_for_records("the static server's two transactions", |r| {
        txns(r, "tlsstatic").len() >= 2 && txns(r, "curl").len() >= 2
    });
    let (recs, err) = probe.stop_ok();
    drop(server);
    let want = decrypted(&cap.finish(), &keys, port);
    assert_eq!(want.len(), 2, "{want:#?}");
    assert!(want.iter().all(|t| t.resp_body == 2000), "{want:#?}");
    assert_both_sides(&recs, "curl", "tlsstatic", &want, &err);
    assert!(
        err.contains("uprobes on /proc/") && err.contains("/tlsstatic (openssl)"),
        "{err}"
    );

    // stripped: one line in the log, counted, no server records (blind)
    let (server, port) = serve(&stripped);
    let probe = Osprey::start(
        &["--comm", "tlsstatic-strip", "--comm", "curl"],
        dir.join("out2.jsonl"),
    );
    curl_https(None, &["-o", "/dev/null", &https_url(port, "/three")]);
    probe.wait_for_records("curl's transaction", |r| !txns(r, "curl").is_empty());
    let (recs, err) = probe.stop_ok();
    drop(server);
    assert!(txns(&recs, "tlsstatic-strip").is_empty(), "{recs:?}");
    assert_eq!(txns(&recs, "curl").len(), 1, "{recs:?}");
    let named = err
        .lines()
        .filter(|l| l.contains("tlsstatic-strip has openssl linked in but no symbol table"))
        .count();
    assert_eq!(named, 1, "{err}");
    assert_eq!(summary(&err)["kernel"]["tls_no_symbols"], 1, "{err}");
}

/// HTTP/2 over TLS (ALPN `h2`): nginx `listen ... ssl http2` and `curl
/// --http2` with three requests on one connection; the plaintext the
/// uprobes capture is HTTP/2 (the client preface, frames), parsed as
/// such on both sides, with `tls: true`.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn alpn_h2_curl_to_nginx_both_sides() {
    require_root();
    let dir = tmpdir("tls-h2-certs");
    let (site, tls_port) = Site::nginx_https(
        "tls-h2",
        &dir,
        " http2",
        "",
        &[("small.txt", &body(123)), ("mid.bin", &body(3000))],
    );
    let probe = site.probe(&["--comm", "curl", "--comm", "nginx"]);
    let url = |p: &str| https_url(tls_port, p);
    let out = curl(&[
        "-k",
        "--http2",
        "-w",
        "%{http_version} ",
        "-o",
        "/dev/null",
        &url("/small.txt"),
        "-o",
        "/dev/null",
        &url("/mid.bin"),
        "-o",
        "/dev/null",
        &url("/missing"),
    ]);
    assert_eq!(out.trim(), "2 2 2", "ALPN did not give HTTP/2");
    let h2 = |r: &[Value], comm: &str| -> Vec<Value> {
        txns(r, comm)
            .into_iter()
            .filter(|t| t["protocol"] == "http2")
            .cloned()
            .collect()
    };
    probe.wait_for_records("3 HTTP/2 records on each side", |r| {
        h2(r, "curl").len() >= 3 && h2(r, "nginx").len() >= 3
    });
    let (recs, err) = probe.stop_ok();
    let want = [
        (1, "/small.txt", 200, 123),
        (3, "/mid.bin", 200, 3000),
        (5, "/missing", 404, -1),
    ];
    for comm in ["curl", "nginx"] {
        let mut t = h2(&recs, comm);
        t.sort_by_key(|r| r["stream_id"].as_u64());
        assert_eq!(t.len(), 3, "{comm}: {t:#?}\n{err}");
        for (r, (id, target, status, rb)) in t.iter().zip(want) {
            assert_eq!(r["stream_id"], id, "{comm}: {r}");
            assert_eq!(r["method"], "GET", "{comm}: {r}");
            assert_eq!(r["target"], target, "{comm}: {r}");
            assert_eq!(r["scheme"], "https", "{comm}: {r}");
            assert_eq!(r["status"], status, "{comm}: {r}");
            assert_eq!(r["http_version"], "2", "{comm}: {r}");
            assert_eq!(r["tls"], true, "{comm}: {r}");
            assert_eq!(r["tls_library"], "openssl", "{comm}: {r}");
            assert_eq!(r["gap"], false, "{comm}: {r}");
            assert_eq!(r["end_stream"], true, "{comm}: {r}");
            if rb >= 0 {
                assert_eq!(r["resp_body_bytes"], rb, "{comm}: {r}");
            } else {
                assert!(r["resp_body_bytes"].as_u64().unwrap() > 0, "{comm}: {r}");
            }
        }
        // no HTTP/1.x record and no blind TLS connection
        assert!(
            txns(&recs, comm).iter().all(|t| t["protocol"] == "http2"),
            "{comm}"
        );
    }
}
