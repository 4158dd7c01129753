// SPDX-License-Identifier: GPL-3.0-or-later
//! Live gRPC tests (root): the real probe on a Python grpcio server and
//! client (tests/grpc/peer.py: generic handlers, raw-bytes serializers,
//! no protoc) over loopback. Unary OK, unary error with status and
//! message, server streaming, client streaming, bidi streaming, a
//! deadline exceeded and a gzip-compressed call; service, method, status
//! and message counts asserted on the client and the server side. tshark,
//! decoding a tcpdump capture of the same traffic, is the oracle for the
//! stream ids, paths and statuses.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/peer.py");
const SERVICE: &str = "osprey.test.Echo";
/// Bidi's large message: past the default capture of 4096 bytes, within
/// the 16384 the test's probe captures (an exact count needs its DATA
/// frame headers captured).
const BIG: u64 = 12_000;

/// (method, grpc_status, request messages, response messages, compressed)
const CALLS: [(&str, u64, u64, u64, bool); 7] = [
    ("Unary", 0, 1, 1, false),
    ("Fail", 5, 1, 0, false),
    ("ServerStream", 0, 1, 5, false),
    ("ClientStream", 0, 3, 1, false),
    ("Bidi", 0, 4, 4, false),
    ("Slow", 4, 1, 0, false),
    ("Unary", 0, 1, 1, true),
];

/// A process's HTTP/2 records (gRPC, or plain HTTP/2 when the content
/// type was not seen), by stream id.
fn grpc_of(recs: &[Value], pid: u32) -> BTreeMap<u64, Value> {
    recs.iter()
        .filter(|r| r["type"] == "http_transaction" && r["pid"] == pid)
        .filter(|r| r["protocol"] == "grpc" || r["protocol"] == "http2")
        .map(|r| (r["stream_id"].as_u64().unwrap(), r.clone()))
        .collect()
}

/// (stream id, :path) of the client's HEADERS and (stream id, :status,
/// grpc-status) of the server's, as tshark decodes the capture.
type Oracle = (BTreeMap<u64, String>, BTreeMap<u64, (u64, Option<u64>)>);

/// A JSON value that tshark writes as one object, or an array when the
/// key repeats (`--no-duplicate-keys`).
fn each(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => vec![],
        v => vec![v],
    }
}

