// SPDX-License-Identifier: GPL-3.0-or-later
//! Polling the ring buffer into the pipeline; and what user space does for
//! the BTF-less fallback (seeding connections from /proc, resolving
//! addresses, dropping non-TCP sockets).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::{Link, MapCore, MapFlags, Object, RingBufferBuilder};

use super::enrich::{self, conn_key, Enricher};
use super::loader::{self, map};
use super::{skel_nobtf, ProbeConfig};
use crate::abi;
use crate::decode;
use crate::event::{ConnId, ConnOpen, Event, ProcInfo, Role, Syscall};
use crate::pipeline::Pipeline;
use crate::procnet;

/// Generation numbers user space gives connections it seeds (fallback
/// mode); far above anything the kernel's counter reaches.
const USER_GEN_BASE: u64 = 1 << 62;

/// What user space counted while polling.
#[derive(Debug, Default)]
pub struct PollStats {
    pub decode_errors: u64,
    /// Fallback mode: connections dropped in user space as not TCP.
    pub non_tcp: u64,
    /// Fallback mode: connections whose addresses could not be resolved.
    pub unresolved: u64,
    /// Of those, the fd held another connection when user space looked.
    pub fd_reused: u64,
    /// What the TLS attacher did.
    pub tls: crate::tls::attach::TlsStats,
    /// `--sched adaptive`: what its watchdog did.
    pub sched_adaptive: Option<super::sched::SchedSummary>,
}

/// Hand decoded records to `pipeline` until `stop` is set or the output
/// fails; then detach (`links` and the TLS uprobes dropped) and drain
/// what is left.
#[allow(clippy::too_many_arguments)]
pub fn poll(
    obj: &Object,
    bss: Option<&[u64; abi::COUNTER_NAMES.len()]>,
    links: Vec<Link>,
    mut tls: Option<crate::tls::attach::Attacher>,
    cfg: &ProbeConfig,
    pipeline: &Pipeline,
    stop: &AtomicBool,
    fallback: bool,
) -> Result<PollStats> {
    let events = map(obj, "events")?;
    let tls_execs = map(obj, "tls_execs").ok();
    let conns = map(obj, "conns")?;
    let mut decode_errors = 0u64;
    let mut enrich = Enricher::new(fallback);
    let mut source = enrich::Live {
        resolver: Default::default(),
        conns: &conns,
    };
    // who opened each connection: resolved once per OPEN record, here,
    // before the hand-off (the process is most likely still there)
    let mut resolver = cfg
        .identity
        .as_ref()
        .filter(|_| cfg.resolve_identity)
        .map(|s| crate::identity::Resolver::new(s.clone()));
    let batch = RefCell::new(pipeline.batcher());
    let mut rbb = RingBufferBuilder::new();
    rbb.add(&events, |data: &[u8]| {
        let res = decode::decode_each(data, |ev, payload| {
            if let Some(mut ev) = enrich.event(ev, &mut source) {
                if let (Event::Open(o), Some(r)) = (&mut ev, resolver.as_mut()) {
                    o.identity = Some(r.resolve(o.cgroup_id, o.proc.tgid, o.conn.proc_start_ns));
                }
                batch.borrow_mut().push_parts(ev, payload)
            }
        });
        if let Err(e) = res {
            decode_errors += 1;
            if decode_errors <= 5 {
                log::warn!("undecodable record: {e}");
            }
        }
        0
    })
    .context("setting up the ring buffer reader (events map)")?;
    let rb = rbb
        .build()
        .context("setting up the ring buffer reader (epoll on the events map)")?;
    // after the setup: from here on the threads' work is the records'
    let adaptive = cfg
        .sched_adaptive
        .then(|| super::sched::start(&events, cfg.ringbuf_bytes))
        .and_then(|r| {
            r.map_err(|e| log::warn!("--sched adaptive: {e:#}; staying at SCHED_BATCH"))
                .ok()
        });
    let mut last_progress = Instant::now();
    let mut last_health = Instant::now();
    let health = pipeline.health();
    while !stop.load(Ordering::Relaxed) {
        if !pipeline.healthy() {
            log::info!("output closed or failing: stopping");
            break;
        }
        if let Err(e) = rb.poll(cfg.poll_interval) {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                return Err(e).context("polling the ring buffer");
            }
        }
        // records written with BPF_RB_NO_WAKEUP wait for us here
        rb.consume().ok();
        batch.borrow_mut().flush();
        // the kernel's counters for the metrics endpoint, once a second
        if last_health.elapsed() >= Duration::from_secs(1) {
            last_health = Instant::now();
            health.set_kernel(loader::read_counters(bss));
        }
        if let Some(t) = tls.as_mut() {
            t.tick(obj, tls_execs.as_ref());
        }
        if let Some(every) = cfg.progress {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                let k = loader::read_counters(bss);
                let p = pipeline.stats();
                log::info!(
                    "progress: kernel events {} drops {} | decoded {} records {}",
                    k.events,
                    k.ringbuf_drops,
                    p.events,
                    p.records
                );
            }
        }
    }

    // the drain at the fair share; then detach, and drain what is left
    let sched_adaptive = adaptive.map(|a| {
        let s = a.stats.clone();
        drop(a);
        s.summary()
    });
    let tls_stats = tls.as_ref().map(|t| t.stats.clone()).unwrap_or_default();
    drop(tls);
    drop(links);
    rb.consume().ok();
    drop(rb);
    batch.borrow_mut().flush();
    Ok(PollStats {
        decode_errors,
        non_tcp: enrich.non_tcp,
        unresolved: enrich.unresolved,
        fd_reused: enrich.reused,
        tls: tls_stats,
        sched_adaptive,
    })
}

