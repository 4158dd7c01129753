// SPDX-License-Identifier: GPL-3.0-or-later
//! What a cgroup path says about its processes: the container runtime and
//! container id, and the Kubernetes Pod UID and QoS class, from the names
//! runtimes and the kubelet give their cgroups (systemd and cgroupfs
//! drivers); and `/proc/PID/cgroup` of cgroup v1, v2 and hybrid hosts.
//!
//! Only names that follow a known scheme exactly are taken: a 64-hex id
//! where the runtime writes one, a UID of the kubelet's form. Anything
//! else leaves the field `None`, never a guess.

/// A container as its cgroup path names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// "docker", "containerd", "cri-o", "podman", "systemd-nspawn",
    /// "lxc"; None when the path has an id but not the runtime (the
    /// kubelet's cgroupfs driver names a container by its id alone).
    pub runtime: Option<&'static str>,
    pub id: String,
}

/// A Kubernetes Pod as its cgroup path names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// With dashes (the systemd driver writes underscores).
    pub uid: String,
    /// "Guaranteed", "Burstable" or "BestEffort".
    pub qos: &'static str,
}

/// Everything one cgroup path says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathInfo {
    /// The innermost container on the path.
    pub container: Option<Container>,
    pub pod: Option<Pod>,
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// A Pod UID as the kubelet writes it (a UUID, 8-4-4-4-12 hex; the systemd
/// driver replaces the dashes by underscores).
fn pod_uid(s: &str) -> Option<String> {
    let u = s.replace('_', "-");
    let parts: Vec<&str> = u.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    (parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit())))
    .then_some(u)
}

/// systemd unit-name unescaping (`\x2d` → `-`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            let hex = &b[i + 2..i + 4];
            if let Some(v) = hex
                .iter()
                .all(u8::is_ascii_hexdigit)
                .then(|| std::str::from_utf8(hex).ok())
                .flatten()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A runtime's scope name: `<prefix><64 hex>.scope` (systemd driver).
fn scope_id<'a>(seg: &'a str, prefix: &str) -> Option<&'a str> {
    let id = seg.strip_prefix(prefix)?.strip_suffix(".scope")?;
    is_hex_id(id).then_some(id)
}

/// The container one path segment names (with the segment before it, for
/// the cgroupfs schemes `/docker/<id>` and `/lxc/<name>`).
fn container_of(prev: Option<&str>, seg: &str, in_pod: bool) -> Option<Container> {
    let c = |runtime: &'static str, id: &str| {
        Some(Container {
            runtime: Some(runtime),
            id: id.to_string(),
        })
    };
    // systemd driver
    if let Some(id) = scope_id(seg, "docker-") {
        return c("docker", id);
    }
    if let Some(id) = scope_id(seg, "cri-containerd-") {
        return c("containerd", id);
    }
    if let Some(id) = scope_id(seg, "crio-") {
        return c("cri-o", id);
    }
    if let Some(id) = scope_id(seg, "libpod-") {
        return c("podman", id);
    }
    // systemd-nspawn: the unit of the container, or machined's scope
    if let Some(name) = seg
        .strip_prefix("systemd-nspawn@")
        .and_then(|s| s.strip_suffix(".service"))
    {
        if !name.is_empty() {
            return c("systemd-nspawn", &unescape(name));
        }
    }
    if prev == Some("machine.slice") {
        if let Some(name) = seg
            .strip_prefix("machine-")
            .and_then(|s| s.strip_suffix(".scope"))
        {
            if !name.is_empty() {
                return c("systemd-nspawn", &unescape(name));
            }
        }
    }
    // LXC 4+: lxc.payload.<name>; older: /lxc/<name>
    if let Some(name) = seg.strip_prefix("lxc.payload.") {
        if !name.is_empty() {
            return c("lxc", name);
        }
    }
    match prev {
        // cgroupfs driver: /docker/<id>, /libpod_parent/libpod-<id>
        Some("docker") if is_hex_id(seg) => return c("docker", seg),
        Some("libpod_parent") => {
            if let Some(id) = seg.strip_prefix("libpod-").filter(|i| is_hex_id(i)) {
                return c("podman", id);
            }
        }
        Some("lxc") if !seg.is_empty() && !seg.starts_with("lxc.") => return c("lxc", seg),
        _ => {}
    }
    // the kubelet's cgroupfs driver: /kubepods/<qos>/pod<uid>/<id>, the
    // runtime not named
    if in_pod && is_hex_id(seg) {
        return Some(Container {
            runtime: None,
            id: seg.to_string(),
        });
    }
    None
}