fn tshark(pcap: &Path, port: u16) -> Oracle {
    let out = run_ok(Command::new("tshark").args([
        "-r",
        &pcap.display().to_string(),
        "-d",
        &format!("tcp.port=={port},http2"),
        "-Y",
        "http2.type == 1",
        "-T",
        "json",
        "--no-duplicate-keys",
        "-J",
        "tcp http2",
    ]));
    let packets: Vec<Value> = serde_json::from_str(&out).unwrap();
    let (mut paths, mut statuses) = (BTreeMap::new(), BTreeMap::new());
    for p in &packets {
        let layers = &p["_source"]["layers"];
        let to_server = layers["tcp"]["tcp.dstport"]
            .as_str()
            .and_then(|p| p.parse::<u16>().ok())
            == Some(port);
        for l in each(&layers["http2"]) {
            for f in each(&l["http2.stream"]) {
                if f["http2.type"] != "1" {
                    continue;
                }
                let id: u64 = f["http2.streamid"].as_str().unwrap().parse().unwrap();
                for h in each(&f["http2.header"]) {
                    let (n, v) = (
                        h["http2.header.name"].as_str().unwrap(),
                        h["http2.header.value"].as_str().unwrap_or(""),
                    );
                    match n {
                        ":path" if to_server => {
                            paths.insert(id, v.to_string());
                        }
                        ":status" if !to_server => {
                            statuses.entry(id).or_insert((0, None)).0 = v.parse().unwrap();
                        }
                        "grpc-status" if !to_server => {
                            statuses.entry(id).or_insert((0, None)).1 = Some(v.parse().unwrap());
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    (paths, statuses)
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn grpcio_calls_both_sides_with_tshark_as_oracle() {
    require_root();
    let dir = tmpdir("grpc");
    let port = free_port();
    let server = Guard(
        Command::new("python3")
            .args([PEER, "server", &port.to_string()])
            .spawn()
            .expect("python3"),
    );
    // (grpcio listens on an IPv6 socket, v4-mapped: not in /proc/net/tcp)
    wait_port(port);
    // the client waits for a line on stdin: the probe attaches first
    let mut client = Command::new("python3")
        .args([PEER, "client", &port.to_string(), &BIG.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let client_pid = client.id();
    let mut stdin = client.stdin.take().unwrap();
    let client_out = client.stdout.take().unwrap();
    let client = Guard(client);
    let dump = tshark::Capture::start_as(&dir, port, "grpc.pcap");
    let pcap = dump.path().to_path_buf();
    let server_pid = server.0.id();
    let probe = Osprey::start(
        &[
            "--capture-bytes",
            "16384",
            "--pid",
            &server_pid.to_string(),
            "--pid",
            &client_pid.to_string(),
        ],
        dir.join("out.jsonl"),
    );
    writeln!(stdin, "go").unwrap();
    drop(stdin);
    let lines = std::io::read_to_string(client_out).unwrap();
    let results: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let codes: Vec<&str> = results
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "OK",
            "NOT_FOUND",
            "OK",
            "OK",
            "OK",
            "DEADLINE_EXCEEDED",
            "OK"
        ],
        "the calls themselves: {lines}"
    );
    drop(client);
    let n = |r: &[Value]| (grpc_of(r, client_pid).len(), grpc_of(r, server_pid).len());
    probe.wait_for_records("7 gRPC records on each side", |r| n(r) == (7, 7));
    let (recs, err) = probe.stop_ok();
    // every call's request in the capture before tcpdump stops
    wait_until(
        "tcpdump to have written the 7 calls",
        || tshark(&pcap, port).0.len() == 7,
        || format!("{:?}", tshark(&pcap, port)),
    );
    drop(dump);

    let mut gaps = Vec::new();
    for (pid, side) in [(client_pid, "client"), (server_pid, "server")] {
        let t = grpc_of(&recs, pid);
        let ids: Vec<u64> = t.keys().copied().collect();
        assert_eq!(ids, [1, 3, 5, 7, 9, 11, 13], "{side}: {t:#?}\n{err}");
        for (r, (method, status, q, a, compressed)) in t.values().zip(CALLS) {
            let ctx = format!("{side}: {r}");
            assert_eq!(r["role"], side, "{ctx}");
            // the server reads the large Bidi message in reads larger than
            // the capture cap: a DATA frame header inside one is unseen
            let cap_gap_ok = side == "client" || method == "Bidi";
            if cap_gap_ok && r["gap"] == true {
                // grpcio's client writes a frame's payload in an iovec of
                // its own, of which the probe captures a few bytes: a
                // header block past that cap is lost, and with it the HPACK
                // table for the rest of the connection (the capture past
                // the cap is issue #17). The record says so, never guesses.
                assert_eq!(r["gap_cause"], serde_json::json!(["capture_cap"]), "{ctx}");
                assert!(
                    r["grpc_method"].is_null() || r["grpc_method"] == method,
                    "{ctx}"
                );
                assert!(r["grpc_req_messages"].as_u64().unwrap_or(0) <= q, "{ctx}");
                assert!(r["grpc_resp_messages"].as_u64().unwrap_or(0) <= a, "{ctx}");
                gaps.push(format!("{side} {method}"));
                continue;
            }
            assert_eq!(r["protocol"], "grpc", "{ctx}");
            assert_eq!(r["grpc_service"], SERVICE, "{ctx}");
            assert_eq!(r["grpc_method"], method, "{ctx}");
            assert_eq!(r["method"], "POST", "{ctx}");
            assert_eq!(r["target"], format!("/{SERVICE}/{method}"), "{ctx}");
            assert_eq!(r["req_content_type"], "application/grpc", "{ctx}");
            assert_eq!(r["grpc_req_messages"], q, "{ctx}");
            assert_eq!(r["grpc_resp_messages"], a, "{ctx}");
            assert_eq!(r["grpc_compressed"], compressed, "{ctx}");
            assert_eq!(r["gap"], false, "{ctx}");
            if method == "Slow" {
                // the deadline: the client cancels (RST_STREAM CANCEL) and
                // the server answers DEADLINE_EXCEEDED, in either order
                let cancelled = r["rst_error"] == "CANCEL";
                assert!(
                    r["grpc_status"] == status || (cancelled && r["grpc_status"].is_null()),
                    "{ctx}"
                );
                if r["grpc_status"] == status {
                    assert_eq!(r["grpc_message"], "Deadline Exceeded", "{ctx}");
                }
                continue;
            }
            assert_eq!(r["grpc_status"], status, "{ctx}");
            assert_eq!(r["status"], 200, "{ctx}");
            assert_eq!(r["end_stream"], true, "{ctx}");
            assert!(r["rst_error"].is_null(), "{ctx}");
            if method == "Fail" {
                assert_eq!(r["grpc_message"], "no such user: café", "{ctx}");
                assert_eq!(r["resp_body_bytes"], 0, "{ctx}");
            } else {
                assert!(r["grpc_message"].is_null(), "{ctx}");
            }
            let lat = r["latency_ns"].as_u64().unwrap();
            assert!(r["ttfb_ns"].as_u64().unwrap() <= lat, "{ctx}");
        }
        let bidi = &t[&9];
        if bidi["gap"] == false {
            assert_eq!(bidi["req_body_bytes"], 4 * 5 + 1 + BIG + 3 + 4, "{bidi}");
            assert_eq!(bidi["resp_body_bytes"], bidi["req_body_bytes"], "{bidi}");
        }
        let conns: std::collections::BTreeSet<String> =
            t.values().map(|t| t["conn_id"].to_string()).collect();
        assert_eq!(conns.len(), 1, "{side}: one channel, one connection");
    }
    eprintln!("records with a capture_cap gap: {gaps:?}");
    // nothing else of theirs: no HTTP/1.x records, and on the server side
    // (all captured) no plain http2 ones
    let other: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction" && r["protocol"] != "grpc")
        .filter(|r| r["protocol"] != "http2" || r["pid"] == server_pid)
        .collect();
    assert!(other.is_empty(), "{other:#?}");

    // tshark's decoding of the same traffic
    let (paths, statuses) = tshark(&pcap, port);
    for (pid, side) in [(client_pid, "client"), (server_pid, "server")] {
        let t = grpc_of(&recs, pid);
        let ids: Vec<&u64> = t.keys().collect();
        assert_eq!(
            ids,
            paths.keys().collect::<Vec<_>>(),
            "{side}: tshark's stream ids"
        );
        for (id, r) in &t {
            // a path unknown (the HPACK table lost with a gap) is null,
            // never another stream's
            assert!(
                r["target"].is_null() || r["target"] == paths[id],
                "{side}: tshark says {}: {r}",
                paths[id]
            );
        }
        for (id, (status, grpc_status)) in &statuses {
            let r = &t[id];
            if r["rst_error"] == "CANCEL" || r["gap"] == true {
                // the answer crossed the reset: not part of the record
                continue;
            }
            assert_eq!(r["status"], *status, "{side}: {r}");
            assert_eq!(r["grpc_status"].as_u64(), *grpc_status, "{side}: {r}");
        }
        // every call was answered, but Slow (11) only when the server's
        // answer beat the client's cancel; a stream without an answer on
        // the wire has none in the records either
        let answered: Vec<u64> = statuses.keys().copied().filter(|&id| id != 11).collect();
        assert_eq!(answered, [1, 3, 5, 7, 9, 13], "{statuses:?}");
        if !statuses.contains_key(&11) {
            assert!(t[&11]["status"].is_null(), "{side}: {}", t[&11]);
        }
    }
}
