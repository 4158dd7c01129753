// SPDX-License-Identifier: GPL-3.0-or-later
//! Live identity tests (root): real cgroup v2 directories named exactly as
//! container runtimes and the kubelet name them (made under a directory of
//! the test's own in the v2 hierarchy: `/sys/fs/cgroup/unified` on this
//! hybrid host, `/sys/fs/cgroup` on a v2 one), servers and clients moved
//! into them through `cgroup.procs`, real HTTP over loopback, and a
//! `/var/log/pods` tree made by the test. Checked: the records' cgroup,
//! container, Pod and node fields; the `--container`, `--pod` and
//! `--cgroup` filters in the kernel, also for cgroups made after the probe
//! started; a cgroup removed with a connection open; thousands of
//! short-lived cgroups; an unreadable pods directory. Every cgroup the test
//! made is removed, also when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The test's own part of the cgroup v2 hierarchy; removed on drop
/// (processes still in it are moved to the root first).
struct Cgroups {
    root: PathBuf,
    top: PathBuf,
}

impl Cgroups {
    fn new(name: &str) -> Cgroups {
        require_root();
        let root = osprey::identity::cgroupfs::find_v2_root().expect("a cgroup v2 hierarchy");
        let top = root.join(format!("osprey-test-{}-{name}.slice", std::process::id()));
        let _ = std::fs::create_dir(&top);
        assert!(top.is_dir(), "mkdir {}", top.display());
        Cgroups { root, top }
    }

    /// mkdir -p under the test's directory.
    fn mk(&self, rel: &str) -> PathBuf {
        let p = self.top.join(rel);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }

    /// The path as records name it (rooted at the hierarchy's root).
    fn rooted(&self, p: &Path) -> String {
        format!("/{}", p.strip_prefix(&self.root).unwrap().display())
    }

    fn dirs_bottom_up(&self) -> Vec<PathBuf> {
        let mut all = vec![];
        let mut stack = vec![self.top.clone()];
        while let Some(d) = stack.pop() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        stack.push(e.path());
                    }
                }
            }
            all.push(d);
        }
        all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        all
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let t0 = Instant::now();
        loop {
            let dirs = self.dirs_bottom_up();
            for d in &dirs {
                if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    for pid in procs.lines() {
                        let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
                    }
                }
                let _ = std::fs::remove_dir(d);
            }
            if !self.top.exists() || t0.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.top.exists() {
            eprintln!("could not remove {}", self.top.display());
        }
    }
}

/// `prog args...` started inside cgroup `cg` (the shell moves itself, then
/// execs: the program never runs outside it).
fn in_cgroup(cg: &Path, prog: &str, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
        .arg(cg)
        .arg(prog)
        .args(args);
    c
}

/// python3 http.server inside `cg` on `port`, serving `dir`.
fn server_in(cg: &Path, dir: &Path, port: u16) -> Guard {
    let mut cmd = in_cgroup(
        cg,
        "python3",
        &[
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ],
    );
    cmd.current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let g = Guard(cmd.spawn().expect("python3"));
    wait_listening(port);
    g
}

/// `curl` inside `cg`; must succeed.
fn curl_in(cg: &Path, url: &str) {
    run_ok(&mut in_cgroup(cg, "curl", &["-sS", "-o", "/dev/null", url]));
}

/// A 64-hex container id, unique per test run.
fn hex_id(n: u64) -> String {
    format!(
        "{:016x}{:048x}",
        0x05b2_e700_0000_0000u64 | std::process::id() as u64,
        n
    )
}

/// A Pod UID (8-4-4-4-12), unique per test run.
fn pod_uid(n: u64) -> String {
    format!("{:08x}-{:04x}-4000-8000-{:012x}", std::process::id(), n, n)
}

