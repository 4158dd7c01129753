// SPDX-License-Identifier: GPL-3.0-or-later
//! Keeps the kernel's cgroup allowlist (`allowed_cgroups`) equal to what
//! `--cgroup`, `--container` and `--pod` select: filled before attach,
//! then recomputed on a thread from a new walk of the hierarchy every
//! `--cgroup-rescan-ms` (containers and Pods that start later are added,
//! the ids of removed cgroups deleted).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::identity::filter::{select, Selection};
use crate::identity::Shared;

/// One round: walk, select, and bring the map to the selection. Returns
/// the ids now in the map.
pub fn sync(shared: &Shared, sel: &Selection, map: &MapHandle, current: &mut HashSet<u64>) {
    let index = shared.rewalk();
    let wanted = {
        let mut pods = shared.pods.lock().unwrap_or_else(|e| e.into_inner());
        if !sel.pods.is_empty() {
            pods.rescan();
        }
        select(&index, sel, &mut pods)
    };
    let mut errors = 0u64;
    for id in wanted.difference(&current.clone()) {
        match map.update(&id.to_ne_bytes(), &[1], MapFlags::ANY) {
            Ok(()) => {
                current.insert(*id);
            }
            Err(e) => {
                if errors == 0 {
                    log::warn!(
                        "cgroup allowlist: adding cgroup {id} failed: {e} (at most {} cgroups)",
                        crate::abi::MAX_FILTER_CGROUPS
                    );
                }
                errors += 1;
            }
        }
    }
    let gone: Vec<u64> = current.difference(&wanted).copied().collect();
    for id in gone {
        // a cgroup id is never reused (64-bit kernfs ids): deleting late is
        // harmless
        let _ = map.delete(&id.to_ne_bytes());
        current.remove(&id);
    }
    shared.set_filter_counts(current.len(), errors);
}

/// Between walks: cgroups made since (inotify) that the selection takes
/// go into the map at once, so a container's first connections are not
/// missed while the next walk is due.
fn add_new(shared: &Shared, sel: &Selection, map: &MapHandle, current: &mut HashSet<u64>) {
    let fresh = shared.new_cgroups();
    if fresh.is_empty() {
        return;
    }
    let index: std::collections::HashMap<u64, std::sync::Arc<str>> = fresh.into_iter().collect();
    let wanted = {
        let mut pods = shared.pods.lock().unwrap_or_else(|e| e.into_inner());
        if !sel.pods.is_empty() {
            // a new Pod's log directory may be newer than the last scan
            pods.rescan();
        }
        select(&index, sel, &mut pods)
    };
    let mut errors = 0;
    for id in wanted {
        if current.contains(&id) {
            continue;
        }
        match map.update(&id.to_ne_bytes(), &[1], MapFlags::ANY) {
            Ok(()) => {
                current.insert(id);
            }
            Err(_) => errors += 1,
        }
    }
    shared.set_filter_counts(current.len(), errors);
}

/// The thread; stopped (and joined) when dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    pub fn start(
        shared: Arc<Shared>,
        sel: Selection,
        map: MapHandle,
        mut current: HashSet<u64>,
        every: Duration,
    ) -> std::io::Result<Watch> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("osprey-cgroups".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20).min(every));
                    if last.elapsed() >= every {
                        last = Instant::now();
                        sync(&shared, &sel, &map, &mut current);
                    } else {
                        add_new(&shared, &sel, &map, &mut current);
                    }
                }
            })?;
        Ok(Watch {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
