// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/1.x pairing: requests queue FIFO per connection (pipelining),
//! responses pop them; what is left at the end of a connection is emitted
//! unanswered or orphaned.

use super::framing::Mode;
use super::is_interim;
use super::record::{emit_txn, upgraded, Msg, MsgBox};
use super::Http1Session;
use crate::event::Direction;
use crate::protocol::{Ctx, EndReason, BOTH};

/// What [`Http1Session::answer`] did with a response.
enum Answer {
    /// Paired with a request, or emitted alone: done with.
    Done,
    /// Paired with a request to `Upgrade: h2c`: the connection is HTTP/2's.
    Switched,
    /// It waits (in the queue's front) for a request still to come.
    Wait,
}

/// What [`Http1Session::after_exchange`] needs of a paired exchange.
struct Exchange {
    upgraded: bool,
    upgrade_intent: bool,
    req_dir: Direction,
}

impl Http1Session {
    /// A message in direction `d` is complete (or abandoned).
    pub(super) fn finish(&mut self, d: Direction, mut m: MsgBox, cx: &mut Ctx) {
        {
            let dir = &mut self.dirs[d];
            if !matches!(dir.mode, Mode::Tunnel | Mode::Resync | Mode::Paused) {
                dir.mode = if m.is_req && m.upgrade_intent {
                    Mode::Paused
                } else {
                    Mode::Head
                };
            }
        }
        let cap = cx.cfg.max_pending.max(1);
        if m.is_req {
            self.emit_msg(&m, cx);
            self.reqs.push_back(m);
            if self.reqs.len() > cap {
                cx.stats.pending_overflow += 1;
                cx.stats.unanswered_requests += 1;
                if let Some(mut old) = self.reqs.pop_front() {
                    self.emit_txn(Some(&mut *old), None, cx);
                }
            }
        } else {
            let status = m.status.unwrap_or(0);
            if is_interim(status) {
                self.dirs[d].interim = Some((status, m.first_ts));
                self.emit_msg(&m, cx);
                return;
            }
            m.interim = self.dirs[d].interim.take();
            self.emit_msg(&m, cx);
            if self.resps.is_empty() {
                // the common case: answered (or orphaned) where it is,
                // not moved through the queue; queued only to wait
                if let Answer::Wait = self.answer(&mut m, cx) {
                    self.resps.push_back(m);
                }
                return;
            }
            self.resps.push_back(m);
            if self.resps.len() > cap {
                cx.stats.pending_overflow += 1;
                cx.stats.orphan_responses += 1;
                if let Some(mut old) = self.resps.pop_front() {
                    self.emit_txn(None, Some(&mut *old), cx);
                }
            }
        }
        self.pair(cx);
    }

    /// Pair queued responses with queued requests.
    pub(super) fn pair(&mut self, cx: &mut Ctx) {
        while let Some(mut resp) = self.resps.pop_front() {
            match self.answer(&mut resp, cx) {
                Answer::Done => {}
                Answer::Switched => return,
                Answer::Wait => {
                    self.resps.push_front(resp);
                    return;
                }
            }
        }
    }

    /// What becomes of `resp`, the oldest response not yet answered (taken
    /// out of the queue, or never in it): paired with the oldest waiting
    /// request, emitted as an orphan, or left to wait (nothing changed).
    fn answer(&mut self, resp: &mut Msg, cx: &mut Ctx) -> Answer {
        let resp_first_ts = resp.first_ts;
        let too_early = self
            .reqs
            .front()
            .is_some_and(|q| q.start_mono() > resp_first_ts);
        if !self.reqs.is_empty() && !too_early {
            if resp.after_gap {
                // Responses were lost: answer the newest request that
                // started before this response; older ones got no answer.
                while self.reqs.len() > 1 && self.reqs[1].first_ts <= resp_first_ts {
                    let Some(mut old) = self.reqs.pop_front() else {
                        break;
                    };
                    old.gap = true;
                    cx.stats.unanswered_requests += 1;
                    self.emit_txn(Some(&mut *old), None, cx);
                }
            }
            let Some(req) = self.reqs.front_mut() else {
                return Answer::Wait;
            };
            if super::record::is_h2c_upgrade(req, resp) {
                // the exchange is HTTP/2's stream 1: its record comes
                // from the HTTP/2 session
                if let Some(req) = self.reqs.pop_front() {
                    self.switch_to_h2c(&req, resp, cx);
                }
                return Answer::Switched;
            }
            // the request stays in its queue until its record is out:
            // a Msg (216 bytes) is not moved for it
            emit_txn(self.lost, Some(&mut *req), Some(&mut *resp), cx);
            let exchange = Exchange {
                upgraded: upgraded(Some(req), Some(resp)),
                upgrade_intent: req.upgrade_intent,
                req_dir: req.dir,
            };
            self.reqs.pop_front();
            self.after_exchange(exchange, cx);
            return Answer::Done;
        }
        // A response that began before the oldest waiting request was
        // sent cannot answer it; nor can one arriving while no request
        // is waiting or in progress.
        let idle = too_early
            || match cx.conn.request_dir() {
                Some(rd) => self.dirs[rd].is_idle(cx.streams[rd].holds),
                None => true,
            };
        if !idle {
            return Answer::Wait;
        }
        cx.stats.orphan_responses += 1;
        self.emit_txn(None, Some(resp), cx);
        Answer::Done
    }

