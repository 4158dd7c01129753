// SPDX-License-Identifier: GPL-3.0-or-later
//! Tests of `osprey recon-diff`: the engine on synthetic records, and
//! goldens of real captures against real probe records.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::json;

use std::sync::Arc;

use super::*;
use crate::event::Role;
use crate::record::{ConnFields, Source, TimeSpan};
use engine::{latency_vantage, Latency, Side};

#[allow(clippy::too_many_arguments)]
fn rec(
    role: &str,
    local: &str,
    remote: &str,
    t_ms: i64,
    target: &str,
    status: u16,
    lat_ms: u64,
    source: &str,
) -> Value {
    let l: SocketAddr = local.parse().unwrap();
    let r: SocketAddr = remote.parse().unwrap();
    let t0 = 1_795_966_200_000_000_000i64 + t_ms * 1_000_000;
    let wire = source == "wire";
    let mut t = crate::jsonline::tests::base();
    t.span = TimeSpan {
        start_ns: t0,
        end_ns: t0 + lat_ms as i64 * 1_000_000,
    };
    t.latency_ns = Some(lat_ms * 1_000_000);
    t.method = Some("GET".into());
    t.target = Some(target.into());
    t.status = Some(status);
    t.req_body_bytes = Some(0);
    t.resp_body_bytes = Some(10);
    t.gap = false;
    t.truncated = false;
    t.no_response = false;
    t.conn = ConnFields {
        pid: (!wire).then_some(42),
        tid: (!wire).then_some(42),
        comm: (!wire).then(|| Arc::from(if role == "client" { "curl" } else { "nginx" })),
        conn_id: Arc::from(format!("{source}-{}", l.port())),
        role: match role {
            "client" => Role::Client,
            "server" => Role::Server,
            _ => Role::Unknown,
        },
        local_addr: Some(Arc::from(l.ip().to_string())),
        local_port: Some(l.port()),
        remote_addr: Some(Arc::from(r.ip().to_string())),
        remote_port: Some(r.port()),
        source: if wire { Source::Wire } else { Source::Ebpf },
        ident: Default::default(),
        exe: None,
        tls: false,
        tls_library: None,
        blocks: Default::default(),
    }
    .into();
    serde_json::to_value(&t).unwrap()
}

const C: &str = "10.0.0.1:40000";
const S: &str = "10.0.0.2:80";

fn cfg(sides: [bool; 2]) -> MatchConfig {
    MatchConfig {
        skew_ns: 50_000_000,
        tol_ns: 5_000_000,
        window_ns: 10_000_000_000,
        sides,
    }
}

fn run(w: Vec<Value>, e: Vec<Value>, sides: [bool; 2]) -> (Summary, Vec<Value>) {
    let (s, d, _) = recon_values(w, e, cfg(sides), 0.0, 0.0);
    (s, d)
}

#[test]
fn exact_match_is_clean() {
    let w = vec![
        rec("client", C, S, 0, "/a", 200, 3, "wire"),
        rec("client", C, S, 10, "/b", 200, 3, "wire"),
    ];
    let e = vec![
        rec("client", C, S, 1, "/a", 200, 3, "ebpf"),
        rec("client", C, S, 11, "/b", 200, 4, "ebpf"),
    ];
    let (s, d) = run(w, e, [true, false]);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(s.sides["client"].matched, 2);
    assert!(s.ok);
    assert_eq!(s.mismatch_pct, 0.0);
}

