// SPDX-License-Identifier: GPL-3.0-or-later
//! What the sinks write: raw probe events (`--records events`) or parsed
//! records (transactions / messages). Field names are documented in
//! docs/output.md and are stable.

use std::collections::HashMap;

use serde::Serialize;

use crate::clock::iso8601;
use crate::event::*;

/// One line of output.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Output {
    Event(Box<EventRecord>),
    Record(crate::record::Record),
}

/// A probe event, flattened for `jq`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventRecord {
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// open | data | close
    pub kind: &'static str,
    pub ts: String,
    pub ts_ns: i64,
    pub mono_ns: u64,
    pub conn_id: String,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub fd: i32,
    pub role: Role,
    pub syscall: Syscall,
    pub local_addr: Option<String>,
    pub local_port: Option<u16>,
    pub remote_addr: Option<String>,
    pub remote_port: Option<u16>,
    /// Who opened the connection (null until its OPEN record resolved it).
    #[serde(flatten)]
    pub ident: std::sync::Arc<crate::identity::Identity>,
    pub exe: Option<std::sync::Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub midstream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orig_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_len: Option<u32>,
    /// The probe could not read the bytes (or the iovec array, or the
    /// msghdr) where it copies them: `true`, else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_fault: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ns: Option<u64>,
    /// Captured bytes: printable ASCII as is, other bytes as `\xNN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
}