    /// `Upgrade: h2c` answered 101: the connection is HTTP/2 from the byte
    /// after the 101's head (server to client) and after the request
    /// (client to server: the client preface follows). The tracker takes
    /// the hand-over once the current call returns; until then bytes are
    /// kept for the new session, not parsed.
    fn switch_to_h2c(&mut self, req: &Msg, resp: &Msg, cx: &mut Ctx) {
        cx.stats.upgrades += 1;
        cx.stats.h2c_upgrades += 1;
        let mut gap = req.gap || resp.gap;
        let mut causes = req.causes | resp.causes;
        for d in BOTH {
            let dir = &mut self.dirs[d];
            dir.mode = Mode::Paused;
            if let Some(m) = dir.cur.take() {
                // (cannot be: both messages are whole) never silently
                gap = true;
                causes |= m.causes | crate::record::GapCauses::UNPARSEABLE;
            }
        }
        self.reqs.clear();
        self.resps.clear();
        self.req_methods.clear();
        let mut up = req.h2c_upgrade(resp, cx);
        up.gap = gap;
        up.causes = causes;
        self.h2c = Some(Box::new(up));
        cx.hand_over();
    }

    /// After a paired exchange: the connection leaves HTTP (101, CONNECT
    /// 2xx), or a paused request direction resumes.
    fn after_exchange(&mut self, x: Exchange, cx: &mut Ctx) {
        if x.upgraded {
            cx.stats.upgrades += 1;
            for d in BOTH {
                self.drop_buf(d, cx);
                let dir = &mut self.dirs[d];
                dir.cur = None;
                dir.mode = Mode::Tunnel;
            }
            cx.drop_held_events();
            self.reqs.clear();
            self.resps.clear();
        } else if x.upgrade_intent && matches!(self.dirs[x.req_dir].mode, Mode::Paused) {
            let rd = x.req_dir;
            let dir = &mut self.dirs[rd];
            dir.mode = if dir.paused_gap {
                Mode::Resync
            } else {
                Mode::Head
            };
            dir.gap_pending |= dir.paused_gap;
            dir.paused_gap = false;
            self.dirty[rd] = true;
        }
    }

    /// The connection ends (after the session settled): messages in
    /// progress end, queued ones are emitted unpaired.
    pub(super) fn end_conn(&mut self, reason: EndReason, cx: &mut Ctx) {
        let order = match cx.conn.request_dir() {
            Some(Direction::Ingress) => [Direction::Ingress, Direction::Egress],
            _ => BOTH,
        };
        // at most one per direction: the bytes of a head not finished
        let mut partial = Vec::new();
        for d in order {
            partial.extend(self.partial_request(d, cx));
            let mode = std::mem::replace(&mut self.dirs[d].mode, Mode::Tunnel);
            cx.stats.bytes_dropped += self.drop_buf(d, cx);
            if let Some(mut m) = self.dirs[d].cur.take() {
                let clean = matches!(mode, Mode::Body(super::framing::Body::Close))
                    && reason == EndReason::Close;
                if !clean {
                    m.gap = true;
                    m.causes |= crate::record::GapCauses::INCOMPLETE;
                    self.lost |= crate::record::GapCauses::INCOMPLETE;
                    if m.is_req {
                        // its body did not come whole
                        m.incomplete = true;
                        cx.stats.incomplete_requests += 1;
                    }
                }
                self.finish(d, m, cx);
            }
        }
        self.pair(cx);
        // Requests left unanswered while their response stream had lost
        // bytes may well have been answered: flag them.
        let resp_lost = match cx.conn.request_dir() {
            Some(rd) => self.dirs[rd.opposite()].gap_pending,
            None => false,
        };
        while let Some(mut req) = self.reqs.pop_front() {
            req.gap |= resp_lost;
            cx.stats.unanswered_requests += 1;
            self.emit_txn(Some(&mut *req), None, cx);
        }
        while let Some(mut resp) = self.resps.pop_front() {
            cx.stats.orphan_responses += 1;
            self.emit_txn(None, Some(&mut *resp), cx);
        }
        // last: a head not finished is the last request of its direction
        for mut m in partial {
            cx.stats.incomplete_requests += 1;
            self.emit_msg(&m, cx);
            self.emit_txn(Some(&mut m), None, cx);
        }
    }
}
