// SPDX-License-Identifier: GPL-3.0-or-later
//! The protocol seam. The connection table and reassembly (`crate::track`)
//! know nothing of any protocol: they hand each connection's two ordered
//! byte streams, with their holes, to a [`Session`] of the [`Protocol`]
//! that [`detect`]s it. A protocol frames messages out of those bytes,
//! matches requests to responses and builds its records.
//!
//! Adding a protocol is one folder under `src/protocol/` and one line in
//! [`REGISTRY`] (docs/architecture.md walks through it).

pub mod buffer;
pub mod http1;
pub mod http2;
mod target;

pub use target::without_query;

use std::ops::{Index, IndexMut};
use std::sync::Arc;

use crate::event::{ConnId, Direction, ProcInfo, Role, SockAddrs, TlsLibrary};
use crate::jsonline::ConnBlocks;
use crate::record::{ConnFields, Record, Source};
use crate::track::{TrackerConfig, TrackerStats};

/// Every protocol Osprey parses, in detection order. The first is also
/// the fallback for a connection no protocol claims: it resynchronises
/// on its own message starts (a connection seen mid-stream begins in the
/// middle of a message).
pub static REGISTRY: &[&dyn Protocol] = &[&http1::Http1, &http2::Http2];

/// How sure a protocol is that a connection speaks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detect {
    No,
    /// Only the port suggests it.
    Port,
    /// The first bytes are this protocol's.
    Bytes,
}

/// What detection knows besides the first bytes.
#[derive(Clone, Copy, Debug)]
pub struct Hint {
    /// The direction the first bytes went, seen from the traced process.
    pub dir: Direction,
    pub role: Role,
    pub local_port: Option<u16>,
    pub remote_port: Option<u16>,
}

/// One protocol: a unit value in [`REGISTRY`].
pub trait Protocol: Sync {
    /// The records' `protocol` field.
    fn name(&self) -> &'static str;
    /// Does a connection whose first captured bytes are `first` speak it?
    fn detect(&self, first: &[u8], hint: &Hint) -> Detect;
    /// A parser for one connection.
    fn session(&self) -> Box<dyn Session>;
}

/// Why a connection that carried traffic may give no records: what its
/// first bytes were, when no protocol of the [`REGISTRY`] parses them.
/// The tracker counts such connections that ended without a record
/// ([`TrackerStats`]'s `blind_*`), and the run's summary names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blind {
    /// A TLS record: a handshake (`16 03`), or for a connection seen
    /// mid-stream another record type (`14`–`17`, `03`). Osprey sees the
    /// bytes at the syscalls, encrypted.
    Tls,
    /// No protocol recognised the first bytes.
    Unknown,
}

impl Blind {
    /// A protocol Osprey knows but does not parse, by its first bytes.
    /// Such a connection gets no session (the fallback would only make
    /// bogus records of it).
    pub fn unparsed(first: &[u8]) -> Option<Blind> {
        match first {
            [0x14..=0x17, 0x03, ..] => Some(Blind::Tls),
            _ => None,
        }
    }

    /// What a connection whose first bytes are `first` is blind to, if a
    /// registered protocol does not recognise them (a port hint is not
    /// enough).
    pub fn of(registry: &[&'static dyn Protocol], first: &[u8], hint: &Hint) -> Option<Blind> {
        if first.is_empty() {
            return None;
        }
        Blind::unparsed(first).or_else(|| {
            let parsed = registry
                .iter()
                .any(|p| p.detect(first, hint) == Detect::Bytes);
            (!parsed).then_some(Blind::Unknown)
        })
    }

    /// Count one connection that ended without a record.
    pub fn count(self, stats: &mut TrackerStats) {
        match self {
            Blind::Tls => stats.blind_tls += 1,
            Blind::Unknown => stats.blind_unknown += 1,
        }
    }
}

/// The protocol for a connection: the most confident detection, ties to
/// the earlier entry; none at all gives the first entry. A protocol
/// Osprey recognises but does not parse ([`Blind::unparsed`]) gives none.
pub fn detect(
    registry: &[&'static dyn Protocol],
    first: &[u8],
    hint: &Hint,
) -> Option<&'static dyn Protocol> {
    if Blind::unparsed(first).is_some() {
        return None;
    }
    let mut best: Option<(Detect, &'static dyn Protocol)> = None;
    for &p in registry {
        let d = p.detect(first, hint);
        if d > Detect::No && best.is_none_or(|(b, _)| d > b) {
            best = Some((d, p));
        }
    }
    best.map(|(_, p)| p).or_else(|| registry.first().copied())
}

/// When and by whom bytes moved, carried from the event to the messages
/// built of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// When the syscall (or socket call) returned, monotonic ns.
    pub ts: u64,
    /// When it was entered (0: not known).
    pub start_ns: u64,
    pub tid: u32,
}

/// In-order bytes of one direction: `bytes` (possibly empty) captured at
/// stream position `at`, then `uncaptured` bytes that moved without being
/// copied (the capture cap; with `fault`, a read of the process's buffer
/// that failed: gap cause `read_fault`). Positions are exact either way.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    pub bytes: &'a [u8],
    pub at: u64,
    pub uncaptured: u64,
    pub stamp: Stamp,
    /// The event's record was flagged `F_READ_FAULT`.
    pub fault: bool,
}

