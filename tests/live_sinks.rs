// SPDX-License-Identifier: GPL-3.0-or-later
//! Live sink tests (root): the real probe on nginx traffic over loopback,
//! its records going to a real Prometheus (which scrapes Osprey) and a real
//! ClickHouse (Debian's 18.16), each started here on ports of its own with
//! a data directory of its own — never the system services. Also: rotation
//! of `-o FILE` under real traffic, and bad input (a port taken, a missing
//! table, a server answering errors, a server that goes away).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use osprey::sink::http::{encode_query, request, Url};
use serde_json::Value;

const T: Duration = Duration::from_secs(10);

fn get(url: &str, path_query: &str) -> Option<(u16, String)> {
    let u = Url::parse(url).unwrap();
    request(&u, "GET", path_query, &[], T)
        .ok()
        .map(|r| (r.status, r.text()))
}

/// A ClickHouse server of the test's own (config, data and ports).
struct ClickHouse {
    dir: PathBuf,
    http: u16,
    tcp: u16,
    server: Option<Guard>,
}

impl ClickHouse {
    fn start(name: &str) -> ClickHouse {
        let dir = tmpdir(name);
        let (http, tcp) = (free_port(), free_port());
        let mut c = ClickHouse {
            dir,
            http,
            tcp,
            server: None,
        };
        c.restart();
        c
    }

