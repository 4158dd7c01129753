// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/1.x messages and the records built of them.

use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use super::headers::{CONTENT_TYPE, HOST};
use super::parser::{self, is_interim};
use super::{Http1Session, NAME};
use crate::event::Direction;
use crate::protocol::Ctx;
use crate::record::{
    epoch_ns, GapCauses, MsgKind, MsgRecord, Record, TimeSpan, Transaction, HTTP1_VERSIONS,
    MSG_TYPE, TXN_TYPE,
};
use crate::text::Text;

/// One parsed request or response.
#[derive(Clone, Debug)]
pub(super) struct Msg {
    pub is_req: bool,
    pub dir: Direction,
    pub method: Option<Cow<'static, str>>,
    pub target: Option<Text>,
    pub status: Option<u16>,
    pub reason: Option<Text>,
    pub minor: u8,
    pub headers: parser::Headers,
    pub header_bytes: u64,
    pub body_bytes: u64,
    pub first_ts: u64,
    pub first_start_ns: u64,
    pub last_ts: u64,
    pub tid: u32,
    pub gap: bool,
    pub truncated: bool,
    pub upgrade_intent: bool,
    pub tunnel: bool,
    pub interim: Option<(u16, u64)>,
    pub after_gap: bool,
    /// A request cut short by the end of its connection.
    pub incomplete: bool,
    /// Why `gap` (see [`GapCauses`]).
    pub causes: GapCauses,
}

impl Default for Msg {
    fn default() -> Msg {
        Msg {
            is_req: false,
            dir: Direction::Egress,
            method: None,
            target: None,
            status: None,
            reason: None,
            minor: 0,
            headers: parser::Headers::default(),
            header_bytes: 0,
            body_bytes: 0,
            first_ts: 0,
            first_start_ns: 0,
            last_ts: 0,
            tid: 0,
            gap: false,
            truncated: false,
            upgrade_intent: false,
            tunnel: false,
            interim: None,
            after_gap: false,
            incomplete: false,
            causes: GapCauses::NONE,
        }
    }
}

impl Msg {
    /// When the message's first byte moved: for one the process sent, the
    /// entry of the syscall that sent it; for one it received, that
    /// syscall's return -- a blocking read enters long before the bytes
    /// arrive (a keep-alive server waiting for the next request).
    pub fn start_mono(&self) -> u64 {
        if self.dir == Direction::Egress && self.first_start_ns != 0 {
            self.first_start_ns
        } else {
            self.first_ts
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    fn host(&self) -> Option<Text> {
        if let Some(h) = self.headers.get_known(HOST) {
            return Some(Text::new(h));
        }
        let t = self.target.as_deref()?;
        let rest = t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))?;
        Some(Text::new(rest.split(['/', '?']).next().unwrap_or("")))
    }

    fn path(&self) -> Option<Text> {
        let t = self.target.as_deref()?;
        let t = match t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))
        {
            Some(rest) => match rest.find('/') {
                Some(p) => &rest[p..],
                None => "/",
            },
            None => t,
        };
        Some(Text::new(crate::protocol::without_query(t)))
    }

    fn content_type(&self) -> Option<Text> {
        self.headers.get_known(CONTENT_TYPE).map(Text::new)
    }

    /// The target as records give it: redacted query parameter values
    /// replaced (`path` has no query).
    fn output_target(&self, cx: &Ctx) -> Option<Text> {
        let t = self.target.as_deref()?;
        Some(Text::from(cx.cfg.redact.target(t)))
    }

    /// [`Msg::output_target`], moved out of the message when redaction
    /// leaves it as it is.
    fn take_output_target(&mut self, cx: &Ctx) -> Option<Text> {
        let redacted = match cx.cfg.redact.target(self.target.as_deref()?) {
            Cow::Owned(r) => Some(Text::from(r)),
            Cow::Borrowed(_) => None,
        };
        redacted.or_else(|| self.target.take())
    }

    /// [`Msg::path`] and [`Msg::take_output_target`] (the host, which may
    /// come from the target, taken before). An origin-form target without
    /// a query (most) is its own path and nothing in it is redacted: one
    /// scan, and the path a copy of it.
    fn take_path_and_output_target(&mut self, cx: &Ctx) -> (Option<Text>, Option<Text>) {
        if let Some(t) = &self.target {
            if t.starts_with('/') && !t.bytes().any(|b| b == b'?') {
                return (Some(t.clone()), self.target.take());
            }
        }
        let path = self.path();
        (path, self.take_output_target(cx))
    }

    /// The header list records give (redacted), when they give one.
    #[inline]
    fn output_headers(&self, cx: &Ctx) -> Option<Vec<(String, String)>> {
        if cx.cfg.headers {
            Some(self.redacted_headers(cx))
        } else {
            None
        }
    }

    fn redacted_headers(&self, cx: &Ctx) -> Vec<(String, String)> {
        cx.cfg.redact.headers(&self.headers.to_pairs())
    }
}

