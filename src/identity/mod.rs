// SPDX-License-Identifier: GPL-3.0-or-later
//! Who opened a connection: cgroup, container, Kubernetes Pod, executable
//! and node, resolved in user space from the cgroup v2 id the kernel puts
//! in OPEN records (`bpf_get_current_cgroup_id()`) and the process.
//!
//! cgroup id → path ([`cgroupfs`]: an index made by walking the v2
//! hierarchy, misses looked up by file handle, then by a new walk at most
//! once a second) → runtime, container id, Pod UID and QoS ([`path`]) →
//! Pod namespace, name and container name ([`pods`], the kubelet's log
//! directories). Every cache is bounded and expires; what does not
//! resolve is `None` (`null` in records) and counted, never guessed.

pub mod cache;
pub mod cgroupfs;
pub mod filter;
pub mod inotify;
pub mod path;
pub mod pods;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use cache::TtlCache;

/// The identity fields of every record (`null` when not resolved).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// cgroup v2 id of the task that opened the connection.
    #[serde(default)]
    pub cgroup_id: Option<u64>,
    /// Its path in the v2 hierarchy (`/kubepods.slice/...`).
    #[serde(default)]
    pub cgroup: Option<Arc<str>>,
    #[serde(default)]
    pub container_id: Option<Arc<str>>,
    #[serde(default)]
    pub container_runtime: Option<Arc<str>>,
    #[serde(default)]
    pub pod_uid: Option<Arc<str>>,
    /// Guaranteed, Burstable, BestEffort.
    #[serde(default)]
    pub pod_qos: Option<Arc<str>>,
    #[serde(default)]
    pub pod_namespace: Option<Arc<str>>,
    #[serde(default)]
    pub pod_name: Option<Arc<str>>,
    #[serde(default)]
    pub container_name: Option<Arc<str>>,
    /// The owning workload (Deployment, StatefulSet ...): only from the
    /// Kubernetes API, which is not queried (always null for now).
    #[serde(default)]
    pub workload: Option<Arc<str>>,
    /// The node (host name) Osprey runs on.
    #[serde(default)]
    pub node: Option<Arc<str>>,
}

impl Identity {
    /// All null: wire records, synthetic ones, connections without OPEN.
    pub fn empty() -> Arc<Identity> {
        static EMPTY: OnceLock<Arc<Identity>> = OnceLock::new();
        EMPTY.get_or_init(|| Arc::new(Identity::default())).clone()
    }
}

/// A connection's identity: its cgroup's and its process's executable.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnIdentity {
    pub ident: Arc<Identity>,
    pub exe: Option<Arc<str>>,
}

/// What the resolution could not do, for the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IdentityStats {
    /// Connections whose identity was asked for.
    pub lookups: u64,
    /// cgroup ids that named no cgroup (gone before they were looked up,
    /// or no v2 hierarchy).
    pub cgroup_unresolved: u64,
    /// Connections in a Pod whose namespace and name were not found.
    pub pod_unresolved: u64,
    /// Containers of a Pod whose name was not found.
    pub container_name_unresolved: u64,
    /// Processes whose executable could not be read.
    pub exe_unresolved: u64,
    /// Reads of the pods directory that failed.
    pub pods_dir_errors: u64,
    /// Walks of the cgroup hierarchy.
    pub cgroup_walks: u64,
    /// Ids found by file handle.
    pub handle_lookups: u64,
    /// Ids found through inotify (cgroups made since the last walk).
    pub inotify_finds: u64,
    /// Entries the bounded caches dropped (full or expired).
    pub cache_evictions: u64,
    /// cgroup ids in the kernel's allowlist now (filters).
    pub filter_cgroups: u64,
    /// Allowlist updates that failed (map full).
    pub filter_map_errors: u64,
}

/// Settings of the resolution.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// The cgroup v2 root (None: found in /proc/self/mountinfo).
    pub cgroup_root: Option<PathBuf>,
    /// The kubelet's pods log directory (`/var/log/pods`).
    pub pods_log_dir: PathBuf,
    /// The node's name (None: the host name).
    pub node: Option<String>,
    /// Where `/proc` is (a DaemonSet with hostPID sees the host's).
    pub proc_dir: PathBuf,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            cgroup_root: None,
            pods_log_dir: PathBuf::from("/var/log/pods"),
            node: None,
            proc_dir: PathBuf::from("/proc"),
        }
    }
}