#[test]
fn field_mismatch_reported_per_field() {
    let w = vec![rec("client", C, S, 0, "/a", 200, 30, "wire")];
    let mut p = rec("client", C, S, 0, "/a", 503, 3, "ebpf");
    p["resp_body_bytes"] = json!(11);
    let (s, d) = run(w, vec![p], [true, false]);
    let fields: Vec<&str> = d.iter().map(|x| x["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["status", "resp_body_bytes", "latency_ns"]);
    assert!(d
        .iter()
        .all(|x| x["kind"] == "mismatch" && x["conn"] == "10.0.0.1:40000 -> 10.0.0.2:80"));
    let st = d.iter().find(|x| x["field"] == "status").unwrap();
    assert_eq!(
        (st["wire"].as_u64(), st["ebpf"].as_u64()),
        (Some(200), Some(503))
    );
    assert_eq!(s.sides["client"].mismatched, 1);
    assert_eq!(s.sides["client"].fields["status"], 1);
    assert_eq!(s.mismatch_pct, 100.0);
    assert!(!s.ok);
    // within a 100 % threshold it passes
    let (s, _, _) = recon_values(
        vec![rec("client", C, S, 0, "/a", 200, 3, "wire")],
        vec![rec("client", C, S, 0, "/a", 503, 3, "ebpf")],
        cfg([true, false]),
        100.0,
        0.0,
    );
    assert!(s.ok);
}

#[test]
fn a_read_fault_gap_is_explained_as_a_probe_blind_spot_like_the_capture_cap() {
    for (cause, says, not) in [
        ("read_fault", "could not read", "capture cap"),
        ("capture_cap", "capture cap", "could not read"),
    ] {
        let w = vec![rec("client", C, S, 0, "/a", 200, 3, "wire")];
        let mut p = rec("client", C, S, 0, "/a", 200, 3, "ebpf");
        p["resp_body_bytes"] = json!(0);
        p["gap"] = json!(true);
        p["gap_cause"] = json!([cause]);
        let (_, d) = run(w, vec![p], [true, false]);
        let m = d.iter().find(|x| x["field"] == "resp_body_bytes").unwrap();
        let why = m["explanation"].as_str().unwrap();
        assert!(
            why.contains(says) && why.contains("nothing was dropped") && !why.contains(not),
            "{cause}: {why}"
        );
    }
}

#[test]
fn wire_only_and_probe_only_with_explanations() {
    // second wire transaction lost by the probe; a probe-only connection elsewhere
    let w = vec![
        rec("client", C, S, 0, "/a", 200, 3, "wire"),
        rec("client", C, S, 20, "/b", 200, 3, "wire"),
    ];
    let e = vec![
        rec("client", C, S, 0, "/a", 200, 3, "ebpf"),
        rec("client", "10.0.0.1:40001", S, 5, "/x", 200, 3, "ebpf"),
    ];
    let (s, d) = run(w, e, [true, false]);
    let sc = &s.sides["client"];
    assert_eq!((sc.matched, sc.wire_only, sc.probe_only), (1, 1, 1));
    let wo = d.iter().find(|x| x["kind"] == "wire_only").unwrap();
    assert_eq!(wo["wire"]["target"], "/b");
    assert!(wo["explanation"]
        .as_str()
        .unwrap()
        .contains("other client-side transactions"));
    let po = d.iter().find(|x| x["kind"] == "probe_only").unwrap();
    assert!(po["explanation"]
        .as_str()
        .unwrap()
        .contains("no transaction on this connection"));
    assert_eq!(s.unmatched_pct, 66.67);
}

#[test]
fn allowlisted_connection_is_explained() {
    let w = vec![rec("client", C, S, 0, "/a", 200, 3, "wire")];
    let (s, d) = run(w, vec![], [true, false]);
    assert_eq!(s.sides["client"].wire_only, 1);
    assert!(d[0]["explanation"].as_str().unwrap().contains("allowlist"));
}

#[test]
fn clock_skew_within_and_beyond_window() {
    let w = vec![rec("client", C, S, 0, "/a", 200, 3, "wire")];
    let (s, _) = run(
        w.clone(),
        vec![rec("client", C, S, 40, "/a", 200, 3, "ebpf")],
        [true, false],
    );
    assert_eq!(s.sides["client"].matched, 1);
    let (s, _) = run(
        w.clone(),
        vec![rec("client", C, S, -54, "/a", 200, 3, "ebpf")],
        [true, false],
    );
    assert_eq!(s.sides["client"].matched, 1);
    let (s, d) = run(
        w,
        vec![rec("client", C, S, 100, "/a", 200, 3, "ebpf")],
        [true, false],
    );
    assert_eq!(
        (s.sides["client"].wire_only, s.sides["client"].probe_only),
        (1, 1)
    );
    assert_eq!(d[0]["kind"], "wire_only");
}

#[test]
fn both_roles_on_loopback_matched_separately() {
    let c = "127.0.0.1:51000";
    let sv = "127.0.0.1:8080";
    let w = vec![rec("client", c, sv, 0, "/a", 200, 3, "wire")];
    let e = vec![
        rec("client", c, sv, 0, "/a", 200, 3, "ebpf"),
        rec("server", sv, c, 1, "/a", 200, 1, "ebpf"),
    ];
    let (s, d) = run(w, e, [true, true]);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(s.sides["client"].matched, 1);
    assert_eq!(s.sides["server"].matched, 1);
    assert!(s.notes.iter().any(|n| n.contains("loopback")));
    // a server end longer than the wire's exchange is a mismatch, explained
    let w = vec![rec("client", c, sv, 0, "/a", 200, 1, "wire")];
    let e = vec![rec("server", sv, c, 1, "/a", 200, 30, "ebpf")];
    let (_, d) = run(w, e, [false, true]);
    assert_eq!(d[0]["field"], "latency_ns");
    assert!(d[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("server end took longer than the wire"));
}

/// Each side's latency may differ from the wire's only in the direction its
/// vantage predicts; that is counted apart and does not fail the run.
#[test]
fn latency_differences_in_the_vantage_direction_are_not_mismatches() {
    // (side, wire ms, probe ms, expected)
    let cases = [
        ("server", 30, 1, Latency::Vantage), // send buffer drained after the last write
        ("server", 1, 30, Latency::Mismatch), // server end outlasts the wire
        ("client", 1, 30, Latency::Vantage), // client read the response late
        ("client", 30, 1, Latency::Mismatch), // client end inside the wire's exchange
        ("server", 10, 6, Latency::Equal),   // within the 5 ms tolerance, either way
        ("client", 10, 6, Latency::Equal),
    ];
    for (side, wire_ms, ebpf_ms, want) in cases {
        let s = if side == "server" {
            Side::Server
        } else {
            Side::Client
        };
        assert_eq!(
            latency_vantage(s, wire_ms * 1_000_000, ebpf_ms * 1_000_000, 5_000_000),
            want,
            "{side} {wire_ms} {ebpf_ms}"
        );
        let (local, remote) = if side == "server" { (S, C) } else { (C, S) };
        let w = vec![rec("client", C, S, 0, "/a", 200, wire_ms, "wire")];
        let e = vec![rec(side, local, remote, 0, "/a", 200, ebpf_ms, "ebpf")];
        let sides = [side == "client", side == "server"];
        let (sum, d) = run(w, e, sides);
        let x = &sum.sides[side];
        assert_eq!(
            (x.matched, x.mismatched, x.latency_vantage),
            (
                1,
                u64::from(want == Latency::Mismatch),
                u64::from(want == Latency::Vantage)
            ),
            "{side} {wire_ms} {ebpf_ms}"
        );
        assert_eq!(d.len(), usize::from(want == Latency::Mismatch));
        assert_eq!(sum.ok, want != Latency::Mismatch);
        if want == Latency::Vantage {
            assert!(
                super::human(&sum).contains("where the vantage predicts it (not a mismatch): 1"),
                "{}",
                super::human(&sum)
            );
        }
    }
}

#[test]
fn mapped_ipv6_and_wire_server_role_normalise() {
    let w = vec![rec("server", S, C, 0, "/a", 200, 3, "wire")];
    let e = vec![rec(
        "client",
        "[::ffff:10.0.0.1]:40000",
        "[::ffff:10.0.0.2]:80",
        0,
        "/a",
        200,
        3,
        "ebpf",
    )];
    let (s, d) = run(w, e, [true, false]);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(s.sides["client"].matched, 1);
}

#[test]
fn unusable_and_foreign_records_are_counted_not_fatal() {
    let mut noaddr = rec("client", C, S, 0, "/a", 200, 3, "ebpf");
    noaddr["local_addr"] = Value::Null;
    let mut unfit = rec("client", C, S, 0, "/a", 200, 3, "ebpf");
    unfit["status"] = json!("200");
    let mut http2 = rec("client", C, S, 0, "/a", 200, 3, "ebpf");
    http2["protocol"] = json!("http3");
    let msg = json!({"type": "http_message"});
    let (s, d) = run(
        vec![],
        vec![noaddr, unfit, msg, json!(5), http2],
        [true, false],
    );
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(s.unusable_records, 2);
    assert_eq!(s.ebpf_records, 0);
    assert!(
        s.notes.iter().any(|n| n
            .contains("ebpf input: 2 transaction records were skipped because a field is missing")
            && n.contains("(first: record 1: no addresses)")),
        "{:?}",
        s.notes
    );
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("1 records of another protocol")),
        "{:?}",
        s.notes
    );
    assert!(s.ok);
}

#[test]
fn memory_is_bounded_by_the_window() {
    // 20 000 transactions, 100 ms apart, on 50 connections: both streams
    // are consumed in lockstep and settled a window behind.
    let n = 20_000i64;
    let mk = |src: &'static str| {
        (0..n).map(move |i| {
            let port = 40000 + (i % 50) as u16;
            rec(
                "client",
                &format!("10.0.0.1:{port}"),
                S,
                i * 100,
                "/a",
                200,
                3,
                src,
            )
        })
    };
    let (s, d, st) = recon_values(mk("wire"), mk("ebpf"), cfg([true, false]), 0.0, 0.0);
    let peak = st.peak_pending;
    assert!(d.is_empty());
    assert_eq!(s.sides["client"].matched, n as u64);
    // 10 s window at 10 records/s per input, plus a flush interval.
    assert!(peak < 1000, "peak pending {peak}");
}