/// A [`Msg`] on the heap: a message moves from its parse through the
/// direction's body state and the pairing queue to its record, and a
/// `Msg` (216 bytes) was copied at each step. Made blank ([`MsgBox::blank`])
/// and filled in where it lies: a `Msg` built on the stack was copied
/// into its box. Dropped, its fields are reset and its allocation goes
/// back to [`msg_spare`] for the next head (a `malloc` and a `free` per
/// message otherwise).
pub(super) struct MsgBox(ManuallyDrop<Box<Msg>>);

impl MsgBox {
    /// A message as [`Msg::default`] gives it, in a spare allocation if
    /// there is one.
    #[inline(always)]
    pub fn blank() -> MsgBox {
        MsgBox(ManuallyDrop::new(msg_spare::take()))
    }
}

impl Deref for MsgBox {
    type Target = Msg;
    #[inline]
    fn deref(&self) -> &Msg {
        &self.0
    }
}

impl DerefMut for MsgBox {
    #[inline]
    fn deref_mut(&mut self) -> &mut Msg {
        &mut self.0
    }
}

impl Drop for MsgBox {
    fn drop(&mut self) {
        // SAFETY: taken once, here; `self.0` is not used again
        let mut b = unsafe { ManuallyDrop::take(&mut self.0) };
        // (the header allocation goes back to its own spare)
        reset(&mut b);
        msg_spare::put(b);
    }
}

impl fmt::Debug for MsgBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// `m` as [`Msg::default`] gives it, field by field (all named: a new
/// field is not forgotten here).
fn reset(m: &mut Msg) {
    let Msg {
        is_req,
        dir,
        method,
        target,
        status,
        reason,
        minor,
        headers,
        header_bytes,
        body_bytes,
        first_ts,
        first_start_ns,
        last_ts,
        tid,
        gap,
        truncated,
        upgrade_intent,
        tunnel,
        interim,
        after_gap,
        incomplete,
        causes,
    } = m;
    *is_req = false;
    *dir = Direction::Egress;
    *method = None;
    *target = None;
    *status = None;
    *reason = None;
    *minor = 0;
    *headers = parser::Headers::default();
    *header_bytes = 0;
    *body_bytes = 0;
    *first_ts = 0;
    *first_start_ns = 0;
    *last_ts = 0;
    *tid = 0;
    *gap = false;
    *truncated = false;
    *upgrade_intent = false;
    *tunnel = false;
    *interim = None;
    *after_gap = false;
    *incomplete = false;
    *causes = GapCauses::NONE;
}

/// The allocations of the last two [`MsgBox`]es dropped on this thread,
/// blank, for the next two messages (a request's and its response's, as
/// [`super::headers`]' spare keeps their header allocations).
mod msg_spare {
    use super::Msg;
    use std::cell::Cell;

    type Slot = Cell<Option<Box<Msg>>>;

    thread_local! {
        static SLOTS: [Slot; 2] = const { [Cell::new(None), Cell::new(None)] };
    }