/// Counters shared between the poller and the watcher thread.
#[derive(Default)]
struct Counters {
    lookups: AtomicU64,
    cgroup_unresolved: AtomicU64,
    pod_unresolved: AtomicU64,
    container_name_unresolved: AtomicU64,
    exe_unresolved: AtomicU64,
    cgroup_walks: AtomicU64,
    handle_lookups: AtomicU64,
    inotify_finds: AtomicU64,
    cache_evictions: AtomicU64,
    filter_cgroups: AtomicU64,
    filter_map_errors: AtomicU64,
}

/// The cgroup index: id → path, from the last walk plus ids looked up since.
pub struct CgroupIndex {
    pub by_id: HashMap<u64, Arc<str>>,
    walked: Option<Instant>,
    /// New directories as they are made (None: inotify unavailable).
    watch: Option<inotify::TreeWatch>,
    watch_tried: bool,
}

/// State shared by the poller (resolution) and the watcher (filters,
/// rescans).
pub struct Shared {
    pub cfg: IdentityConfig,
    /// None: no cgroup v2 hierarchy here.
    pub root: Option<PathBuf>,
    pub node: Option<Arc<str>>,
    pub index: Mutex<CgroupIndex>,
    pub pods: Mutex<pods::PodIndex>,
    n: Counters,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("root", &self.root)
            .field("node", &self.node)
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// Entries the index may reach by lookups between walks (thousands of
/// short-lived cgroups: then cleared, and the next miss walks again).
const MAX_INDEX_LAZY: usize = 65_536;

/// Walks of the whole hierarchy on a miss: at most this often.
const MIN_REWALK: Duration = Duration::from_secs(1);

impl Shared {
    pub fn new(cfg: IdentityConfig) -> Arc<Shared> {
        // a given root that is a hybrid host's /sys/fs/cgroup (tmpfs, v1
        // controllers) means its unified/ (the v2 hierarchy)
        let root = match &cfg.cgroup_root {
            Some(r) if !cgroupfs::is_v2(r) && cgroupfs::is_v2(&r.join("unified")) => {
                Some(r.join("unified"))
            }
            Some(r) => Some(r.clone()),
            None => cgroupfs::find_v2_root(),
        };
        match &root {
            Some(r) => log::debug!("cgroup v2 hierarchy at {}", r.display()),
            None => log::warn!(
                "no cgroup v2 hierarchy mounted: cgroup, container and Pod fields come from /proc/PID/cgroup (v1) where they can"
            ),
        }
        let node = cfg.node.clone().or_else(hostname).map(Arc::from);
        Arc::new(Shared {
            root,
            node,
            index: Mutex::new(CgroupIndex {
                by_id: HashMap::new(),
                walked: None,
                watch: None,
                watch_tried: false,
            }),
            pods: Mutex::new(pods::PodIndex::new(
                &cfg.pods_log_dir,
                Duration::from_secs(2),
            )),
            cfg,
            n: Counters::default(),
        })
    }

    /// Walk the hierarchy again (replacing the index) and return its
    /// content (for the filters).
    pub fn rewalk(&self) -> HashMap<u64, Arc<str>> {
        let Some(root) = &self.root else {
            return HashMap::new();
        };
        let (m, capped) = cgroupfs::walk(root, cgroupfs::MAX_WALK_ENTRIES);
        if capped {
            log::warn!(
                "the cgroup hierarchy has more than {} cgroups: the walk stopped there",
                cgroupfs::MAX_WALK_ENTRIES
            );
        }
        self.n.cgroup_walks.fetch_add(1, Ordering::Relaxed);
        let mut ix = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if !ix.watch_tried {
            ix.watch_tried = true;
            ix.watch = inotify::TreeWatch::new(root);
            if let Some(w) = &mut ix.watch {
                w.lost = true; // nothing watched yet
            }
        }
        if let Some(w) = &mut ix.watch {
            if w.lost {
                // (again) every directory the walk found; a new one made
                // meanwhile comes with its parent's IN_CREATE or the next walk
                w.lost = false;
                for p in m.values() {
                    w.watch(p);
                }
                log::debug!("inotify: {} cgroup directories watched", w.watched());
            }
        }
        ix.by_id = m.clone();
        ix.walked = Some(Instant::now());
        m
    }