// ---- golden: real captures against real probe records ------------------

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/recon")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("osprey-recon-{}-{name}", std::process::id()))
}

/// Run the whole command; returns (exit code, summary, diffs) as one JSON.
fn run_cmd(wire: PathBuf, ebpf: PathBuf, tag: &str) -> Value {
    let out = tmp(&format!("{tag}.diffs"));
    let sum = tmp(&format!("{tag}.summary"));
    let args = ReconArgs {
        wire,
        ebpf,
        skew_ms: 50.0,
        latency_tolerance_ms: 5.0,
        max_mismatch_pct: 0.0,
        max_unmatched_pct: 0.0,
        output: Some(out.clone()),
        sides: Sides::Auto,
        window_s: 10.0,
        summary_json: Some(sum.clone()),
        force: false,
    };
    let code = recon_cmd(&args).unwrap();
    let diffs: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_file(sum);
    json!({"exit": code, "summary": summary, "diffs": diffs})
}

fn golden(name: &str, got: &Value) {
    let path = sample(&format!("{name}.golden"));
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    assert_eq!(
        want,
        text,
        "{} differs (UPDATE_GOLDEN=1 regenerates)",
        path.display()
    );
}

#[test]
fn golden_python_loopback_pcap_and_pcapng() {
    let got = run_cmd(
        sample("lo_python.pcap"),
        sample("lo_python.probe.jsonl"),
        "py",
    );
    assert_eq!(got["exit"], 0);
    assert_eq!(got["summary"]["sides"]["client"]["matched"], 6);
    assert_eq!(got["summary"]["sides"]["server"]["matched"], 6);
    golden("lo_python", &got);
    let ng = run_cmd(
        sample("lo_python.pcapng"),
        sample("lo_python.probe.jsonl"),
        "pyng",
    );
    assert_eq!(
        ng, got,
        "pcapng and pcap of the same capture reconcile identically"
    );
}

