// SPDX-License-Identifier: GPL-3.0-or-later
//! Fuzz the connection tracker with event sequences decoded from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey::event::{
    CloseEvent, ConnId, ConnOpen, DataEvent, Direction, Event, ProcInfo, Role, Syscall,
};
use osprey::record::Record;
use osprey::track::{Tracker, TrackerConfig};

fn proc_info() -> ProcInfo {
    ProcInfo {
        tgid: 1,
        tid: 1,
        comm: "fuzz".into(),
    }
}

fn conn(n: u8) -> ConnId {
    ConnId {
        tgid: 1,
        proc_start_ns: 0,
        fd: (n % 4) as i32,
        gen: (n % 4) as u64,
    }
}

fuzz_target!(|data: &[u8]| {
    let cfg = TrackerConfig {
        max_conns: 3,
        max_buf_bytes: 4096,
        max_pending: 4,
        reorder_window: 4,
        emit_messages: true,
        headers: true,
        ..TrackerConfig::default()
    };
    let max_buf = cfg.max_buf_bytes;
    let mut t = Tracker::new(cfg);
    let mut out: Vec<Record> = Vec::new();
    let mut pos = [[0u64; 2]; 4];
    let mut ts = 0u64;
    let mut i = 0usize;
    // Each op: [op, conn, a, b, len, payload...]
    while i + 5 <= data.len() {
        let (op, c, a, b, len) = (
            data[i],
            data[i + 1],
            data[i + 2],
            data[i + 3],
            data[i + 4] as usize,
        );
        i += 5;
        ts += 1 + a as u64 * 1000;
        let id = conn(c);
        let k = (c % 4) as usize;
        match op % 8 {
            0 => t.on_event(
                &Event::open(ConnOpen {
                    ts_ns: ts,
                    conn: id,
                    proc: proc_info(),
                    role: [Role::Unknown, Role::Client, Role::Server][b as usize % 3],
                    addrs: None,
                    midstream: b & 4 != 0,
                    syscall: Syscall::Connect,
                    cgroup_id: 0,
                    identity: None,
                }),
                &mut out,
            ),
            1 => {
                t.on_event(
                    &Event::Close(CloseEvent {
                        ts_ns: ts,
                        conn: id,
                        proc: proc_info(),
                        tx_bytes: pos[k][0],
                        rx_bytes: pos[k][1],
                    }),
                    &mut out,
                );
                pos[k] = [0, 0];
            }
            2 => t.expire(ts + b as u64 * 1_000_000_000, &mut out),
            _ => {
                let d = (op as usize >> 3) & 1;
                let end = (i + len).min(data.len());
                let payload = &data[i..end];
                i = end;
                // b: low bits skip bytes (gap), high bits add uncaptured bytes (truncation)
                let skip = if b & 0x80 != 0 { (b & 0x0f) as u64 } else { 0 };
                let extra = if b & 0x40 != 0 {
                    (b as u32 & 0x3f) * 997
                } else {
                    0
                };
                let mut p = pos[k][d] + skip;
                if op & 0x40 != 0 && p >= 3 {
                    p -= 3; // overlap / reorder
                }
                let orig = payload.len() as u32 + extra;
                t.on_event(
                    &Event::Data(DataEvent {
                        ts_ns: ts,
                        start_ns: ts.saturating_sub(a as u64),
                        conn: id,
                        proc: proc_info(),
                        dir: if d == 0 {
                            Direction::Egress
                        } else {
                            Direction::Ingress
                        },
                        pos: p,
                        orig_len: orig,
                        payload: payload.to_vec(),
                        syscall: Syscall::Write,
                        // truncated with the low bit: for a failed read
                        fault: b & 0x41 == 0x41,
                    }),
                    &mut out,
                );
                pos[k][d] = pos[k][d].max(p + orig as u64);
            }
        }
        assert!(
            t.buffered_bytes()
                <= 4 * 2 * (max_buf.max(osprey::protocol::http1::parser::MAX_HEAD_BYTES) + 70_000)
        );
    }
    t.flush_all(&mut out);
    let st = t.stats();
    assert_eq!(st.records_emitted as usize, out.len());
    assert_eq!(st.conns_active, 0);
    for r in &out {
        let _ = r.to_json_line();
    }
});