    /// A blank `Msg` on the heap.
    #[inline]
    pub(super) fn take() -> Box<Msg> {
        SLOTS
            .try_with(|s| s[0].take().or_else(|| s[1].take()))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Keep `b`, blank, for the next message (freed if two are kept
    /// already).
    #[inline]
    pub(super) fn put(b: Box<Msg>) {
        // (on a thread being torn down `b` is just freed)
        let _ = SLOTS.try_with(|s| {
            let b = s[0].replace(Some(b));
            if b.is_some() {
                s[1].set(b);
            }
        });
    }
}

/// The exchange left HTTP: a 101 (the response switched protocols) or a
/// CONNECT answered 2xx.
pub(super) fn upgraded(req: Option<&Msg>, resp: Option<&Msg>) -> bool {
    resp.is_some_and(|m| m.tunnel)
        || (req.and_then(|m| m.method.as_deref()) == Some("CONNECT")
            && resp
                .and_then(|m| m.status)
                .is_some_and(|s| (200..300).contains(&s)))
}

/// A request asking for h2c (`Upgrade: h2c`) answered 101 with `Upgrade:
/// h2c`: the connection goes on as HTTP/2 (RFC 7540 §3.2).
pub(super) fn is_h2c_upgrade(req: &Msg, resp: &Msg) -> bool {
    resp.status == Some(101)
        && req.headers.has_token("upgrade", "h2c")
        && resp.headers.has_token("upgrade", "h2c")
}

impl Msg {
    /// What HTTP/2's stream 1 takes from this upgrade request, answered by
    /// `resp` (the 101).
    pub(super) fn h2c_upgrade(&self, resp: &Msg, cx: &Ctx) -> crate::protocol::http2::Upgrade {
        let path = match self.target.as_deref() {
            Some(t) if t.starts_with('/') => t.to_string(),
            Some(t) => {
                // absolute form: the path and query
                let rest = t
                    .strip_prefix("http://")
                    .or_else(|| t.strip_prefix("https://"))
                    .unwrap_or(t);
                match rest.find('/') {
                    Some(p) => rest[p..].to_string(),
                    None => "/".to_string(),
                }
            }
            None => "/".to_string(),
        };
        crate::protocol::http2::Upgrade {
            client_dir: Some(self.dir),
            method: self.method.as_deref().unwrap_or("").to_string(),
            path,
            authority: self.host().map(String::from),
            content_type: self.content_type().map(String::from),
            header_count: self.headers.len() as u32,
            header_bytes: self.header_bytes,
            body_bytes: self.body_bytes,
            // as the HTTP/2 session keeps them: unredacted, redacted at output
            headers: cx.cfg.headers.then(|| self.headers.to_pairs()),
            first: crate::protocol::Stamp {
                ts: self.first_ts,
                start_ns: self.first_start_ns,
                tid: self.tid,
            },
            last_ts: self.last_ts,
            switched_ts: resp.first_ts,
            settings: self.header("http2-settings").map(str::to_string),
            gap: false,
            causes: GapCauses::NONE,
        }
    }
}

/// `HTTP/1.<minor>`'s version as records give it.
fn version_str(minor: u8) -> &'static str {
    // the table ends with "1.x", what any minor past 9 gives
    HTTP1_VERSIONS.get(minor as usize).copied().unwrap_or("1.x")
}

/// The causes of a gapped record: its messages' own; else (a response
/// whose request was never seen, a message flagged for its peer's loss)
/// `lost`, what the connection lost so far. Counted per cause.
fn causes_of(lost: GapCauses, req: Option<&Msg>, resp: Option<&Msg>, cx: &mut Ctx) -> GapCauses {
    let mut c = GapCauses::NONE;
    for m in [req, resp].into_iter().flatten() {
        if m.gap {
            c |= m.causes;
        }
    }
    if c.is_empty() {
        c = lost;
    }
    if c.is_empty() {
        // a response whose request never came, on a connection that
        // lost nothing it can see
        c = GapCauses::NOT_SEEN;
    }
    cx.stats.count_gap_causes(c);
    c
}

impl Http1Session {
    /// The record of `req` and `resp`, which are done with: what the
    /// record keeps whole (target, reason) is moved out of them, not copied.
    pub(super) fn emit_txn(&self, req: Option<&mut Msg>, resp: Option<&mut Msg>, cx: &mut Ctx) {
        emit_txn(self.lost, req, resp, cx);
    }

    /// The `http_message` record of `m`, when they are wanted.
    #[inline]
    pub(super) fn emit_msg(&self, m: &Msg, cx: &mut Ctx) {
        if cx.cfg.emit_messages {
            self.emit_msg_record(m, cx);
        }
    }