#[test]
fn golden_nginx_sll2_ipv6_keepalive() {
    let got = run_cmd(
        sample("any_nginx.pcap"),
        sample("any_nginx.probe.jsonl"),
        "ng",
    );
    assert_eq!(got["exit"], 0);
    assert_eq!(got["summary"]["sides"]["server"]["matched"], 7);
    golden("any_nginx", &got);
}

#[test]
fn golden_nginx_mutated_probe() {
    let got = run_cmd(
        sample("any_nginx.pcap"),
        sample("any_nginx.probe-mutated.jsonl"),
        "mut",
    );
    assert_eq!(got["exit"], 1);
    let c = &got["summary"]["sides"]["client"];
    assert_eq!(
        (
            c["matched"].as_u64(),
            c["mismatched"].as_u64(),
            c["probe_only"].as_u64()
        ),
        (Some(7), Some(1), Some(1))
    );
    assert_eq!(got["summary"]["sides"]["server"]["wire_only"], 1);
    golden("any_nginx_mutated", &got);
}

#[test]
fn golden_lossy_capture() {
    let got = run_cmd(
        sample("any_nginx_lossy.pcap"),
        sample("any_nginx.probe.jsonl"),
        "lossy",
    );
    assert_eq!(got["exit"], 1);
    assert!(got["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["explanation"]
            .as_str()
            .unwrap()
            .contains("wire record has gap=true")));
    golden("any_nginx_lossy", &got);
}

