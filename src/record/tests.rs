// SPDX-License-Identifier: GPL-3.0-or-later
//! Tests of [`crate::record`] (a file of their own: `record.rs` keeps the code).

use super::*;

use crate::jsonline::tests::base;

fn msg() -> MsgRecord {
    let t = base();
    MsgRecord {
        kind: MSG_TYPE,
        protocol: HTTP1,
        message: MsgKind::Response,
        direction: Direction::Egress,
        span: t.span,
        method: None,
        target: None,
        path: None,
        host: None,
        http_version: "1.0",
        status: Some(204),
        reason: Some("No Content".into()),
        header_count: 2,
        header_bytes: 50,
        body_bytes: 0,
        content_type: None,
        conn: t.conn,
        gap: false,
        gap_cause: GapCauses::NONE,
        truncated: false,
        interim: false,
        upgraded: true,
        incomplete: false,
        headers: Some(vec![("Server".into(), "x".into())]),
    }
}

/// The field names of a JSON object line, in the order written.
fn keys(line: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Keys, A::Error> {
                    let mut k = Vec::new();
                    while let Some((name, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                        k.push(name);
                    }
                    Ok(Keys(k))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Keys>(line).unwrap().0
}

#[test]
fn field_order_protocol_and_connection_block() {
    const CONN: [&str; 22] = [
        "pid",
        "tid",
        "comm",
        "conn_id",
        "role",
        "local_addr",
        "local_port",
        "remote_addr",
        "remote_port",
        "source",
        "cgroup_id",
        "cgroup",
        "container_id",
        "container_runtime",
        "pod_uid",
        "pod_qos",
        "pod_namespace",
        "pod_name",
        "container_name",
        "workload",
        "node",
        "exe",
    ];
    let t = Record::Transaction(Box::new(base())).to_json_line();
    let m = Record::Message(Box::new(msg())).to_json_line();
    for (line, before, after) in [
        (&t, "resp_content_type", "gap"),
        (&m, "content_type", "gap"),
    ] {
        let k = keys(line);
        assert_eq!(k[..2], ["type", "protocol"], "{line}");
        let at = k.iter().position(|n| n == "pid").unwrap();
        assert_eq!(k[at - 1], before);
        assert_eq!(k[at..at + CONN.len()], CONN);
        assert_eq!(k[at + CONN.len()], after);
        let ts = k.iter().position(|n| n == "ts_start").unwrap();
        assert_eq!(
            k[ts..ts + 4],
            ["ts_start", "ts_start_ns", "ts_end", "ts_end_ns"]
        );
    }
    assert!(
        t.starts_with(r#"{"type":"http_transaction","protocol":"http1","ts_start":"2026-"#),
        "{t}"
    );
    assert!(m.starts_with(r#"{"type":"http_message","protocol":"http1","message":"response","direction":"egress","ts_start":"#));
}

#[test]
fn transaction_fields_are_the_schemas_in_its_order() {
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../docs/schema/http_transaction.schema.json"
    ))
    .unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut t = base();
    t.req_headers = None;
    t.resp_headers = None;
    assert_eq!(
        keys(&Record::Transaction(Box::new(t)).to_json_line()),
        required
    );
}

#[test]
fn records_read_back_as_written() {
    let mut t = base();
    for r in [
        Record::Transaction(Box::new(t.clone())),
        Record::Message(Box::new(msg())),
    ] {
        match read_json_line(r.to_json_line().as_bytes()).unwrap() {
            ReadLine::Record(back) => assert_eq!(back, r),
            other => panic!("{other:?}"),
        }
    }
    t.http_version = None;
    t.conn_mut().source = Source::Wire;
    t.conn_mut().role = Role::Unknown;
    t.req_headers = Some(vec![]);
    let r = Record::Transaction(Box::new(t));
    let ReadLine::Record(back) = read_json_line(r.to_json_line().as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(back, r);
}

#[test]
fn older_records_without_protocol_or_source_are_http1_ebpf() {
    let line = Record::Transaction(Box::new(base())).to_json_line();
    let old = line
        .replace(r#""protocol":"http1","#, "")
        .replace(r#","source":"ebpf""#, "");
    assert!(!old.contains("protocol") && !old.contains("source"));
    let ReadLine::Record(Record::Transaction(t)) = read_json_line(old.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!((t.protocol, t.conn.source), (HTTP1, Source::Ebpf));
    assert_eq!(*t, base());
}

#[test]
fn other_lines_are_told_apart() {
    let r = |s: &str| read_json_line(s.as_bytes());
    assert!(r("not json").is_err());
    assert!(r("{\"type\":").is_err());
    assert!(matches!(r("5"), Ok(ReadLine::OtherType)));
    assert!(matches!(r("[]"), Ok(ReadLine::OtherType)));
    assert!(matches!(r("{}"), Ok(ReadLine::OtherType)));
    assert!(matches!(r(r#"{"type":7}"#), Ok(ReadLine::OtherType)));
    assert!(matches!(
        r(r#"{"type":"event","kind":"data"}"#),
        Ok(ReadLine::OtherType)
    ));
    assert!(
        matches!(r(r#"{"type":"http_transaction","protocol":"http3"}"#),
        Ok(ReadLine::OtherProtocol(p)) if p == "http3")
    );
    assert!(matches!(r(r#"{"type":"http_message","protocol":"http2"}"#),
        Ok(ReadLine::OtherProtocol(p)) if p == "http2"));
    assert!(matches!(
        r(r#"{"type":"http_transaction","ts_start_ns":1}"#),
        Ok(ReadLine::Unfit { kind: TXN_TYPE, .. })
    ));
    let line = Record::Transaction(Box::new(base())).to_json_line();
    for (from, to) in [
        (r#""http_version":"1.1""#, r#""http_version":"3""#),
        (r#""status":200"#, r#""status":"200""#),
    ] {
        assert!(
            matches!(
                r(&line.replace(from, to)),
                Ok(ReadLine::Unfit { kind: TXN_TYPE, .. })
            ),
            "{to}"
        );
    }
}
