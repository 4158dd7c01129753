// SPDX-License-Identifier: GPL-3.0-or-later
//! A connection's fields as its JSON lines write them, rendered once.
//!
//! Every line of a connection repeats its `comm` … `tls_library` fields
//! (`conn_id`, role, addresses, cgroup, container/Pod, node, exe, TLS),
//! unchanged over the hundreds of transactions of a keep-alive connection;
//! only `pid` and `tid`, written before them, are not part of the run. The
//! tracker gives every record of a connection the same [`ConnBlocks`]
//! (`ConnInfo::fields`; a new one whenever a field of the run changes:
//! addresses, role, identity, TLS, source); the writer renders the run into it
//! once per record format, the first time a line needs it, and copies it
//! into every later line in one move.
//!
//! A memo costs ≈ 0.6 KiB, so the tracker lets a connection have one only
//! while its table holds at most `COMPACT_EAGER_CONNS` (1,024) connections
//! (`ConnInfo::set_memo`): above that none is made, a connection's is
//! dropped at its next event or tick, and its records carry none (written
//! field by field, the same bytes) — at most 1,024 memos per tracker.
//!
//! The memo can never say something the record does not: it keeps the
//! fields it was made for, and is used only for a record whose fields are
//! those same values (their `Arc`s the same allocations, the
//! rest equal); any other record (one changed after it was made, one read
//! back from a line) is written field by field, as one without a memo is.

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::writer::W;
use crate::record::ConnFields;

/// The JSON writer's memo of one connection's fields, shared by every
/// record of the connection: an opaque slot on [`ConnFields`] (no part of
/// the record's value — always equal, never serialised; the metrics and
/// ClickHouse sinks read the fields themselves).
#[derive(Clone, Default)]
pub struct ConnBlocks(Option<Arc<Slots>>);

struct Slots {
    /// The fields it is a memo of (its own memo empty: no cycle).
    of: ConnFields,
    full: OnceLock<Block>,
    compact: OnceLock<Block>,
}

/// The run in one format.
pub(super) struct Block {
    pub(super) bytes: Box<[u8]>,
    /// Where `node`'s value begins (as [`super::conn_span`] says).
    pub(super) node_at: usize,
}

impl ConnBlocks {
    /// A memo, empty yet, for records with `fields` (`pid`, `tid` and
    /// `fields`' own memo aside).
    pub fn of(fields: &ConnFields) -> ConnBlocks {
        let mut of = fields.clone();
        of.blocks = ConnBlocks::default();
        ConnBlocks(Some(Arc::new(Slots {
            of,
            full: OnceLock::new(),
            compact: OnceLock::new(),
        })))
    }

    /// Has a slot (records made by the tracker), not yet rendered or not.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// Is a memo for records with `fields` (`pid`, `tid` aside).
    pub fn is_for(&self, fields: &ConnFields) -> bool {
        self.0.as_deref().is_some_and(|s| same_run(&s.of, fields))
    }
}

impl PartialEq for ConnBlocks {
    /// A memo is no part of a record's value.
    fn eq(&self, _: &ConnBlocks) -> bool {
        true
    }
}

impl fmt::Debug for ConnBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnBlocks")
    }
}

/// `c`'s run in the line format `COMPACT`, from its memo (rendered now if
/// this is its first line in that format); None when it has no memo, or
/// when its fields are not those the memo was made for.
#[inline(always)]
pub(super) fn block<const COMPACT: bool>(c: &ConnFields) -> Option<&Block> {
    let slots = c.blocks.0.as_deref()?;
    if !same_run(&slots.of, c) {
        return None;
    }
    let cell = if COMPACT { &slots.compact } else { &slots.full };
    Some(cell.get_or_init(|| render::<COMPACT>(c)))
}

#[cold]
#[inline(never)]
fn render<const COMPACT: bool>(c: &ConnFields) -> Block {
    let mut bytes = Vec::new();
    let mut w = W::<COMPACT>::new(&mut bytes);
    let node_at = super::conn_span(&mut w, c);
    w.done();
    Block {
        bytes: bytes.into_boxed_slice(),
        node_at,
    }
}

