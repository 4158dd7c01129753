// SPDX-License-Identifier: GPL-3.0-or-later
//! gRPC over HTTP/2: an HTTP/2 stream whose `content-type` is
//! `application/grpc` (or `application/grpc+proto`, `;…`) is one RPC. Its
//! service and method come from `:path` (`/package.Service/Method`), its
//! status from `grpc-status`/`grpc-message` (the trailers, or a
//! trailers-only response), and its message counts from the 5-byte
//! length prefixes in the DATA payloads ([`Messages`]), followed across
//! frames and syscalls without buffering a body.

/// Does a `content-type` name gRPC?
pub fn is_grpc(content_type: &str) -> bool {
    let ct = content_type.trim_start().as_bytes();
    const G: &[u8] = b"application/grpc";
    ct.len() >= G.len()
        && ct[..G.len()].eq_ignore_ascii_case(G)
        && matches!(ct.get(G.len()), None | Some(b'+' | b';' | b' '))
}

/// (service, method) of a gRPC `:path`: `/pkg.Service/Method`. The query
/// (none in gRPC) is left out.
pub fn service_method(path: &str) -> (Option<String>, Option<String>) {
    let p = crate::protocol::without_query(path);
    let p = p.strip_prefix('/').unwrap_or(p);
    match p.rsplit_once('/') {
        Some((s, m)) => (
            (!s.is_empty()).then(|| s.to_string()),
            (!m.is_empty()).then(|| m.to_string()),
        ),
        None => ((!p.is_empty()).then(|| p.to_string()), None),
    }
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2, "Responses"): `%XX`
/// becomes the byte; a `%` not followed by two hex digits stays as it is;
/// bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let hex = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a direction's message framing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a length prefix: bytes of it so far.
    Prefix { have: u8, buf: [u8; 5] },
    /// A message's bytes going by: bytes left.
    Body(u64),
    /// A prefix went by uncaptured (or the stream lost bytes): counts
    /// are a lower bound from here.
    Lost,
}

/// The gRPC messages of one side of an RPC, counted from their 5-byte
/// prefixes (compressed flag, 32-bit length) in the DATA payload bytes in
/// order. Only the prefix (at most 5 bytes) is ever kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Messages {
    state: State,
    /// Messages whose prefix was seen.
    pub count: u32,
    /// A message had the compressed flag set.
    pub compressed: bool,
    /// The prefix that was not seen lay in bytes the kernel could not
    /// read (a failed read, not the capture cap).
    pub fault: bool,
}

impl Default for Messages {
    fn default() -> Messages {
        Messages {
            state: State::Prefix {
                have: 0,
                buf: [0; 5],
            },
            count: 0,
            compressed: false,
            fault: false,
        }
    }
}

