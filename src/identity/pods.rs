// SPDX-License-Identifier: GPL-3.0-or-later
//! Pod namespace, Pod name and container name without an API call, from
//! the kubelet's log directories every node has:
//!
//! * `<pods dir>/<namespace>_<pod>_<uid>/<container>/` (default
//!   `/var/log/pods`): Pod UID → namespace and name (none of the three
//!   can contain `_`);
//! * `<pods dir>/../containers/<pod>_<namespace>_<container>-<id>.log`
//!   (the kubelet's links): container id → container name.
//!
//! Read again at most once per `min_rescan` when asked about something
//! not found; an unreadable directory is counted and gives `None`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries kept of each directory (a node runs at most a few hundred Pods).
pub const MAX_PODS: usize = 16_384;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodName {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// `<namespace>_<pod>_<uid>`.
pub fn parse_pod_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut f = name.split('_');
    let (ns, pod, uid) = (f.next()?, f.next()?, f.next()?);
    (f.next().is_none() && !ns.is_empty() && !pod.is_empty() && !uid.is_empty())
        .then_some((ns, pod, uid))
}

/// `<pod>_<namespace>_<container>-<64 hex id>.log` → (namespace, pod,
/// container, id).
pub fn parse_container_log(name: &str) -> Option<(&str, &str, &str, &str)> {
    let stem = name.strip_suffix(".log")?;
    let mut f = stem.split('_');
    let (pod, ns, rest) = (f.next()?, f.next()?, f.next()?);
    if f.next().is_some() || pod.is_empty() || ns.is_empty() {
        return None;
    }
    let (container, id) = rest.rsplit_once('-')?;
    let hex = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && !container.is_empty()).then_some((ns, pod, container, id))
}

/// The index of both directories.
pub struct PodIndex {
    pods_dir: PathBuf,
    containers_dir: PathBuf,
    by_uid: HashMap<String, PodName>,
    /// container id → container name
    names: HashMap<String, Arc<str>>,
    scanned: Option<Instant>,
    min_rescan: Duration,
    /// Scans that could not read the pods directory.
    pub read_errors: u64,
    pub last_error: Option<String>,
}

impl PodIndex {
    pub fn new(pods_dir: &Path, min_rescan: Duration) -> PodIndex {
        let containers_dir = pods_dir
            .parent()
            .map(|p| p.join("containers"))
            .unwrap_or_else(|| PathBuf::from("/var/log/containers"));
        PodIndex {
            pods_dir: pods_dir.to_path_buf(),
            containers_dir,
            by_uid: HashMap::new(),
            names: HashMap::new(),
            scanned: None,
            min_rescan,
            read_errors: 0,
            last_error: None,
        }
    }

    /// Read both directories again (now, whatever the last time).
    pub fn rescan(&mut self) {
        self.scanned = Some(Instant::now());
        match std::fs::read_dir(&self.pods_dir) {
            Ok(rd) => {
                self.by_uid.clear();
                for e in rd.flatten().take(MAX_PODS) {
                    let n = e.file_name();
                    let Some((ns, pod, uid)) = n.to_str().and_then(parse_pod_dir) else {
                        continue;
                    };
                    self.by_uid.insert(
                        uid.to_string(),
                        PodName {
                            namespace: ns.into(),
                            name: pod.into(),
                        },
                    );
                }
            }
            Err(e) => {
                self.by_uid.clear();
                self.read_errors += 1;
                let msg = format!("{}: {e}", self.pods_dir.display());
                if self.last_error.as_deref() != Some(&msg) {
                    log::warn!("Pod names unavailable: {msg} (pod_namespace, pod_name stay null)");
                }
                self.last_error = Some(msg);
            }
        }
        self.names.clear();
        if let Ok(rd) = std::fs::read_dir(&self.containers_dir) {
            for e in rd.flatten().take(4 * MAX_PODS) {
                let n = e.file_name();
                if let Some((_, _, c, id)) = n.to_str().and_then(parse_container_log) {
                    self.names.insert(id.to_string(), c.into());
                }
            }
        }
    }

    fn maybe_rescan(&mut self) {
        if self.scanned.is_none_or(|t| t.elapsed() >= self.min_rescan) {
            self.rescan();
        }
    }

    /// Namespace and name of the Pod with this UID.
    pub fn pod(&mut self, uid: &str) -> Option<PodName> {
        if !self.by_uid.contains_key(uid) {
            self.maybe_rescan();
        }
        self.by_uid.get(uid).cloned()
    }

    /// UIDs of the Pods named `namespace/name` (a Pod deleted and made again
    /// has a new UID; both may have directories for a while).
    pub fn uids_of(&mut self, namespace: &str, name: &str) -> Vec<String> {
        self.by_uid
            .iter()
            .filter(|(_, p)| &*p.namespace == namespace && &*p.name == name)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// The container name of container `id` (64 hex).
    pub fn container_name(&mut self, id: &str) -> Option<Arc<str>> {
        if !self.names.contains_key(id) {
            self.maybe_rescan();
        }
        self.names.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4b1c2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    #[test]
    fn names() {
        assert_eq!(
            parse_pod_dir("default_web-7d4b9c_1b3e5f7a-9c2d-4e6f-8a1b-3c5d7e9f1a2b"),
            Some((
                "default",
                "web-7d4b9c",
                "1b3e5f7a-9c2d-4e6f-8a1b-3c5d7e9f1a2b"
            ))
        );
        for bad in ["", "a_b", "a_b_c_d", "_b_c", "a__c", "a_b_"] {
            assert_eq!(parse_pod_dir(bad), None, "{bad}");
        }
        assert_eq!(
            parse_container_log(&format!("web-7d4b9c_default_nginx-proxy-{ID}.log")),
            Some(("default", "web-7d4b9c", "nginx-proxy", ID))
        );
        for bad in [
            format!("web_default_nginx-{ID}"),
            format!("web_default_nginx{ID}.log"),
            "web_default_nginx-abc.log".to_string(),
            format!("web_default_-{ID}.log"),
            format!("web_default_x_nginx-{ID}.log"),
        ] {
            assert_eq!(parse_container_log(&bad), None, "{bad}");
        }
    }

    #[test]
    fn index_reads_both_dirs_and_counts_unreadable() {
        let d = std::env::temp_dir().join(format!("osprey-pods-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let uid = "1b3e5f7a-9c2d-4e6f-8a1b-3c5d7e9f1a2b";
        std::fs::create_dir_all(d.join(format!("pods/shop_cart-0_{uid}/app"))).unwrap();
        std::fs::create_dir_all(d.join("pods/not-a-pod")).unwrap();
        std::fs::create_dir_all(d.join("containers")).unwrap();
        std::fs::write(d.join(format!("containers/cart-0_shop_app-{ID}.log")), "").unwrap();
        let mut ix = PodIndex::new(&d.join("pods"), Duration::from_secs(3600));
        let p = ix.pod(uid).unwrap();
        assert_eq!((&*p.namespace, &*p.name), ("shop", "cart-0"));
        assert_eq!(ix.container_name(ID).as_deref(), Some("app"));
        assert_eq!(ix.uids_of("shop", "cart-0"), [uid]);
        assert_eq!(ix.pod("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(ix.read_errors, 0);
        let mut gone = PodIndex::new(&d.join("missing/pods"), Duration::ZERO);
        assert_eq!(gone.pod(uid), None);
        assert_eq!(gone.pod(uid), None);
        assert_eq!(gone.read_errors, 2);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