/// Fallback mode: find established TCP connections of the traced processes
/// in /proc, register them in the kernel's `conns` map (so their data is
/// captured) and announce them as mid-stream OPEN events. Returns how many.
pub fn seed_existing_connections(
    obj: &Object,
    cfg: &ProbeConfig,
    pipeline: &Pipeline,
) -> Result<u64> {
    let conns = map(obj, "conns")?;
    let me = std::process::id();
    let now = crate::clock::mono_now_ns();
    let mut n = 0u64;
    for pid in procnet::pids() {
        if pid == me {
            continue;
        }
        let comm = procnet::comm(pid).unwrap_or_default();
        let allowed = (cfg.pids.is_empty() && cfg.comms.is_empty())
            || cfg.pids.contains(&pid)
            || cfg
                .comms
                .iter()
                .any(|c| c.as_bytes()[..c.len().min(15)] == comm.as_bytes()[..comm.len().min(15)]);
        if !allowed {
            continue;
        }
        let socks = procnet::process_sockets(pid);
        if socks.is_empty() {
            continue;
        }
        let table = procnet::tcp_table(pid);
        for (fd, ino) in socks {
            let Some(e) = table.get(&ino) else { continue };
            if e.state != procnet::TCP_ESTABLISHED {
                continue;
            }
            let generation = USER_GEN_BASE + n;
            let val = skel_nobtf::types::conn_state {
                r#gen: generation,
                ..Default::default()
            };
            // SAFETY: conn_state is a repr(C) POD generated from the object's BTF.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    &val as *const _ as *const u8,
                    std::mem::size_of_val(&val),
                )
            };
            if conns
                .update(&conn_key(pid, fd), bytes, MapFlags::NO_EXIST)
                .is_err()
            {
                continue;
            }
            n += 1;
            pipeline.submit(Event::open(ConnOpen {
                ts_ns: now,
                conn: ConnId {
                    tgid: pid,
                    proc_start_ns: 0,
                    fd,
                    gen: generation,
                },
                proc: ProcInfo {
                    tgid: pid,
                    tid: pid,
                    comm: comm.as_str().into(),
                },
                role: Role::Unknown,
                addrs: Some(e.addrs),
                midstream: true,
                syscall: Syscall::Unknown,
                cgroup_id: 0,
                identity: None,
            }));
        }
    }
    Ok(n)
}
