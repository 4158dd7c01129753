// SPDX-License-Identifier: GPL-3.0-or-later
//! Live HTTP/1.x transaction tests (root): the real probe against nginx,
//! python http.server, curl, a pipelining client and wrk, over loopback.
//! Both the client-side and the server-side record of each exchange are
//! checked.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::*;
use serde_json::Value;

fn sane_latency(t: &Value) {
    let lat = t["latency_ns"]
        .as_u64()
        .unwrap_or_else(|| panic!("no latency: {t}"));
    assert!(lat > 0 && lat < 10_000_000_000, "latency {lat}: {t}");
    let ttfb = t["ttfb_ns"].as_u64().unwrap();
    assert!(ttfb <= lat, "ttfb {ttfb} > latency {lat}: {t}");
}

/// The one transaction record of each of these processes.
fn one_each<'a, const N: usize>(recs: &'a [Value], comms: [&str; N]) -> [&'a Value; N] {
    comms.map(|comm| match txns(recs, comm)[..] {
        [t] => t,
        ref t => panic!("{comm}: {} records, want 1: {t:#?}", t.len()),
    })
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn nginx_static_large_404_keepalive_both_sides() {
    let site = Site::nginx(
        "nginx",
        &[("small.txt", &body(123)), ("big.bin", &body(1_000_000))],
    );
    let probe = site.probe(&["--comm", "curl", "--comm", "nginx"]);
    // one curl, one connection, four requests (keep-alive via --next)
    curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        &site.url("/small.txt"),
        "--next",
        "-o",
        "/dev/null",
        &site.url("/big.bin"),
        "--next",
        "-o",
        "/dev/null",
        &site.url("/missing"),
        "--next",
        "-o",
        "/dev/null",
        &site.url("/small.txt?x=1"),
    ]);
    let (recs, err) = probe.stop_ok();

    for (comm, role) in [("curl", "client"), ("nginx", "server")] {
        let t = txns(&recs, comm);
        assert_eq!(t.len(), 4, "{comm}: {t:#?}\n{err}");
        let want = [
            ("/small.txt", 200, 123u64),
            ("/big.bin", 200, 1_000_000),
            ("/missing", 404, 0),
            ("/small.txt", 200, 123),
        ];
        for (r, (path, st, size)) in t.iter().zip(want) {
            assert_eq!(r["method"], "GET", "{r}");
            assert_eq!(r["path"], path, "{r}");
            assert_eq!(r["status"], st, "{r}");
            assert_eq!(r["role"], role, "{r}");
            if st == 200 {
                assert_eq!(r["resp_body_bytes"], size, "{r}");
            } else {
                assert!(r["resp_body_bytes"].as_u64().unwrap() > 0);
            }
            assert_eq!(r["req_body_bytes"], 0);
            assert_eq!(r["gap"], false, "{r}");
            assert_eq!(r["no_response"], false);
            sane_latency(r);
        }
        assert_eq!(t[3]["target"], "/small.txt?x=1");
        // the 1 MB body passed the 4 KiB capture cap on the server (nginx
        // writes it as a large iovec, of which 64 bytes are copied):
        // counted, flagged. curl's reads (16 KiB) are copied whole by
        // further records (--capture-max-per-call): nothing to flag there
        if role == "server" {
            assert_eq!(t[1]["truncated"], true, "{}", t[1]);
        }
        // keep-alive: one connection for all four
        assert!(t.iter().all(|r| r["conn_id"] == t[0]["conn_id"]));
        assert_eq!(t[0]["http_version"], "1.1");
    }
    let c = &txns(&recs, "curl")[0];
    let s = &txns(&recs, "nginx")[0];
    assert_eq!(c["remote_port"], site.port);
    assert_eq!(s["local_port"], site.port);
    assert_eq!(c["local_port"], s["remote_port"]);
    assert_eq!(c["resp_content_type"], "text/plain");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn python_server_post_head_and_curl_methods() {
    let site = Site::python("python", &[("page.html", &body(2048))]);
    let probe = site.probe(&["--comm", "curl", "--comm", "python3"]);
    let url = site.url("/page.html");
    curl(&["--http1.1", "-o", "/dev/null", &url]);
    curl(&["--http1.1", "-I", &url]);
    curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "--data-binary",
        "hello=world&x=1",
        &url,
    ]);
    // python (HTTP/1.0) may finish its side after curl is done
    probe.wait_for_records("python's three records", |r| txns(r, "python3").len() >= 3);
    let (recs, _) = probe.stop_ok();
    for comm in ["curl", "python3"] {
        let t = txns(&recs, comm);
        assert_eq!(t.len(), 3, "{comm}: {t:#?}");
        assert_eq!(t[0]["method"], "GET");
        assert_eq!(t[0]["status"], 200);
        assert_eq!(t[0]["resp_body_bytes"], 2048);
        assert_eq!(t[0]["resp_content_type"], "text/html");
        assert_eq!(t[0]["http_version"], "1.1");
        // HEAD: Content-Length 2048 announced, no body follows
        assert_eq!(t[1]["method"], "HEAD");
        assert_eq!(t[1]["status"], 200);
        assert_eq!(t[1]["resp_body_bytes"], 0);
        // POST: http.server answers 501 Unsupported method
        assert_eq!(t[2]["method"], "POST");
        assert_eq!(t[2]["req_body_bytes"], 15);
        assert_eq!(t[2]["status"], 501);
        for r in &t {
            sane_latency(r);
            assert_eq!(r["gap"], false);
        }
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn chunked_upload_to_nginx() {
    let site = Site::nginx("chunked", &[("x", &body(10))]);
    std::fs::write(site.dir.join("upload.bin"), "0123456789".repeat(1000)).unwrap();
    let probe = site.probe(&["--comm", "curl", "--comm", "nginx"]);
    let up = format!("@{}", site.dir.join("upload.bin").display());
    curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &up,
        &site.url("/x"),
    ]);
    let (recs, _) = probe.stop_ok();
    for t in one_each(&recs, ["curl", "nginx"]) {
        assert_eq!(t["method"], "POST");
        assert_eq!(t["req_body_bytes"], 10_000, "{t}");
        assert_eq!(t["status"], 405, "nginx refuses POST on a static file: {t}");
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn pipelined_requests_pair_in_order() {
    let site = Site::nginx(
        "pipeline",
        &[("a", &body(11)), ("b", &body(222)), ("c", &body(3333))],
    );
    let probe = site.probe(&["--comm", "nginx"]);
    let mut s = TcpStream::connect(("127.0.0.1", site.port)).unwrap();
    let mut reqs = String::new();
    for p in ["a", "b", "c", "nope"] {
        reqs.push_str(&format!("GET /{p} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    reqs.push_str("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(reqs.as_bytes()).unwrap(); // all five before any response
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&resp).matches("HTTP/1.1 ").count(),
        5
    );
    drop(s);
    let (recs, _) = probe.stop_ok();
    let t = txns(&recs, "nginx");
    let got: Vec<(String, u64, u64)> = t
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
                r["resp_body_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 5, "{t:#?}");
    assert_eq!(
        &got[..3],
        &[
            ("/a".into(), 200, 11),
            ("/b".into(), 200, 222),
            ("/c".into(), 200, 3333)
        ]
    );
    assert_eq!((got[3].0.as_str(), got[3].1), ("/nope", 404));
    assert_eq!(got[4], ("/a".into(), 200, 11));
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn wrk_load_every_request_is_a_record() {
    let site = Site::nginx("wrk", &[("index.html", &body(512))]);
    let probe = site.probe(&["--comm", "nginx"]);
    let out = run_ok(Command::new("wrk").args(["-t1", "-c8", "-d3s", &site.url("/index.html")]));
    let (recs, err) = probe.stop_ok();
    // "  12345 requests in 3.00s, ..."
    let wrk_requests: u64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read wrk output:\n{out}"));
    assert!(wrk_requests > 100, "{out}");
    let t = txns(&recs, "nginx");
    let answered = t
        .iter()
        .filter(|r| r["no_response"] == false && r["status"] == 200)
        .count() as u64;
    let drops = ringbuf_drops(&err);
    eprintln!(
        "wrk: {wrk_requests} requests; osprey: {answered} answered transactions, {drops} drops"
    );
    if drops == 0 {
        // wrk stops its clock with up to one request in flight per
        // connection: those are answered by nginx but not counted by wrk.
        assert!(
            answered >= wrk_requests && answered <= wrk_requests + 8,
            "wrk {wrk_requests} vs osprey {answered}\n{err}"
        );
        let gapped: Vec<_> = t.iter().filter(|r| r["gap"] != false).take(3).collect();
        assert!(
            gapped.is_empty(),
            "transactions with a gap and no drop: {gapped:?}\n{err}"
        );
    } else {
        let gaps = t.iter().filter(|r| r["gap"] == true).count() as u64;
        assert!(
            answered + gaps + drops >= wrk_requests,
            "drops do not explain the missing records\n{err}"
        );
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn headers_are_opt_in_and_secrets_redacted() {
    let site = Site::nginx("headers", &[("h.txt", &body(5))]);
    let url = site.url("/h.txt?token=t0k3n&x=1");
    let get = |tag: &str| {
        curl(&[
            "-o",
            "/dev/null",
            "-H",
            "Authorization: Bearer s3cr3t",
            "-H",
            "Cookie: sid=abc",
            "-H",
            "X-Api-Key: k3yk3y",
            "-H",
            &format!("X-Tag: {tag}"),
            &url,
        ]);
    };
    for (args, tag) in [
        (vec![], "plain"),
        (vec!["--headers"], "redacted"),
        (vec!["--headers", "--redact-header", "x-tag"], "extra"),
        (vec!["--headers", "--no-redact"], "raw"),
        (vec!["--records", "events"], "events"),
    ] {
        let mut a = vec!["--comm", "curl"];
        a.extend(args.iter().copied());
        let probe = Osprey::start(&a, site.dir.join(format!("{tag}.jsonl")));
        get(tag);
        let (recs, _) = probe.stop_ok();
        if tag == "events" {
            // the request as curl sent it, masked byte for byte
            let sent: Vec<&serde_json::Value> = recs
                .iter()
                .filter(|e| e["kind"] == "data" && e["dir"] == "egress")
                .collect();
            let all: String = sent
                .iter()
                .map(|e| e["payload"].as_str().unwrap_or(""))
                .collect();
            assert!(all.contains("GET /h.txt?token=*****&x=1 HTTP/1.1"), "{all}");
            assert!(all.contains("Authorization: *************\r\n"), "{all}");
            assert!(all.contains("X-Api-Key: ******\r\n"), "{all}");
            assert!(all.contains("X-Tag: events"), "{all}");
            for secret in ["s3cr3t", "t0k3n", "sid=abc", "k3yk3y"] {
                assert!(!all.contains(secret), "{secret} leaked: {all}");
            }
            for e in sent {
                let p = e["payload"].as_str().unwrap();
                assert_eq!(p.len() as u64, e["cap_len"].as_u64().unwrap(), "{e}");
            }
            continue;
        }
        let t = txns(&recs, "curl");
        assert_eq!(t.len(), 1, "{tag}: {recs:?}");
        let r = t[0];
        let hdr = |name: &str| -> Option<String> {
            r["req_headers"]
                .as_array()?
                .iter()
                .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                .map(|h| h[1].as_str().unwrap().to_string())
        };
        match tag {
            "plain" => {
                assert!(
                    r.get("req_headers").is_none() && r.get("resp_headers").is_none(),
                    "{r}"
                );
                assert_eq!(r["target"], "/h.txt?token=[REDACTED]&x=1");
                assert!(!r.to_string().contains("s3cr3t"));
                assert!(!r.to_string().contains("t0k3n"));
            }
            "redacted" | "extra" => {
                assert_eq!(hdr("authorization").as_deref(), Some("[REDACTED]"));
                assert_eq!(hdr("cookie").as_deref(), Some("[REDACTED]"));
                assert_eq!(hdr("x-api-key").as_deref(), Some("[REDACTED]"));
                let want_tag = if tag == "extra" {
                    "[REDACTED]"
                } else {
                    "redacted"
                };
                assert_eq!(hdr("x-tag").as_deref(), Some(want_tag));
                assert!(r["resp_headers"].as_array().is_some_and(|h| !h.is_empty()));
                for secret in ["s3cr3t", "t0k3n", "k3yk3y"] {
                    assert!(!r.to_string().contains(secret), "{secret} leaked: {r}");
                }
            }
            _ => {
                assert_eq!(hdr("authorization").as_deref(), Some("Bearer s3cr3t"));
                assert_eq!(hdr("cookie").as_deref(), Some("sid=abc"));
                assert_eq!(r["target"], "/h.txt?token=t0k3n&x=1");
            }
        }
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn expect_100_continue_pairs_interim_and_final_response() {
    let dir = tmpdir("expect");
    let port = free_port();
    // a server doing the textbook 100-continue exchange: head, 100, body, 200
    let server = "import socket,sys\n\
s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
s.bind(('127.0.0.1',int(sys.argv[1])));s.listen()\n\
c,_=s.accept();d=b''\n\
while b'\\r\\n\\r\\n' not in d: d+=c.recv(4096)\n\
head,body=d.split(b'\\r\\n\\r\\n',1)\n\
n=int([l.split(b':')[1] for l in head.split(b'\\r\\n') if l.lower().startswith(b'content-length')][0])\n\
c.sendall(b'HTTP/1.1 100 Continue\\r\\n\\r\\n')\n\
while len(body)<n: body+=c.recv(4096)\n\
c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok')\n\
c.close()\n";
    let _py = py_server(server, port);
    let probe = Osprey::start(
        &["--comm", "curl", "--comm", "python3"],
        dir.join("out.jsonl"),
    );
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "0123456789",
        &format!("http://127.0.0.1:{port}/e"),
    ]);
    assert_eq!(code, "200");
    probe.wait_for_records("the server's record", |r| !txns(r, "python3").is_empty());
    let (recs, _) = probe.stop_ok();
    for t in one_each(&recs, ["curl", "python3"]) {
        assert_eq!(t["method"], "POST");
        assert_eq!(t["interim_status"], 100, "{t}");
        assert_eq!(t["status"], 200);
        assert_eq!(t["req_body_bytes"], 10, "{t}");
        assert_eq!(t["resp_body_bytes"], 2);
        sane_latency(t);
    }
}

/// A blocking keep-alive server waits in recv() for the next request long
/// before it arrives: the request starts when its bytes are received (the
/// syscall's return), not when the server began waiting, or every record
/// after the first would count the client's idle time as latency.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn blocking_keepalive_server_latency_excludes_idle_wait() {
    let dir = tmpdir("blocking-ka");
    let port = free_port();
    let server = r#"import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
c, _ = s.accept()
for _ in range(2):
    d = b""
    while b"\r\n\r\n" not in d:
        d += c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
c.close()
"#;
    let client = r#"import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(2):
    if i:
        time.sleep(0.5)
    c.sendall(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    d = b""
    while not d.endswith(b"ok"):
        d += c.recv(4096)
c.close()
print("done")
"#;
    let _py = py_server(server, port);
    let probe = Osprey::start(&["--comm", "python3"], dir.join("out.jsonl"));
    run_python(client, &[&port.to_string()]);
    let (recs, _) = probe.stop_ok();
    let t: Vec<_> = txns(&recs, "python3")
        .into_iter()
        .filter(|t| t["local_port"] == port || t["remote_port"] == port)
        .collect();
    for role in ["client", "server"] {
        let mine: Vec<_> = t.iter().filter(|t| t["role"] == role).collect();
        let targets: Vec<_> = mine
            .iter()
            .map(|t| t["target"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(targets, ["/0", "/1"], "{role}: {t:?}");
        for r in &mine {
            sane_latency(r);
            // the requests are 0.5 s apart; answering one takes well under 0.2 s
            assert!(
                r["latency_ns"].as_u64().unwrap() < 200_000_000,
                "{role}: idle wait counted: {r}"
            );
        }
    }
}

/// nginx's usual `sendfile on`: the body leaves through sendfile(), not a
/// data syscall. Both hook sets count those bytes (no payload), so the
/// server's records keep exact sizes (more in tests/live_exact.rs).
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn nginx_sendfile_bodies_are_counted() {
    let site = Site::nginx_with("sendfile", &[("big.bin", &body(100_000))], "sendfile on;");
    let probe = site.probe(&["--comm", "nginx", "--comm", "curl"]);
    let url = site.url("/big.bin");
    curl(&["-o", "/dev/null", &url, "--next", "-o", "/dev/null", &url]);
    let (recs, _) = probe.stop_ok();
    let client = txns(&recs, "curl");
    assert_eq!(client.len(), 2, "{recs:?}");
    assert!(
        client
            .iter()
            .all(|t| t["status"] == 200 && t["resp_body_bytes"] == 100_000),
        "{client:?}"
    );
    let server = txns(&recs, "nginx");
    assert_eq!(server.len(), 2, "{recs:?}");
    for t in &server {
        assert_eq!(t["status"], 200, "{t}");
        assert_eq!(t["resp_body_bytes"], 100_000, "{t}");
        assert_eq!(t["gap"], false, "{t}");
        assert_eq!(
            t["truncated"], true,
            "a body sent by sendfile is counted, not captured: {t}"
        );
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn requests_abandoned_mid_head_or_mid_body_give_incomplete_records() {
    // the POST goes to a proxied location: nginx reads the whole body
    // before it would connect upstream, so it never answers a body cut
    // short. (A static file would be answered 405 at once whenever nginx
    // reads the head before the client's FIN arrives: a race.)
    let site = Site::nginx_server_with(
        "aborted",
        &[("a.txt", &body(5))],
        "location /upload { proxy_pass http://127.0.0.1:9; }",
    );
    let probe = site.probe(&["--comm", "nginx"]);
    let port = site.port;
    // half a head, then the client gives up (a slowloris abandoned)
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"GET /a.txt?token=t0k3n HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
        .unwrap();
    // a body announced as 1000 bytes, 10 sent
    let mut u = TcpStream::connect(("127.0.0.1", port)).unwrap();
    u.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        .unwrap();
    // a connection that sends nothing is no request
    let n = TcpStream::connect(("127.0.0.1", port)).unwrap();
    drop(n);
    drop(c);
    drop(u);
    // nginx closes each connection once its client has: records then
    probe.wait_for_records("two incomplete records", |r| {
        r.iter().filter(|t| t["incomplete"] == true).count() >= 2
    });
    let (recs, err) = probe.stop_ok();
    let t = txns(&recs, "nginx");
    let inc: Vec<&&Value> = t.iter().filter(|r| r["incomplete"] == true).collect();
    assert_eq!(inc.len(), 2, "{t:?}");
    let head = inc.iter().find(|r| r["method"] == "GET").expect("the GET");
    assert_eq!(head["target"], "/a.txt?token=[REDACTED]");
    assert_eq!(head["no_response"], true);
    assert_eq!(head["req_header_count"], 2);
    let post = inc
        .iter()
        .find(|r| r["method"] == "POST")
        .expect("the POST");
    assert_eq!(post["req_body_bytes"], 10);
    assert_eq!(post["no_response"], true, "{post}");
    assert_eq!(
        t.len(),
        2,
        "a connection without bytes gave a record: {t:?}"
    );
    assert!(err.contains(" 2 incomplete requests,"), "{err}");
}
