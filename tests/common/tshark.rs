// SPDX-License-Identifier: GPL-3.0-or-later
//! The wire as the reference: tcpdump captures a test's loopback traffic,
//! tshark (Wireshark's own HTTP dissector, not Osprey's parser) decodes
//! it, and the probe's records are compared with what it saw.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{wait_until, Guard};

/// One HTTP exchange as tshark decoded it from the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireTxn {
    /// tshark's TCP stream index (one per connection).
    pub stream: u64,
    /// The client's port (the connection, as the records name it).
    pub client_port: u16,
    pub method: String,
    pub uri: String,
    pub status: u64,
    /// Response body bytes: Content-Length, or the sum of the chunk sizes.
    pub resp_body: u64,
}

/// tcpdump writing loopback TCP on `port` to `pcap` as every wire oracle
/// here captures: immediate mode, no snap length, a 64 MiB kernel buffer,
/// each packet written as it comes (`-U`). Stdio and spawning are the
/// caller's.
pub fn tcpdump(pcap: &Path, port: u16) -> Command {
    let mut c = Command::new("tcpdump");
    c.args([
        "-i",
        "lo",
        "--immediate-mode",
        "-s",
        "0",
        "-B",
        "65536",
        "-U",
        "-w",
    ])
    .arg(pcap)
    .args(["tcp", "port", &port.to_string()]);
    c
}

/// tcpdump on `lo` for TCP port `port`, writing `dir/wire.pcap`.
pub struct Capture {
    td: Guard,
    pcap: PathBuf,
    port: u16,
}

impl Capture {
    /// Once tcpdump says it is listening (the oracle needs each connection
    /// from its start: tshark's HPACK tables too).
    pub fn start(dir: &Path, port: u16) -> Capture {
        Capture::start_as(dir, port, "wire.pcap")
    }

    /// The same, writing `dir/name`.
    pub fn start_as(dir: &Path, port: u16, name: &str) -> Capture {
        let pcap = dir.join(name);
        let mut td = tcpdump(&pcap, port)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (scripts/setup.sh installs it)");
        let err = td.stderr.take().unwrap();
        let td = Guard(td); // stopped even if an assertion fails
        let mut said = String::new();
        let mut err = BufReader::new(err);
        loop {
            let mut line = String::new();
            let n = err.read_line(&mut line).unwrap();
            said.push_str(&line);
            assert!(n > 0, "tcpdump ended before capturing: {said}");
            if line.contains("listening on") {
                break;
            }
        }
        Capture { td, pcap, port }
    }

    /// The capture file (tcpdump writes it as it goes).
    pub fn path(&self) -> &Path {
        &self.pcap
    }

    /// Stop tcpdump (SIGINT: it writes what it buffered); call it once the
    /// test has seen that the file holds what it needs.
    pub fn stop(&mut self) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.td.0.id() as i32, libc::SIGINT) };
        let _ = self.td.0.wait();
    }

    /// Wait until tshark decodes `n` responses (tcpdump writes what it has
    /// as it goes, a stop would drop the rest), stop tcpdump, and return
    /// the exchanges in capture order.
    pub fn finish(mut self, n: usize) -> Vec<WireTxn> {
        let (pcap, port) = (self.pcap.clone(), self.port);
        wait_until(
            &format!("tshark to decode {n} responses on port {port}"),
            || decode(&pcap, port).is_some_and(|w| w.len() >= n),
            || format!("{:#?}", decode(&pcap, port)),
        );
        self.stop();
        decode(&self.pcap, self.port).expect("a response without a request")
    }
}

