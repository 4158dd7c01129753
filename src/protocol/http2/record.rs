// SPDX-License-Identifier: GPL-3.0-or-later
//! A stream's request and response halves, and its `http_transaction`
//! record (`protocol` `"http2"`): the HTTP/1.x fields where they fit
//! (`host` is `:authority`, `target` is `:path`), plus [`Http2Fields`].

use crate::text::Text;
use std::borrow::Cow;

use super::frame::error_name;
use super::grpc;
use super::hpack;
use super::NAME;
use crate::event::Direction;
use crate::protocol::http1::parser::KNOWN_METHODS;
use crate::protocol::{Ctx, Stamp};
use crate::record::{
    epoch_ns, GapCauses, GrpcFields, Http2Fields, Record, TimeSpan, Transaction, GRPC, TXN_TYPE,
};

/// The fields [`Half::add_block`] takes: each one's slot, in the order
/// it destructures them.
fn picked(name: &str) -> Option<usize> {
    Some(match name {
        ":status" => 0,
        ":method" => 1,
        ":path" => 2,
        ":authority" => 3,
        ":scheme" => 4,
        "content-type" => 5,
        "grpc-status" => 6,
        "grpc-message" => 7,
        _ => return None,
    })
}

/// A request method: the registered ones as static strings.
fn method_of(m: &str) -> Cow<'static, str> {
    match KNOWN_METHODS.iter().find(|k| **k == m) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(m.to_string()),
    }
}

/// One side of a stream: the request (client → server) or the response.
#[derive(Debug, Default)]
pub(super) struct Half {
    pub seen: bool,
    pub dir: Option<Direction>,
    /// A registered method as a static string (no allocation).
    pub method: Option<Cow<'static, str>>,
    pub path: Option<Text>,
    pub authority: Option<Text>,
    /// `http` and `https` as static strings.
    pub scheme: Option<Cow<'static, str>>,
    pub status: Option<u16>,
    pub content_type: Option<Text>,
    pub header_count: u32,
    pub header_bytes: u64,
    pub body_bytes: u64,
    /// Kept only with `--headers`.
    pub headers: Option<Vec<(String, String)>>,
    pub first: Stamp,
    pub last_ts: u64,
    pub ended: bool,
    /// `grpc-status` and `grpc-message` (raw), from any of its blocks.
    pub grpc_status: Option<u32>,
    pub grpc_message: Option<String>,
    /// gRPC messages of this half, once its stream is known to be gRPC.
    pub grpc: Option<grpc::Messages>,
}

impl Half {
    /// When the half's first byte moved (as HTTP/1.x: the send's entry
    /// for what the process sent, the receive's return otherwise).
    fn start_mono(&self) -> u64 {
        if self.dir == Some(Direction::Egress) && self.first.start_ns != 0 {
            self.first.start_ns
        } else {
            self.first.ts
        }
    }

    /// A header block (`wire` bytes of frames) for this half; returns the
    /// status of an interim (1xx) response, which does not count as the
    /// response.
    #[allow(clippy::too_many_arguments)]
    pub fn add_block(
        &mut self,
        d: Direction,
        blk: Option<&hpack::Block>,
        wire: u64,
        first: Stamp,
        last: Stamp,
        end_stream: bool,
        keep_headers: bool,
    ) -> Option<u16> {
        // the first of each field the record uses, in one pass
        let mut f: [Option<&str>; 8] = [None; 8];
        for (n, v) in blk.iter().flat_map(|b| b.fields()) {
            if let Some(i) = picked(n) {
                f[i].get_or_insert(v);
            }
        }
        let [status, method, path, authority, scheme, content_type, grpc_status, grpc_message] = f;
        let status = status.and_then(|s| s.parse::<u16>().ok());
        if let Some(s) = status.filter(|s| (100..200).contains(s)) {
            return Some(s);
        }
        if !self.seen {
            self.seen = true;
            self.dir = Some(d);
            self.first = first;
            self.method = method.map(method_of);
            self.path = path.map(Text::new);
            self.authority = authority.map(Text::new);
            self.scheme = scheme.map(|s| match s {
                "http" => Cow::Borrowed("http"),
                "https" => Cow::Borrowed("https"),
                s => Cow::Owned(s.to_string()),
            });
            self.status = status;
            self.content_type = content_type.map(Text::new);
        }
        // the status is in the trailers, or in a trailers-only response
        if let Some(st) = grpc_status {
            self.grpc_status = st.trim().parse().ok();
        }
        if let Some(m) = grpc_message.filter(|m| !m.is_empty()) {
            self.grpc_message = Some(m.to_string());
        }
        // trailers add to the counts
        if let Some(b) = blk {
            self.header_count += b.len() as u32 + b.over_cap;
            if keep_headers {
                self.headers
                    .get_or_insert_with(Vec::new)
                    .extend(b.fields().map(|(n, v)| (n.to_string(), v.to_string())));
            }
        }
        self.header_bytes += wire;
        self.last_ts = self.last_ts.max(last.ts);
        self.ended |= end_stream;
        None
    }