#[test]
fn truncated_capture_still_reconciles() {
    let mut bytes = std::fs::read(sample("lo_python.pcap")).unwrap();
    bytes.truncate(bytes.len() - 10);
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &bytes).unwrap();
    let got = run_cmd(cut.clone(), sample("lo_python.probe.jsonl"), "cut");
    let _ = std::fs::remove_file(cut);
    assert_eq!(got["summary"]["sides"]["client"]["matched"], 6);
    let notes = got["summary"]["notes"].to_string();
    assert!(
        notes.contains("ended early") && notes.contains("truncated"),
        "{notes}"
    );
}

#[test]
fn input_errors_exit_2() {
    let mut args = ReconArgs {
        wire: sample("missing.pcap"),
        ebpf: sample("lo_python.probe.jsonl"),
        skew_ms: 50.0,
        latency_tolerance_ms: 5.0,
        max_mismatch_pct: 0.0,
        max_unmatched_pct: 0.0,
        output: Some(tmp("err.out")),
        sides: Sides::Auto,
        window_s: 10.0,
        summary_json: None,
        force: false,
    };
    assert_eq!(recon_cmd(&args).unwrap(), 2);
    args.wire = sample("lo_python.pcap");
    args.skew_ms = -1.0;
    assert_eq!(recon_cmd(&args).unwrap(), 2);
    args.skew_ms = 50.0;
    let garbage = tmp("garbage.jsonl");
    std::fs::write(&garbage, "not json\n{\n").unwrap();
    args.ebpf = garbage.clone();
    args.wire = garbage.clone();
    assert_eq!(recon_cmd(&args).unwrap(), 2);
    // one input that is not JSON: its lines are skipped, the other input's
    // records are unmatched, the thresholds decide
    args.wire = sample("lo_python.pcap");
    assert_eq!(recon_cmd(&args).unwrap(), 1);
    args.max_unmatched_pct = 100.0;
    assert_eq!(recon_cmd(&args).unwrap(), 0);
    // an input that cannot be read to its end (a directory opens, then
    // every read fails): exit 2, with either --sides (no pre-pass)
    let dir = tmp("dir.jsonl");
    std::fs::create_dir_all(&dir).unwrap();
    args.ebpf = dir.clone();
    assert_eq!(recon_cmd(&args).unwrap(), 2);
    args.sides = Sides::Client;
    assert_eq!(recon_cmd(&args).unwrap(), 2);
    args.ebpf = sample("lo_python.probe.jsonl");
    args.wire = dir.clone();
    assert_eq!(recon_cmd(&args).unwrap(), 2);
    let _ = std::fs::remove_dir(dir);
    let _ = std::fs::remove_file(garbage);
    let _ = std::fs::remove_file(tmp("err.out"));
}

#[test]
fn records_with_numbers_out_of_range_are_counted_and_explained() {
    let mut big = rec("client", C, S, 0, "/a", 200, 3, "ebpf");
    big["status"] = json!(70000);
    let mut neg = rec("client", C, S, 10, "/b", 200, 3, "ebpf");
    neg["local_port"] = json!(-1);
    let ok = rec("client", C, S, 20, "/c", 200, 3, "ebpf");
    let (s, _) = run(vec![], vec![big, neg, ok], [true, false]);
    assert_eq!(s.unusable_records, 2);
    assert_eq!(s.ebpf_records, 1);
    let note = s
        .notes
        .iter()
        .find(|n| n.starts_with("ebpf input: 2 transaction records were skipped"))
        .unwrap_or_else(|| panic!("no note: {:?}", s.notes));
    assert!(note.contains("out of range"), "{note}");
    assert!(note.contains("70000"), "{note}");
}

