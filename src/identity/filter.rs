// SPDX-License-Identifier: GPL-3.0-or-later
//! `--cgroup`, `--container` and `--pod`: which cgroup ids the kernel's
//! allowlist holds, recomputed from each walk of the hierarchy so that
//! containers and Pods that start later are traced and ids of removed
//! cgroups leave the map.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::path::parse_path;
use super::pods::PodIndex;

/// What the user selected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Rooted paths in the v2 hierarchy (`/a/b`); their subtrees.
    pub cgroups: Vec<String>,
    /// Container ids or prefixes of at least 12 hex digits (as `docker ps`
    /// shows them), or whole names (LXC, nspawn).
    pub containers: Vec<String>,
    /// (namespace, name).
    pub pods: Vec<(String, String)>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.cgroups.is_empty() && self.containers.is_empty() && self.pods.is_empty()
    }
}

/// `--cgroup PATH`: rooted in the hierarchy; a path under the mount point
/// `root` is taken relative to it (`/sys/fs/cgroup/unified/a` → `/a`).
pub fn normalize_cgroup(arg: &str, root: Option<&Path>) -> Result<String, String> {
    if arg.is_empty() {
        return Err("--cgroup: empty path".into());
    }
    let p = Path::new(arg);
    let rel = match root {
        Some(r) if p.starts_with(r) => p
            .strip_prefix(r)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned(),
        _ => arg.to_string(),
    };
    let mut out = String::new();
    for seg in rel.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if seg == ".." {
            return Err(format!("--cgroup {arg}: '..' is not allowed"));
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// `--container ID`.
pub fn check_container(arg: &str) -> Result<String, String> {
    let a = arg.trim();
    let hex = a.bytes().all(|b| b.is_ascii_hexdigit());
    if a.is_empty() || a.contains('/') {
        Err(format!(
            "--container {arg:?}: give a container id (12 to 64 hex digits) or an LXC/nspawn name"
        ))
    } else if hex && a.len() < 12 {
        Err(format!(
            "--container {arg}: at least 12 hex digits of the id (ambiguous otherwise)"
        ))
    } else {
        Ok(a.to_ascii_lowercase())
    }
}

/// `--pod NAMESPACE/NAME`.
pub fn parse_pod(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(format!("--pod {arg:?}: give NAMESPACE/NAME")),
    }
}

fn under(path: &str, top: &str) -> bool {
    top == "/"
        || path == top
        || (path.starts_with(top) && path.as_bytes().get(top.len()) == Some(&b'/'))
}

/// The ids of every cgroup of `index` (id → path) the selection takes.
pub fn select(
    index: &HashMap<u64, Arc<str>>,
    sel: &Selection,
    pods: &mut PodIndex,
) -> HashSet<u64> {
    let mut uids: HashSet<String> = HashSet::new();
    for (ns, name) in &sel.pods {
        uids.extend(pods.uids_of(ns, name));
    }
    let mut out = HashSet::new();
    for (id, path) in index {
        let mut take = sel.cgroups.iter().any(|c| under(path, c));
        if !take && (!sel.containers.is_empty() || !uids.is_empty()) {
            let info = parse_path(path);
            if let Some(c) = &info.container {
                take = sel
                    .containers
                    .iter()
                    .any(|want| c.id.starts_with(want.as_str()) || c.id == *want);
            }
            if let Some(p) = &info.pod {
                take |= uids.contains(&p.uid);
            }
        }
        if take {
            out.insert(*id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ID: &str = "3f4b1c2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
    const UID: &str = "1b3e5f7a-9c2d-4e6f-8a1b-3c5d7e9f1a2b";

    #[test]
    fn arguments() {
        let root = Path::new("/sys/fs/cgroup/unified");
        assert_eq!(
            normalize_cgroup("/sys/fs/cgroup/unified/a/b/", Some(root)).unwrap(),
            "/a/b"
        );
        assert_eq!(normalize_cgroup("a//b", Some(root)).unwrap(), "/a/b");
        assert_eq!(normalize_cgroup("/", None).unwrap(), "/");
        assert!(normalize_cgroup("/a/../b", None).is_err());
        assert!(normalize_cgroup("", None).is_err());
        assert_eq!(
            check_container(&ID[..12].to_uppercase()).unwrap(),
            &ID[..12]
        );
        assert!(check_container("3f4b").is_err());
        assert!(check_container("").is_err());
        assert!(check_container("a/b").is_err());
        assert_eq!(check_container("web1").unwrap(), "web1");
        assert_eq!(
            parse_pod("shop/cart-0").unwrap(),
            ("shop".into(), "cart-0".into())
        );
        for bad in ["shop", "/x", "x/", "a/b/c", ""] {
            assert!(parse_pod(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selects_subtrees_containers_and_pods() {
        let uid_ = UID.replace('-', "_");
        let pod =
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice");
        let other = ID.replace('3', "5");
        let index: HashMap<u64, Arc<str>> = [
            (1, "/".to_string()),
            (2, "/a".to_string()),
            (3, "/a/b".to_string()),
            (4, "/ab".to_string()),
            (5, format!("/system.slice/docker-{ID}.scope")),
            (6, format!("/system.slice/docker-{other}.scope")),
            (7, pod.clone()),
            (8, format!("{pod}/cri-containerd-{other}.scope")),
        ]
        .into_iter()
        .map(|(k, v)| (k, Arc::from(v.as_str())))
        .collect();
        let d = std::env::temp_dir().join(format!("osprey-filter-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join(format!("pods/shop_cart-0_{UID}/app"))).unwrap();
        let mut pods = PodIndex::new(&d.join("pods"), Duration::ZERO);
        pods.rescan();
        let sel = |s: Selection, pods: &mut PodIndex| {
            let mut v: Vec<u64> = select(&index, &s, pods).into_iter().collect();
            v.sort();
            v
        };
        let s = Selection {
            cgroups: vec!["/a".into()],
            ..Default::default()
        };
        assert_eq!(sel(s, &mut pods), [2, 3]);
        let s = Selection {
            containers: vec![ID[..12].into()],
            ..Default::default()
        };
        assert_eq!(sel(s, &mut pods), [5]);
        let s = Selection {
            pods: vec![("shop".into(), "cart-0".into())],
            ..Default::default()
        };
        assert_eq!(sel(s, &mut pods), [7, 8]);
        let s = Selection {
            pods: vec![("shop".into(), "other".into())],
            ..Default::default()
        };
        assert!(sel(s, &mut pods).is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
