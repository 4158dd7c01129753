// SPDX-License-Identifier: GPL-3.0-or-later
//! Live HTTP/1.1 → HTTP/2 upgrade (h2c, RFC 7540 §3.2) test (root): the
//! real probe on `curl --http2` against tests/h2c/server.py (Python's `h2`
//! package: it answers `Upgrade: h2c` with 101, then speaks HTTP/2) over
//! loopback. The upgrade request is stream 1, whose response comes as
//! HTTP/2; requests after it on the same connection are streams 3, 5.
//! Client (curl) and server (python3) records: stream ids, methods,
//! statuses, body sizes, `interim_status` 101 on stream 1, and the
//! summary's `h2c_upgrades`.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2c/server.py");

/// (stream, method, target, status, interim, request body, response body)
type Want = (u64, &'static str, &'static str, u64, Option<u64>, u64, u64);

fn sane(t: &Value) {
    let lat = t["latency_ns"]
        .as_u64()
        .unwrap_or_else(|| panic!("no latency: {t}"));
    let ttfb = t["ttfb_ns"].as_u64().unwrap();
    assert!(ttfb <= lat && lat < 10_000_000_000, "{t}");
    assert_eq!(t["http_version"], "2", "{t}");
    assert_eq!(t["gap"], false, "{t}");
    assert_eq!(t["no_response"], false, "{t}");
    assert_eq!(t["end_stream"], true, "{t}");
    assert_eq!(t["headers_unknown"], 0, "{t}");
    assert_eq!(t["scheme"], "http", "{t}");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn curl_http2_upgrade_both_sides() {
    require_root();
    let dir = tmpdir("h2c-upgrade");
    let port = free_port();
    let _server = Guard(
        Command::new("python3")
            .args([SERVER, &port.to_string()])
            .spawn()
            .expect("python3"),
    );
    wait_listening(port);
    let probe = Osprey::start(
        &["--comm", "curl", "--comm", "python3"],
        dir.join("out.jsonl"),
    );
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    // one connection: the upgrade request is a POST with a body (stream
    // 1), then a GET and a 404 as HTTP/2 streams 3 and 5
    let out = curl(&[
        "--http2",
        "-d",
        "hello world",
        &url("/echo"),
        "--next",
        "--http2",
        "-o",
        "/dev/null",
        &url("/small"),
        "--next",
        "--http2",
        "-o",
        "/dev/null",
        &url("/nope"),
    ]);
    assert_eq!(out, "got 11 bytes");
    // a second connection: a GET as the upgrade request
    curl(&["--http2", "-o", "/dev/null", &url("/small?x=1")]);
    let h2 = |r: &[Value], comm: &str| -> Vec<Value> {
        txns(r, comm)
            .into_iter()
            .filter(|t| t["remote_port"] == port || t["local_port"] == port)
            .cloned()
            .collect()
    };
    probe.wait_for_records("4 records on each side", |r| {
        h2(r, "curl").len() >= 4 && h2(r, "python3").len() >= 4
    });
    let (recs, err) = probe.stop_ok();
    let host = format!("127.0.0.1:{port}");
    let want: [Want; 4] = [
        (1, "POST", "/echo", 200, Some(101), 11, 12),
        (3, "GET", "/small", 200, None, 0, 123),
        (5, "GET", "/nope", 404, None, 0, 13),
        (1, "GET", "/small?x=1", 200, Some(101), 0, 123),
    ];
    for comm in ["curl", "python3"] {
        let mut t = h2(&recs, comm);
        // connections in the order they began, streams in id order
        let began = |c: &Value| {
            t.iter()
                .filter(|r| r["conn_id"] == *c)
                .filter_map(|r| r["ts_start_ns"].as_u64())
                .min()
                .unwrap_or(0)
        };
        let mut keyed: Vec<(u64, u64, Value)> = t
            .iter()
            .map(|r| {
                (
                    began(&r["conn_id"]),
                    r["stream_id"].as_u64().unwrap_or(0),
                    r.clone(),
                )
            })
            .collect();
        keyed.sort_by_key(|k| (k.0, k.1));
        t = keyed.into_iter().map(|k| k.2).collect();
        assert_eq!(t.len(), 4, "{comm}: {t:#?}\n{err}");
        for (r, (id, m, target, status, interim, qb, rb)) in t.iter().zip(want) {
            assert_eq!(r["protocol"], "http2", "{comm}: {r}");
            assert_eq!(r["stream_id"], id, "{comm}: {r}");
            assert_eq!(r["method"], m, "{comm}: {r}");
            assert_eq!(r["target"], target, "{comm}: {r}");
            assert_eq!(r["host"], host, "{comm}: {r}");
            assert_eq!(r["status"], status, "{comm}: {r}");
            assert_eq!(
                r["interim_status"],
                serde_json::json!(interim),
                "{comm}: {r}"
            );
            assert_eq!(r["req_body_bytes"], qb, "{comm}: {r}");
            assert_eq!(r["resp_body_bytes"], rb, "{comm}: {r}");
            assert_eq!(r["resp_content_type"], "text/plain", "{comm}: {r}");
            assert_eq!(r["upgraded"], false, "{comm}: {r}");
            if id == 1 {
                // the HTTP/1.1 request's head: Host, User-Agent, Accept,
                // Connection, Upgrade, HTTP2-Settings (+ the body's two)
                let n = if qb > 0 { 8 } else { 6 };
                assert_eq!(r["req_header_count"], n, "{comm}: {r}");
            }
            sane(r);
        }
        // two connections, each an upgrade: no HTTP/1.x record of them
        let conns: std::collections::BTreeSet<&str> =
            t.iter().map(|r| r["conn_id"].as_str().unwrap()).collect();
        assert_eq!(conns.len(), 2, "{comm}: {t:#?}");
    }
    let workers = summary(&err)["workers"].as_array().unwrap().clone();
    let sum = |k: &str| -> u64 { workers.iter().map(|w| w[k].as_u64().unwrap_or(0)).sum() };
    // both ends of both connections
    assert_eq!(sum("h2c_upgrades"), 4, "{err}");
    assert_eq!(sum("hpack_errors"), 0, "{err}");
    assert_eq!(sum("unparseable"), 0, "{err}");
}