/// The Pod level of a kubepods hierarchy, with the QoS of the level above.
fn pod_of(prev: Option<&str>, seg: &str) -> Option<Pod> {
    // systemd driver: [kubelet-]kubepods[-burstable|-besteffort]-pod<uid>.slice
    if let Some(name) = seg.strip_suffix(".slice") {
        let at = name.find("kubepods")?;
        let rest = &name[at + "kubepods".len()..];
        let (qos, rest) = if let Some(r) = rest.strip_prefix("-burstable") {
            ("Burstable", r)
        } else if let Some(r) = rest.strip_prefix("-besteffort") {
            ("BestEffort", r)
        } else {
            ("Guaranteed", rest)
        };
        let uid = pod_uid(rest.strip_prefix("-pod")?)?;
        return Some(Pod { uid, qos });
    }
    // cgroupfs driver: /kubepods/pod<uid>, /kubepods/burstable/pod<uid>
    let uid = pod_uid(seg.strip_prefix("pod")?)?;
    let qos = match prev? {
        "burstable" => "Burstable",
        "besteffort" => "BestEffort",
        p if p == "kubepods" || p.ends_with("kubepods") => "Guaranteed",
        _ => return None,
    };
    Some(Pod { uid, qos })
}

/// What the cgroup `path` (rooted at a hierarchy's root, `/a/b`) says.
pub fn parse_path(path: &str) -> PathInfo {
    let mut info = PathInfo::default();
    let mut prev: Option<&str> = None;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if info.pod.is_none() {
            info.pod = pod_of(prev, seg);
        }
        if let Some(c) = container_of(prev, seg, info.pod.is_some()) {
            info.container = Some(c);
        }
        prev = Some(seg);
    }
    info
}

/// `/proc/PID/cgroup`: the cgroup v2 path (`0::/path`) and the v1 ones
/// (`N:controllers:/path`); a hybrid host has both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcCgroups {
    pub v2: Option<String>,
    /// (controllers, path); `name=systemd` is the named systemd hierarchy.
    pub v1: Vec<(String, String)>,
}

pub fn parse_proc_cgroup(text: &str) -> ProcCgroups {
    let mut out = ProcCgroups::default();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(ctl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if id == "0" && ctl.is_empty() {
            out.v2 = Some(path.to_string());
        } else if !path.is_empty() {
            out.v1.push((ctl.to_string(), path.to_string()));
        }
    }
    out
}