fn ino(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

fn s<'a>(r: &'a Value, k: &str) -> Option<&'a str> {
    r[k].as_str()
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
#[allow(clippy::type_complexity)]
fn records_name_cgroup_container_runtime_and_pod() {
    let cg = Cgroups::new("names");
    let dir = tmpdir("identity-names");
    let (uid1, uid2, uid3) = (pod_uid(1), pod_uid(2), pod_uid(3));
    let u_ = |u: &str| u.replace('-', "_");
    let ids: Vec<String> = (1..=5).map(hex_id).collect();
    // the server: a containerd container of a Burstable Pod with logs
    let server_cg = cg.mk(&format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope",
        u_(&uid1),
        ids[0]
    ));
    std::fs::create_dir_all(dir.join(format!("log/pods/shop_cart-0_{uid1}/app"))).unwrap();
    std::fs::create_dir_all(dir.join("log/containers")).unwrap();
    std::fs::write(
        dir.join(format!("log/containers/cart-0_shop_app-{}.log", ids[0])),
        "",
    )
    .unwrap();
    // clients: (name, cgroup, runtime, container id, pod uid, qos)
    let clients: Vec<(&str, PathBuf, Option<&str>, Option<String>, Option<String>, Option<&str>)> = vec![
        ("docker", cg.mk(&format!("system.slice/docker-{}.scope", ids[1])), Some("docker"), Some(ids[1].clone()), None, None),
        (
            "crio",
            cg.mk(&format!(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{}.scope",
                u_(&uid2),
                ids[2]
            )),
            Some("cri-o"),
            Some(ids[2].clone()),
            Some(uid2.clone()),
            Some("BestEffort"),
        ),
        (
            "guaranteed",
            cg.mk(&format!("kubepods.slice/kubepods-pod{}.slice/docker-{}.scope", u_(&uid3), ids[3])),
            Some("docker"),
            Some(ids[3].clone()),
            Some(uid3.clone()),
            Some("Guaranteed"),
        ),
        ("podman", cg.mk(&format!("machine.slice/libpod-{}.scope/container", ids[4])), Some("podman"), Some(ids[4].clone()), None, None),
        ("nspawn", cg.mk("machine.slice/systemd-nspawn@web\\x2d1.service/payload"), Some("systemd-nspawn"), Some("web-1".into()), None, None),
        ("lxc", cg.mk("lxc.payload.web1"), Some("lxc"), Some("web1".into()), None, None),
        ("plain", cg.mk("system.slice/plain.service"), None, None, None, None),
    ];
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "hello\n").unwrap();
    let port = free_port();
    let _server = server_in(&server_cg, &dir.join("www"), port);
    let pods = dir.join("log/pods");
    let probe = Osprey::start(
        &[
            "--pods-log-dir",
            pods.to_str().unwrap(),
            "--node-name",
            "test-node-1",
        ],
        dir.join("out.jsonl"),
    );
    for (name, c, ..) in &clients {
        curl_in(c, &format!("http://127.0.0.1:{port}/index.html?c={name}"));
    }
    let n = clients.len();
    probe.wait_for_records("both sides of every request", |r| {
        r.iter()
            .filter(|t| {
                t["type"] == "http_transaction"
                    && (t["local_port"] == port || t["remote_port"] == port)
            })
            .count()
            >= 2 * n
    });
    let (recs, err) = probe.stop_ok();
    let ours: Vec<&Value> = recs
        .iter()
        .filter(|t| t["type"] == "http_transaction")
        .collect();
    for (name, c, runtime, id, uid, qos) in &clients {
        let target = format!("/index.html?c={name}");
        let client: Vec<&&Value> = ours
            .iter()
            .filter(|t| {
                t["role"] == "client"
                    && t["remote_port"] == port
                    && s(t, "target") == Some(target.as_str())
            })
            .collect();
        assert_eq!(client.len(), 1, "{name}: {client:#?}\n{err}");
        let t = client[0];
        assert_eq!(t["cgroup_id"].as_u64(), Some(ino(c)), "{name}: {t}");
        assert_eq!(s(t, "cgroup"), Some(cg.rooted(c).as_str()), "{name}: {t}");
        assert_eq!(s(t, "container_runtime"), *runtime, "{name}: {t}");
        assert_eq!(s(t, "container_id"), id.as_deref(), "{name}: {t}");
        assert_eq!(s(t, "pod_uid"), uid.as_deref(), "{name}: {t}");
        assert_eq!(s(t, "pod_qos"), *qos, "{name}: {t}");
        // no log directory for these Pods: never guessed
        assert_eq!(
            (&t["pod_namespace"], &t["pod_name"], &t["container_name"]),
            (&Value::Null, &Value::Null, &Value::Null),
            "{name}: {t}"
        );
        assert_eq!(t["workload"], Value::Null);
        assert_eq!(s(t, "node"), Some("test-node-1"));
        // a curl may exit before its OPEN record is read: then `exe` is
        // null (counted), never another program's
        assert!(
            s(t, "exe").is_none_or(|e| e.ends_with("/curl")),
            "{name}: {t}"
        );
        // the server's side: the Pod with its names
        let server: Vec<&&Value> = ours
            .iter()
            .filter(|t| {
                t["role"] == "server"
                    && t["local_port"] == port
                    && s(t, "target") == Some(target.as_str())
            })
            .collect();
        assert_eq!(server.len(), 1, "{name}: {server:#?}");
        let t = server[0];
        assert_eq!(t["cgroup_id"].as_u64(), Some(ino(&server_cg)), "{t}");
        assert_eq!(s(t, "container_runtime"), Some("containerd"), "{t}");
        assert_eq!(s(t, "container_id"), Some(ids[0].as_str()), "{t}");
        assert_eq!(s(t, "pod_uid"), Some(uid1.as_str()), "{t}");
        assert_eq!(s(t, "pod_qos"), Some("Burstable"), "{t}");
        assert_eq!(s(t, "pod_namespace"), Some("shop"), "{t}");
        assert_eq!(s(t, "pod_name"), Some("cart-0"), "{t}");
        assert_eq!(s(t, "container_name"), Some("app"), "{t}");
        assert!(s(t, "exe").is_some_and(|e| e.contains("python")), "{t}");
    }
    let id = &summary(&err)["kernel"]["identity"];
    // the two Pods without a log directory, as clients
    assert!(id["pod_unresolved"].as_u64().unwrap() >= 2, "{id}");
    assert!(err.contains("osprey: identity: "), "{err}");
}