impl Chunk<'_> {
    /// Why the `uncaptured` bytes are missing.
    pub fn uncaptured_cause(&self) -> crate::record::GapCauses {
        if self.fault {
            crate::record::GapCauses::READ_FAULT
        } else {
            crate::record::GapCauses::CAPTURE_CAP
        }
    }
}

/// Why a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The process closed it (a clean end for a close-delimited body).
    Close,
    Expire,
    Evict,
    Flush,
}

/// One connection's parser. Called with each direction's bytes in stream
/// order; it keeps its own buffers (bounded by `cfg.max_buf_bytes`) and
/// emits records through [`Ctx::emit`].
pub trait Session: Send {
    /// Direction `d` sees its first bytes at `cx.streams[d].next_pos`;
    /// `known_start`: that is the start of the connection.
    fn start(&mut self, d: Direction, known_start: bool, cx: &mut Ctx);
    /// The next bytes of direction `d`.
    fn data(&mut self, d: Direction, chunk: Chunk, cx: &mut Ctx);
    /// `n` bytes of direction `d`, ending at `cx.streams[d].next_pos`, are
    /// missing (ring-buffer drop, held events given up on): resynchronise.
    fn gap(&mut self, d: Direction, n: u64, ts: u64, cx: &mut Ctx);
    /// Work left after a batch of calls (pairing across directions).
    fn settle(&mut self, cx: &mut Ctx);
    /// The connection ends: emit what is left.
    fn end(&mut self, reason: EndReason, cx: &mut Ctx);
    /// Give back memory an idle connection does not need.
    fn compact(&mut self) {}
    /// Bytes direction `d` has buffered (for memory bounds).
    fn buffered(&self, d: Direction) -> usize;
    /// The connection changed protocol (an HTTP/1.1 upgrade to h2c): the
    /// session that parses it from now on, and the bytes this one took
    /// that belong to it. Asked for only after the session called
    /// [`Ctx::hand_over`].
    fn take_handover(&mut self) -> Option<Handover> {
        None
    }
}

/// A connection's parser replaced mid-connection (see
/// [`Session::take_handover`]). The tracker starts `session` on every
/// direction that has begun, at the position of that direction's
/// [`Rest`], hands it the rest's bytes, and gives it all later ones.
pub struct Handover {
    pub session: Box<dyn Session>,
    pub rest: PerDir<Rest>,
}

/// A direction's bytes from the switch on that the old session had
/// already been given: captured pieces in order (bytes, their stream
/// position, their stamp), then `uncaptured` bytes that moved uncopied
/// (`fault`: some of them because a read of the process's buffer failed).
#[derive(Default)]
pub struct Rest {
    pub pieces: Vec<(Vec<u8>, u64, Stamp)>,
    pub uncaptured: u64,
    pub fault: bool,
}

/// A value per direction, indexed by [`Direction`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerDir<T>(pub [T; 2]);

impl<T> Index<Direction> for PerDir<T> {
    type Output = T;
    fn index(&self, d: Direction) -> &T {
        &self.0[d.index()]
    }
}

impl<T> IndexMut<Direction> for PerDir<T> {
    fn index_mut(&mut self, d: Direction) -> &mut T {
        &mut self.0[d.index()]
    }
}

impl<T> PerDir<T> {
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.0.iter_mut()
    }
}