    pub fn add_data(&mut self, d: Direction, body: u64, first: Stamp, last: Stamp, end: bool) {
        if !self.seen {
            // DATA before any HEADERS seen (lost): still counted
            self.dir = Some(d);
            self.first = first;
        }
        self.body_bytes += body;
        self.last_ts = self.last_ts.max(last.ts);
        self.ended |= end;
    }

    fn any(&self) -> bool {
        self.seen || self.body_bytes > 0 || self.ended
    }
}

/// One stream.
#[derive(Debug)]
pub(super) struct Stream {
    pub id: u32,
    pub req: Half,
    pub resp: Half,
    pub interim: Option<(u16, u64)>,
    pub rst: Option<u32>,
    pub goaway: Option<u32>,
    pub gap: bool,
    /// Why `gap`, where the stream knows (see [`GapCauses`]).
    pub causes: GapCauses,
    pub truncated: bool,
    pub unknown: u32,
    pub last_ts: u64,
}

impl Stream {
    pub fn new(id: u32) -> Stream {
        Stream {
            id,
            req: Half::default(),
            resp: Half::default(),
            interim: None,
            rst: None,
            goaway: None,
            gap: false,
            causes: GapCauses::NONE,
            truncated: false,
            unknown: 0,
            last_ts: 0,
        }
    }

    pub fn touch(&mut self, ts: u64) {
        self.last_ts = self.last_ts.max(ts);
    }

    /// A gRPC call: a gRPC content type on the request, or on the
    /// response when the request was not seen.
    pub fn is_grpc(&self) -> bool {
        self.req
            .content_type
            .as_deref()
            .or(self.resp.content_type.as_deref())
            .is_some_and(grpc::is_grpc)
    }

    /// The gRPC fields (a gRPC call only); the second value: the message
    /// counts are a lower bound (a length prefix went by unseen).
    /// The fields, and why the message counts are a lower bound (none:
    /// exact).
    fn grpc_fields(&self, req_seen: Option<&Half>) -> Option<(GrpcFields, GapCauses)> {
        if !self.is_grpc() {
            return None;
        }
        let (service, method) = req_seen
            .and_then(|r| r.path.as_deref())
            .map_or((None, None), grpc::service_method);
        let msgs = |h: &Half| h.grpc.unwrap_or_default();
        let (q, r) = (msgs(&self.req), msgs(&self.resp));
        Some((
            GrpcFields {
                service,
                method,
                status: self.resp.grpc_status,
                message: self.resp.grpc_message.as_deref().map(grpc::percent_decode),
                req_messages: q.count,
                resp_messages: r.count,
                compressed: q.compressed || r.compressed,
            },
            q.lost_cause() | r.lost_cause(),
        ))
    }