impl Messages {
    /// DATA payload bytes, in order.
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            match &mut self.state {
                State::Lost => return,
                State::Body(left) => {
                    let n = (*left).min(b.len() as u64);
                    *left -= n;
                    b = &b[n as usize..];
                    if *left == 0 {
                        self.state = State::Prefix {
                            have: 0,
                            buf: [0; 5],
                        };
                    }
                }
                State::Prefix { have, buf } => {
                    let n = (5 - *have as usize).min(b.len());
                    buf[*have as usize..*have as usize + n].copy_from_slice(&b[..n]);
                    *have += n as u8;
                    b = &b[n..];
                    if *have == 5 {
                        self.count = self.count.saturating_add(1);
                        self.compressed |= buf[0] & 1 != 0;
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
                        self.state = if len == 0 {
                            State::Prefix {
                                have: 0,
                                buf: [0; 5],
                            }
                        } else {
                            State::Body(len as u64)
                        };
                    }
                }
            }
        }
    }

    /// `n` DATA payload bytes went by uncaptured (`fault`: for a failed
    /// read): exact inside a message body, lost when they held (part of) a
    /// prefix.
    pub fn skip(&mut self, n: u64, fault: bool) {
        if n == 0 {
            return;
        }
        match &mut self.state {
            State::Body(left) if n <= *left => {
                *left -= n;
                if *left == 0 {
                    self.state = State::Prefix {
                        have: 0,
                        buf: [0; 5],
                    };
                }
            }
            State::Lost => {}
            _ => {
                self.state = State::Lost;
                self.fault = fault;
            }
        }
    }

    /// Bytes of the stream were lost: the framing is unknown.
    pub fn lose(&mut self) {
        self.state = State::Lost;
    }

    /// The count is a lower bound (a prefix was not seen).
    pub fn lost(&self) -> bool {
        self.state == State::Lost
    }

    /// Why the count is a lower bound: a prefix past the capture cap, or
    /// in bytes the kernel could not read; none when it is exact.
    pub fn lost_cause(&self) -> crate::record::GapCauses {
        use crate::record::GapCauses as G;
        match (self.lost(), self.fault) {
            (false, _) => G::NONE,
            (true, false) => G::CAPTURE_CAP,
            (true, true) => G::READ_FAULT,
        }
    }

    /// The payload ended in the middle of a message (a stream cut short).
    pub fn mid_message(&self) -> bool {
        match self.state {
            State::Prefix { have, .. } => have > 0,
            State::Body(_) => true,
            State::Lost => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(compressed: bool, body: &[u8]) -> Vec<u8> {
        let mut v = vec![compressed as u8];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn content_types() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "Application/GRPC; charset=x",
            "application/grpc;x",
        ] {
            assert!(is_grpc(ct), "{ct}");
        }
        for ct in [
            "application/grpc-web",
            "application/json",
            "",
            "application/grp",
        ] {
            assert!(!is_grpc(ct), "{ct}");
        }
    }

    #[test]
    fn paths() {
        let sm = |p| service_method(p);
        assert_eq!(
            sm("/helloworld.Greeter/SayHello"),
            (Some("helloworld.Greeter".into()), Some("SayHello".into()))
        );
        assert_eq!(sm("/a.b.C/D?x"), (Some("a.b.C".into()), Some("D".into())));
        assert_eq!(sm("/Svc"), (Some("Svc".into()), None));
        assert_eq!(sm("/"), (None, None));
        assert_eq!(sm(""), (None, None));
        assert_eq!(sm("//M"), (None, Some("M".into())));
    }

    #[test]
    fn messages_are_percent_decoded() {
        assert_eq!(percent_decode("no%20such%20user"), "no such user");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
        assert_eq!(percent_decode(""), "");
    }

    #[test]
    fn counts_messages_split_anywhere() {
        let mut all = Vec::new();
        all.extend(msg(false, b"hello"));
        all.extend(msg(true, &[7; 300]));
        all.extend(msg(false, b""));
        all.extend(msg(false, b"x"));
        for cut1 in 0..all.len() {
            for cut2 in [cut1, (cut1 + 3).min(all.len()), all.len()] {
                let mut m = Messages::default();
                m.feed(&all[..cut1]);
                m.feed(&all[cut1..cut2]);
                m.feed(&all[cut2..]);
                assert_eq!((m.count, m.compressed), (4, true), "{cut1} {cut2}");
                assert!(!m.mid_message() && !m.lost());
            }
        }
    }

    #[test]
    fn uncaptured_bodies_are_skipped_exactly_prefixes_are_not() {
        let big = msg(false, &[1; 1000]);
        let mut m = Messages::default();
        m.feed(&big[..10]);
        m.skip(big.len() as u64 - 10, false);
        m.feed(&msg(false, b"ab"));
        assert_eq!(m.count, 2);
        assert!(!m.lost());
        assert_eq!(m.lost_cause(), crate::record::GapCauses::NONE);
        // the next prefix went by unseen: past the capture cap, or in bytes
        // the kernel could not read
        for fault in [false, true] {
            let mut m = m;
            m.skip(6, fault);
            assert!(m.lost());
            assert_eq!(
                m.lost_cause(),
                if fault {
                    crate::record::GapCauses::READ_FAULT
                } else {
                    crate::record::GapCauses::CAPTURE_CAP
                }
            );
            m.feed(&msg(false, b"ab"));
            assert_eq!(m.count, 2);
        }
        let mut m = Messages::default();
        m.feed(&big[..3]);
        assert!(m.mid_message());
        m.lose();
        assert!(m.lost() && !m.mid_message());
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut m = Messages::default();
        m.feed(&[0, 0xff, 0xff, 0xff, 0xff]);
        m.skip(u32::MAX as u64, false);
        m.feed(&[1, 0, 0, 0, 0]);
        assert_eq!((m.count, m.compressed, m.lost()), (2, true, false));
    }
}
