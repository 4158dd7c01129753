// SPDX-License-Identifier: GPL-3.0-or-later
//! Unit tests of the ClickHouse sink, against a fake ClickHouse HTTP
//! interface on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

/// A fake ClickHouse: counts rows of inserts; answers 200, or `fail`
/// (a status) while `fail` is not 0; `EXISTS` answers "1".
struct Fake {
    port: u16,
    rows: Arc<AtomicU64>,
    inserts: Arc<AtomicU64>,
    fail: Arc<AtomicU32>,
    /// Held by a test: inserts wait for it.
    gate: Arc<std::sync::Mutex<()>>,
}

fn fake() -> Fake {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (rows, inserts, fail) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU32::new(0)),
    );
    let gate = Arc::new(std::sync::Mutex::new(()));
    let (r, i, f, g) = (rows.clone(), inserts.clone(), fail.clone(), gate.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let mut buf = Vec::new();
            let mut tmp = [0u8; 65536];
            // head, then Content-Length bytes
            let (head_end, clen) = loop {
                let n = s.read(&mut tmp).unwrap();
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&tmp[..n]);
                if let Some(e) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..e]).to_lowercase();
                    let cl = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length: ")?
                                .trim()
                                .parse::<usize>()
                                .ok()
                        })
                        .unwrap_or(0);
                    break (e + 4, cl);
                }
            };
            while buf.len() < head_end + clen {
                let n = s.read(&mut tmp).unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let body = &buf[head_end..];
            let code = f.load(Ordering::SeqCst);
            let (status, text) = if code != 0 {
                (
                    code,
                    "Code: 1000, e.displayText() = DB::Exception: fake".to_string(),
                )
            } else if head.contains("INSERT") {
                let _g = g.lock().unwrap();
                r.fetch_add(
                    memchr::memchr_iter(b'\n', body).count() as u64,
                    Ordering::SeqCst,
                );
                i.fetch_add(1, Ordering::SeqCst);
                (200, String::new())
            } else {
                (200, "1\n".to_string())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    Fake {
        port,
        rows,
        inserts,
        fail,
        gate,
    }
}

fn txn() -> Output {
    Output::Record(Record::Transaction(
        Box::new(crate::jsonline::tests::base()),
    ))
}

/// `n` lines as the fanout makes them; `node_null`: with a null node.
fn lines(n: usize, node_null: bool) -> LineBatch {
    let mut b = LineBatch::default();
    for _ in 0..n {
        let mut l = Vec::new();
        let at = crate::jsonline::write_transaction_node(&crate::jsonline::tests::base(), &mut l);
        if node_null {
            l = String::from_utf8(l)
                .unwrap()
                .replace("\"node\":\"node-1\"", "\"node\":null")
                .into_bytes();
        }
        b.bytes.extend_from_slice(&l);
        b.bytes.push(b'\n');
        b.rows.push(crate::sink::LineRow {
            end: b.bytes.len() as u32,
            node_null,
            node_at: at as u32,
        });
    }
    b
}

/// Wait (at most 10 s) for `cond`.
fn wait(what: &str, cond: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(10), "waited for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn cfg(port: u16) -> ChConfig {
    let mut c = ChConfig::new(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
    c.batch_rows = 100;
    c.node = "n1".into();
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("osprey-ch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn spooled(s: &ClickHouseSink) -> u64 {
    s.counts().unwrap().spooled
}

#[test]
fn batches_by_size_and_time_and_rows_carry_the_node() {
    let f = fake();
    let mut c = cfg(f.port);
    c.interval = Duration::from_millis(50);
    let mut s = ClickHouseSink::connect(c).unwrap();
    s.emit_lines(&lines(250, true)).unwrap();
    wait("two full batches of 100", || {
        f.inserts.load(Ordering::SeqCst) == 2
    });
    assert_eq!(f.rows.load(Ordering::SeqCst), 200);
    assert_eq!(s.cur.rows, 50);
    assert!(String::from_utf8_lossy(&s.cur.body).lines().all(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["node"] == "n1" && v["type"] == "http_transaction"
    }));
    // the batch's age is the condition here
    std::thread::sleep(Duration::from_millis(60));
    s.tick().unwrap();
    wait("the last batch, by time", || {
        f.rows.load(Ordering::SeqCst) == 250
    });
    // records (not lines) make the same rows
    for _ in 0..10 {
        s.emit(&txn()).unwrap();
    }
    s.flush().unwrap();
    assert_eq!(f.rows.load(Ordering::SeqCst), 260);
    assert_eq!(s.counts().unwrap().written, 260);
}

#[test]
fn the_sender_waits_for_clickhouse_not_the_batches() {
    // a server that takes its time: batches go on being built and
    // sealed while an insert waits
    let f = fake();
    let port = f.port;
    let mut c = cfg(port);
    c.queue_rows = 10_000;
    let mut s = ClickHouseSink::connect(c).unwrap();
    let hold = f.gate.lock().unwrap();
    let t0 = Instant::now();
    for _ in 0..20 {
        s.emit_lines(&lines(100, false)).unwrap();
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    // the first batch is in flight; the other 19 wait in memory
    wait("19 batches waiting", || s.shared.lock().ready_rows == 1900);
    drop(hold);
    s.flush().unwrap();
    assert_eq!(s.counts().unwrap().written, 2000);
}

#[test]
fn memory_is_bounded_in_bytes() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = cfg(port);
    let b = lines(100, false);
    c.queue_bytes = 3 * b.bytes.len() as u64; // three batches
    let mut s = ClickHouseSink::connect(c).unwrap();
    for _ in 0..10 {
        s.emit_lines(&b).unwrap();
        let st = s.shared.lock();
        assert!(st.ready_bytes <= 3 * b.bytes.len() as u64);
    }
    assert!(s.flush().is_err());
    let k = s.counts().unwrap();
    assert_eq!((k.written, k.dropped), (0, 1000));
}

#[test]
fn an_outage_spools_and_replays_and_a_full_spool_is_counted() {
    let f = fake();
    let mut c = cfg(f.port);
    c.queue_rows = 100;
    let dir = tmp("spool");
    c.spool = Some(dir.clone());
    let mut s = ClickHouseSink::connect(c.clone()).unwrap();
    f.fail.store(503, Ordering::SeqCst);
    for _ in 0..5 {
        s.emit_lines(&lines(100, false)).unwrap();
    }
    // at most one batch in memory and one in flight
    wait("300 rows spooled", || spooled(&s) >= 300);
    wait("a failed attempt", || s.counts().unwrap().errors > 0);
    f.fail.store(0, Ordering::SeqCst);
    // the end's last attempt delivers everything
    s.flush().unwrap();
    assert_eq!(f.rows.load(Ordering::SeqCst), 500);
    let k = s.counts().unwrap();
    assert_eq!((k.written, k.dropped, k.spooled), (500, 0, 0));
    // a spool too small: what does not fit is counted, the rest kept
    // for the next run when the server never comes back
    let mut c2 = c.clone();
    c2.spool_max = 150 * (lines(1, false).bytes.len() as u64);
    let _ = std::fs::remove_dir_all(&dir);
    let mut s = ClickHouseSink::connect(c2.clone()).unwrap();
    f.fail.store(503, Ordering::SeqCst);
    for _ in 0..5 {
        s.emit_lines(&lines(100, false)).unwrap();
    }
    assert!(
        s.flush().is_err(),
        "undelivered rows are an error at the end"
    );
    let k = s.counts().unwrap();
    assert_eq!((k.written, k.spooled, k.dropped), (0, 100, 400));
    // the next run replays the spool
    f.fail.store(0, Ordering::SeqCst);
    let before = f.rows.load(Ordering::SeqCst);
    let mut s = ClickHouseSink::connect(c2).unwrap();
    wait("the spool replayed", || spooled(&s) == 0);
    s.flush().unwrap();
    assert_eq!(f.rows.load(Ordering::SeqCst) - before, 100);
    assert_eq!(s.counts().unwrap().written, 100);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_refused_batch_is_dropped_after_retries_and_counted() {
    let f = fake();
    let mut c = cfg(f.port);
    c.max_refusals = 3;
    let mut s = ClickHouseSink::connect(c).unwrap();
    f.fail.store(500, Ordering::SeqCst);
    s.emit_lines(&lines(100, false)).unwrap();
    wait("the batch dropped", || s.counts().unwrap().dropped == 100);
    assert_eq!(s.counts().unwrap().errors, 3);
    s.flush().unwrap();
}

#[test]
fn a_records_own_node_is_kept_a_null_one_replaced() {
    let nv = b"\"n1\"";
    let mut t = crate::jsonline::tests::base();
    t.path = Some(",\"node\":null".into()); // inside a string: escaped
    let mut l = Vec::new();
    let at = crate::jsonline::write_transaction_node(&t, &mut l);
    let l = String::from_utf8(l)
        .unwrap()
        .replace("\"node\":\"node-1\"", "\"node\":null");
    let mut b = Vec::new();
    append_row(&mut b, l.as_bytes(), Some(at), nv);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (v["node"].as_str(), v["path"].as_str()),
        (Some("n1"), Some(",\"node\":null"))
    );
    // a record with a node of its own (the identity fields) is kept
    let own = l.replace("\"node\":null", "\"node\":\"k8s-node-3\"");
    let mut b = Vec::new();
    append_row(&mut b, own.as_bytes(), None, nv);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["node"].as_str(), Some("k8s-node-3"));
    // the records' own line writer says where the node goes
    let mut ch = ClickHouseSink::connect(cfg(fake().port)).unwrap();
    let mut t = crate::jsonline::tests::base();
    t.conn_mut().ident = std::sync::Arc::new(crate::identity::Identity::default());
    ch.emit(&Output::Record(Record::Transaction(Box::new(t))))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&ch.cur.body).unwrap();
    assert_eq!(v["node"].as_str(), Some("n1"));
}

