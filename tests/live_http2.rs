// SPDX-License-Identifier: GPL-3.0-or-later
//! Live HTTP/2 (h2c, prior knowledge) tests (root): the real probe against
//! nginx (`listen ... http2`), curl --http2-prior-knowledge and h2load
//! (nghttp2-client) over loopback; client- and server-side records.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// A process's HTTP/2 records in request order.
fn h2(recs: &[Value], comm: &str) -> Vec<Value> {
    txns(recs, comm)
        .into_iter()
        .filter(|r| r["protocol"] == "http2")
        .cloned()
        .collect()
}

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
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn nginx_h2c_curl_and_h2load_both_sides() {
    require_root();
    const BIG: usize = 2 * 1024 * 1024;
    let site = Site::nginx_h2c(
        "h2c",
        &[("small.txt", &body(123)), ("big.bin", &body(BIG))],
        "location = /post { client_body_in_single_buffer on; return 201; }",
    );
    let upload = site.dir.join("upload.bin");
    std::fs::write(&upload, body(1000)).unwrap();
    let probe = site.probe(&[
        "--comm", "curl", "--comm", "nginx", "--comm", "h2load", "--comm", "nghttp",
    ]);
    // one curl per request (curl 7.88 fails to reuse an h2c connection:
    // "Error in the HTTP2 framing layer"): stream 1 of five connections
    let h2c = |args: &[&str]| {
        let mut a = vec!["--http2-prior-knowledge", "-o", "/dev/null"];
        a.extend_from_slice(args);
        curl(&a);
    };
    let url = |p: &str| site.url(p);
    h2c(&[&url("/small.txt?x=1")]);
    h2c(&["-I", &url("/small.txt")]);
    // the POST by nghttp: nginx answers `return 201` without waiting for
    // the body, and curl 7.88 then fails the stream now and then
    run_ok(Command::new("nghttp").args([
        "-H",
        "content-type: application/octet-stream",
        "-d",
        &upload.display().to_string(),
        &url("/post"),
    ]));
    h2c(&[&url("/missing")]);
    h2c(&[&url("/big.bin")]);
    // 20 requests, 10 at a time on one connection
    let out = run_ok(Command::new("h2load").args([
        "-n",
        "20",
        "-c",
        "1",
        "-m",
        "10",
        &site.url("/small.txt"),
    ]));
    assert!(out.contains("20 succeeded"), "{out}");
    let n_client =
        |r: &[Value]| h2(r, "curl").len() + h2(r, "h2load").len() + h2(r, "nghttp").len();
    probe.wait_for_records("25 client-side HTTP/2 records", |r| n_client(r) >= 25);
    let (recs, err) = probe.stop_ok();

    for comm in ["curl", "nginx"] {
        let all = h2(&recs, comm);
        // nginx: curl's five streams and h2load's twenty
        let t: Vec<&Value> = all
            .iter()
            .filter(|t| comm == "curl" || t["target"] != "/small.txt" || t["method"] != "GET")
            .collect();
        let mut want = vec![
            (1, "GET", "/small.txt?x=1", 200, 0, 123),
            (1, "HEAD", "/small.txt", 200, 0, 0),
            (-1, "POST", "/post", 201, 1000, 0),
            (1, "GET", "/missing", 404, 0, -1),
            (1, "GET", "/big.bin", 200, 0, BIG as i64),
        ];
        if comm == "curl" {
            want.remove(2);
        }
        assert_eq!(t.len(), want.len(), "{comm}: {t:#?}\n{err}");
        for (r, (id, m, target, status, qb, rb)) in t.iter().zip(want) {
            if id > 0 {
                assert_eq!(r["stream_id"], id, "{comm}: {r}");
            }
            assert_eq!(r["method"], m, "{comm}: {r}");
            assert_eq!(r["target"], target, "{comm}: {r}");
            assert_eq!(r["host"], format!("127.0.0.1:{}", site.port), "{comm}: {r}");
            assert_eq!(r["scheme"], "http", "{comm}: {r}");
            assert_eq!(r["status"], status, "{comm}: {r}");
            assert_eq!(r["req_body_bytes"], qb, "{comm}: {r}");
            if rb == BIG as i64 && comm == "curl" {
                // curl reads many DATA frames at once: frame headers past
                // the capture cap are unseen, so the size is exact only
                // when the reads were small; otherwise the record says so
                let got = r["resp_body_bytes"].as_i64().unwrap();
                assert!(got == rb || (got < rb && r["gap"] == true), "{r}");
                continue;
            } else if rb >= 0 {
                assert_eq!(r["resp_body_bytes"], rb, "{comm}: {r}");
            } else {
                assert!(r["resp_body_bytes"].as_u64().unwrap() > 0, "{comm}: {r}");
            }
            assert!(r["req_header_count"].as_u64().unwrap() >= 4, "{comm}: {r}");
            assert!(r["resp_header_count"].as_u64().unwrap() >= 2, "{comm}: {r}");
            sane(r);
        }
        assert_eq!(t[0]["resp_content_type"], "text/plain");
    }
    let post = h2(&recs, "nghttp");
    assert_eq!(post.len(), 1, "{post:#?}");
    assert_eq!(
        (post[0]["method"].as_str(), post[0]["status"].as_u64()),
        (Some("POST"), Some(201))
    );
    assert_eq!(post[0]["req_body_bytes"], 1000);
    assert_eq!(post[0]["req_content_type"], "application/octet-stream");
    sane(&post[0]);
    // the 404 page is the same size on both sides
    let size = |comm: &str| {
        h2(&recs, comm).iter().find(|t| t["status"] == 404).unwrap()["resp_body_bytes"].clone()
    };
    assert_eq!(size("curl"), size("nginx"));

    // h2load: 20 streams (1, 3, … 39) multiplexed on one connection
    for (comm, side) in [("h2load", "client"), ("nginx", "server")] {
        let t: Vec<Value> = h2(&recs, comm)
            .into_iter()
            .filter(|t| {
                comm == "h2load"
                    || (t["path"] == "/small.txt"
                        && t["method"] == "GET"
                        && t["target"] == "/small.txt")
            })
            .collect();
        assert_eq!(t.len(), 20, "{comm}: {t:#?}");
        let ids: Vec<u64> = t.iter().map(|t| t["stream_id"].as_u64().unwrap()).collect();
        assert_eq!(
            ids,
            (0..20).map(|i| 2 * i + 1).collect::<Vec<u64>>(),
            "{comm}"
        );
        for r in &t {
            assert_eq!(r["role"], side);
            assert_eq!(
                (r["method"].as_str(), r["status"].as_u64()),
                (Some("GET"), Some(200)),
                "{r}"
            );
            assert_eq!(r["resp_body_bytes"], 123, "{r}");
            sane(r);
        }
        let conns: std::collections::BTreeSet<String> =
            t.iter().map(|t| t["conn_id"].to_string()).collect();
        assert_eq!(conns.len(), 1, "{comm}: one connection");
    }
    // nothing else: no HTTP/1.x records of these connections
    let other: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction" && r["protocol"] != "http2")
        .collect();
    assert!(other.is_empty(), "{other:#?}");
}