    /// The path of cgroup `id`: the index, else its file handle, else a new
    /// walk (at most once a second).
    pub fn cgroup_path(&self, id: u64) -> Option<Arc<str>> {
        let root = self.root.as_ref()?;
        {
            let mut ix = self.index.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = ix.by_id.get(&id) {
                return Some(p.clone());
            }
            // cgroups made since: their mkdir is queued
            let CgroupIndex {
                by_id,
                watch,
                walked,
                ..
            } = &mut *ix;
            if let Some(w) = watch {
                w.drain(by_id);
                if by_id.len() >= MAX_INDEX_LAZY {
                    self.n
                        .cache_evictions
                        .fetch_add(by_id.len() as u64, Ordering::Relaxed);
                    by_id.clear();
                    *walked = None;
                }
                if let Some(p) = by_id.get(&id) {
                    self.n.inotify_finds.fetch_add(1, Ordering::Relaxed);
                    return Some(p.clone());
                }
            }
        }
        if let Some(p) = cgroupfs::path_by_handle(root, id) {
            self.n.handle_lookups.fetch_add(1, Ordering::Relaxed);
            let p: Arc<str> = p.into();
            let mut ix = self.index.lock().unwrap_or_else(|e| e.into_inner());
            if ix.by_id.len() >= MAX_INDEX_LAZY {
                // bounded: the next miss walks again
                self.n
                    .cache_evictions
                    .fetch_add(ix.by_id.len() as u64, Ordering::Relaxed);
                ix.by_id.clear();
                ix.walked = None;
            }
            ix.by_id.insert(id, p.clone());
            return Some(p);
        }
        let due = {
            let ix = self.index.lock().unwrap_or_else(|e| e.into_inner());
            ix.walked.is_none_or(|t| t.elapsed() >= MIN_REWALK)
        };
        if due {
            return self.rewalk().get(&id).cloned();
        }
        None
    }

    /// Cgroups made since the last look (inotify), as (id, path); empty
    /// without inotify or before the first walk.
    pub fn new_cgroups(&self) -> Vec<(u64, Arc<str>)> {
        let mut ix = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let CgroupIndex { by_id, watch, .. } = &mut *ix;
        let Some(w) = watch else {
            return Vec::new();
        };
        let mut fresh = HashMap::new();
        if w.drain(&mut fresh) == 0 {
            return Vec::new();
        }
        if by_id.len() + fresh.len() < MAX_INDEX_LAZY {
            by_id.extend(fresh.iter().map(|(k, v)| (*k, v.clone())));
        }
        fresh.into_iter().collect()
    }

    pub fn stats(&self) -> IdentityStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let pods_dir_errors = self.pods.lock().map(|p| p.read_errors).unwrap_or_default();
        IdentityStats {
            lookups: g(&self.n.lookups),
            cgroup_unresolved: g(&self.n.cgroup_unresolved),
            pod_unresolved: g(&self.n.pod_unresolved),
            container_name_unresolved: g(&self.n.container_name_unresolved),
            exe_unresolved: g(&self.n.exe_unresolved),
            pods_dir_errors,
            cgroup_walks: g(&self.n.cgroup_walks),
            handle_lookups: g(&self.n.handle_lookups),
            inotify_finds: g(&self.n.inotify_finds),
            cache_evictions: g(&self.n.cache_evictions),
            filter_cgroups: g(&self.n.filter_cgroups),
            filter_map_errors: g(&self.n.filter_map_errors),
        }
    }