    /// `lost`: what the connection lost so far (the causes of a gap the
    /// stream has no cause of its own for).
    pub fn emit(mut self, lost: GapCauses, cx: &mut Ctx) {
        if !cx.cfg.emit_transactions {
            return;
        }
        let (req, resp) = (
            self.req.any().then_some(&self.req),
            self.resp.any().then_some(&self.resp),
        );
        let Some(any) = req.or(resp) else { return };
        let start = any.start_mono();
        let end = resp
            .map(|r| r.last_ts)
            .unwrap_or(any.last_ts)
            .max(self.last_ts)
            .max(start);
        let (latency_ns, ttfb_ns) = match (req, resp) {
            (Some(_), Some(r)) if r.seen => {
                let first = self.interim.map_or(r.first.ts, |(_, t)| t);
                (
                    Some(r.last_ts.saturating_sub(start)),
                    Some(first.saturating_sub(start)),
                )
            }
            _ => (None, None),
        };
        let off = cx.cfg.realtime_offset_ns;
        let redact = &cx.cfg.redact;
        let headers = |h: Option<&Half>| {
            if !cx.cfg.headers {
                return None;
            }
            h.map(|h| redact.headers(h.headers.as_deref().unwrap_or(&[])))
        };
        let (req_headers, resp_headers) = (headers(req), headers(resp));
        let req_seen = req.filter(|r| r.seen);
        let resp_seen = resp.filter(|r| r.seen);
        let grpc = self.grpc_fields(req_seen);
        // a message prefix past the capture cap: the counts are a lower
        // bound
        let grpc_lost = grpc.as_ref().map_or(GapCauses::NONE, |g| g.1);
        let grpc_cap = !grpc_lost.is_empty() && !self.gap;
        // a stream whose request was not seen began before the probe
        // joined, or in bytes lost since
        let gap = self.gap || req_seen.is_none() || grpc_cap;
        let gap_cause = if !gap {
            GapCauses::NONE
        } else if grpc_cap && req_seen.is_some() {
            self.causes | grpc_lost
        } else if !self.causes.is_empty() {
            self.causes
        } else if lost.is_empty() {
            GapCauses::MIDSTREAM
        } else {
            lost
        };
        cx.stats.count_gap_causes(gap_cause);
        let conn = cx.conn.fields(any.first.tid, cx.cfg.source);
        let (req_any, req_seen, resp_any, resp_seen) = (
            req.is_some(),
            req_seen.is_some(),
            resp.is_some(),
            resp_seen.is_some(),
        );
        // the record takes the halves' strings (moved, not copied)
        let (q, r) = (&mut self.req, &mut self.resp);
        let seen_q = |f: &mut Option<Text>| f.take().filter(|_| req_seen);
        let path_full = seen_q(&mut q.path);
        let path = path_full
            .as_deref()
            .map(|p| Text::new(crate::protocol::without_query(p)));
        let target = path_full.map(|p| match redact.target(&p) {
            Cow::Owned(t) => Text::from(t),
            Cow::Borrowed(_) => p,
        });
        let t = Transaction {
            kind: TXN_TYPE,
            protocol: if grpc.is_some() { GRPC } else { NAME },
            span: TimeSpan {
                start_ns: epoch_ns(start, off),
                end_ns: epoch_ns(end, off),
            },
            latency_ns,
            ttfb_ns,
            method: q.method.take().filter(|_| req_seen),
            target,
            path,
            host: seen_q(&mut q.authority),
            http_version: Some("2"),
            status: r.status.filter(|_| resp_seen),
            reason: None,
            req_header_count: req_seen.then_some(q.header_count),
            req_header_bytes: req_seen.then_some(q.header_bytes),
            resp_header_count: resp_seen.then_some(r.header_count),
            resp_header_bytes: resp_seen.then_some(r.header_bytes),
            req_body_bytes: req_any.then_some(q.body_bytes),
            resp_body_bytes: resp_any.then_some(r.body_bytes),
            req_content_type: seen_q(&mut q.content_type),
            resp_content_type: r.content_type.take().filter(|_| resp_seen),
            conn,
            gap,
            gap_cause,
            truncated: self.truncated,
            no_response: req_any && !resp_seen,
            interim_status: self.interim.map(|(s, _)| s),
            upgraded: false,
            incomplete: false,
            h2: Some(Http2Fields {
                stream_id: self.id,
                scheme: q.scheme.take().filter(|_| req_seen),
                end_stream: q.ended && r.ended,
                rst_error: self.rst.map(error_name),
                goaway_error: self.goaway.map(error_name),
                headers_unknown: self.unknown,
                grpc: grpc.map(|g| g.0),
            }),
            req_headers,
            resp_headers,
        };
        cx.emit(Record::Transaction(Box::new(t)));
    }
}
