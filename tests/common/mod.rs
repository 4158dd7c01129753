// SPDX-License-Identifier: GPL-3.0-or-later
//! Helpers for live tests: run the real osprey binary as root against real
//! servers and clients on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_osprey");

/// Live tests need root. They fail (not pass) without it, unless the user
/// explicitly opts out with OSPREY_SKIP_LIVE=1.
pub fn require_root() -> bool {
    if std::env::var("OSPREY_SKIP_LIVE").as_deref() == Ok("1") {
        eprintln!("OSPREY_SKIP_LIVE=1: live test skipped");
        return false;
    }
    // SAFETY: no arguments.
    assert_eq!(unsafe { libc::geteuid() }, 0, "live tests need root (or set OSPREY_SKIP_LIVE=1)");
    true
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_port(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until something listens on `port` (/proc/net/tcp, state LISTEN)
/// without connecting to it: some test servers accept exactly one connection.
pub fn wait_listening(port: u16) {
    let hex = format!(":{port:04X} ");
    let t0 = Instant::now();
    while !std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .any(|l| l.contains(&hex) && l.split_whitespace().nth(3) == Some("0A"))
    {
        assert!(t0.elapsed() < Duration::from_secs(20), "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process's transaction records in request order (records of different
/// connections may be written in any order: workers are sharded).
pub fn txns<'a>(recs: &'a [serde_json::Value], comm: &str) -> Vec<&'a serde_json::Value> {
    let mut t: Vec<&serde_json::Value> =
        recs.iter().filter(|r| r["type"] == "http_transaction" && r["comm"] == comm).collect();
    t.sort_by_key(|r| r["ts_start_ns"].as_i64());
    t
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("osprey-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child killed on drop.
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        // SIGTERM first so that servers (nginx) take their workers down too
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// python3 -m http.server serving `dir` on `port`.
pub fn python_server(dir: &std::path::Path, port: u16) -> Guard {
    let c = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let g = Guard(c);
    wait_port(port);
    g
}

/// A running osprey, attached and ready.
pub struct Osprey {
    pub child: Child,
    pub out: PathBuf,
    pub stderr: Arc<Mutex<String>>,
    /// The hook set it attached: "socket" or "syscalls".
    pub hooks: String,
}

/// `--hooks` for every probe the tests start: OSPREY_TEST_HOOKS (the test
/// script runs the live tests once per hook set), else the default.
pub fn hooks_args() -> Vec<String> {
    match std::env::var("OSPREY_TEST_HOOKS") {
        Ok(h) if !h.is_empty() => vec!["--hooks".into(), h],
        _ => vec![],
    }
}

impl Osprey {
    /// Start `osprey -v -o OUT ARGS...` and wait until its probes are attached.
    pub fn start(args: &[&str], out: PathBuf) -> Osprey {
        let mut cmd = Command::new(BIN);
        cmd.arg("-v").arg("-o").arg(&out).args(hooks_args()).args(args);
        Osprey::start_cmd(cmd, out)
    }

    /// Start osprey with kernel BTF hidden (a private mount namespace with
    /// an empty tmpfs over /sys/kernel/btf), as on a kernel without BTF.
    pub fn start_without_btf(args: &[&str], out: PathBuf) -> Osprey {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-c", "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" \"$@\"", BIN, "-v", "-o"])
            .arg(&out)
            .args(args);
        Osprey::start_cmd(cmd, out)
    }

    pub fn start_cmd(mut cmd: Command, out: PathBuf) -> Osprey {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn osprey");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let err = child.stderr.take().unwrap();
        let acc = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("attached") {
                    let hooks = if line.contains("(socket hooks)") { "socket" } else { "syscalls" };
                    let _ = tx.send(hooks.to_string());
                }
                acc.lock().unwrap().push_str(&line);
                acc.lock().unwrap().push('\n');
            }
        });
        let hooks = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(h) => h,
            Err(_) => {
                let _ = child.kill();
                panic!("osprey did not attach:\n{}", stderr.lock().unwrap());
            }
        };
        Osprey { child, out, stderr, hooks }
    }

    /// SIGINT, wait, and return (exit status, records, stderr).
    /// (A test that panics before `stop` still ends the probe: see Drop.)
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<serde_json::Value>, String) {
        // give the poller one interval to pick up the last records
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("osprey did not exit on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let recs = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect();
        let err = self.stderr.lock().unwrap().clone();
        (status, recs, err)
    }
}

/// A failed assertion must not leave a probe attached (it would trace, and
/// slow down, everything that runs after it).
impl Drop for Osprey {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Names of loaded BPF programs (bpftool prog list).
pub fn loaded_prog_names() -> Vec<String> {
    let out = run_ok(Command::new("bpftool").args(["-j", "prog", "list"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// nginx (one worker, access log off) serving `dir/www` on `port`.
pub fn nginx_server(dir: &std::path::Path, port: u16) -> Guard {
    nginx_server_with(dir, port, "")
}

/// nginx as above with extra `http {}` directives (e.g. "sendfile on;").
pub fn nginx_server_with(dir: &std::path::Path, port: u16, http_extra: &str) -> Guard {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  access_log off;\n  keepalive_requests 100000;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  {http_extra}\n\
               server {{ listen 127.0.0.1:{port}; root {d}/www; }}\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let c = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (scripts/setup.sh installs nginx-light)");
    let g = Guard(c);
    wait_port(port);
    g
}