#[test]
fn settling_work_is_linear_in_the_input() {
    // Keep-alive load as wrk makes it: 8 connections, a transaction every
    // millisecond, so the 10 s window holds 10 000 records; every 100th
    // is lost from the probe. The settling looks at each record about once, so
    // its work per record stays the same as the input doubles (it grew
    // with the window's contents before: quadratic on such an input).
    let run = |n: i64| {
        let mk = |src: &'static str| {
            (0..n)
                .filter(move |i| src == "wire" || i % 100 != 7)
                .map(move |i| {
                    let port = 40000 + (i % 8) as u16;
                    rec(
                        "client",
                        &format!("10.0.0.1:{port}"),
                        S,
                        i,
                        "/a",
                        200,
                        3,
                        src,
                    )
                })
        };
        let (s, d, st) = recon_values(mk("wire"), mk("ebpf"), cfg([true, false]), 0.0, 0.0);
        assert_eq!(s.sides["client"].wire_only, (n as u64).div_ceil(100));
        assert_eq!(d.len() as u64, s.sides["client"].wire_only);
        st.looks as f64 / n as f64
    };
    let (small, large) = (run(20_000), run(40_000));
    assert!(small < 4.0, "{small} looks per record");
    assert!(large < 4.0, "{large} looks per record");
}

/// HTTP/2 and gRPC records pair per stream: the probe file (made from
/// the wire records of the same grpcio capture) gives the streams that
/// began within 40 ms (1 to 11) one start, as concurrent streams have,
/// lists them in reverse order, and gives one
/// stream (9, Bidi) a wrong message count: each stream pairs with its
/// own, and the one difference is found on stream 9.
#[test]
fn golden_grpc_streams_pair_by_stream_id() {
    let got = run_cmd(
        sample("lo_grpc.pcap"),
        sample("lo_grpc.probe-streams.jsonl"),
        "grpc",
    );
    assert_eq!(got["exit"], 1, "{got:#}");
    let c = &got["summary"]["sides"]["client"];
    assert_eq!(
        (
            c["matched"].as_u64(),
            c["mismatched"].as_u64(),
            c["wire_only"].as_u64(),
            c["probe_only"].as_u64()
        ),
        (Some(7), Some(1), Some(0), Some(0)),
        "{got:#}"
    );
    let d = got["diffs"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["stream_id"], 9);
    assert_eq!(d[0]["field"], "grpc_resp_messages");
    assert_eq!(
        (d[0]["wire"].as_u64(), d[0]["ebpf"].as_u64()),
        (Some(4), Some(3))
    );
    golden("lo_grpc_streams", &got);
}

/// Probe records written with `--record-format compact` (no null fields,
/// no ISO times) reconcile exactly as the full ones: a missing field reads
/// as null. The probe files, compacted line by line, against the same
/// captures give the same summary and differences (the mutated one has
/// null fields on both sides of a difference; the gRPC one HTTP/2 fields).
#[test]
fn compact_probe_records_reconcile_as_the_full_ones() {
    for (pcap, probe) in [
        ("any_nginx.pcap", "any_nginx.probe-mutated.jsonl"),
        ("any_nginx.pcap", "any_nginx.probe.jsonl"),
        ("lo_grpc.pcap", "lo_grpc.probe-streams.jsonl"),
        ("lo_python.pcap", "lo_python.probe.jsonl"),
    ] {
        let full = std::fs::read_to_string(sample(probe)).unwrap();
        let mut compact = String::new();
        let mut dropped = 0;
        for l in full.lines() {
            let m = crate::jsonline::tests::compacted(l);
            dropped += serde_json::from_str::<serde_json::Map<String, Value>>(l)
                .unwrap()
                .len()
                - m.len();
            compact += &serde_json::to_string(&m).unwrap();
            compact.push('\n');
        }
        assert!(dropped > 0, "{probe}: nothing to leave out");
        let path = tmp(&format!("compact-{probe}"));
        std::fs::write(&path, compact).unwrap();
        let got = run_cmd(sample(pcap), path.clone(), "compact");
        let want = run_cmd(sample(pcap), sample(probe), "full");
        let _ = std::fs::remove_file(path);
        assert_eq!(got, want, "{probe}");
    }
}