/// Both directions, egress first.
pub const BOTH: [Direction; 2] = [Direction::Egress, Direction::Ingress];

/// What a session sees of a direction's reassembly.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamView {
    /// The stream position just past the last byte accounted for.
    pub next_pos: u64,
    /// Events are held waiting for missing positions before them.
    pub holds: bool,
}

/// A connection as records name it.
pub struct ConnInfo {
    pub id: ConnId,
    pub role: Role,
    pub addrs: Option<SockAddrs>,
    pub proc: ProcInfo,
    /// Who opened it (all null until an OPEN record says).
    pub ident: crate::identity::ConnIdentity,
    /// The records come from TLS plaintext captured at this library.
    pub tls: Option<TlsLibrary>,
    labels: Option<Labels>,
    /// The last record's connection fields, with the JSON writer's memo of
    /// them (`ConnBlocks`), shared by the records while those fields stay
    /// the same; made anew by the first record after one of them changed
    /// (the thread, the addresses, the role, the identity, TLS, the
    /// source). None while memos are off.
    last: Option<Arc<ConnFields>>,
    /// Memos may be made and kept: the tracker's table is at or below
    /// its eager-release threshold (see [`ConnInfo::set_memo`]).
    memo: bool,
}

/// The per-connection strings every record repeats, made once.
struct Labels {
    conn_id: Arc<str>,
    comm: Arc<str>,
    local_addr: Option<Arc<str>>,
    remote_addr: Option<Arc<str>>,
}

impl ConnInfo {
    pub fn new(id: ConnId, role: Role, addrs: Option<SockAddrs>, proc: ProcInfo) -> ConnInfo {
        ConnInfo {
            id,
            role,
            addrs,
            proc,
            ident: crate::identity::ConnIdentity {
                ident: crate::identity::Identity::empty(),
                exe: None,
            },
            tls: None,
            labels: None,
            last: None,
            memo: true,
        }
    }

    /// Addresses learnt late (an OPEN after the first data).
    pub fn set_addrs(&mut self, addrs: Option<SockAddrs>) {
        self.addrs = addrs;
        self.labels = None;
    }

    fn labels(&mut self) -> &Labels {
        let (id, proc_, addrs) = (&self.id, &self.proc, &self.addrs);
        self.labels.get_or_insert_with(|| Labels {
            conn_id: id.to_string().into(),
            comm: proc_.comm.shared(),
            local_addr: addrs.map(|a| a.local.ip().to_string().into()),
            remote_addr: addrs.map(|a| a.remote.ip().to_string().into()),
        })
    }

    /// Whether the records may share a memo of their connection fields
    /// (the tracker: while its table is at or below the threshold above
    /// which idle connections give their buffers back). Off, the memo held
    /// is dropped and none is made: lines are written field by field, the
    /// same bytes; on again, the next record makes one.
    pub fn set_memo(&mut self, on: bool) {
        self.memo = on;
        if !on {
            self.last = None;
        }
    }

    /// Holds a memo of its records' connection fields.
    pub fn has_memo(&self) -> bool {
        self.last.as_ref().is_some_and(|f| f.blocks.is_some())
    }

    /// (local, remote) ports.
    pub fn ports(&self) -> (Option<u16>, Option<u16>) {
        match &self.addrs {
            Some(a) => (Some(a.local.port()), Some(a.remote.port())),
            None => (None, None),
        }
    }

    /// The connection fields every record embeds; `tid`: the thread that
    /// moved the record's first bytes. Wire records have no process. While
    /// memos are on, the last record's fields are shared with the next
    /// one (one reference more, not a copy of each string's) until one of
    /// them changes.
    pub fn fields(&mut self, tid: u32, source: Source) -> Arc<ConnFields> {
        if let Some(f) = &self.last {
            if self.is_run_of(f, tid, source) {
                return f.clone();
            }
        }
        let mut f = self.build_fields(tid, source);
        if !self.memo {
            return Arc::new(f);
        }
        // the JSON writer's memo goes on while only `pid`/`tid` changed
        f.blocks = match &self.last {
            Some(last) if last.blocks.is_for(&f) => last.blocks.clone(),
            _ => ConnBlocks::of(&f),
        };
        let f = Arc::new(f);
        self.last = Some(f.clone());
        f
    }

