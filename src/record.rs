// SPDX-License-Identifier: GPL-3.0-or-later
//! Output records: one JSON object per line, stable snake_case field names.
//!
//! The types here are the one definition of a record's fields and their
//! order: the probe and `osprey wire` serialise them, [`crate::jsonline`]
//! writes the same bytes faster, and `osprey recon-diff` reads them back
//! ([`read_json_line`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::Deserializer;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::clock::{format_iso8601, ISO_LEN};
use crate::event::{Direction, Role};
use crate::text::Text;

/// `"type"` of a [`Transaction`].
pub const TXN_TYPE: &str = "http_transaction";
/// `"type"` of a [`MsgRecord`].
pub const MSG_TYPE: &str = "http_message";
/// `"protocol"` of HTTP/1.x records (also assumed for records written
/// before the field existed).
pub const HTTP1: &str = "http1";
/// `"protocol"` of HTTP/2 records.
pub const HTTP2: &str = "http2";
/// `"protocol"` of gRPC records (HTTP/2 streams with a gRPC content type).
pub const GRPC: &str = "grpc";
/// The `http_version` values HTTP/1.x records carry (the tracker's
/// `version_str`), for reading records back into `&'static str`.
pub const HTTP1_VERSIONS: [&str; 11] = [
    "1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "1.x",
];

/// `&'static str`, spelled as an alias in the record types so that
/// `#[derive(Deserialize)]` does not try to borrow these fields from the
/// input (it would then need input that lives for `'static`): they are
/// read with `deserialize_with` into one of the names known here.
pub type StaticStr = &'static str;

/// Where a record came from: the eBPF probe (syscalls of a traced process)
/// or a packet capture (`osprey wire`), which has no process information.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Ebpf,
    Wire,
}

impl Source {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ebpf => "ebpf",
            Source::Wire => "wire",
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// When: a record's first and last byte as epoch ns. Embedded (flattened)
/// in every record as `ts_start`, `ts_start_ns`, `ts_end`, `ts_end_ns` (the
/// ISO-8601 texts are written from the ns, and ignored when reading back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "SpanFields")]
pub struct TimeSpan {
    pub start_ns: i64,
    pub end_ns: i64,
}

impl TimeSpan {
    pub fn start(self) -> IsoTime {
        IsoTime(self.start_ns)
    }
    pub fn end(self) -> IsoTime {
        IsoTime(self.end_ns)
    }
}

impl Serialize for TimeSpan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Span", 4)?;
        st.serialize_field("ts_start", &self.start())?;
        st.serialize_field("ts_start_ns", &self.start_ns)?;
        st.serialize_field("ts_end", &self.end())?;
        st.serialize_field("ts_end_ns", &self.end_ns)?;
        st.end()
    }
}

/// The fields a [`TimeSpan`] is read from (a record without `ts_end_ns` ends
/// where it starts).
#[derive(Deserialize)]
struct SpanFields {
    ts_start_ns: i64,
    ts_end_ns: Option<i64>,
}

impl From<SpanFields> for TimeSpan {
    fn from(f: SpanFields) -> TimeSpan {
        TimeSpan {
            start_ns: f.ts_start_ns,
            end_ns: f.ts_end_ns.unwrap_or(f.ts_start_ns),
        }
    }
}

/// Why a record has `gap: true`: the causes of the bytes it is missing,
/// serialised as a list of names (`gap_cause`), empty without a gap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GapCauses(u16);

impl GapCauses {
    /// Records lost in the kernel: ring buffer full (also busy scratch
    /// slots, program runs the kernel skipped); positions jumped.
    pub const RING_BUFFER_DROP: GapCauses = GapCauses(1);
    /// Framing (a head, a chunk-size line) lay in bytes moved past the
    /// capture cap, or in bytes counted without a payload.
    pub const CAPTURE_CAP: GapCauses = GapCauses(2);
    /// The connection is older than the probe: its stream starts mid-way.
    pub const MIDSTREAM: GapCauses = GapCauses(4);
    /// A message outgrew the parser's per-direction buffer.
    pub const BUFFER_CAP: GapCauses = GapCauses(8);
    /// Bytes that did not parse as the protocol.
    pub const UNPARSEABLE: GapCauses = GapCauses(16);
    /// The connection ended (closed, expired, evicted, the probe stopped)
    /// in the middle of a message.
    pub const INCOMPLETE: GapCauses = GapCauses(32);
    /// Wire records: packets missing from the capture.
    pub const PACKETS_MISSING: GapCauses = GapCauses(64);
    /// A message the record needs was never seen, and its connection
    /// recorded no loss: bytes no hook delivered without a position to
    /// show it (e.g. a TLS call the uprobes could not tie to its
    /// connection: the summary's `tls_no_conn`, `tls_failed`).
    pub const NOT_SEEN: GapCauses = GapCauses(128);
    /// Framing lay in bytes the kernel could not read from the process's
    /// buffer (a page not resident at the hook: the summary's
    /// `read_errors`); counted, not captured, like bytes past the cap.
    pub const READ_FAULT: GapCauses = GapCauses(256);