#[test]
fn bad_configuration_is_an_error_at_start() {
    // nothing listens: only a warning, the sink runs
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(ClickHouseSink::connect(cfg(port)).is_ok());
    let mut c = cfg(port);
    c.create = true;
    assert!(ClickHouseSink::connect(c)
        .err()
        .unwrap()
        .contains("does not answer"));
    let mut c = cfg(port);
    c.table = "x; DROP TABLE y".into();
    assert!(ClickHouseSink::connect(c)
        .err()
        .unwrap()
        .contains("--clickhouse-table"));
    let f = fake();
    f.fail.store(404, Ordering::SeqCst);
    let e = ClickHouseSink::connect(cfg(f.port)).err().unwrap();
    assert!(e.contains("HTTP 404"), "{e}");
}

/// `--record-format compact`: rows are the compact lines, the null `node`
/// (left out of the line) put in as `--node-name`'s, a record's own node
/// kept; every other column as in the full line less its nulls (a missing
/// Nullable column is NULL in JSONEachRow, as a null one is), and no
/// column of the table is one of the ISO times left out.
#[test]
fn compact_rows_get_the_node_put_in_and_lose_only_nulls() {
    use crate::jsonline::{write_transaction_node_as, RecordFormat};
    let nv = b"\"n1\"";
    let mut ch = ClickHouseSink::connect(cfg(fake().port)).unwrap();
    let mut own = crate::jsonline::tests::base();
    own.conn_mut().ident = std::sync::Arc::new(crate::identity::Identity {
        node: Some("k8s-node-3".into()),
        ..Default::default()
    });
    let mut nulls = crate::jsonline::tests::base();
    nulls.conn_mut().exe = None; // `node` is then followed by `gap`
    nulls.path = Some(",\"node\":null".into());
    let mut exe = crate::jsonline::tests::base();
    exe.conn_mut().exe = Some("/usr/sbin/nginx".into());
    let mut b = LineBatch::default();
    let mut want = Vec::new();
    for t in [&nulls, &own, &exe] {
        let mut l = Vec::new();
        let at = write_transaction_node_as(t, RecordFormat::Compact, &mut l);
        b.bytes.extend_from_slice(&l);
        b.bytes.push(b'\n');
        b.rows.push(crate::sink::LineRow {
            end: b.bytes.len() as u32,
            node_null: t.conn.ident.node.is_none(),
            node_at: at as u32,
        });
        let mut full = Vec::new();
        crate::jsonline::write_transaction(t, &mut full);
        let mut m = crate::jsonline::tests::compacted(std::str::from_utf8(&full).unwrap());
        let node = t.conn.ident.node.as_deref().unwrap_or("n1");
        m.insert("node".into(), node.into());
        want.push(serde_json::Value::Object(m));
    }
    ch.emit_lines(&b).unwrap();
    let rows: Vec<serde_json::Value> = std::str::from_utf8(&ch.cur.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows, want);
    // append_row alone, at the offset the writer gives
    let mut l = Vec::new();
    let at = write_transaction_node_as(&nulls, RecordFormat::Compact, &mut l);
    let mut body = Vec::new();
    append_row(&mut body, &l, Some(at), nv);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["node"].as_str(), v["path"].as_str()),
        (Some("n1"), Some(",\"node\":null"))
    );
    // the table has no ISO-time column: ts_start/ts_end were never inserted
    let schema = include_str!("../../../docs/clickhouse/schema-18.16.sql");
    for col in ["ts_start ", "ts_end "] {
        assert!(!schema.contains(&format!("\n    {col}")), "{col}");
    }
    for col in ["ts_start_ns Int64", "ts_end_ns Int64"] {
        assert!(schema.contains(col), "{col}");
    }
}