    fn emit_msg_record(&self, m: &Msg, cx: &mut Ctx) {
        let off = cx.cfg.realtime_offset_ns;
        let start = m.start_mono();
        let end = m.last_ts.max(start);
        let r = MsgRecord {
            kind: MSG_TYPE,
            protocol: NAME,
            message: if m.is_req {
                MsgKind::Request
            } else {
                MsgKind::Response
            },
            direction: m.dir,
            span: TimeSpan {
                start_ns: epoch_ns(start, off),
                end_ns: epoch_ns(end, off),
            },
            method: m.method.clone(),
            target: m.output_target(cx),
            path: m.path(),
            host: m.host(),
            http_version: version_str(m.minor),
            status: m.status,
            reason: m.reason.clone(),
            header_count: m.headers.len() as u32,
            header_bytes: m.header_bytes,
            body_bytes: m.body_bytes,
            content_type: m.content_type(),
            conn: cx.conn.fields(m.tid, cx.cfg.source),
            gap: m.gap,
            gap_cause: if m.gap {
                causes_of(self.lost, Some(m), None, cx)
            } else {
                GapCauses::NONE
            },
            truncated: m.truncated,
            interim: m.status.is_some_and(is_interim),
            upgraded: m.tunnel,
            incomplete: m.incomplete,
            headers: m.output_headers(cx),
        };
        cx.emit(Record::Message(Box::new(r)));
    }
}

/// The record of `req` and `resp`, which are done with: what the record
/// keeps whole (target, reason) is moved out of them, not copied. `lost`:
/// the session's [`Http1Session::lost`] (a free function, so that a
/// message still in the session's queues can be one of the two).
pub(super) fn emit_txn(
    lost: GapCauses,
    mut req: Option<&mut Msg>,
    mut resp: Option<&mut Msg>,
    cx: &mut Ctx,
) {
    if !cx.cfg.emit_transactions {
        // Still counted as processed, not emitted.
        return;
    }
    let host = req.as_deref().and_then(Msg::host);
    let (path, target) = match req.as_deref_mut() {
        Some(m) => m.take_path_and_output_target(cx),
        None => (None, None),
    };
    let reason = resp.as_deref_mut().and_then(|m| m.reason.take());
    let (req, resp) = (req.as_deref(), resp.as_deref());
    let Some(any) = req.or(resp) else { return };
    let start = any.start_mono();
    let end = resp.map(|r| r.last_ts).unwrap_or(any.last_ts).max(start);
    let off = cx.cfg.realtime_offset_ns;
    let gap = req.is_some_and(|m| m.gap) || resp.is_some_and(|m| m.gap) || req.is_none();
    let gap_cause = if gap {
        causes_of(lost, req, resp, cx)
    } else {
        GapCauses::NONE
    };
    let (latency_ns, ttfb_ns) = match (req, resp) {
        (Some(_), Some(r)) => {
            let first = r.interim.map(|(_, t)| t).unwrap_or(r.first_ts);
            (
                Some(r.last_ts.saturating_sub(start)),
                Some(first.saturating_sub(start)),
            )
        }
        _ => (None, None),
    };
    // written where it is kept: built on the stack, its 784 bytes were
    // copied into the box
    let mut b = Box::<Transaction>::new_uninit();
    let t = b.write(Transaction {
        kind: TXN_TYPE,
        protocol: NAME,
        span: TimeSpan {
            start_ns: epoch_ns(start, off),
            end_ns: epoch_ns(end, off),
        },
        latency_ns,
        ttfb_ns,
        method: req.and_then(|m| m.method.clone()),
        target,
        path,
        host,
        http_version: Some(version_str(any.minor)),
        status: resp.and_then(|m| m.status),
        reason,
        req_header_count: req.map(|m| m.headers.len() as u32),
        req_header_bytes: req.map(|m| m.header_bytes),
        resp_header_count: resp.map(|m| m.headers.len() as u32),
        resp_header_bytes: resp.map(|m| m.header_bytes),
        req_body_bytes: req.map(|m| m.body_bytes),
        resp_body_bytes: resp.map(|m| m.body_bytes),
        req_content_type: req.and_then(Msg::content_type),
        resp_content_type: resp.and_then(Msg::content_type),
        conn: cx.conn.fields(any.tid, cx.cfg.source),
        gap,
        gap_cause,
        truncated: req.is_some_and(|m| m.truncated) || resp.is_some_and(|m| m.truncated),
        no_response: req.is_some() && resp.is_none(),
        interim_status: resp.and_then(|m| m.interim.map(|(s, _)| s)),
        upgraded: upgraded(req, resp),
        incomplete: req.is_some_and(|m| m.incomplete),
        h2: None,
        req_headers: req.and_then(|m| m.output_headers(cx)),
        resp_headers: resp.and_then(|m| m.output_headers(cx)),
    });
    let _ = t;
    // SAFETY: written just above
    cx.emit(Record::Transaction(unsafe { b.assume_init() }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dropped message's allocation comes back blank: every field as
    /// `Msg::default()` gives it.
    #[test]
    fn a_recycled_message_is_blank() {
        let mut m = MsgBox::blank();
        m.is_req = true;
        m.dir = Direction::Ingress;
        m.method = Some("GET".into());
        m.target = Some(Text::new("/x"));
        m.status = Some(200);
        m.reason = Some(Text::new("OK"));
        m.minor = 1;
        m.headers = parser::Headers::from_pairs(&[("host", "h")]);
        m.header_bytes = 1;
        m.body_bytes = 2;
        m.first_ts = 3;
        m.first_start_ns = 4;
        m.last_ts = 5;
        m.tid = 6;
        m.gap = true;
        m.truncated = true;
        m.upgrade_intent = true;
        m.tunnel = true;
        m.interim = Some((100, 7));
        m.after_gap = true;
        m.incomplete = true;
        m.causes = GapCauses::MIDSTREAM;
        drop(m);
        let blank = format!("{:?}", Msg::default());
        for _ in 0..3 {
            let m = MsgBox::blank();
            assert_eq!(format!("{:?}", *m), blank);
        }
    }
}
