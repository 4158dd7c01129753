// SPDX-License-Identifier: GPL-3.0-or-later
//! Records the kernel could not read in full (`F_READ_FAULT`): the bytes
//! past their payload are named `read_fault`, not `capture_cap`.

use super::*;
use crate::record::GapCauses as G;

/// Two pipelined requests in one write whose record holds only the first
/// 40 bytes (`fault`: a failed read of the buffer, else the capture cap),
/// then both responses; returns the transactions and the stats.
fn pipelined(n: u64, fault: bool, reorder: bool) -> (Vec<Transaction>, TrackerStats) {
    let two = [req("/a"), req("/b")].concat();
    let mut s = Script::new(n).open(Role::Client);
    if reorder {
        // a request written before it, its event arriving after it: the
        // truncated event is held until then, and keeps its flag
        s = s.send(E, &req("/0"));
    }
    let mut s = s
        .send_trunc(E, &two[..40], two.len() as u32)
        .send(
            I,
            &[resp("0"), resp("1"), resp("2")][!reorder as usize..].concat(),
        )
        .close();
    let at = 1 + reorder as usize;
    let Event::Data(d) = &mut s.events[at] else {
        panic!("not data")
    };
    assert!(d.truncated());
    d.fault = fault;
    if reorder {
        s.events.swap(1, 2);
    }
    let (recs, st) = run(&s.events);
    (txns(&recs), st)
}

#[test]
fn a_truncated_event_with_a_read_fault_is_a_read_fault_gap() {
    for reorder in [false, true] {
        for fault in [false, true] {
            let (t, st) = pipelined(1 + reorder as u64, fault, reorder);
            let gapped: Vec<_> = t.iter().filter(|t| t.gap).collect();
            assert!(!gapped.is_empty(), "{t:#?}");
            let (want, not) = if fault {
                (G::READ_FAULT, G::CAPTURE_CAP)
            } else {
                (G::CAPTURE_CAP, G::READ_FAULT)
            };
            for g in &gapped {
                assert!(g.gap_cause.contains(want), "fault {fault}: {g:#?}");
                assert!(!g.gap_cause.contains(not), "fault {fault}: {g:#?}");
                assert!(!g.gap_cause.contains(G::RING_BUFFER_DROP), "{g:#?}");
            }
            let n = gapped.len() as u64;
            assert_eq!(
                (st.gap_read_fault, st.gap_capture_cap),
                if fault { (n, 0) } else { (0, n) },
                "{st:?}"
            );
            // counted either way: the positions stay exact
            assert!(st.truncated_bytes > 0, "{st:?}");
            if reorder {
                assert!(st.reordered_events > 0, "{st:?}");
                assert!(t
                    .iter()
                    .any(|t| t.target.as_deref() == Some("/0") && !t.gap));
            }
        }
    }
}

#[test]
fn the_read_fault_cause_is_named_in_the_output_and_the_stats() {
    let (t, st) = pipelined(3, true, false);
    let g = t.iter().find(|t| t.gap).expect("a gap");
    let line = serde_json::to_value(g).unwrap();
    assert_eq!(line["gap_cause"], serde_json::json!(["read_fault"]));
    let stats = serde_json::to_value(st).unwrap();
    assert!(stats["gap_read_fault"].as_u64() > Some(0), "{stats}");
    // the name round-trips (recon-diff reads records back)
    let back: G = serde_json::from_value(line["gap_cause"].clone()).unwrap();
    assert_eq!(back, G::READ_FAULT);
}