/// Requests to `port` until the probe wrote a server-side record of it
/// (a cgroup made after the start is added by the next rescan); returns
/// how many requests it took.
fn until_recorded(probe: &Osprey, port: u16) -> u64 {
    let mut n = 0;
    let t0 = Instant::now();
    loop {
        curl(&[
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{port}/index.html"),
        ]);
        n += 1;
        let seen = probe
            .records_so_far()
            .iter()
            .any(|t| t["type"] == "http_transaction" && t["local_port"] == port);
        if seen {
            return n;
        }
        assert!(
            t0.elapsed() < PATIENCE,
            "no record of port {port} after {n} requests:\n{}",
            probe.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn container_pod_and_cgroup_filters_in_the_kernel_also_for_later_cgroups() {
    let cg = Cgroups::new("filters");
    let dir = tmpdir("identity-filters");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "hello\n").unwrap();
    let www = dir.join("www");
    let (id_a, id_b) = (hex_id(11), hex_id(12));
    let uid_b = pod_uid(12);
    let a = cg.mk(&format!("system.slice/docker-{id_a}.scope"));
    let (pa, pb, pc, po) = (free_port(), free_port(), free_port(), free_port());
    let _sa = server_in(&a, &www, pa);
    // outside every filter: the test's own cgroup
    let mut so = Command::new("python3");
    so.args(["-m", "http.server", &po.to_string(), "--bind", "127.0.0.1"])
        .current_dir(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _so = Guard(so.spawn().unwrap());
    wait_listening(po);
    std::fs::create_dir_all(dir.join("log/pods")).unwrap();
    let late = cg.top.join("late.slice");
    let probe = Osprey::start(
        &[
            "--container",
            &id_a[..12],
            "--pod",
            "shop/late-0",
            "--cgroup",
            late.to_str().unwrap(),
            "--cgroup-rescan-ms",
            "200",
            "--pods-log-dir",
            dir.join("log/pods").to_str().unwrap(),
        ],
        dir.join("out.jsonl"),
    );
    // after the start: a Pod (its log directory, its cgroup) and the cgroup
    std::fs::create_dir_all(dir.join(format!("log/pods/shop_late-0_{uid_b}/app"))).unwrap();
    let b = cg.mk(&format!(
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id_b}.scope",
        uid_b.replace('-', "_")
    ));
    let c = cg.mk("late.slice/inner.scope");
    let _sb = server_in(&b, &www, pb);
    let _sc = server_in(&c, &www, pc);
    // traffic outside: 500 requests on one connection, none may be recorded
    let load = r#"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(500):
    c.request("GET", "/index.html"); c.getresponse().read()
print("done")
"#;
    run_python(load, &[&po.to_string()]);
    let mut asked = 0;
    for p in [pa, pb, pc] {
        asked += until_recorded(&probe, p);
    }
    // 500 more outside, after the filters were complete
    run_python(load, &[&po.to_string()]);
    let (recs, err) = probe.stop_ok();
    for t in &recs {
        assert!(
            t["local_port"] != po && t["remote_port"] != po,
            "outside traffic recorded: {t}"
        );
        assert_ne!(t["comm"], "curl", "curl runs outside the filters: {t}");
        assert_ne!(t["role"], "client", "{t}");
    }
    let server = |p: u16| -> Vec<&Value> { recs.iter().filter(|t| t["local_port"] == p).collect() };
    assert!(server(pa)
        .iter()
        .all(|t| s(t, "container_id") == Some(id_a.as_str())));
    assert!(server(pb).iter().all(|t| s(t, "pod_name") == Some("late-0")
        && s(t, "pod_namespace") == Some("shop")
        && s(t, "pod_uid") == Some(uid_b.as_str())));
    assert!(server(pc)
        .iter()
        .all(|t| s(t, "cgroup") == Some(cg.rooted(&c).as_str())));
    assert!(!server(pa).is_empty() && !server(pb).is_empty() && !server(pc).is_empty());
    // the kernel wrote records of the selected servers only: an OPEN, a
    // CLOSE and a few DATA records per request asked; the 1000 outside
    // requests would be 2000 DATA records alone
    let k = &summary(&err)["kernel"];
    let events = k["events"].as_u64().unwrap();
    assert!(
        events <= 8 * asked,
        "{events} kernel records for {asked} selected requests:\n{err}"
    );
    assert!(
        k["identity"]["filter_cgroups"].as_u64().unwrap() >= 3,
        "{k}"
    );
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn short_lived_and_removed_cgroups_and_an_unreadable_pods_dir() {
    const N: usize = 2000;
    let cg = Cgroups::new("churn");
    let dir = tmpdir("identity-churn");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "hello\n").unwrap();
    let uid = pod_uid(21);
    let pod = cg.mk(&format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        uid.replace('-', "_")
    ));
    let port = free_port();
    // HTTP/1.1 with keep-alive (http.server alone speaks 1.0 and closes)
    let mut so = Command::new("python3");
    so.args([
        "-c",
        "import http.server as h, sys; h.SimpleHTTPRequestHandler.protocol_version = 'HTTP/1.1'; \
         h.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), h.SimpleHTTPRequestHandler).serve_forever()",
        &port.to_string(),
    ])
    .current_dir(dir.join("www"))
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let _server = Guard(so.spawn().unwrap());
    wait_listening(port);
    // a file where the pods directory should be: unreadable as one
    let notdir = dir.join("pods-is-a-file");
    std::fs::write(&notdir, "").unwrap();
    let probe = Osprey::start(
        &["--pods-log-dir", notdir.to_str().unwrap()],
        dir.join("out.jsonl"),
    );
    let rss = |pid: u32| -> u64 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        st.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    // a cgroup removed while its connection is open: the client waits
    // until its first request is recorded, then leaves the cgroup, removes
    // it and makes a second request on the same connection
    let removed_id = hex_id(22);
    let removed = pod.join(format!("cri-containerd-{removed_id}.scope"));
    let lingering = r#"
import http.client, os, sys
cg, home, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def move(d):
    with open(d + "/cgroup.procs", "w") as f: f.write(str(os.getpid()))
os.makedirs(cg); os.makedirs(home, exist_ok=True)
move(cg)
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/index.html?first"); c.getresponse().read()
print("ready", flush=True)
sys.stdin.readline()
move(home); os.rmdir(cg)
assert not os.path.exists(cg)
c.request("GET", "/index.html?after-rmdir"); c.getresponse().read(); c.close()
"#;
    let home = pod.join("home.scope");
    let mut lc = Command::new("python3")
        .args([
            "-c",
            lingering,
            removed.to_str().unwrap(),
            home.to_str().unwrap(),
            &port.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(lc.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    probe.wait_for_records("the first request in the cgroup", |r| {
        r.iter()
            .any(|t| t["role"] == "client" && s(t, "target") == Some("/index.html?first"))
    });
    std::io::Write::write_all(lc.stdin.as_mut().unwrap(), b"go\n").unwrap();
    assert!(lc.wait().unwrap().success());
    assert!(!removed.exists());
    probe.wait_for_records("the request after the rmdir", |r| {
        r.iter()
            .any(|t| t["role"] == "client" && s(t, "target") == Some("/index.html?after-rmdir"))
    });

    let rss0 = rss(probe.pid());
    // one client moving itself through N containers made and removed in
    // turn, one connection each (printing each cgroup's id)
    let client = r#"
import http.client, os, sys
pod, port, n, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
home = pod + "/home.scope"
os.makedirs(home, exist_ok=True)
def move(cg):
    with open(cg + "/cgroup.procs", "w") as f: f.write(str(os.getpid()))
for i in range(n):
    cg = pod + "/cri-containerd-" + base + "%048x" % i + ".scope"
    os.mkdir(cg); move(cg)
    print(i, os.stat(cg).st_ino)
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/index.html?i=%d" % i); c.getresponse().read(); c.close()
    move(home); os.rmdir(cg)
"#;
    let base = &hex_id(0)[..16];
    let t0 = Instant::now();
    let inos: std::collections::HashMap<usize, u64> = run_ok(Command::new("python3").args([
        "-c",
        client,
        pod.to_str().unwrap(),
        &port.to_string(),
        &N.to_string(),
        base,
    ]))
    .lines()
    .map(|l| {
        let (i, ino) = l.split_once(' ').unwrap();
        (i.parse().unwrap(), ino.parse().unwrap())
    })
    .collect();
    let churn_secs = t0.elapsed().as_secs_f64();
    let want = N + 2;
    probe.wait_for_records("every client request", |r| {
        r.iter()
            .filter(|t| t["role"] == "client" && t["remote_port"] == port)
            .count()
            >= want
    });
    let rss1 = rss(probe.pid());
    let (recs, err) = probe.stop_ok();
    let client_recs: Vec<&Value> = recs
        .iter()
        .filter(|t| t["role"] == "client" && t["remote_port"] == port)
        .collect();
    assert_eq!(client_recs.len(), want);
    // the removed cgroup: both requests carry its identity
    for target in ["/index.html?first", "/index.html?after-rmdir"] {
        let t = client_recs
            .iter()
            .find(|t| s(t, "target") == Some(target))
            .unwrap();
        assert_eq!(s(t, "container_id"), Some(removed_id.as_str()), "{t}");
        assert_eq!(s(t, "cgroup"), Some(cg.rooted(&removed).as_str()), "{t}");
        assert_eq!(s(t, "pod_uid"), Some(uid.as_str()), "{t}");
        assert_eq!(s(t, "pod_qos"), Some("Burstable"), "{t}");
        assert_eq!(
            (&t["pod_namespace"], &t["pod_name"]),
            (&Value::Null, &Value::Null),
            "{t}"
        );
    }
    // the short-lived ones: the kernel's id exactly; the rest resolved
    // right, or null (a cgroup removed before user space read its OPEN
    // record), never another container's
    let mut resolved = 0;
    for t in client_recs
        .iter()
        .filter(|t| s(t, "target").unwrap().contains("?i="))
    {
        let target = s(t, "target").unwrap();
        let i: usize = target.rsplit('=').next().unwrap().parse().unwrap();
        let cid = format!("{base}{i:048x}");
        assert_eq!(t["cgroup_id"].as_u64(), Some(inos[&i]), "{t}");
        match s(t, "container_id") {
            Some(c) => {
                assert_eq!(c, cid, "{t}");
                assert_eq!(s(t, "container_runtime"), Some("containerd"), "{t}");
                assert!(
                    s(t, "cgroup")
                        .unwrap()
                        .ends_with(&format!("cri-containerd-{cid}.scope")),
                    "{t}"
                );
                assert_eq!(s(t, "pod_uid"), Some(uid.as_str()), "{t}");
                resolved += 1;
            }
            None => assert_eq!(
                (&t["cgroup"], &t["pod_uid"]),
                (&Value::Null, &Value::Null),
                "{t}"
            ),
        }
        assert_eq!(t["pod_name"], Value::Null, "{t}");
    }
    let id = &summary(&err)["kernel"]["identity"];
    eprintln!(
        "{N} short-lived cgroups in {churn_secs:.1}s: {resolved} resolved ({} through inotify, {} by file handle, {} walks); osprey VmRSS {rss0} kB before, {rss1} kB after",
        id["inotify_finds"], id["handle_lookups"], id["cgroup_walks"]
    );
    assert!(id["pods_dir_errors"].as_u64().unwrap() >= 1, "{id}");
    assert!(id["pod_unresolved"].as_u64().unwrap() >= resolved, "{id}");
    assert!(
        id["cgroup_unresolved"].as_u64().unwrap() >= N as u64 - resolved,
        "{id}"
    );
    // bounded: caches of at most 8192 entries of a few hundred bytes
    assert!(
        rss1 < rss0 + 64 * 1024,
        "VmRSS grew from {rss0} kB to {rss1} kB over {N} cgroups"
    );
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn a_pure_v2_host_layout_is_found_too() {
    // Osprey in a private mount namespace whose only cgroup mount is the v2
    // hierarchy at /sys/fs/cgroup, as on a pure v2 host (here the same
    // hierarchy as /sys/fs/cgroup/unified outside)
    let cg = Cgroups::new("purev2");
    let dir = tmpdir("identity-purev2");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "hello\n").unwrap();
    let id = hex_id(31);
    let c = cg.mk(&format!("system.slice/docker-{id}.scope"));
    let port = free_port();
    let _server = server_in(&c, &dir.join("www"), port);
    let rooted_top = cg.rooted(&cg.top);
    let out = dir.join("out.jsonl");
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"",
        BIN,
        "-v",
        "-o",
    ])
    .arg(&out)
    .args(hooks_args())
    // the path as a v2 host names it, under its mount point
    .args(["--cgroup", &format!("/sys/fs/cgroup{rooted_top}")]);
    let probe = Osprey::start_cmd(cmd, Some(out));
    curl(&[
        "-o",
        "/dev/null",
        &format!("http://127.0.0.1:{port}/index.html"),
    ]);
    probe.wait_for_records("the server's record", |r| {
        r.iter()
            .any(|t| t["type"] == "http_transaction" && t["local_port"] == port)
    });
    let (recs, err) = probe.stop_ok();
    let t: Vec<&Value> = recs
        .iter()
        .filter(|t| t["type"] == "http_transaction")
        .collect();
    // curl runs outside the cgroup: only the server's side
    assert_eq!(t.len(), 1, "{t:#?}\n{err}");
    assert_eq!(t[0]["local_port"], port);
    assert_eq!(s(t[0], "cgroup"), Some(cg.rooted(&c).as_str()), "{}", t[0]);
    assert_eq!(t[0]["cgroup_id"].as_u64(), Some(ino(&c)));
    assert_eq!(s(t[0], "container_id"), Some(id.as_str()));
    assert_eq!(s(t[0], "container_runtime"), Some("docker"));
}