    pub(crate) fn set_filter_counts(&self, ids: usize, errors: u64) {
        self.n.filter_cgroups.store(ids as u64, Ordering::Relaxed);
        self.n
            .filter_map_errors
            .fetch_add(errors, Ordering::Relaxed);
    }
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// The node name of records and ClickHouse rows: `--node-name`, else the
/// environment variable `OSPREY_NODE_NAME`, else the host name.
pub fn node_name(flag: Option<&str>) -> Option<String> {
    flag.filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            std::env::var("OSPREY_NODE_NAME")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .or_else(hostname)
}

/// Identities kept per cgroup id, and executables per process.
const MAX_CACHED: usize = 8192;
/// A complete identity is trusted this long; one with a Pod not named yet
/// (its log directory may not exist yet) is asked again sooner.
const TTL: Duration = Duration::from_secs(60);
const TTL_INCOMPLETE: Duration = Duration::from_secs(2);

/// The poller's resolver: per-thread caches over [`Shared`].
pub struct Resolver {
    shared: Arc<Shared>,
    by_cgroup: TtlCache<u64, Arc<Identity>>,
    exes: TtlCache<(u32, u64), Option<Arc<str>>>,
}

impl Resolver {
    pub fn new(shared: Arc<Shared>) -> Resolver {
        Resolver {
            shared,
            by_cgroup: TtlCache::new(MAX_CACHED),
            exes: TtlCache::new(MAX_CACHED),
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The identity of a connection opened by process `tgid` (started at
    /// `proc_start_ns`) in cgroup `cgroup_id` (0: not known).
    pub fn resolve(&mut self, cgroup_id: u64, tgid: u32, proc_start_ns: u64) -> ConnIdentity {
        let n = &self.shared.n;
        n.lookups.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        // no id from the kernel (a connection user space seeded from /proc,
        // BTF-less fallback): the process's own v2 cgroup, as its
        // /proc/PID/cgroup names it and the hierarchy confirms
        let cgroup_id = match cgroup_id {
            0 => self.proc_cgroup_id(tgid).unwrap_or(0),
            id => id,
        };
        let ident = match self.by_cgroup.get(&cgroup_id, now) {
            Some(i) => i,
            None => {
                let (i, complete) = self.identity_of(cgroup_id, tgid);
                let i = Arc::new(i);
                let ttl = if complete { TTL } else { TTL_INCOMPLETE };
                // id 0 (no cgroup from the kernel) is per process: not cached
                if cgroup_id != 0 {
                    let ev = self.by_cgroup.insert(cgroup_id, i.clone(), now, ttl);
                    n.cache_evictions.fetch_add(ev, Ordering::Relaxed);
                }
                i
            }
        };
        // counted per connection, from the identity however it was found
        if ident.cgroup.is_none() {
            n.cgroup_unresolved.fetch_add(1, Ordering::Relaxed);
        }
        if ident.pod_uid.is_some() && ident.pod_name.is_none() {
            n.pod_unresolved.fetch_add(1, Ordering::Relaxed);
        }
        if ident.pod_uid.is_some() && ident.container_id.is_some() && ident.container_name.is_none()
        {
            n.container_name_unresolved.fetch_add(1, Ordering::Relaxed);
        }
        let key = (tgid, proc_start_ns);
        let exe = match self.exes.get(&key, now) {
            Some(e) => e,
            None => {
                let e =
                    std::fs::read_link(self.shared.cfg.proc_dir.join(tgid.to_string()).join("exe"))
                        .ok()
                        .map(|p| Arc::<str>::from(p.to_string_lossy().as_ref()));
                let ev = self.exes.insert(key, e.clone(), now, TTL);
                n.cache_evictions.fetch_add(ev, Ordering::Relaxed);
                e
            }
        };
        if exe.is_none() {
            n.exe_unresolved.fetch_add(1, Ordering::Relaxed);
        }
        ConnIdentity { ident, exe }
    }

    /// The cgroup v2 id of process `tgid` now: its `0::` line, looked up in
    /// the hierarchy.
    fn proc_cgroup_id(&self, tgid: u32) -> Option<u64> {
        let root = self.shared.root.as_ref()?;
        let text = std::fs::read_to_string(
            self.shared
                .cfg
                .proc_dir
                .join(tgid.to_string())
                .join("cgroup"),
        )
        .ok()?;
        let v2 = path::parse_proc_cgroup(&text).v2?;
        // a path outside our cgroup namespace's view starts with "/.."
        if v2.split('/').any(|s| s == "..") {
            return None;
        }
        cgroupfs::id_of(&root.join(v2.trim_start_matches('/')))
    }

    /// (identity, complete: nothing left that a later look could find).
    fn identity_of(&self, cgroup_id: u64, tgid: u32) -> (Identity, bool) {
        let sh = &self.shared;
        let mut i = Identity {
            cgroup_id: (cgroup_id != 0).then_some(cgroup_id),
            node: sh.node.clone(),
            ..Identity::default()
        };
        let path: Option<Arc<str>> = if sh.root.is_some() && cgroup_id != 0 {
            sh.cgroup_path(cgroup_id)
        } else {
            None
        };
        let info = match &path {
            Some(p) => path::parse_path(p),
            None if sh.root.is_none() => {
                // a v1 host: what the process's own cgroup file says
                let text =
                    std::fs::read_to_string(sh.cfg.proc_dir.join(tgid.to_string()).join("cgroup"))
                        .unwrap_or_default();
                let pc = path::parse_proc_cgroup(&text);
                let (p, info) = pc.info();
                i.cgroup = p.map(Arc::from);
                info
            }
            None => path::PathInfo::default(),
        };
        // an id not found now may be a cgroup made since the last walk
        let mut complete = cgroup_id == 0 || path.is_some();
        if path.is_some() {
            i.cgroup = path;
        }
        if let Some(c) = info.container {
            i.container_runtime = c.runtime.map(Arc::from);
            i.container_id = Some(c.id.into());
        }
        if let Some(p) = info.pod {
            i.pod_qos = Some(p.qos.into());
            let mut pods = sh.pods.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = pods.pod(&p.uid) {
                i.pod_namespace = Some(n.namespace);
                i.pod_name = Some(n.name);
            } else {
                complete = false;
            }
            if let Some(cid) = &i.container_id {
                i.container_name = pods.container_name(cid);
                complete &= i.container_name.is_some();
            }
            i.pod_uid = Some(p.uid.into());
        }
        (i, complete)
    }
}

#[cfg(test)]
mod tests;
