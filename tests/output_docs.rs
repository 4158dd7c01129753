// SPDX-License-Identifier: GPL-3.0-or-later
//! The documented output contract: real records (`--synthetic`, through the
//! whole pipeline) validate against docs/schema/http_transaction.schema.json,
//! and every `# recipe:` in docs/output.md gives the expected answer.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_osprey");

fn synthetic() -> String {
    let out = Command::new(BIN)
        .args([
            "--synthetic",
            "--synthetic-conns",
            "5",
            "--synthetic-txns",
            "4",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn type_ok(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => panic!("schema type {t} not handled"),
    }
}

/// The subset of JSON Schema the file uses: type, const, enum, required,
/// properties, additionalProperties: false, items, minItems, maxItems.
fn validate(v: &Value, s: &Value, path: &str) -> Result<(), String> {
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(v, t),
            Value::Array(ts) => ts.iter().any(|t| type_ok(v, t.as_str().unwrap())),
            _ => false,
        };
        if !ok {
            return Err(format!("{path}: {v} is not {t}"));
        }
    }
    if let Some(c) = s.get("const") {
        if v != c {
            return Err(format!("{path}: {v} != {c}"));
        }
    }
    if let Some(e) = s.get("enum") {
        if !e.as_array().unwrap().contains(v) {
            return Err(format!("{path}: {v} not in {e}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(r.as_str().unwrap()) {
                return Err(format!("{path}: missing {r}"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(val, ps, &format!("{path}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{path}: undocumented field {k}"))
                }
                None => {}
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < n {
                return Err(format!("{path}: fewer than {n} items"));
            }
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
            if (a.len() as u64) > n {
                return Err(format!("{path}: more than {n} items"));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, x) in a.iter().enumerate() {
                validate(x, items, &format!("{path}[{i}]"))?;
            }
        }
    }
    Ok(())
}

fn schema() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/schema/http_transaction.schema.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn records_match_the_schema() {
    let s = schema();
    let out = synthetic();
    let mut n = 0;
    let mut seen = BTreeSet::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        validate(&v, &s, "$").unwrap_or_else(|e| panic!("{e}\n{line}"));
        seen.extend(v.as_object().unwrap().keys().cloned());
        n += 1;
    }
    assert_eq!(n, 40);
    // HTTP/2's fields: from `osprey wire` on a real h2c capture
    for line in wire_h2c().lines().chain(wire("lo_grpc.pcap").lines()) {
        let v: Value = serde_json::from_str(line).unwrap();
        seen.extend(v.as_object().unwrap().keys().cloned());
    }
    // every documented field appears in real output (headers: --headers)
    let documented: BTreeSet<String> = s["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // `incomplete` is written only when true (an aborted request), which
    // the synthetic run has none of: the tracker's unit tests
    // (a_head_cut_short_by_close_gives_an_incomplete_record) emit it, and
    // a record carrying it must still match the schema
    let mut aborted: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    aborted["incomplete"] = Value::Bool(true);
    validate(&aborted, &s, "$").unwrap_or_else(|e| panic!("{e}\n{aborted}"));
    aborted["incomplete"] = Value::from(1);
    assert!(
        validate(&aborted, &s, "$").is_err(),
        "incomplete: 1 accepted"
    );
    // `tls`/`tls_library` are written only on records made from TLS
    // plaintext (uprobes), which the synthetic run has none of:
    // tests/live_tls.rs checks them on real HTTPS; such a record must still
    // match the schema
    let mut tls: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    tls["tls"] = Value::Bool(true);
    for lib in ["openssl", "boringssl", "go"] {
        tls["tls_library"] = Value::from(lib);
        validate(&tls, &s, "$").unwrap_or_else(|e| panic!("{e}\n{tls}"));
    }
    tls["tls_library"] = Value::from("gnutls");
    assert!(
        validate(&tls, &s, "$").is_err(),
        "tls_library gnutls accepted"
    );
    tls["tls_library"] = Value::from("openssl");
    tls["tls"] = Value::Bool(false);
    assert!(validate(&tls, &s, "$").is_err(), "tls: false accepted");
    let missing: Vec<_> = documented
        .difference(&seen)
        .filter(|k| {
            !k.ends_with("_headers") && !["incomplete", "tls", "tls_library"].contains(&k.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "documented but never emitted: {missing:?}"
    );
}

#[test]
fn schema_check_can_fail() {
    let s = schema();
    let line = synthetic().lines().next().unwrap().to_string();
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v["status"] = Value::String("200".into());
    assert!(validate(&v, &s, "$").is_err());
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v.as_object_mut()
        .unwrap()
        .insert("surprise".into(), Value::Bool(true));
    assert!(validate(&v, &s, "$")
        .unwrap_err()
        .contains("undocumented field surprise"));
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v.as_object_mut().unwrap().remove("conn_id");
    assert!(validate(&v, &s, "$").is_err());
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v.as_object_mut().unwrap().remove("source");
    assert!(validate(&v, &s, "$").unwrap_err().contains("missing"));
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v["source"] = Value::String("pcap".into());
    assert!(validate(&v, &s, "$").is_err());
    // wire records: no process, so pid/tid/comm are null
    let mut v: Value = serde_json::from_str(&line).unwrap();
    v["source"] = Value::String("wire".into());
    for k in ["pid", "tid", "comm"] {
        v[k] = Value::Null;
    }
    validate(&v, &s, "$").unwrap();
}

#[test]
fn probe_records_say_source_ebpf() {
    for line in synthetic().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["source"], "ebpf", "{line}");
        assert!(v["pid"].is_u64() && v["comm"].is_string(), "{line}");
    }
}

/// `osprey wire` on a real loopback capture: every record validates, says
/// source "wire" and has null pid/tid/comm.
#[test]
fn wire_records_match_the_schema() {
    let s = schema();
    let pcap = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/recon/lo_python.pcap");
    let out = Command::new(BIN).args(["wire", pcap]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        validate(&v, &s, "$").unwrap_or_else(|e| panic!("{e}\n{line}"));
        assert_eq!(v["source"], "wire");
        assert!(v["pid"].is_null() && v["tid"].is_null() && v["comm"].is_null());
        n += 1;
    }
    assert_eq!(n, 6);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("6 transactions"), "{err}");
}

/// `osprey wire` on a loopback capture of curl and nghttp against nginx
/// speaking h2c (GET 200, GET 404, a POST with a 300-byte body).
fn wire_h2c() -> String {
    wire("lo_h2c.pcap")
}

/// `osprey wire` on a committed capture in tests/recon/.
fn wire(pcap: &str) -> String {
    let pcap = format!("{}/tests/recon/{pcap}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(BIN).args(["wire", &pcap]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// gRPC records (Python grpcio client and server on loopback, the calls
/// of tests/grpc/peer.py) validate, with their own fields.
#[test]
fn grpc_records_match_the_schema() {
    let s = schema();
    let text = wire("lo_grpc.pcap");
    let mut got = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        validate(&v, &s, "$").unwrap_or_else(|e| panic!("{e}\n{line}"));
        assert_eq!(v["protocol"], "grpc", "{line}");
        assert_eq!(v["grpc_service"], "osprey.test.Echo", "{line}");
        assert_eq!(v["gap"], false, "{line}");
        got.push((
            v["stream_id"].as_u64().unwrap(),
            v["grpc_method"].as_str().unwrap().to_string(),
            v["grpc_status"].as_u64(),
            v["grpc_req_messages"].as_u64().unwrap(),
            v["grpc_resp_messages"].as_u64().unwrap(),
            v["grpc_compressed"].as_bool().unwrap(),
        ));
        if v["grpc_method"] == "Fail" {
            assert_eq!(v["grpc_message"], "no such user: café");
        }
    }
    let want = [
        (1, "Unary", Some(0), 1, 1, false),
        (3, "Fail", Some(5), 1, 0, false),
        (5, "ServerStream", Some(0), 1, 5, false),
        (7, "ClientStream", Some(0), 3, 1, false),
        (9, "Bidi", Some(0), 4, 4, false),
        (11, "Slow", Some(4), 1, 0, false),
        (13, "Unary", Some(0), 1, 1, true),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|&(id, m, st, q, r, c)| (id, m.to_string(), st, q, r, c))
        .collect();
    assert_eq!(got, want);
}

/// HTTP/2 records validate too, with their own fields.
#[test]
fn http2_records_match_the_schema() {
    let s = schema();
    let text = wire_h2c();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (line, v) in text.lines().zip(&recs) {
        validate(v, &s, "$").unwrap_or_else(|e| panic!("{e}\n{line}"));
        assert_eq!(v["protocol"], "http2");
        assert_eq!(v["http_version"], "2");
    }
    let got: Vec<(u64, &str, u64, u64, u64)> = recs
        .iter()
        .map(|v| {
            (
                v["stream_id"].as_u64().unwrap(),
                v["target"].as_str().unwrap(),
                v["status"].as_u64().unwrap(),
                v["req_body_bytes"].as_u64().unwrap(),
                v["resp_body_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "/small.txt", 200, 0, 123),
            (1, "/missing", 404, 0, 153),
            (13, "/post", 201, 300, 0)
        ]
    );
    // http1 records do not carry them
    let line = synthetic().lines().next().unwrap().to_string();
    assert!(!line.contains("stream_id"));
}

fn recipes() -> Vec<(String, String)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/output.md")).unwrap();
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        if let Some(name) = l.strip_prefix("# recipe: ") {
            let cmd = lines.next().unwrap();
            let jq = cmd.split_once("| ").expect("recipe pipes osprey into jq").1;
            out.push((name.trim().to_string(), jq.to_string()));
        }
    }
    out
}

fn run_recipe(jq: &str, input: &str) -> Vec<Value> {
    use std::io::Write;
    let mut child = Command::new("sh")
        .args(["-c", jq])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sh/jq (scripts/setup.sh installs jq)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{jq} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn documented_jq_recipes_work() {
    let input = synthetic();
    let r = recipes();
    let names: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "status-histogram",
            "slowest",
            "per-process",
            "errors",
            "incomplete",
            "per-pod-errors",
            "slowest-per-container"
        ]
    );
    for (name, jq) in &r {
        let got = run_recipe(jq, &input);
        match name.as_str() {
            "status-histogram" => assert_eq!(
                got,
                vec![
                    serde_json::json!([{"status": 200, "count": 28}, {"status": 404, "count": 12}])
                ]
            ),
            "slowest" => {
                assert_eq!(got.len(), 5);
                let ms: Vec<f64> = got
                    .iter()
                    .map(|v| v["latency_ms"].as_f64().unwrap())
                    .collect();
                assert!(ms.windows(2).all(|w| w[0] >= w[1]), "{ms:?}");
                assert!(got.iter().all(|v| v["method"] == "GET"));
            }
            "per-process" => assert_eq!(
                got,
                vec![serde_json::json!([
                    {"comm": "curl", "role": "client", "count": 20},
                    {"comm": "nginx", "role": "server", "count": 20}
                ])]
            ),
            "errors" => {
                assert_eq!(got.len(), 12);
                assert!(got
                    .iter()
                    .all(|v| v["status"] == 404 && v["target"] == "/missing"));
            }
            "incomplete" => {
                // the synthetic run has no incomplete exchange: nothing
                assert!(got.is_empty(), "{got:?}");
                // records with no response, a gap, or both must come out,
                // projected, in input order; the complete ones must not
                let mut lines: Vec<Value> = input
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                for (i, (no_response, gap)) in
                    [(3, (true, false)), (17, (false, true)), (30, (true, true))]
                {
                    lines[i]["no_response"] = Value::Bool(no_response);
                    lines[i]["gap"] = Value::Bool(gap);
                }
                // an aborted request: written only when true
                lines[30]["incomplete"] = Value::Bool(true);
                let fed: String = lines.iter().map(|v| format!("{v}\n")).collect();
                let got = run_recipe(jq, &fed);
                let want: Vec<Value> = [3, 17, 30]
                    .iter()
                    .map(|&i| {
                        let r = &lines[i];
                        serde_json::json!({"ts_start": r["ts_start"], "comm": r["comm"], "method": r["method"],
                            "target": r["target"], "no_response": r["no_response"], "gap": r["gap"],
                            "incomplete": i == 30})
                    })
                    .collect();
                assert_eq!(got, want);
            }
            "per-pod-errors" | "slowest-per-container" => {
                // synthetic records have no Pods: nothing
                assert_eq!(got, vec![serde_json::json!([])], "{name}");
                // two Pods, one container each, and records of no Pod
                let mut lines: Vec<Value> = input
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                let ids = ["a".repeat(64), "b".repeat(64)];
                for (i, l) in lines.iter_mut().enumerate() {
                    if i % 3 == 2 {
                        continue;
                    }
                    let k = i % 3;
                    l["pod_namespace"] = Value::from("shop");
                    l["pod_name"] = Value::from(["cart-0", "web-1"][k]);
                    l["container_id"] = Value::from(ids[k].clone());
                    l["container_name"] = Value::from(["app", "nginx"][k]);
                }
                lines[0]["status"] = Value::from(503);
                lines[1]["no_response"] = Value::Bool(true);
                let fed: String = lines.iter().map(|v| format!("{v}\n")).collect();
                let got = run_recipe(jq, &fed);
                let of = |k: usize| -> Vec<&Value> {
                    lines
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 3 == k)
                        .map(|(_, l)| l)
                        .collect()
                };
                if name == "per-pod-errors" {
                    let want: Vec<Value> = (0..2)
                        .map(|k| {
                            let rs = of(k);
                            let errors = rs
                                .iter()
                                .filter(|r| r["no_response"] == true || r["status"].as_u64().is_some_and(|s| s >= 500))
                                .count();
                            assert_eq!(errors, 1);
                            serde_json::json!({"pod": format!("shop/{}", ["cart-0", "web-1"][k]), "requests": rs.len(),
                                "errors": errors, "error_rate": errors as f64 / rs.len() as f64})
                        })
                        .collect();
                    assert_eq!(got, vec![Value::Array(want)]);
                } else {
                    let got = got[0].as_array().unwrap();
                    assert_eq!(got.len(), 2, "{got:?}");
                    for (k, g) in got.iter().enumerate() {
                        let max = of(k)
                            .iter()
                            .filter_map(|r| r["latency_ns"].as_u64())
                            .max()
                            .unwrap();
                        assert_eq!(g["container"], ids[k][..12]);
                        assert_eq!(g["container_name"], ["app", "nginx"][k]);
                        assert_eq!(g["latency_ms"].as_f64().unwrap(), max as f64 / 1e6);
                    }
                }
            }
            other => panic!("recipe {other} has no expectation"),
        }
    }
}

/// The recipes on `--record-format compact` lines (the same records less
/// their nulls and ISO times, docs/output.md) give the same answers, but
/// `null` for the `ts_start` two of them print (the doc says so).
#[test]
fn jq_recipes_on_compact_lines_differ_only_in_ts_start() {
    let full = synthetic();
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/output.md")).unwrap();
    assert!(doc.contains("### `--record-format compact`"));
    let mut compact = String::new();
    for l in full.lines() {
        let Value::Object(mut m) = serde_json::from_str(l).unwrap() else {
            panic!("{l}")
        };
        m.retain(|k, v| !v.is_null() && k != "ts_start" && k != "ts_end");
        compact += &serde_json::to_string(&m).unwrap();
        compact.push('\n');
    }
    assert!(
        compact.len() < full.len() * 3 / 4,
        "{} of {}",
        compact.len(),
        full.len()
    );
    let mut with_ts = 0;
    for (name, jq) in recipes() {
        let mut want = run_recipe(&jq, &full);
        for v in &mut want {
            if let Some(t) = v.get_mut("ts_start") {
                *t = Value::Null;
                with_ts += 1;
            }
        }
        assert_eq!(run_recipe(&jq, &compact), want, "{name}");
    }
    assert!(with_ts > 0, "no recipe printed ts_start");
}

/// Every gap cause the code names is documented: in the schema's enum and
/// in docs/output.md's `gap_cause` row; and nothing more.
#[test]
fn every_gap_cause_is_documented() {
    let names: BTreeSet<String> = osprey::record::GapCauses::NAMES
        .iter()
        .map(|(_, n)| n.to_string())
        .collect();
    let s = schema();
    let gc = &s["properties"]["gap_cause"];
    let schema_enum: BTreeSet<String> = gc["items"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(schema_enum, names, "schema gap_cause enum");
    let desc = gc["description"].as_str().unwrap();
    let md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/output.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| `gap_cause` |"))
        .expect("the gap_cause row of docs/output.md");
    for n in &names {
        assert!(
            desc.contains(n.as_str()),
            "{n} not in the schema's description"
        );
        assert!(
            row.contains(&format!("`{n}`")),
            "{n} not in docs/output.md's gap_cause row"
        );
    }
}
