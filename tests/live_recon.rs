// SPDX-License-Identifier: GPL-3.0-or-later
//! Live recon (root): tcpdump on lo and the probe capture the same real
//! traffic (nginx + curl: keep-alive, pipelining, chunked upload, large
//! bodies); recon-diff must match 100% on both ends.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn tcpdump_and_probe_agree_on_loopback_http() {
    if !require_root() {
        return;
    }
    let dir = tmpdir("recon");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    for (f, n) in [("small.txt", 100usize), ("big.bin", 1_000_000), ("a", 11), ("b", 2222)] {
        std::fs::write(dir.join("www").join(f), vec![b'x'; n]).unwrap();
    }
    let port = free_port();
    let _nginx = nginx_server(&dir, port);
    let pcap = dir.join("lo.pcap");

    let mut td = Command::new("tcpdump")
        .args(["-i", "lo", "-s", "0", "-B", "65536", "-U", "-w"])
        .arg(&pcap)
        .args(["tcp", "port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump (scripts/setup.sh installs it)");
    let td_err = td.stderr.take().unwrap();
    let mut td = Guard(td); // stopped even if an assertion fails
    let mut line = String::new();
    BufReader::new(td_err).read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "tcpdump: {line}");
    let probe = Osprey::start(&["--comm", "curl", "--comm", "nginx", "--comm", "python3"], dir.join("probe.jsonl"));

    let base = format!("http://127.0.0.1:{port}");
    // keep-alive, large body, 404
    run_ok(Command::new("curl").args([
        "-sS", "--http1.1", "-o", "/dev/null", &format!("{base}/small.txt"),
        "--next", "-o", "/dev/null", &format!("{base}/big.bin"),
        "--next", "-o", "/dev/null", &format!("{base}/nope"),
    ]));
    // chunked upload
    let body = dir.join("up.bin");
    std::fs::write(&body, vec![b'u'; 30_000]).unwrap();
    run_ok(Command::new("curl").args([
        "-sS", "--http1.1", "-o", "/dev/null", "-X", "POST", "-H", "Transfer-Encoding: chunked",
        "--data-binary", &format!("@{}", body.display()), &format!("{base}/a"),
    ]));
    // pipelining: three requests before any response (python3 is traced too)
    let req = "GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /b HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /a HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n";
    let py = format!(
        "import socket,sys\ns=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\ns.sendall(b'{req}')\n\
         d=b''\nwhile True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\nprint(d.count(b'HTTP/1.1 200'))\n"
    );
    let n = run_ok(Command::new("python3").args(["-c", &py, &port.to_string()]));
    assert_eq!(n.trim(), "3");
    std::thread::sleep(std::time::Duration::from_millis(300));

    let (status, recs, err) = probe.stop();
    assert!(status.success(), "{err}");
    // tcpdump drops what it has not read yet when interrupted: let it catch
    // up first (with -U the file grows packet by packet; a busy machine
    // can leave it a second behind)
    let mut last = (0u64, std::time::Instant::now());
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_secs(15) {
        let size = std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
        if size != last.0 {
            last = (size, std::time::Instant::now());
        } else if last.1.elapsed() > std::time::Duration::from_millis(700) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(td.0.id() as i32, libc::SIGINT) };
    td.0.wait().unwrap();
    let nginx_txns = recs.iter().filter(|r| r["comm"] == "nginx").count();
    assert_eq!(nginx_txns, 7, "probe saw {nginx_txns} nginx transactions\n{err}");

    let out = Command::new(BIN)
        .args(["recon-diff", "--wire"])
        .arg(&pcap)
        .arg("--ebpf")
        .arg(dir.join("probe.jsonl"))
        .args(["--summary-json"])
        .arg(dir.join("summary.json"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "recon-diff:\n{report}\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "differences reported: {}", String::from_utf8_lossy(&out.stdout));
    let sum: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    eprintln!("{report}\n{sum}");
    assert!(report.contains("server") && report.contains("client"), "{report}");
    assert!(report.contains(": OK"), "{report}");
}