/// Printable ASCII (and \r \n \t) kept, everything else `\xNN`; a literal
/// backslash is doubled so the escaping is reversible.
pub fn escape_payload(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\r' | b'\n' | b'\t' | 0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Turns events into `EventRecord`s, remembering each connection's role and
/// addresses so that data and close records carry them too.
pub struct EventFormatter {
    realtime_offset_ns: i64,
    conns: HashMap<
        ConnId,
        (
            Role,
            Option<SockAddrs>,
            Option<crate::identity::ConnIdentity>,
        ),
    >,
    max_conns: usize,
    redact: crate::redact::Redact,
}

impl EventFormatter {
    pub fn new(realtime_offset_ns: i64) -> Self {
        EventFormatter {
            realtime_offset_ns,
            conns: HashMap::new(),
            max_conns: 1 << 16,
            redact: crate::redact::Redact::off(),
        }
    }

    /// Payloads with credentials masked byte for byte (lengths kept).
    pub fn redact(mut self, redact: crate::redact::Redact) -> Self {
        self.redact = redact;
        self
    }

    pub fn format(&mut self, ev: &Event) -> EventRecord {
        let (kind, proc_, ts) = match ev {
            Event::Open(o) => ("open", &o.proc, o.ts_ns),
            Event::Data(d) => ("data", &d.proc, d.ts_ns),
            Event::Close(c) => ("close", &c.proc, c.ts_ns),
        };
        if let Event::Open(o) = ev {
            if self.conns.len() >= self.max_conns {
                self.conns.clear();
            }
            self.conns
                .insert(o.conn, (o.role, o.addrs, o.identity.clone()));
        }
        let conn = *ev.conn();
        let (role, addrs, ident) =
            self.conns
                .get(&conn)
                .cloned()
                .unwrap_or((Role::Unknown, None, None));
        if let Event::Close(_) = ev {
            self.conns.remove(&conn);
        }
        // ts comes from the kernel: a bogus one must not overflow
        let epoch = (ts as i64).saturating_add(self.realtime_offset_ns);
        let mut r = EventRecord {
            ty: "event",
            kind,
            ts: iso8601(epoch),
            ts_ns: epoch,
            mono_ns: ts,
            conn_id: conn.to_string(),
            pid: proc_.tgid,
            tid: proc_.tid,
            comm: proc_.comm.to_string(),
            fd: conn.fd,
            role,
            syscall: Syscall::Unknown,
            local_addr: addrs.map(|a| a.local.ip().to_string()),
            local_port: addrs.map(|a| a.local.port()),
            remote_addr: addrs.map(|a| a.remote.ip().to_string()),
            remote_port: addrs.map(|a| a.remote.port()),
            ident: ident
                .as_ref()
                .map(|i| i.ident.clone())
                .unwrap_or_else(crate::identity::Identity::empty),
            exe: ident.and_then(|i| i.exe),
            midstream: None,
            dir: None,
            pos: None,
            orig_len: None,
            cap_len: None,
            read_fault: None,
            latency_ns: None,
            payload: None,
            tx_bytes: None,
            rx_bytes: None,
        };
        match ev {
            Event::Open(o) => {
                r.syscall = o.syscall;
                r.midstream = Some(o.midstream);
            }
            Event::Data(d) => {
                r.syscall = d.syscall;
                r.dir = Some(d.dir);
                r.pos = Some(d.pos);
                r.orig_len = Some(d.orig_len);
                r.cap_len = Some(d.cap_len());
                r.read_fault = d.fault.then_some(true);
                r.latency_ns =
                    (d.start_ns != 0 && d.ts_ns >= d.start_ns).then(|| d.ts_ns - d.start_ns);
                r.payload = Some(escape_payload(&self.redact.payload(&d.payload)));
            }
            Event::Close(c) => {
                r.syscall = Syscall::Close;
                r.tx_bytes = Some(c.tx_bytes);
                r.rx_bytes = Some(c.rx_bytes);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_is_reversible_and_jq_friendly() {
        assert_eq!(escape_payload(b"GET /\r\n"), "GET /\r\n");
        assert_eq!(escape_payload(&[0, 0xff, b'\\', b'a']), "\\x00\\xff\\\\a");
    }

    #[test]
    fn data_records_carry_the_connection_addresses() {
        let p = ProcInfo {
            tgid: 1,
            tid: 2,
            comm: "x".into(),
        };
        let c = ConnId {
            tgid: 1,
            proc_start_ns: 3,
            fd: 4,
            gen: 5,
        };
        let mut f = EventFormatter::new(1_000);
        let addrs = SockAddrs {
            local: "127.0.0.1:1".parse().unwrap(),
            remote: "127.0.0.1:2".parse().unwrap(),
        };
        f.format(&Event::open(ConnOpen {
            ts_ns: 1,
            conn: c,
            proc: p.clone(),
            role: Role::Client,
            addrs: Some(addrs),
            midstream: false,
            syscall: Syscall::Connect,
            cgroup_id: 0,
            identity: None,
        }));
        let d = f.format(&Event::Data(DataEvent {
            ts_ns: 10,
            start_ns: 4,
            conn: c,
            proc: p.clone(),
            dir: Direction::Egress,
            pos: 0,
            orig_len: 3,
            payload: b"abc".to_vec(),
            syscall: Syscall::Write,
            fault: false,
        }));
        assert_eq!(d.remote_port, Some(2));
        assert_eq!(d.role, Role::Client);
        assert_eq!(d.latency_ns, Some(6));
        assert_eq!(d.ts_ns, 1_010);
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(j["dir"], "egress");
        assert_eq!(j["payload"], "abc");
        assert!(j.get("read_fault").is_none(), "{j}");
        // bytes the probe could not read: counted, none captured, said
        let fd = f.format(&Event::Data(DataEvent {
            ts_ns: 10,
            start_ns: 4,
            conn: c,
            proc: p.clone(),
            dir: Direction::Egress,
            pos: 3,
            orig_len: 7,
            payload: Vec::new(),
            syscall: Syscall::Sendmsg,
            fault: true,
        }));
        let j = serde_json::to_value(&fd).unwrap();
        assert_eq!(
            (&j["read_fault"], &j["orig_len"], &j["cap_len"]),
            (
                &serde_json::json!(true),
                &serde_json::json!(7),
                &serde_json::json!(0)
            ),
            "{j}"
        );
        let cl = f.format(&Event::Close(CloseEvent {
            ts_ns: 11,
            conn: c,
            proc: p,
            tx_bytes: 3,
            rx_bytes: 0,
        }));
        assert_eq!(cl.local_port, Some(1));
        assert!(f.conns.is_empty());
    }

    #[test]
    fn event_payloads_are_redacted_with_lengths_kept() {
        let p = ProcInfo {
            tgid: 1,
            tid: 2,
            comm: "x".into(),
        };
        let c = ConnId {
            tgid: 1,
            proc_start_ns: 3,
            fd: 4,
            gen: 5,
        };
        let payload =
            b"GET /a?token=s3cr3t HTTP/1.1\r\nAuthorization: Bearer s3cr3t\r\n\r\n".to_vec();
        let ev = Event::Data(DataEvent {
            ts_ns: 10,
            start_ns: 4,
            conn: c,
            proc: p,
            dir: Direction::Egress,
            pos: 100,
            orig_len: 5000,
            payload: payload.clone(),
            syscall: Syscall::Write,
            fault: false,
        });
        let d = EventFormatter::new(0)
            .redact(crate::redact::Redact::default())
            .format(&ev);
        let text = d.payload.clone().unwrap();
        assert_eq!(
            text,
            "GET /a?token=****** HTTP/1.1\r\nAuthorization: *************\r\n\r\n"
        );
        assert_eq!(text.len(), payload.len());
        assert_eq!(
            (d.pos, d.orig_len, d.cap_len),
            (Some(100), Some(5000), Some(payload.len() as u32))
        );
        let raw = EventFormatter::new(0)
            .redact(crate::redact::Redact::off())
            .format(&ev);
        assert!(raw.payload.unwrap().contains("Bearer s3cr3t"));
    }

    #[test]
    fn a_bogus_kernel_timestamp_is_no_panic() {
        let p = ProcInfo {
            tgid: 1,
            tid: 2,
            comm: "x".into(),
        };
        let c = ConnId {
            tgid: 1,
            proc_start_ns: 3,
            fd: 4,
            gen: 5,
        };
        let mut f = EventFormatter::new(i64::MAX / 2);
        for ts_ns in [u64::MAX, i64::MAX as u64, i64::MAX as u64 - 1] {
            let r = f.format(&Event::Close(CloseEvent {
                ts_ns,
                conn: c,
                proc: p.clone(),
                tx_bytes: 0,
                rx_bytes: 0,
            }));
            assert!(!r.ts.is_empty());
        }
    }
}
