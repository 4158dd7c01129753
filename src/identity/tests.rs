// SPDX-License-Identifier: GPL-3.0-or-later
//! The whole resolution over a directory tree made like a node's: a
//! "cgroup root" (any directory: ids are inode numbers), a pods log
//! directory and a /proc with an exe link.

use super::*;

const ID: &str = "3f4b1c2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
const UID: &str = "1b3e5f7a-9c2d-4e6f-8a1b-3c5d7e9f1a2b";

struct Node {
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node(name: &str) -> (Node, Arc<Shared>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("osprey-ident-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let uid_ = UID.replace('-', "_");
    let scope = dir.join(format!(
        "cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
    ));
    std::fs::create_dir_all(&scope).unwrap();
    std::fs::create_dir_all(dir.join(format!("log/pods/shop_cart-0_{UID}/app"))).unwrap();
    std::fs::create_dir_all(dir.join("log/containers")).unwrap();
    std::fs::write(
        dir.join(format!("log/containers/cart-0_shop_app-{ID}.log")),
        "",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("proc/42")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/app", dir.join("proc/42/exe")).unwrap();
    let shared = Shared::new(IdentityConfig {
        cgroup_root: Some(dir.join("cg")),
        pods_log_dir: dir.join("log/pods"),
        node: Some("node-1".into()),
        proc_dir: dir.join("proc"),
    });
    (Node { dir }, shared, scope)
}

#[test]
fn kubernetes_container_resolves_fully() {
    let (_n, shared, scope) = node("k8s");
    let id = cgroupfs::id_of(&scope).unwrap();
    let mut r = Resolver::new(shared.clone());
    let c = r.resolve(id, 42, 7);
    let i = &c.ident;
    assert_eq!(i.cgroup_id, Some(id));
    assert!(i
        .cgroup
        .as_deref()
        .unwrap()
        .ends_with(&format!("cri-containerd-{ID}.scope")));
    assert!(i.cgroup.as_deref().unwrap().starts_with("/kubepods.slice/"));
    assert_eq!(i.container_id.as_deref(), Some(ID));
    assert_eq!(i.container_runtime.as_deref(), Some("containerd"));
    assert_eq!(i.pod_uid.as_deref(), Some(UID));
    assert_eq!(i.pod_qos.as_deref(), Some("Burstable"));
    assert_eq!(i.pod_namespace.as_deref(), Some("shop"));
    assert_eq!(i.pod_name.as_deref(), Some("cart-0"));
    assert_eq!(i.container_name.as_deref(), Some("app"));
    assert_eq!(i.workload, None);
    assert_eq!(i.node.as_deref(), Some("node-1"));
    assert_eq!(c.exe.as_deref(), Some("/usr/bin/app"));
    // cached: the same Arc
    let again = r.resolve(id, 42, 7);
    assert!(Arc::ptr_eq(&again.ident, &c.ident));
    let s = shared.stats();
    assert_eq!(
        (
            s.lookups,
            s.cgroup_unresolved,
            s.pod_unresolved,
            s.exe_unresolved
        ),
        (2, 0, 0, 0)
    );
}

#[test]
fn unknown_ids_and_unreadable_pods_dir_are_null_and_counted() {
    let (n, shared, scope) = node("nulls");
    std::fs::remove_dir_all(n.dir.join("log")).unwrap();
    let mut r = Resolver::new(shared.clone());
    let c = r.resolve(cgroupfs::id_of(&scope).unwrap(), 43, 1);
    assert_eq!(c.ident.pod_uid.as_deref(), Some(UID));
    assert_eq!(
        (
            c.ident.pod_name.clone(),
            c.ident.pod_namespace.clone(),
            c.ident.container_name.clone()
        ),
        (None, None, None)
    );
    assert_eq!(c.exe, None);
    let c = r.resolve(u64::MAX - 1, 43, 1);
    assert_eq!(c.ident.cgroup_id, Some(u64::MAX - 1));
    assert_eq!(
        (c.ident.cgroup.clone(), c.ident.container_id.clone()),
        (None, None)
    );
    // id 0: no cgroup from the kernel
    let c = r.resolve(0, 43, 1);
    assert_eq!(c.ident.cgroup_id, None);
    let s = shared.stats();
    assert_eq!(s.lookups, 3);
    assert_eq!(s.cgroup_unresolved, 2);
    assert_eq!(s.pod_unresolved, 1);
    assert_eq!(s.container_name_unresolved, 1);
    assert_eq!(s.exe_unresolved, 3);
    assert!(s.pods_dir_errors >= 1);
}

#[test]
fn a_cgroup_made_later_is_found_and_removed_ones_keep_their_identity() {
    let (n, shared, _) = node("later");
    let mut r = Resolver::new(shared.clone());
    let _ = r.resolve(u64::MAX - 2, 42, 1); // walks once
    let late = n.dir.join(format!("cg/system.slice/docker-{ID}.scope"));
    std::fs::create_dir_all(&late).unwrap();
    let id = cgroupfs::id_of(&late).unwrap();
    // a miss walks again, at most once a second
    let deadline = Instant::now() + Duration::from_secs(5);
    let c = loop {
        let c = r.resolve(id, 42, 1);
        if c.ident.container_id.is_some() || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(c.ident.container_runtime.as_deref(), Some("docker"));
    std::fs::remove_dir(&late).unwrap();
    // still the same identity from the cache
    assert_eq!(r.resolve(id, 42, 1).ident.container_id.as_deref(), Some(ID));
}

#[test]
fn thousands_of_cgroups_stay_bounded() {
    let (n, shared, _) = node("many");
    let mut r = Resolver::new(shared.clone());
    for k in 0..(MAX_CACHED as u64 + 500) {
        let _ = r.resolve(1_000_000 + k, 42, k);
    }
    assert!(r.by_cgroup.len() <= MAX_CACHED);
    assert!(r.exes.len() <= MAX_CACHED);
    assert!(shared.stats().cache_evictions > 0);
    drop(n);
}

#[test]
fn no_kernel_id_takes_the_process_cgroup_from_proc() {
    let (n, shared, scope) = node("procid");
    let rel = scope
        .strip_prefix(n.dir.join("cg"))
        .unwrap()
        .display()
        .to_string();
    std::fs::write(n.dir.join("proc/42/cgroup"), format!("0::/{rel}\n")).unwrap();
    let mut r = Resolver::new(shared.clone());
    let c = r.resolve(0, 42, 1);
    assert_eq!(c.ident.cgroup_id, cgroupfs::id_of(&scope));
    assert_eq!(c.ident.container_id.as_deref(), Some(ID));
    // an escape out of the hierarchy is not followed
    std::fs::write(n.dir.join("proc/42/cgroup"), "0::/../../etc\n").unwrap();
    let mut r = Resolver::new(shared);
    assert_eq!(r.resolve(0, 42, 2).ident.cgroup_id, None);
}
