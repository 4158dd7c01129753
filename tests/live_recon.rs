// SPDX-License-Identifier: GPL-3.0-or-later
//! Live recon (root): tcpdump on lo and the probe capture the same real
//! traffic (nginx + curl: keep-alive, pipelining, chunked upload, large
//! bodies); recon-diff must match 100% on both ends.

mod common;

use std::process::Command;

use common::*;

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn tcpdump_and_probe_agree_on_loopback_http() {
    let files = [
        ("small.txt", vec![b'x'; 100]),
        ("big.bin", vec![b'x'; 1_000_000]),
        ("a", vec![b'x'; 11]),
        ("b", vec![b'x'; 2222]),
    ];
    let site = Site::nginx(
        "recon",
        &files
            .iter()
            .map(|(f, b)| (*f, b.as_slice()))
            .collect::<Vec<_>>(),
    );
    let (dir, port) = (&site.dir, site.port);
    let mut capture = tshark::Capture::start_as(dir, port, "lo.pcap");
    let pcap = capture.path().to_path_buf();
    let probe = site.probe(&["--comm", "curl", "--comm", "nginx", "--comm", "python3"]);

    // keep-alive, large body, 404
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
        &site.url("/nope"),
    ]);
    // chunked upload
    let body = dir.join("up.bin");
    std::fs::write(&body, vec![b'u'; 30_000]).unwrap();
    curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", body.display()),
        &site.url("/a"),
    ]);
    // pipelining: three requests before any response (python3 is traced too)
    let req = "GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /b HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /a HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n";
    let py = format!(
        "import socket,sys\ns=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\ns.sendall(b'{req}')\n\
         d=b''\nwhile True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\nprint(d.count(b'HTTP/1.1 200'))\n"
    );
    let n = run_ok(Command::new("python3").args(["-c", &py, &port.to_string()]));
    assert_eq!(n.trim(), "3");

    // 7 exchanges, each recorded by nginx and by its client (4 curl, 3 python3)
    let ours = |r: &[serde_json::Value]| -> Vec<serde_json::Value> {
        r.iter()
            .filter(|r| r["local_port"] == port || r["remote_port"] == port)
            .cloned()
            .collect()
    };
    probe.wait_for_records("14 transaction records", |r| ours(r).len() >= 14);
    let (recs, err) = probe.stop_ok();
    let recs = ours(&recs);
    // tcpdump drops what it has not written yet when interrupted: wait
    // until the capture holds all 7 exchanges and the end of all 3 connections
    let wire = || {
        let o = Command::new(BIN).arg("wire").arg(&pcap).output().unwrap();
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let complete = |w: &str| {
        w.contains("wire: 3 flows (0 mid-stream, 3 closed") && w.contains("wire: 7 transactions")
    };
    wait_until(
        "tcpdump to write the whole exchange",
        || complete(&wire()),
        wire,
    );
    capture.stop();
    let by = |comm: &str| recs.iter().filter(|r| r["comm"] == comm).count();
    assert_eq!(
        (by("nginx"), by("curl"), by("python3"), recs.len()),
        (7, 4, 3, 14),
        "probe records\n{err}"
    );

    let out = Command::new(BIN)
        .args(["recon-diff", "--wire"])
        .arg(&pcap)
        // every field is compared exactly; latency only against gross
        // errors: a writer descheduled inside its syscall on a loaded
        // 2-CPU runner moves the probe's end by milliseconds (seen: 11 ms)
        .args(["--latency-tolerance-ms", "50"])
        .arg("--ebpf")
        .arg(dir.join("out.jsonl"))
        .args(["--summary-json"])
        .arg(dir.join("summary.json"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "recon-diff:\n{report}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "differences reported: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    eprintln!("{report}\n{sum}");
    // every exchange matched on both ends, field for field, nothing unmatched
    // (latencies may differ in the direction each vantage predicts: counted, not compared)
    let side = |s: &str| {
        let v = sum["sides"][s]["latency_vantage"]
            .as_u64()
            .expect("latency_vantage");
        serde_json::json!({"matched": 7, "mismatched": 0, "wire_only": 0, "probe_only": 0, "fields": {}, "latency_vantage": v})
    };
    assert_eq!(
        sum["sides"],
        serde_json::json!({"client": side("client"), "server": side("server")}),
        "{report}"
    );
    assert_eq!(sum["ebpf_records"], 14, "{report}");
    for zero in ["ebpf_unknown_role", "unusable_records", "bad_lines"] {
        assert_eq!(sum[zero], 0, "{zero}: {report}");
    }
    assert_eq!(
        (sum["mismatch_pct"].as_f64(), sum["unmatched_pct"].as_f64()),
        (Some(0.0), Some(0.0)),
        "{report}"
    );
    assert_eq!(sum["ok"], true, "{report}");
}
