// SPDX-License-Identifier: GPL-3.0-or-later
//! Output records: one JSON object per line, stable snake_case field names.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::event::{Direction, Role};

/// Where a record came from: the eBPF probe (syscalls of a traced process)
/// or a packet capture (`osprey wire`), which has no process information.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// One request paired with its response (or with none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transaction {
    /// Always "http_transaction".
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ts_start: IsoTime,
    pub ts_start_ns: i64,
    pub ts_end: IsoTime,
    pub ts_end_ns: i64,
    /// Request first byte to response last byte (null without a response).
    pub latency_ns: Option<u64>,
    /// Request first byte to response first byte (null without a response).
    pub ttfb_ns: Option<u64>,
    pub method: Option<Cow<'static, str>>,
    pub target: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub http_version: Option<&'static str>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub req_header_count: Option<u32>,
    pub req_header_bytes: Option<u64>,
    pub resp_header_count: Option<u32>,
    pub resp_header_bytes: Option<u64>,
    pub req_body_bytes: Option<u64>,
    pub resp_body_bytes: Option<u64>,
    pub req_content_type: Option<String>,
    pub resp_content_type: Option<String>,
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
    /// "ebpf" or "wire".
    pub source: Source,
    /// Bytes were lost (or framing could not be followed) around this
    /// transaction; fields may be incomplete or pairing may be wrong.
    pub gap: bool,
    /// Some body bytes were not captured but the framing is known, so the
    /// byte counts are still exact.
    pub truncated: bool,
    /// The request got no response before close/expiry/eviction.
    pub no_response: bool,
    /// Status of an interim (1xx) response seen before the final one.
    pub interim_status: Option<u16>,
    /// The connection switched protocols (101, CONNECT 2xx).
    pub upgraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub req_headers: Option<Vec<(String, String)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resp_headers: Option<Vec<(String, String)>>,
}

/// Which kind of message a [`MsgRecord`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgKind {
    Request,
    Response,
}

/// One parsed request or response (`--records messages`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MsgRecord {
    /// Always "http_message".
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: MsgKind,
    pub direction: Direction,
    pub ts_start: IsoTime,
    pub ts_start_ns: i64,
    pub ts_end: IsoTime,
    pub ts_end_ns: i64,
    pub method: Option<Cow<'static, str>>,
    pub target: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub http_version: &'static str,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub header_count: u32,
    pub header_bytes: u64,
    pub body_bytes: u64,
    pub content_type: Option<String>,
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
    /// "ebpf" or "wire".
    pub source: Source,
    pub gap: bool,
    pub truncated: bool,
    /// A 1xx response other than 101.
    pub interim: bool,
    pub upgraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// An instant as epoch nanoseconds, serialised as ISO-8601 UTC with
/// nanoseconds ("2026-11-29T15:30:00.123456789Z") without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoTime(pub i64);

impl IsoTime {
    /// The ISO-8601 text, written into `b`.
    pub fn format(self, b: &mut [u8; ISO_LEN]) -> &str {
        fmt_iso8601(self.0, b)
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

pub const ISO_LEN: usize = 30;

/// Writes e.g. "2026-11-29T15:30:00.123456789Z" into `b` (years of the i64
/// nanosecond range, 1677..2262, always have four digits).
fn fmt_iso8601(epoch_ns: i64, b: &mut [u8; ISO_LEN]) -> &str {
    fn digits(b: &mut [u8], mut v: u64) {
        for c in b.iter_mut().rev() {
            *c = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    let secs = epoch_ns.div_euclid(1_000_000_000);
    let nanos = epoch_ns.rem_euclid(1_000_000_000) as u64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    b.copy_from_slice(b"0000-00-00T00:00:00.000000000Z");
    digits(&mut b[0..4], y.clamp(0, 9999) as u64);
    digits(&mut b[5..7], m as u64);
    digits(&mut b[8..10], d as u64);
    digits(&mut b[11..13], sod / 3600);
    digits(&mut b[14..16], (sod / 60) % 60);
    digits(&mut b[17..19], sod % 60);
    digits(&mut b[20..29], nanos);
    std::str::from_utf8(b).unwrap_or("")
}

/// Epoch nanoseconds to ISO-8601 UTC with nanoseconds,
/// e.g. "2026-11-29T15:30:00.123456789Z".
pub fn iso8601_ns(epoch_ns: i128) -> String {
    IsoTime(epoch_ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64).to_string()
}

/// Monotonic ns plus the realtime offset, as epoch ns (saturating to i64,
/// which lasts until the year 2262).
pub fn epoch_ns(mono_ns: u64, realtime_offset_ns: i128) -> i64 {
    (mono_ns as i128 + realtime_offset_ns).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Header names whose values are replaced by "[REDACTED]" when redacting.
pub const REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Copy headers for output, redacting credentials if asked.
pub fn output_headers(h: &[(String, String)], redact: bool) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| {
            if redact && REDACTED_HEADERS.iter().any(|r| n.eq_ignore_ascii_case(r)) {
                (n.clone(), "[REDACTED]".to_string())
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_known_values() {
        assert_eq!(iso8601_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(iso8601_ns(-1), "1969-12-31T23:59:59.999999999Z");
        // 2000-02-29 (leap day of a century leap year)
        assert_eq!(
            iso8601_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        // 2026-11-29T15:30:00.123456789Z
        assert_eq!(
            iso8601_ns(1_795_966_200_123_456_789),
            "2026-11-29T15:30:00.123456789Z"
        );
        assert_eq!(
            iso8601_ns(4_102_444_799_000_000_000),
            "2099-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn civil_roundtrip_against_naive_count() {
        // Walk day by day from 1900 to 2200 comparing with a naive calendar.
        let mut y = 1900i64;
        let mut m = 1u32;
        let mut d = 1u32;
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let dim = |y: i64, m: u32| match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            _ => {
                if leap(y) {
                    29
                } else {
                    28
                }
            }
        };
        let start = -25_567i64; // 1900-01-01
        for z in start..start + 110_000 {
            assert_eq!(civil_from_days(z), (y, m, d), "day {z}");
            d += 1;
            if d > dim(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn redaction() {
        let h = vec![
            ("Authorization".to_string(), "Bearer x".to_string()),
            ("cookie".to_string(), "a=b".to_string()),
            ("Accept".to_string(), "*/*".to_string()),
        ];
        let r = output_headers(&h, true);
        assert_eq!(r[0].1, "[REDACTED]");
        assert_eq!(r[1].1, "[REDACTED]");
        assert_eq!(r[2].1, "*/*");
        assert_eq!(output_headers(&h, false), h);
    }
}