impl ProcCgroups {
    /// What the paths say: the v2 path first; on a host where v2 names no
    /// container (v1 or hybrid with the runtime on v1), the v1 paths —
    /// `name=systemd` first, then the controllers in order. The first path
    /// that names a container or a Pod wins; v1 paths that disagree about
    /// the container give nothing.
    pub fn info(&self) -> (Option<&str>, PathInfo) {
        if let Some(p) = &self.v2 {
            let i = parse_path(p);
            if i.container.is_some() || i.pod.is_some() {
                return (Some(p), i);
            }
        }
        let mut order: Vec<&(String, String)> = self.v1.iter().collect();
        order.sort_by_key(|(c, _)| c != "name=systemd");
        let mut found: Option<(&str, PathInfo)> = None;
        for (_, p) in order {
            let i = parse_path(p);
            if i.container.is_none() && i.pod.is_none() {
                continue;
            }
            match &found {
                None => found = Some((p, i)),
                Some((_, f))
                    if f.container.as_ref().map(|c| &c.id)
                        != i.container.as_ref().map(|c| &c.id) =>
                {
                    return (None, PathInfo::default());
                }
                _ => {}
            }
        }
        match found {
            Some((p, i)) => (Some(p), i),
            None => (self.v2.as_deref(), PathInfo::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4b1c2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
    const UID: &str = "1b3e5f7a-9c2d-4e6f-8a1b-3c5d7e9f1a2b";
    const UID_: &str = "1b3e5f7a_9c2d_4e6f_8a1b_3c5d7e9f1a2b";

    fn c(runtime: Option<&'static str>, id: &str) -> Option<Container> {
        Some(Container {
            runtime,
            id: id.into(),
        })
    }

    fn pod(qos: &'static str) -> Option<Pod> {
        Some(Pod {
            uid: UID.into(),
            qos,
        })
    }

    #[test]
    fn every_runtime_systemd_driver() {
        for (path, rt) in [
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (
                format!("/system.slice/cri-containerd-{ID}.scope"),
                "containerd",
            ),
            (format!("/machine.slice/crio-{ID}.scope"), "cri-o"),
            (format!("/machine.slice/libpod-{ID}.scope"), "podman"),
            // podman with a private cgroup namespace adds a level
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
            ),
            (
                format!(
                    "/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ID}.scope"
                ),
                "docker",
            ),
        ] {
            let i = parse_path(&path);
            assert_eq!(i.container, c(Some(rt), ID), "{path}");
            assert_eq!(i.pod, None, "{path}");
        }
    }

    #[test]
    fn every_runtime_cgroupfs_driver() {
        assert_eq!(
            parse_path(&format!("/docker/{ID}")).container,
            c(Some("docker"), ID)
        );
        assert_eq!(
            parse_path(&format!("/libpod_parent/libpod-{ID}")).container,
            c(Some("podman"), ID)
        );
        assert_eq!(parse_path("/lxc/web1").container, c(Some("lxc"), "web1"));
        assert_eq!(
            parse_path("/lxc.payload.web1").container,
            c(Some("lxc"), "web1")
        );
        assert_eq!(
            parse_path("/lxc.payload.web1/init.scope").container,
            c(Some("lxc"), "web1")
        );
        assert_eq!(parse_path("/lxc.monitor.web1").container, None);
    }

    #[test]
    fn nspawn_and_machined() {
        assert_eq!(
            parse_path("/machine.slice/systemd-nspawn@deb\\x2dtest.service/payload").container,
            c(Some("systemd-nspawn"), "deb-test")
        );
        assert_eq!(
            parse_path("/machine.slice/machine-deb\\x2dtest.scope").container,
            c(Some("systemd-nspawn"), "deb-test")
        );
        // a scope of that form elsewhere is not a machine
        assert_eq!(parse_path("/user.slice/machine-x.scope").container, None);
    }

    #[test]
    fn monitors_and_malformed_ids_are_no_container() {
        for p in [
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/system.slice/crio-conmon-{ID}.scope"),
            "/system.slice/docker-abc.scope".to_string(),
            format!("/system.slice/docker-{}.scope", ID.to_uppercase()),
            format!("/system.slice/docker-{ID}x.scope"),
            "/system.slice/docker.service".to_string(),
            "/user.slice/user-1000.slice/session-2.scope".to_string(),
            "/".to_string(),
            String::new(),
            format!("/{ID}"),
        ] {
            assert_eq!(parse_path(&p), PathInfo::default(), "{p}");
        }
    }

    #[test]
    fn kubepods_systemd_driver() {
        for (path, qos, rt) in [
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"),
                "Burstable",
                "containerd",
            ),
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope"),
                "BestEffort",
                "cri-o",
            ),
            (
                format!("/kubepods.slice/kubepods-pod{UID_}.slice/docker-{ID}.scope"),
                "Guaranteed",
                "docker",
            ),
            // kind / kubelet in a slice of its own
            (
                format!("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"),
                "Burstable",
                "containerd",
            ),
        ] {
            let i = parse_path(&path);
            assert_eq!(i.pod, pod(qos), "{path}");
            assert_eq!(i.container, c(Some(rt), ID), "{path}");
        }
        // the Pod's own level: a Pod, no container
        let i = parse_path(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"
        ));
        assert_eq!((i.pod, i.container), (pod("Burstable"), None));
        // a QoS level alone is no Pod
        assert_eq!(
            parse_path("/kubepods.slice/kubepods-burstable.slice"),
            PathInfo::default()
        );
        // a malformed UID is none
        assert_eq!(
            parse_path("/kubepods.slice/kubepods-podnotauid.slice").pod,
            None
        );
    }

    #[test]
    fn kubepods_cgroupfs_driver() {
        let i = parse_path(&format!("/kubepods/burstable/pod{UID}/{ID}"));
        assert_eq!((i.pod, i.container), (pod("Burstable"), c(None, ID)));
        let i = parse_path(&format!("/kubepods/besteffort/pod{UID}/{ID}"));
        assert_eq!(i.pod, pod("BestEffort"));
        let i = parse_path(&format!("/kubepods/pod{UID}/{ID}"));
        assert_eq!(i.pod, pod("Guaranteed"));
        // pod<uid> outside kubepods is not a Pod, a bare id outside a Pod no container
        assert_eq!(
            parse_path(&format!("/other/pod{UID}/{ID}")),
            PathInfo::default()
        );
    }

    /// Real /proc/PID/cgroup contents, one per host kind and runtime.
    #[test]
    fn proc_cgroup_v2_host() {
        for (text, rt) in [
            (format!("0::/system.slice/docker-{ID}.scope\n"), Some("docker")),
            (format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope\n"), Some("containerd")),
            (format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope\n"), Some("cri-o")),
            (format!("0::/machine.slice/libpod-{ID}.scope/container\n"), Some("podman")),
        ] {
            let p = parse_proc_cgroup(&text);
            assert!(p.v1.is_empty());
            let (path, i) = p.info();
            assert_eq!(path, p.v2.as_deref());
            assert_eq!(i.container, c(rt, ID), "{text}");
        }
        let p = parse_proc_cgroup(
            "0::/machine.slice/systemd-nspawn@web.service/payload/system.slice/nginx.service\n",
        );
        assert_eq!(p.info().1.container, c(Some("systemd-nspawn"), "web"));
        let p = parse_proc_cgroup("0::/lxc.payload.web1/system.slice/nginx.service\n");
        assert_eq!(p.info().1.container, c(Some("lxc"), "web1"));
        // the host's own processes
        let p = parse_proc_cgroup("0::/user.slice/user-0.slice/session-1.scope\n");
        assert_eq!(
            p.info(),
            (
                Some("/user.slice/user-0.slice/session-1.scope"),
                PathInfo::default()
            )
        );
    }

    #[test]
    fn proc_cgroup_v1_host() {
        // Docker with the cgroupfs driver on a v1 host
        let text = format!(
            "12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n4:cpu,cpuacct:/docker/{ID}\n1:name=systemd:/docker/{ID}\n"
        );
        let p = parse_proc_cgroup(&text);
        assert_eq!(p.v2, None);
        assert_eq!(p.v1.len(), 4);
        assert_eq!(p.info().1.container, c(Some("docker"), ID));
        // kubelet cgroupfs driver on v1
        let text = format!("10:memory:/kubepods/besteffort/pod{UID}/{ID}\n1:name=systemd:/kubepods/besteffort/pod{UID}/{ID}\n");
        let (_, i) = parse_proc_cgroup(&text).info();
        assert_eq!((i.pod, i.container), (pod("BestEffort"), c(None, ID)));
        // LXC before 4.0
        let (_, i) =
            parse_proc_cgroup("5:memory:/lxc/web1\n1:name=systemd:/lxc/web1/init.scope\n").info();
        assert_eq!(i.container, c(Some("lxc"), "web1"));
        // v1 paths that disagree give nothing rather than one of them
        let other = ID.replace('3', "4");
        let (_, i) = parse_proc_cgroup(&format!(
            "5:memory:/docker/{ID}\n1:name=systemd:/docker/{other}\n"
        ))
        .info();
        assert_eq!(i, PathInfo::default());
    }

    #[test]
    fn proc_cgroup_hybrid_host() {
        // systemd driver: the unified (v2) line names the scope too
        let text = format!(
            "12:pids:/system.slice/docker-{ID}.scope\n1:name=systemd:/system.slice/docker-{ID}.scope\n0::/system.slice/docker-{ID}.scope\n"
        );
        let p = parse_proc_cgroup(&text);
        assert_eq!(p.v1.len(), 2);
        let (path, i) = p.info();
        assert_eq!(
            path,
            Some(format!("/system.slice/docker-{ID}.scope").as_str())
        );
        assert_eq!(i.container, c(Some("docker"), ID));
        // cgroupfs driver on a hybrid host: v2 says nothing, v1 does
        let text = format!("4:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n");
        let pc = parse_proc_cgroup(&text);
        let (path, i) = pc.info();
        assert_eq!(path, Some(format!("/docker/{ID}").as_str()));
        assert_eq!(i.container, c(Some("docker"), ID));
        for rt_path in [
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"),
            format!("/machine.slice/crio-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope"),
        ] {
            let text = format!("3:cpu,cpuacct:{rt_path}\n1:name=systemd:{rt_path}\n0::{rt_path}\n");
            assert!(parse_proc_cgroup(&text).info().1.container.is_some(), "{rt_path}");
        }
    }

    #[test]
    fn proc_cgroup_garbage_never_panics() {
        for t in [
            "",
            "\n",
            "::",
            "0:",
            "0::",
            "x:y",
            "1:cpu:",
            ":::::",
            "0::/\u{0}",
        ] {
            let _ = parse_proc_cgroup(t).info();
        }
        assert_eq!(unescape("a\\x2db\\x"), "a-b\\x");
        assert_eq!(unescape("\\xzz"), "\\xzz");
    }
}