    fn restart(&mut self) {
        let d = self.dir.display();
        let cfg = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/err.log</errorlog><console>0</console></logger>
  <http_port>{}</http_port>
  <tcp_port>{}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>
"#,
            self.http, self.tcp
        );
        std::fs::write(self.dir.join("config.xml"), cfg).unwrap();
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={d}/config.xml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("clickhouse-server (scripts/setup.sh installs it)");
        self.server = Some(Guard(child));
        let url = self.url();
        wait_until(
            "ClickHouse answering",
            || get(&url, "/").is_some_and(|(s, t)| s == 200 && t == "Ok."),
            || std::fs::read_to_string(self.dir.join("err.log")).unwrap_or_default(),
        );
    }

    fn stop(&mut self) {
        self.server = None; // SIGTERM, waited for
        let port = self.http;
        wait_until(
            "ClickHouse gone",
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            String::new,
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// The answer to `q`, failing the test on an error.
    fn query(&self, q: &str) -> String {
        let u = Url::parse(&self.url()).unwrap();
        let r = request(&u, "POST", "/", &[q.as_bytes()], T).unwrap();
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        r.text()
    }

    fn count(&self, table: &str) -> u64 {
        self.query(&format!("SELECT count() FROM {table}"))
            .parse()
            .unwrap()
    }
}

/// A Prometheus of the test's own, scraping `target` every second.
fn prometheus(dir: &Path, target: &str) -> (Guard, u16) {
    let port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: osprey\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (scripts/setup.sh installs it)");
    let g = Guard(child);
    let url = format!("http://127.0.0.1:{port}");
    wait_until(
        "Prometheus ready",
        || get(&url, "/-/ready").is_some_and(|(s, _)| s == 200),
        || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default(),
    );
    (g, port)
}

/// One number from Prometheus's query API (None: no result yet).
fn prom_value(port: u16, q: &str) -> Option<f64> {
    let (s, body) = get(
        &format!("http://127.0.0.1:{port}"),
        &format!("/api/v1/query?query={}", encode_query(q)),
    )?;
    if s != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn traffic(site: &Site, n: usize) {
    // keep-alive batches of requests: 200s, templated 404s
    for i in 0..n {
        curl(&[
            "--http1.1",
            "-s",
            "-o",
            "/dev/null",
            &site.url("/small.txt"),
            "--next",
            "-s",
            "-o",
            "/dev/null",
            &site.url(&format!("/items/{}", 1000 + i)),
        ]);
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn prometheus_scrapes_red_metrics_matching_the_records() {
    let site = Site::nginx("sinks-prom", &[("small.txt", &body(300))]);
    let mport = free_port();
    let maddr = format!("127.0.0.1:{mport}");
    let probe = site.probe(&[
        "--comm",
        "curl",
        "--comm",
        "nginx",
        "--metrics-addr",
        &maddr,
    ]);
    let (_prom, pport) = prometheus(&site.dir, &maddr);
    traffic(&site, 15);
    // every record written: 30 per side
    probe.wait_for_records("60 transactions", |r| {
        txns(r, "nginx").len() == 30 && txns(r, "curl").len() == 30
    });
    let recs = probe.records_so_far();
    // the exposition format is valid (promtool)
    let (s, text) = get(&format!("http://{maddr}"), "/metrics").unwrap();
    assert_eq!(s, 200);
    let f = site.dir.join("metrics.txt");
    std::fs::write(&f, format!("{text}\n")).unwrap();
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Prometheus scraped it: its numbers are the records'
    for comm in ["nginx", "curl"] {
        let t = txns(&recs, comm);
        let n = t.len() as f64;
        let n404 = t.iter().filter(|r| r["status"] == 404).count() as f64;
        let with_latency = t.iter().filter(|r| r["latency_ns"].is_u64()).count() as f64;
        let fast = t
            .iter()
            .filter(|r| r["latency_ns"].as_u64().is_some_and(|l| l <= 10_000_000))
            .count() as f64;
        for (q, want) in [
            (format!("sum(osprey_requests_total{{comm=\"{comm}\"}})"), n),
            (
                format!("sum(osprey_requests_total{{comm=\"{comm}\",status_class=\"4xx\",route=\"/items/{{num}}\",method=\"GET\"}})"),
                n404,
            ),
            (
                format!("sum(osprey_request_duration_seconds_count{{comm=\"{comm}\"}})"),
                with_latency,
            ),
            (
                format!("sum(osprey_request_duration_seconds_bucket{{comm=\"{comm}\",le=\"0.01\"}})"),
                fast,
            ),
        ] {
            wait_until(
                &format!("Prometheus: {q} = {want}"),
                || prom_value(pport, &q) == Some(want),
                || format!("now {:?}", prom_value(pport, &q)),
            );
        }
    }
    assert_eq!(prom_value(pport, "osprey_parser_panics_total"), Some(0.0));
    let cpu = prom_value(pport, "process_cpu_seconds_total").unwrap();
    assert!(cpu > 0.0);
    // the server side's peer is the client's address alone
    assert_eq!(
        prom_value(
            pport,
            "sum(osprey_requests_total{comm=\"nginx\",peer=\"127.0.0.1\",role=\"server\"})"
        ),
        Some(15.0 * 2.0)
    );
    let (recs, err) = probe.stop_ok();
    assert!(
        err.contains("sink metrics: ") && err.contains("sink_dropped 0 "),
        "{err}"
    );
    assert!(txns(&recs, "nginx").len() == 30);
}

/// The ClickHouse row of each record has the record's fields.
/// Osprey capturing curl and nginx of `site`, writing to ClickHouse at
/// `url` with `extra` flags after `--clickhouse URL`.
fn ch_probe(site: &Site, url: &str, extra: &[&str]) -> Osprey {
    let mut args = vec!["--comm", "curl", "--comm", "nginx", "--clickhouse", url];
    args.extend_from_slice(extra);
    site.probe(&args)
}

/// Wait until `table` holds `n` rows.
fn wait_rows(ch: &ClickHouse, probe: &Osprey, n: u64) {
    wait_until(
        &format!("{n} rows in ClickHouse"),
        || ch.count("osprey.transactions") == n,
        || {
            format!(
                "{} rows\n{}",
                ch.count("osprey.transactions"),
                probe.stderr()
            )
        },
    );
}

/// The ClickHouse sink's entry of the summary in `err`.
fn ch_sink(err: &str) -> Value {
    summary(err)["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "clickhouse")
        .unwrap()
        .clone()
}

fn same_fields(ch: &ClickHouse, recs: &[Value]) {
    let rows = ch.query(
        "SELECT * FROM osprey.transactions ORDER BY conn_id, ts_start_ns FORMAT JSONEachRow",
    );
    let rows: Vec<Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |v: &Value| {
        (
            v["conn_id"].as_str().unwrap().to_string(),
            // 18.16 writes 64-bit integers as strings in JSON
            v["ts_start_ns"].to_string().trim_matches('"').to_string(),
        )
    };
    let by_key: std::collections::HashMap<_, _> = rows.iter().map(|r| (key(r), r)).collect();
    assert_eq!(by_key.len(), rows.len(), "duplicate rows");
    for r in recs {
        let row = by_key
            .get(&key(r))
            .unwrap_or_else(|| panic!("no row for {r}"));
        for f in [
            "method",
            "target",
            "path",
            "status",
            "latency_ns",
            "ttfb_ns",
            "req_body_bytes",
            "resp_body_bytes",
            "resp_header_bytes",
            "pid",
            "comm",
            "role",
            "local_port",
            "remote_addr",
            "remote_port",
            "http_version",
            "protocol",
            "source",
            "ts_end_ns",
            "gap_cause",
        ] {
            let norm = |v: &Value| v.to_string().trim_matches('"').to_string();
            assert_eq!(norm(&row[f]), norm(&r[f]), "{f}: row {row}\nrecord {r}");
        }
        for f in ["gap", "truncated", "no_response", "upgraded", "tls"] {
            assert_eq!(row[f].as_u64() == Some(1), r[f] == true, "{f}: {row} / {r}");
        }
        // absent on plaintext records: null in the row
        assert_eq!(row["tls_library"], r["tls_library"], "{row} / {r}");
        assert_eq!(row["node"], "live-test");
    }
}

/// The SQL of docs/integrations.md (```sql blocks), run as written.
fn doc_queries() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/integrations.md"))
        .unwrap();
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    while let Some(i) = rest.find("```sql\n") {
        let b = &rest[i + 7..];
        let end = b.find("```").unwrap();
        out.extend(
            b[..end]
                .split(';')
                .map(str::trim)
                .filter(|q| !q.is_empty() && !q.lines().all(|l| l.trim_start().starts_with("--")))
                .map(str::to_string),
        );
        rest = &b[end..];
    }
    out
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn clickhouse_gets_every_transaction_with_the_same_fields() {
    let ch = ClickHouse::start("sinks-ch");
    let site = Site::nginx("sinks-ch-site", &[("small.txt", &body(300))]);
    let url = ch.url();
    let probe = ch_probe(
        &site,
        &url,
        &[
            "--clickhouse-create",
            "--clickhouse-batch-ms",
            "200",
            "--node-name",
            "live-test",
        ],
    );
    traffic(&site, 25);
    probe.wait_for_records("100 transactions", |r| {
        txns(r, "nginx").len() == 50 && txns(r, "curl").len() == 50
    });
    // rows arrive while the probe runs (batches by time)
    wait_rows(&ch, &probe, 100);
    let (recs, err) = probe.stop_ok();
    assert_eq!(recs.len(), 100, "{err}");
    assert_eq!(ch.count("osprey.transactions"), 100);
    same_fields(&ch, &recs);
    assert!(
        err.contains("sink clickhouse: 100 records queued, 100 written, sink_dropped 0"),
        "{err}"
    );
    // the recipes of docs/integrations.md run as written on these rows
    let qs = doc_queries();
    assert!(qs.len() >= 5, "{qs:?}");
    for q in qs {
        let out = ch.query(&q);
        assert!(!out.is_empty(), "{q}: no rows");
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn https_plaintext_lands_in_clickhouse_with_tls_and_the_library() {
    let ch = ClickHouse::start("sinks-ch-tls");
    let tls_port = free_port();
    let dir = tmpdir("sinks-ch-tls-certs");
    let (cert, key) = make_cert(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/small.txt"), body(200)).unwrap();
    let extra = format!(
        "server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {c}; ssl_certificate_key {k}; root {w}; }}",
        c = cert.display(),
        k = key.display(),
        w = dir.join("www").display(),
    );
    let site = Site::nginx_with("sinks-ch-tls-site", &[], &extra);
    wait_port(tls_port);
    let url = ch.url();
    let probe = ch_probe(
        &site,
        &url,
        &[
            "--clickhouse-create",
            "--clickhouse-batch-ms",
            "200",
            "--node-name",
            "live-test",
        ],
    );
    let https = |p: &str| format!("https://127.0.0.1:{tls_port}{p}");
    // keep-alive: two requests on one connection, then a 404
    curl_https(
        None,
        &[
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &https("/small.txt"),
            &https("/small.txt"),
        ],
    );
    curl_https(None, &["-o", "/dev/null", &https("/missing")]);
    probe.wait_for_records("3 HTTPS transactions at each end", |r| {
        txns(r, "nginx").len() == 3 && txns(r, "curl").len() == 3
    });
    wait_rows(&ch, &probe, 6);
    let (recs, err) = probe.stop_ok();
    assert_eq!(recs.len(), 6, "{err}");
    for r in &recs {
        assert_eq!(
            (&r["tls"], &r["tls_library"]),
            (&Value::Bool(true), &Value::from("openssl")),
            "{r}"
        );
    }
    same_fields(&ch, &recs);
    assert_eq!(
        ch.query(
            "SELECT count() FROM osprey.transactions WHERE tls = 1 AND tls_library = 'openssl'"
        ),
        "6"
    );
    assert_eq!(
        ch.query("SELECT status, count() FROM osprey.transactions GROUP BY status ORDER BY status FORMAT CSV"),
        "200,4\n404,2"
    );
    assert!(
        err.contains("sink clickhouse: 6 records queued, 6 written, sink_dropped 0"),
        "{err}"
    );
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn clickhouse_stopped_mid_run_the_spool_replays_and_the_count_matches() {
    let mut ch = ClickHouse::start("sinks-ch-outage");
    let site = Site::nginx("sinks-ch-outage-site", &[("small.txt", &body(300))]);
    let spool = site.dir.join("spool");
    let url = ch.url();
    let probe = ch_probe(
        &site,
        &url,
        &[
            "--clickhouse-create",
            "--clickhouse-batch-ms",
            "100",
            "--clickhouse-batch-rows",
            "8",
            "--clickhouse-queue",
            "8",
            "--clickhouse-spool",
            spool.to_str().unwrap(),
            "--node-name",
            "live-test",
        ],
    );
    traffic(&site, 10);
    wait_until(
        "40 rows",
        || ch.count("osprey.transactions") == 40,
        || probe.stderr(),
    );
    ch.stop();
    traffic(&site, 20);
    probe.wait_for_records("120 transactions", |r| r.len() == 120);
    // what ClickHouse could not take went to the spool
    wait_until(
        "batches in the spool",
        || std::fs::read_dir(&spool).map_or(0, |d| d.count()) > 0,
        || probe.stderr(),
    );
    ch.restart();
    wait_rows(&ch, &probe, 120);
    let (recs, err) = probe.stop_ok();
    assert_eq!(recs.len(), 120);
    assert_eq!(ch.count("osprey.transactions"), 120, "{err}");
    same_fields(&ch, &recs);
    let c = ch_sink(&err);
    assert_eq!(
        (
            c["written"].as_u64(),
            c["sink_dropped"].as_u64(),
            c["spooled"].as_u64()
        ),
        (Some(120), Some(0), Some(0)),
        "{c}"
    );
    assert!(
        c["errors"].as_u64().unwrap() > 0,
        "the outage was seen: {c}"
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "spool left");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn an_unreachable_clickhouse_and_a_full_spool_are_counted_and_the_capture_goes_on() {
    let site = Site::nginx("sinks-ch-down", &[("small.txt", &body(300))]);
    let spool = site.dir.join("spool");
    let url = format!("http://127.0.0.1:{}", free_port()); // nothing listens
    let probe = ch_probe(
        &site,
        &url,
        &[
            "--clickhouse-batch-rows",
            "4",
            "--clickhouse-queue",
            "4",
            "--clickhouse-spool",
            spool.to_str().unwrap(),
            "--clickhouse-spool-max",
            "8K",
        ],
    );
    assert!(
        probe.stderr().contains("does not answer"),
        "{}",
        probe.stderr()
    );
    traffic(&site, 20);
    probe.wait_for_records("80 transactions", |r| r.len() == 80);
    let (status, recs, err) = probe.stop();
    assert!(status.success(), "{err}");
    assert_eq!(recs.len(), 80, "the capture went on");
    let c = ch_sink(&err);
    let (dropped, spooled) = (
        c["sink_dropped"].as_u64().unwrap(),
        c["spooled"].as_u64().unwrap(),
    );
    assert!(dropped > 0 && spooled > 0, "{c}");
    assert_eq!(dropped + spooled, 80, "every row spooled or counted: {c}");
    assert_eq!(c["written"], 0);
    let spool_bytes: u64 = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(spool_bytes <= 8192, "{spool_bytes}");
    assert!(err.contains("sink_dropped"), "{err}");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn clickhouse_errors_at_start_and_while_running() {
    let ch = ClickHouse::start("sinks-ch-errors");
    let site = Site::nginx("sinks-ch-errors-site", &[("small.txt", &body(300))]);
    // a table that does not exist: a clear error at start
    let out = Command::new(BIN)
        .args([
            "--synthetic",
            "--clickhouse",
            &ch.url(),
            "--clickhouse-table",
            "nope",
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("table osprey.nope does not exist") && e.contains("--clickhouse-create"),
        "{e}"
    );
    // a server answering errors to everything
    let eport = free_port();
    let _bad = py_server(
        "import http.server,sys\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_POST(s):\n    s.send_response(500); s.end_headers(); s.wfile.write(b'Code: 999, boom')\n  do_GET=do_POST\nhttp.server.HTTPServer(('127.0.0.1',int(sys.argv[1])),H).serve_forever()\n",
        eport,
    );
    let out = Command::new(BIN)
        .args([
            "--synthetic",
            "--clickhouse",
            &format!("http://127.0.0.1:{eport}"),
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(e.contains("HTTP 500: Code: 999, boom"), "{e}");
    // https is refused with its reason
    let out = Command::new(BIN)
        .args(["--synthetic", "--clickhouse", "https://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("https is not supported"));
    // the table dropped while the probe runs: refusals counted, batches
    // dropped after retries (counted), the capture goes on
    let url = ch.url();
    let probe = ch_probe(
        &site,
        &url,
        &["--clickhouse-create", "--clickhouse-batch-ms", "50"],
    );
    traffic(&site, 2);
    wait_until(
        "8 rows",
        || ch.count("osprey.transactions") == 8,
        || probe.stderr(),
    );
    ch.query("DROP TABLE osprey.transactions");
    traffic(&site, 3);
    probe.wait_for_records("20 transactions", |r| r.len() == 20);
    wait_until(
        "the refused batches dropped",
        || probe.stderr().contains("dropped (counted)"),
        || probe.stderr(),
    );
    let (recs, err) = probe.stop_ok();
    assert_eq!(recs.len(), 20);
    let c = ch_sink(&err);
    assert_eq!(
        (c["written"].as_u64(), c["sink_dropped"].as_u64()),
        (Some(8), Some(12)),
        "{c}"
    );
    assert!(c["errors"].as_u64().unwrap() >= 5, "{c}");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn a_taken_metrics_port_is_an_error_at_start() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let before = osprey_bpf_baseline();
    let out = Command::new(BIN)
        .args(["--metrics-addr", &addr, "--duration", "5"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains(&format!("--metrics-addr {addr}")) && e.contains("the port is taken"),
        "{e}"
    );
    // refused before anything was loaded
    wait_unloaded(before, "after a refused start");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn rotation_under_real_traffic_keeps_whole_records_within_the_limits() {
    let site = Site::nginx("sinks-rotate", &[("small.txt", &body(300))]);
    let dir = site.dir.join("rot");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.jsonl");
    let probe = Osprey::start(
        &[
            "--comm",
            "nginx",
            "--rotate-size",
            "8K",
            "--rotate-keep",
            "3",
        ],
        out.clone(),
    );
    traffic(&site, 60);
    let files = || {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    wait_until(
        "three files",
        || files().len() == 3,
        || format!("{:?}", files()),
    );
    let (status, _, err) = probe.stop();
    assert!(status.success(), "{err}");
    let fs = files();
    assert_eq!(
        fs.iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        ["out.jsonl", "out.jsonl.1", "out.jsonl.2"]
    );
    let mut n = 0;
    for f in &fs {
        let b = std::fs::read(f).unwrap();
        assert!(b.len() <= 8192, "{f:?}: {} bytes", b.len());
        assert!(
            b.is_empty() || b.ends_with(b"\n"),
            "{f:?} ends inside a record"
        );
        for l in b.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let v: Value =
                serde_json::from_slice(l).unwrap_or_else(|e| panic!("{f:?}: cut record ({e})"));
            assert_eq!(v["type"], "http_transaction");
            n += 1;
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // 120 records of ~700 bytes do not fit in 3 x 8 KiB: the oldest went
    assert!(n > 0 && n < 120, "{n}");
}