/// Both the same allocation, or both none.
#[inline(always)]
pub(crate) fn same(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The fields of the run are the same values: strings the same `Arc`s
/// (immutable, kept alive by the memo: equal contents), the rest equal.
#[inline(always)]
fn same_run(a: &ConnFields, b: &ConnFields) -> bool {
    Arc::ptr_eq(&a.conn_id, &b.conn_id)
        && same(&a.comm, &b.comm)
        && a.role == b.role
        && same(&a.local_addr, &b.local_addr)
        && a.local_port == b.local_port
        && same(&a.remote_addr, &b.remote_addr)
        && a.remote_port == b.remote_port
        && a.source == b.source
        && Arc::ptr_eq(&a.ident, &b.ident)
        && same(&a.exe, &b.exe)
        && a.tls == b.tls
        && a.tls_library == b.tls_library
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{base, full_identity};
    use super::super::{write_transaction_node_as, RecordFormat};
    use super::*;
    use crate::event::{ConnId, ProcInfo, Role, SockAddrs, TlsLibrary};
    use crate::identity::{ConnIdentity, Identity};
    use crate::protocol::ConnInfo;
    use crate::record::{Source, Transaction};

    const FORMATS: [RecordFormat; 2] = [RecordFormat::Full, RecordFormat::Compact];

    /// The line and `node`'s offset.
    fn line(t: &Transaction, f: RecordFormat) -> (String, usize) {
        let mut out = Vec::new();
        let at = write_transaction_node_as(t, f, &mut out);
        (String::from_utf8(out).unwrap(), at)
    }

    /// `t`'s line in `f` through its memo is the line written field by
    /// field (the memo taken away), node offset included, and again on a
    /// second use of the memo. True if the memo's block was used.
    fn same_as_plain(t: &Transaction, f: RecordFormat) -> bool {
        let mut plain = t.clone();
        plain.conn_mut().blocks = ConnBlocks::default();
        let want = line(&plain, f);
        assert_eq!(line(t, f), want, "{f:?}");
        assert_eq!(line(t, f), want, "{f:?}, second use");
        match f {
            RecordFormat::Full => block::<false>(&t.conn).is_some(),
            RecordFormat::Compact => block::<true>(&t.conn).is_some(),
        }
    }

    fn with_memo(mut t: Transaction) -> Transaction {
        t.conn_mut().blocks = ConnBlocks::of(&t.conn);
        t
    }

    #[test]
    fn a_block_writes_the_fields_byte_for_byte() {
        let mut shapes = vec![base()];
        // container/Pod identity, node, exe (one value needing escapes)
        let mut i = base();
        i.conn_mut().ident = full_identity();
        i.conn_mut().exe = Some("/usr/bin/app".into());
        i.conn_mut().tls = true;
        i.conn_mut().tls_library = Some("openssl");
        shapes.push(i.clone());
        // only a node (compact: node's offset where a null one would be)
        let mut n = base();
        n.conn_mut().ident = Arc::new(Identity {
            node: Some("n".into()),
            ..Default::default()
        });
        shapes.push(n);
        // no addresses, wire source, no process, unknown role
        let mut w = base();
        w.conn_mut().local_addr = None;
        w.conn_mut().local_port = None;
        w.conn_mut().remote_addr = None;
        w.conn_mut().remote_port = None;
        w.conn_mut().source = Source::Wire;
        w.conn_mut().pid = None;
        w.conn_mut().tid = None;
        w.conn_mut().comm = None;
        w.conn_mut().role = Role::Unknown;
        shapes.push(w);
        // HTTP/2 with identity
        let mut h = i;
        h.protocol = crate::record::HTTP2;
        h.h2 = Some(Default::default());
        shapes.push(h);
        for t in shapes {
            for f in FORMATS {
                assert!(same_as_plain(&with_memo(t.clone()), f), "{f:?} {t:?}");
            }
        }
    }

    #[test]
    fn a_record_changed_after_its_block_was_made_is_written_field_by_field() {
        let t = with_memo(base());
        for f in FORMATS {
            assert!(same_as_plain(&t, f));
        }
        let changes: [fn(&mut Transaction); 8] = [
            |t| t.conn_mut().comm = Some("nginx".into()), // equal text, another Arc
            |t| t.conn_mut().conn_id = "other".into(),
            |t| t.conn_mut().role = Role::Client,
            |t| t.conn_mut().local_port = Some(1),
            |t| t.conn_mut().remote_addr = None,
            |t| t.conn_mut().ident = Arc::new(Identity::default()),
            |t| t.conn_mut().exe = Some("/x".into()),
            |t| {
                t.conn_mut().tls = true;
                t.conn_mut().tls_library = Some("go")
            },
        ];
        for change in changes {
            let mut u = t.clone();
            change(&mut u);
            for f in FORMATS {
                assert!(!same_as_plain(&u, f), "{f:?} {u:?}");
            }
        }
        // pid and tid are not in the run
        let mut u = t.clone();
        u.conn_mut().pid = Some(1);
        u.conn_mut().tid = Some(2);
        for f in FORMATS {
            assert!(same_as_plain(&u, f));
        }
    }

    fn conn(addrs: Option<SockAddrs>) -> ConnInfo {
        let id = ConnId {
            tgid: 28889,
            proc_start_ns: 16_368_822_068_290,
            fd: 5,
            gen: 2,
        };
        let proc_ = ProcInfo {
            tgid: 28889,
            tid: 28889,
            comm: "nginx".into(),
        };
        ConnInfo::new(id, Role::Unknown, addrs, proc_)
    }

    /// A record of `c` now, by thread `tid`: its fields those made anew.
    fn record(c: &mut ConnInfo, tid: u32, source: Source) -> Transaction {
        let mut t = base();
        t.conn = c.fields(tid, source);
        assert_eq!(*t.conn, c.build_fields(tid, source));
        t
    }

    /// The two records' fields are one allocation (not only one memo).
    fn same_fields(a: &Transaction, b: &Transaction) -> bool {
        Arc::ptr_eq(&a.conn, &b.conn)
    }

    fn shared(a: &Transaction, b: &Transaction) -> bool {
        match (&a.conn.blocks.0, &b.conn.blocks.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Both formats of `t` are written through its memo, as field by field.
    fn through_memo(t: &Transaction) {
        assert!(t.conn.blocks.is_some());
        for f in FORMATS {
            assert!(same_as_plain(t, f), "{f:?} {t:?}");
        }
    }

    #[test]
    fn a_connection_s_records_share_a_memo_until_a_field_of_it_changes() {
        let addrs = SockAddrs {
            local: "127.0.0.1:8080".parse().unwrap(),
            remote: "[::1]:50888".parse().unwrap(),
        };
        for source in [Source::Ebpf, Source::Wire] {
            let mut c = conn(None);
            let first = record(&mut c, 10, source);
            through_memo(&first);
            // nothing changing: the very same fields
            let next = record(&mut c, 10, source);
            assert!(same_fields(&first, &next));
            // tid changing: the same memo, lines differing only there (wire
            // records have no tid: the same fields)
            let other_tid = record(&mut c, 11, source);
            through_memo(&other_tid);
            assert!(shared(&first, &other_tid));
            assert_eq!(same_fields(&first, &other_tid), source == Source::Wire);
            let (a, b) = (
                line(&first, RecordFormat::Full).0,
                line(&other_tid, RecordFormat::Full).0,
            );
            if source == Source::Ebpf {
                assert_eq!(a.replace("\"tid\":10,", "\"tid\":11,"), b);
                assert_ne!(a, b);
            } else {
                assert_eq!(a, b);
            }
            // addresses learnt late
            c.set_addrs(Some(addrs));
            let addressed = record(&mut c, 11, source);
            through_memo(&addressed);
            assert!(!shared(&other_tid, &addressed));
            assert!(!same_fields(&other_tid, &addressed));
            assert!(line(&addressed, RecordFormat::Compact).0.contains(
                ",\"local_addr\":\"127.0.0.1\",\"local_port\":8080,\"remote_addr\":\"::1\",\"remote_port\":50888,"
            ));
            // the role found by the parser
            c.role = Role::Server;
            let role = record(&mut c, 11, source);
            through_memo(&role);
            assert!(!shared(&addressed, &role));
            assert!(!same_fields(&addressed, &role));
            assert!(line(&role, RecordFormat::Full)
                .0
                .contains(",\"role\":\"server\","));
            // identity arriving after the first records (an OPEN's)
            let ident = Arc::new(Identity {
                cgroup_id: Some(7),
                pod_name: Some("cart-0".into()),
                node: Some("node-1".into()),
                ..Default::default()
            });
            c.ident = ConnIdentity {
                ident: ident.clone(),
                exe: Some("/usr/sbin/nginx".into()),
            };
            let identified = record(&mut c, 11, source);
            through_memo(&identified);
            // (wire records have none: theirs stays)
            assert_eq!(shared(&role, &identified), source == Source::Wire);
            assert_eq!(same_fields(&role, &identified), source == Source::Wire);
            let full = line(&identified, RecordFormat::Full).0;
            assert_eq!(
                full.contains(",\"pod_name\":\"cart-0\","),
                source == Source::Ebpf,
                "{full}"
            );
            // the same identity again (another OPEN): the memo is kept
            let exe = c.ident.exe.clone();
            c.ident = ConnIdentity { ident, exe };
            let again = record(&mut c, 12, source);
            through_memo(&again);
            assert!(shared(&identified, &again));
            // TLS plaintext from here on
            c.tls = Some(TlsLibrary::OpenSsl);
            let tls = record(&mut c, 12, source);
            through_memo(&tls);
            assert!(!shared(&again, &tls));
            assert!(!same_fields(&again, &tls));
            assert!(line(&tls, RecordFormat::Full)
                .0
                .contains(",\"tls\":true,\"tls_library\":\"openssl\""));
            // and nothing else changing: still that memo
            let last = record(&mut c, 13, source);
            assert!(shared(&tls, &last));
            through_memo(&last);
            // memos off (a large table): fields made anew for each record,
            // none kept by the connection; the same lines
            c.set_memo(false);
            assert!(!c.has_memo());
            let (a, b) = (record(&mut c, 13, source), record(&mut c, 13, source));
            assert!(!same_fields(&a, &b) && !same_fields(&last, &a));
            assert!(!a.conn.blocks.is_some() && !c.has_memo());
            assert_eq!(
                line(&a, RecordFormat::Full).0,
                line(&last, RecordFormat::Full).0
            );
            // and on again: shared again
            c.set_memo(true);
            let (a, b) = (record(&mut c, 13, source), record(&mut c, 13, source));
            assert!(same_fields(&a, &b) && c.has_memo());
            through_memo(&a);
        }
    }
}