fn tshark(pcap: &Path, port: u16, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-d", &format!("tcp.port=={port},http")])
        .args(["-o", "http.decompress_body:FALSE"])
        .args([
            "-Y",
            filter,
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "aggregator=,",
        ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let o = cmd.output().expect("tshark (scripts/setup.sh installs it)");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

fn list(s: &str) -> Vec<&str> {
    s.split(',').filter(|x| !x.is_empty()).collect()
}

/// The exchanges in `pcap`: requests and responses of each TCP stream
/// paired in order (HTTP/1.1 answers in request order, also pipelined);
/// one tshark pass, so both come from the same snapshot of a capture
/// still being written. None while a response has no request yet.
pub fn decode(pcap: &Path, port: u16) -> Option<Vec<WireTxn>> {
    let mut reqs: BTreeMap<u64, Vec<(u16, String, String)>> = BTreeMap::new();
    let mut taken: BTreeMap<u64, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let fields = [
        "tcp.stream",
        "tcp.srcport",
        "http.request.method",
        "http.request.uri",
        "http.response.code",
        "http.content_length_header",
        "http.chunk_size",
    ];
    for r in tshark(pcap, port, "http.request || http.response", &fields) {
        let [stream, sport, methods, uris, codes, lens, chunks] = &r[..] else {
            continue;
        };
        let stream: u64 = stream.parse().ok()?;
        let (methods, uris) = (list(methods), list(uris));
        assert_eq!(methods.len(), uris.len(), "tshark request line: {r:?}");
        for (m, u) in methods.iter().zip(uris) {
            reqs.entry(stream).or_default().push((
                sport.parse().unwrap(),
                m.to_string(),
                u.to_string(),
            ));
        }
        let codes = list(codes);
        if codes.is_empty() {
            continue;
        }
        let lens = list(lens);
        let chunks: u64 = list(chunks).iter().map(|c| c.parse::<u64>().unwrap()).sum();
        let bodies: Vec<u64> = if codes.len() == 1 {
            vec![lens.first().map_or(chunks, |l| l.parse().unwrap())]
        } else {
            // several responses in one frame: each must say its length
            assert_eq!(
                lens.len(),
                codes.len(),
                "ambiguous tshark response line {r:?}"
            );
            lens.iter().map(|l| l.parse().unwrap()).collect()
        };
        for (code, body) in codes.iter().zip(bodies) {
            let i = taken.entry(stream).or_default();
            let (cport, method, uri) = reqs.get(&stream).and_then(|q| q.get(*i)).cloned()?;
            *i += 1;
            out.push(WireTxn {
                stream,
                client_port: cport,
                method,
                uri,
                status: code.parse().unwrap(),
                resp_body: body,
            });
        }
    }
    Some(out)
}

/// Compare the probe's transaction records of one side (`role`) with the
/// wire's exchanges: the same count, and per connection (client port) the
/// same method, target, status and response body bytes, in order.
pub fn agree(recs: &[&serde_json::Value], wire: &[WireTxn], role: &str) {
    assert_eq!(
        recs.len(),
        wire.len(),
        "{role}: {} records, the wire has {} exchanges\nrecords: {recs:#?}\nwire: {wire:#?}",
        recs.len(),
        wire.len()
    );
    let port_of = |r: &serde_json::Value| -> u64 {
        if role == "client" {
            r["local_port"].as_u64().unwrap()
        } else {
            r["remote_port"].as_u64().unwrap()
        }
    };
    let mut ports: Vec<u16> = wire.iter().map(|w| w.client_port).collect();
    ports.sort();
    ports.dedup();
    for p in ports {
        let w: Vec<&WireTxn> = wire.iter().filter(|w| w.client_port == p).collect();
        let mut r: Vec<&&serde_json::Value> =
            recs.iter().filter(|r| port_of(r) == p as u64).collect();
        r.sort_by_key(|r| r["ts_start_ns"].as_i64());
        assert_eq!(
            r.len(),
            w.len(),
            "{role}, client port {p}: {r:#?}\nwire: {w:#?}"
        );
        for (r, w) in r.iter().zip(&w) {
            let got = (
                r["method"].as_str().unwrap_or("?"),
                r["target"].as_str().unwrap_or("?"),
                r["status"].as_u64().unwrap_or(0),
                r["resp_body_bytes"].as_u64().unwrap_or(u64::MAX),
            );
            let want = (w.method.as_str(), w.uri.as_str(), w.status, w.resp_body);
            assert_eq!(got, want, "{role}, client port {p}: record {r}\nwire {w:?}");
            assert_eq!(r["gap"], false, "{role}: {r}");
            assert_eq!(r["no_response"], false, "{role}: {r}");
        }
    }
}