    /// [`ConnInfo::fields`] made anew, without a memo.
    pub(crate) fn build_fields(&mut self, tid: u32, source: Source) -> ConnFields {
        let (local_port, remote_port) = self.ports();
        let (tgid, role, tls) = (self.proc.tgid, self.role, self.tls);
        let ebpf = source == Source::Ebpf;
        let (ident, exe) = if ebpf {
            (self.ident.ident.clone(), self.ident.exe.clone())
        } else {
            (crate::identity::Identity::empty(), None)
        };
        let l = self.labels();
        ConnFields {
            pid: ebpf.then_some(tgid),
            tid: ebpf.then_some(tid),
            comm: ebpf.then(|| l.comm.clone()),
            conn_id: l.conn_id.clone(),
            role,
            local_addr: l.local_addr.clone(),
            local_port,
            remote_addr: l.remote_addr.clone(),
            remote_port,
            source,
            ident,
            exe,
            tls: tls.is_some(),
            tls_library: tls.map(TlsLibrary::as_str),
            blocks: ConnBlocks::default(),
        }
    }

    /// `f` is what [`ConnInfo::fields`] would make now: the same strings
    /// (the same allocations), identity, ports, role and TLS library.
    fn is_run_of(&self, f: &ConnFields, tid: u32, source: Source) -> bool {
        use crate::jsonline::same_str as same;
        let Some(l) = &self.labels else {
            return false;
        };
        let ebpf = source == Source::Ebpf;
        let (local_port, remote_port) = self.ports();
        f.source == source
            && f.tid == ebpf.then_some(tid)
            && f.pid == ebpf.then_some(self.proc.tgid)
            && f.role == self.role
            && f.local_port == local_port
            && f.remote_port == remote_port
            && f.tls_library == self.tls.map(TlsLibrary::as_str)
            && Arc::ptr_eq(&f.conn_id, &l.conn_id)
            && same(&f.local_addr, &l.local_addr)
            && same(&f.remote_addr, &l.remote_addr)
            && if ebpf {
                f.comm.as_ref().is_some_and(|c| Arc::ptr_eq(c, &l.comm))
                    && Arc::ptr_eq(&f.ident, &self.ident.ident)
                    && same(&f.exe, &self.ident.exe)
            } else {
                f.comm.is_none()
                    && f.exe.is_none()
                    && Arc::ptr_eq(&f.ident, &crate::identity::Identity::empty())
            }
    }

    /// The direction that carries requests, once the role is known.
    pub fn request_dir(&self) -> Option<Direction> {
        match self.role {
            Role::Client => Some(Direction::Egress),
            Role::Server => Some(Direction::Ingress),
            Role::Unknown => None,
        }
    }
}

/// What a session works with during one call.
pub struct Ctx<'a> {
    pub cfg: &'a TrackerConfig,
    pub stats: &'a mut TrackerStats,
    pub conn: &'a mut ConnInfo,
    pub streams: PerDir<StreamView>,
    out: &'a mut Vec<Record>,
    drop_held: bool,
    handover: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(
        cfg: &'a TrackerConfig,
        stats: &'a mut TrackerStats,
        conn: &'a mut ConnInfo,
        streams: PerDir<StreamView>,
        out: &'a mut Vec<Record>,
    ) -> Ctx<'a> {
        Ctx {
            cfg,
            stats,
            conn,
            streams,
            out,
            drop_held: false,
            handover: false,
        }
    }

    pub fn emit(&mut self, r: Record) {
        self.stats.records_emitted += 1;
        match r {
            Record::Transaction(_) => self.stats.transactions += 1,
            Record::Message(_) => self.stats.messages += 1,
        }
        self.out.push(r);
    }

    /// The connection no longer carries a protocol Osprey parses (an
    /// upgrade): events held for reordering are dropped, not replayed.
    pub fn drop_held_events(&mut self) {
        self.drop_held = true;
        for s in self.streams.iter_mut() {
            s.holds = false;
        }
    }

    pub fn wants_held_dropped(&self) -> bool {
        self.drop_held
    }

    /// The connection switches protocol: once the current call returns,
    /// the tracker takes [`Session::take_handover`] and goes on with the
    /// new session. The current call should take no further bytes.
    pub fn hand_over(&mut self) {
        self.handover = true;
    }

    pub fn wants_handover(&self) -> bool {
        self.handover
    }
}