    /// Every cause with its serialised name, in output order.
    pub const NAMES: [(GapCauses, &'static str); 9] = [
        (GapCauses::RING_BUFFER_DROP, "ring_buffer_drop"),
        (GapCauses::CAPTURE_CAP, "capture_cap"),
        (GapCauses::MIDSTREAM, "midstream"),
        (GapCauses::BUFFER_CAP, "buffer_cap"),
        (GapCauses::UNPARSEABLE, "unparseable"),
        (GapCauses::INCOMPLETE, "incomplete"),
        (GapCauses::PACKETS_MISSING, "packets_missing"),
        (GapCauses::NOT_SEEN, "not_seen"),
        (GapCauses::READ_FAULT, "read_fault"),
    ];

    pub const NONE: GapCauses = GapCauses(0);

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, c: GapCauses) -> bool {
        self.0 & c.0 == c.0 && c.0 != 0
    }
    /// The names of the causes present, in output order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        GapCauses::NAMES
            .into_iter()
            .filter(move |(c, _)| self.contains(*c))
            .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for GapCauses {
    type Output = GapCauses;
    fn bitor(self, o: GapCauses) -> GapCauses {
        GapCauses(self.0 | o.0)
    }
}

impl std::ops::BitOrAssign for GapCauses {
    fn bitor_assign(&mut self, o: GapCauses) {
        self.0 |= o.0;
    }
}

impl Serialize for GapCauses {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for GapCauses {
    /// Names this version does not know are left out.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GapCauses, D::Error> {
        let v: Vec<Cow<'de, str>> = Vec::deserialize(d)?;
        let mut c = GapCauses::NONE;
        for n in v {
            if let Some((k, _)) = GapCauses::NAMES.iter().find(|(_, name)| *name == n) {
                c |= *k;
            }
        }
        Ok(c)
    }
}

/// Who and which connection: embedded (flattened) in every record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnFields {
    /// Null for wire records.
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub comm: Option<Arc<str>>,
    pub conn_id: Arc<str>,
    pub role: Role,
    pub local_addr: Option<Arc<str>>,
    pub local_port: Option<u16>,
    pub remote_addr: Option<Arc<str>>,
    pub remote_port: Option<u16>,
    /// "ebpf" or "wire" (records written before the field existed are
    /// the probe's).
    #[serde(default)]
    pub source: Source,
    /// cgroup, container, Pod and node of the process that opened the
    /// connection (`crate::identity`; all null for wire records).
    #[serde(flatten)]
    pub ident: Arc<crate::identity::Identity>,
    /// Its executable (null for wire records and when not readable).
    #[serde(default)]
    pub exe: Option<Arc<str>>,
    /// The bytes were TLS plaintext, captured at the TLS library (uprobes);
    /// written only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
    /// Which library: "openssl", "boringssl" or "go"; written only with `tls`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_tls_library"
    )]
    pub tls_library: Option<StaticStr>,
    /// The JSON writer's memo of the fields above, shared by the
    /// connection's records (opaque: never serialised, always equal).
    #[serde(skip)]
    pub blocks: crate::jsonline::ConnBlocks,
}

/// One request paired with its response (or with none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Always "http_transaction".
    #[serde(rename = "type", deserialize_with = "txn_type")]
    pub kind: StaticStr,
    /// Always "http1" (for now).
    #[serde(default = "http1", deserialize_with = "protocol")]
    pub protocol: StaticStr,
    #[serde(flatten)]
    pub span: TimeSpan,
    /// Request first byte to response last byte (null without a response).
    pub latency_ns: Option<u64>,
    /// Request first byte to response first byte (null without a response).
    pub ttfb_ns: Option<u64>,
    pub method: Option<Cow<'static, str>>,
    pub target: Option<Text>,
    pub path: Option<Text>,
    pub host: Option<Text>,
    // default: absent from a compact line when null (deserialize_with
    // alone would make it required)
    #[serde(default, deserialize_with = "opt_http_version")]
    pub http_version: Option<StaticStr>,
    pub status: Option<u16>,
    pub reason: Option<Text>,
    pub req_header_count: Option<u32>,
    pub req_header_bytes: Option<u64>,
    pub resp_header_count: Option<u32>,
    pub resp_header_bytes: Option<u64>,
    pub req_body_bytes: Option<u64>,
    pub resp_body_bytes: Option<u64>,
    pub req_content_type: Option<Text>,
    pub resp_content_type: Option<Text>,
    /// Shared by a connection's records while its fields stay the same
    /// ([`crate::protocol::ConnInfo::fields`]); [`Arc::make_mut`] to change.
    #[serde(flatten)]
    pub conn: Arc<ConnFields>,
    /// Bytes were lost (or framing could not be followed) around this
    /// transaction; fields may be incomplete or pairing may be wrong.
    pub gap: bool,
    /// Why, when `gap` (empty otherwise; absent in records written before
    /// the field existed).
    #[serde(default)]
    pub gap_cause: GapCauses,
    /// Some body bytes were not captured but the framing is known, so the
    /// byte counts are still exact.
    pub truncated: bool,
    /// The request got no response before close/expiry/eviction.
    pub no_response: bool,
    /// Status of an interim (1xx) response seen before the final one.
    pub interim_status: Option<u16>,
    /// The connection switched protocols (101, CONNECT 2xx).
    pub upgraded: bool,
    /// The request was not complete (head or body) when its connection
    /// ended (close, idle expiry, eviction, end of the run); written only
    /// when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    /// HTTP/2 and gRPC records only (absent from HTTP/1.x lines).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub h2: Option<Http2Fields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_headers: Option<Vec<(String, String)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp_headers: Option<Vec<(String, String)>>,
}

/// The fields only an HTTP/2 transaction has (one per stream).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Http2Fields {
    pub stream_id: u32,
    /// `:scheme` (`http` and `https` static, not allocated per record).
    pub scheme: Option<Cow<'static, str>>,
    /// Both sides ended the stream with END_STREAM.
    pub end_stream: bool,
    /// The error code of an RST_STREAM that ended the stream.
    pub rst_error: Option<String>,
    /// The error code of a GOAWAY that ended (or found open) the stream.
    pub goaway_error: Option<String>,
    /// Header fields absent because they referenced HPACK dynamic-table
    /// entries from before Osprey joined the connection (never guessed).
    pub headers_unknown: u32,
    /// gRPC records only.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcFields>,
}

/// The fields only a gRPC transaction (one RPC, one HTTP/2 stream) has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcFields {
    /// `:path`'s `package.Service`.
    #[serde(rename = "grpc_service")]
    pub service: Option<String>,
    /// `:path`'s method.
    #[serde(rename = "grpc_method")]
    pub method: Option<String>,
    /// `grpc-status` of the trailers (or a trailers-only response).
    #[serde(rename = "grpc_status")]
    pub status: Option<u32>,
    /// `grpc-message`, percent-decoded.
    #[serde(rename = "grpc_message")]
    pub message: Option<String>,
    /// Messages (5-byte length prefixes) each way.
    #[serde(rename = "grpc_req_messages")]
    pub req_messages: u32,
    #[serde(rename = "grpc_resp_messages")]
    pub resp_messages: u32,
    /// A message had its compressed flag set.
    #[serde(rename = "grpc_compressed")]
    pub compressed: bool,
}

impl Transaction {
    /// Its connection fields to change (a copy of them if shared).
    pub fn conn_mut(&mut self) -> &mut ConnFields {
        Arc::make_mut(&mut self.conn)
    }
}

impl MsgRecord {
    /// Its connection fields to change (a copy of them if shared).
    pub fn conn_mut(&mut self) -> &mut ConnFields {
        Arc::make_mut(&mut self.conn)
    }
}

/// Which kind of message a [`MsgRecord`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgKind {
    Request,
    Response,
}

/// One parsed request or response (`--records messages`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MsgRecord {
    /// Always "http_message".
    #[serde(rename = "type", deserialize_with = "msg_type")]
    pub kind: StaticStr,
    /// Always "http1" (for now).
    #[serde(default = "http1", deserialize_with = "protocol")]
    pub protocol: StaticStr,
    pub message: MsgKind,
    pub direction: Direction,
    #[serde(flatten)]
    pub span: TimeSpan,
    pub method: Option<Cow<'static, str>>,
    pub target: Option<Text>,
    pub path: Option<Text>,
    pub host: Option<Text>,
    #[serde(deserialize_with = "http_version")]
    pub http_version: StaticStr,
    pub status: Option<u16>,
    pub reason: Option<Text>,
    pub header_count: u32,
    pub header_bytes: u64,
    pub body_bytes: u64,
    pub content_type: Option<Text>,
    /// Shared by a connection's records while its fields stay the same
    /// ([`crate::protocol::ConnInfo::fields`]); [`Arc::make_mut`] to change.
    #[serde(flatten)]
    pub conn: Arc<ConnFields>,
    pub gap: bool,
    #[serde(default)]
    pub gap_cause: GapCauses,
    pub truncated: bool,
    /// A 1xx response other than 101.
    pub interim: bool,
    pub upgraded: bool,
    /// A request not complete when its connection ended; only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<(String, String)>>,
}

/// Any output record; serialised untagged (the "type" field discriminates).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Record {
    // boxed: records are moved through queues and channels several times
    Transaction(Box<Transaction>),
    Message(Box<MsgRecord>),
}

impl Record {
    /// One JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("records always serialise")
    }
}

// ---------------------------------------------------------------------------
// Reading records back

/// One JSON line read back by [`read_json_line`].
#[derive(Debug)]
pub enum ReadLine {
    Record(Record),
    /// JSON, but not a record type read here (e.g. `"type": "event"`, or
    /// not an object).
    OtherType,
    /// A record type read here, of another protocol.
    OtherProtocol(String),
    /// A record of a type (`kind`: [`TXN_TYPE`] or [`MSG_TYPE`]) and
    /// protocol read here whose fields do not fit (missing, or of the
    /// wrong JSON type).
    Unfit {
        kind: StaticStr,
        error: serde_json::Error,
    },
}

/// What a line says it is; the rest of the line is skipped.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
}

/// Reads one output line back into a [`Record`]. Err only when the line is
/// not JSON.
pub fn read_json_line(line: &[u8]) -> Result<ReadLine, serde_json::Error> {
    let head: Head = match serde_json::from_slice(line) {
        Ok(h) => h,
        // valid JSON, not an object (or "type" not a string)
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Ok(ReadLine::OtherType)
        }
        Err(e) => return Err(e),
    };
    let kind = head.kind.as_deref();
    if kind != Some(TXN_TYPE) && kind != Some(MSG_TYPE) {
        return Ok(ReadLine::OtherType);
    }
    // HTTP/2 and gRPC transactions read back (recon-diff pairs them per
    // stream); messages are HTTP/1.x only
    match head.protocol.as_deref() {
        None | Some(HTTP1) => {}
        Some(HTTP2 | GRPC) if kind == Some(TXN_TYPE) => {}
        Some(p) => return Ok(ReadLine::OtherProtocol(p.to_string())),
    }
    let (kind, r) = if kind == Some(TXN_TYPE) {
        (
            TXN_TYPE,
            serde_json::from_slice(line).map(|t| Record::Transaction(Box::new(t))),
        )
    } else {
        (
            MSG_TYPE,
            serde_json::from_slice(line).map(|m| Record::Message(Box::new(m))),
        )
    };
    Ok(r.map_or_else(|error| ReadLine::Unfit { kind, error }, ReadLine::Record))
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn http1() -> &'static str {
    HTTP1
}

/// The `&'static str` of `s` among `known`, or an error naming `what`.
fn one_of<E: serde::de::Error>(
    s: &str,
    known: &[&'static str],
    what: &str,
) -> Result<&'static str, E> {
    known
        .iter()
        .find(|k| **k == s)
        .copied()
        .ok_or_else(|| E::custom(format_args!("unknown {what} {s:?}")))
}

fn txn_type<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    one_of(&Cow::<str>::deserialize(d)?, &[TXN_TYPE], "type")
}

fn msg_type<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    one_of(&Cow::<str>::deserialize(d)?, &[MSG_TYPE], "type")
}

fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    one_of(
        &Cow::<str>::deserialize(d)?,
        &[HTTP1, HTTP2, GRPC],
        "protocol",
    )
}

fn http_version<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    one_of(
        &Cow::<str>::deserialize(d)?,
        &HTTP1_VERSIONS,
        "http_version",
    )
}

fn opt_tls_library<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    Option::<Cow<str>>::deserialize(d)?
        .map(|s| one_of(&s, &["openssl", "boringssl", "go"], "tls_library"))
        .transpose()
}

fn opt_http_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    Option::<Cow<str>>::deserialize(d)?
        .map(|s| match &*s {
            "2" => Ok("2"),
            s => one_of(s, &HTTP1_VERSIONS, "http_version"),
        })
        .transpose()
}

// ---------------------------------------------------------------------------
// Time

/// An instant as epoch nanoseconds, serialised as ISO-8601 UTC with
/// nanoseconds ("2026-11-29T15:30:00.123456789Z") without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoTime(pub i64);

impl IsoTime {
    /// The ISO-8601 text, written into `b`.
    pub fn format(self, b: &mut [u8; ISO_LEN]) -> &str {
        format_iso8601(self.0, b)
    }
}

impl Serialize for IsoTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.format(&mut [0u8; ISO_LEN]))
    }
}

impl fmt::Display for IsoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format(&mut [0u8; ISO_LEN]))
    }
}

/// Monotonic ns plus the realtime offset, as epoch ns (saturating to i64,
/// which lasts until the year 2262).
pub fn epoch_ns(mono_ns: u64, realtime_offset_ns: i128) -> i64 {
    (mono_ns as i128 + realtime_offset_ns).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

#[cfg(test)]
mod tests;
