// SPDX-License-Identifier: GPL-3.0-or-later
//! Live tests of Go `crypto/tls` plaintext capture (root): Go programs
//! built by the test with Debian's `golang-go` (stdlib only, offline: no
//! module proxy), one with its symbol table and one stripped
//! (`-ldflags=-s -w`, found through `.gopclntab`).
//!
//! - a Go HTTPS server (net/http) queried by curl: keep-alive, a POST, a
//!   2 MiB response, a 404; the server's records (Go plaintext,
//!   `tls_library` `go`) must be exactly curl's (OpenSSL plaintext, checked
//!   against a decrypted capture in tests/live_tls.rs) and what the test
//!   asked for;
//! - a Go HTTPS client to nginx: its records against what the client
//!   itself read, and nginx's;
//! - the Go struct offsets bpf/go_tls.bpf.h reads, against the installed
//!   Go (reflect), and the stripped binary's functions against the
//!   unstripped one's.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// `go build` of `src` into `dir/name` (stripped with `-ldflags=-s -w`),
/// offline: GOPATH mode, no proxy, caches in `dir`.
fn go_build(dir: &Path, name: &str, src: &str, stripped: bool) -> PathBuf {
    let srcdir = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&srcdir).unwrap();
    std::fs::write(srcdir.join("main.go"), src).unwrap();
    let exe = dir.join(name);
    let mut cmd = Command::new("go");
    cmd.arg("build").arg("-o").arg(&exe);
    if stripped {
        cmd.arg("-ldflags=-s -w");
    }
    cmd.arg("main.go")
        .current_dir(&srcdir)
        .env("HOME", dir)
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local");
    run_ok(&mut cmd);
    exe
}

/// An HTTPS server: `/…?size=N` answers N bytes (100 by default),
/// `/missing` 404; the request body is read whole.
/// Usage: `server ADDR CERT KEY`.
const GO_SERVER: &str = r#"
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		size := 100
		if s := r.URL.Query().Get("size"); s != "" {
			size, _ = strconv.Atoi(s)
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if r.URL.Path == "/missing" {
			w.WriteHeader(404)
		}
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = 'a'
		}
		w.Write(buf)
	})
	if err := http.ListenAndServeTLS(os.Args[1], os.Args[2], os.Args[3], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
"#;

/// An HTTPS client (HTTP/1.1, keep-alive, certificate not verified): the
/// requests of the nginx test; prints `METHOD PATH STATUS BODY_BYTES`
/// for each. Usage: `client BASE_URL`; starts once a line comes on stdin
/// (the test sends it when the probe has attached to the new process).
const GO_CLIENT: &str = r#"
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	base := os.Args[1]
	bufio.NewReader(os.Stdin).ReadString('\n')
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	do := func(method, path string, body []byte) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			panic(err)
		}
		if body == nil {
			req.Body = nil
		}
		r, err := c.Do(req)
		if err != nil {
			panic(err)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		fmt.Println(method, path, r.StatusCode, n)
	}
	do("GET", "/small.txt", nil)
	do("GET", "/small.txt", nil)
	do("POST", "/post", bytes.Repeat([]byte("p"), 3000))
	do("GET", "/big.bin", nil)
	do("GET", "/missing", nil)
}
"#;

/// Prints the offsets bpf/go_tls.bpf.h reads, as this Go lays them out.
const GO_OFFSETS: &str = r#"
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"reflect"
	"unsafe"
)

// off: the offset of the field `name` (promoted through embedded
// structs) in struct type t, and its type.
func off(t reflect.Type, name string) (uintptr, reflect.Type) {
	f, ok := t.FieldByName(name)
	if !ok {
		panic(name)
	}
	var o uintptr
	for _, i := range f.Index {
		fi := t.Field(i)
		o += fi.Offset
		t = fi.Type
	}
	return o, t
}

func main() {
	conn, _ := off(reflect.TypeOf(tls.Conn{}), "conn")
	fd, fdt := off(reflect.TypeOf(net.TCPConn{}), "fd")
	netfd := fdt.Elem()
	pfd, pfdt := off(netfd, "pfd")
	sysfd, _ := off(pfdt, "Sysfd")
	family, _ := off(netfd, "family")
	sotype, _ := off(netfd, "sotype")
	fmt.Println("GO_TLS_CONN_IFACE_DATA", conn+unsafe.Sizeof(uintptr(0)))
	fmt.Println("GO_TCPCONN_FD", fd)
	fmt.Println("GO_NETFD_SYSFD", pfd+sysfd)
	fmt.Println("GO_NETFD_FAMILY", family)
	fmt.Println("GO_NETFD_SOTYPE", sotype)
}
"#;

#[test]
fn go_struct_offsets_are_the_installed_gos() {
    let dir = tmpdir("tls-go-offsets");
    let exe = go_build(&dir, "offsets", GO_OFFSETS, false);
    let out = run_ok(&mut Command::new(&exe));
    let got: Vec<(String, u64)> = out
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), v.parse().unwrap())
        })
        .collect();
    let want: Vec<(String, u64)> = osprey::tls::go::OFFSETS
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
    let version = run_ok(Command::new("go").arg("version"));
    assert_eq!(got, want, "{version}");
}

#[test]
fn a_stripped_go_binary_gives_the_same_functions_from_its_pclntab() {
    use osprey::tls::gobin::{inspect, GoVerdict};
    let dir = tmpdir("tls-go-pclntab");
    let full = go_build(&dir, "full", GO_SERVER, false);
    let stripped = go_build(&dir, "stripped", GO_SERVER, true);
    let f = std::fs::read(&full).unwrap();
    let s = std::fs::read(&stripped).unwrap();
    // the stripped one really has no symbol table
    {
        use object::Object;
        let o = object::File::parse(&*s).unwrap();
        assert!(o.section_by_name(".symtab").is_none());
        assert!(o.section_by_name(".gopclntab").is_some());
    }
    let (GoVerdict::Supported(a), GoVerdict::Supported(b)) = (inspect(&f), inspect(&s)) else {
        panic!("{:?} / {:?}", inspect(&f), inspect(&s));
    };
    assert!(!a.from_pclntab && b.from_pclntab);
    assert!(
        a.version.as_deref().unwrap_or("").starts_with("go1."),
        "{a:?}"
    );
    assert_eq!(a.version, b.version);
    // the same code at the same place relative to each function
    for (x, y) in [(&a.write, &b.write), (&a.read, &b.read)] {
        let rel = |g: &osprey::tls::gobin::GoFunc| -> Vec<u64> {
            g.rets.iter().map(|r| r - g.entry).collect()
        };
        assert!(!x.rets.is_empty());
        assert_eq!(rel(x), rel(y), "{a:?}\n{b:?}");
    }
    assert!(a.handshake.is_some() && b.handshake.is_some());
    // a Go program without crypto/tls is not Go TLS
    let plain = go_build(
        &dir,
        "plain",
        "package main\nimport \"fmt\"\nfunc main() { fmt.Println(1) }\n",
        true,
    );
    assert_eq!(
        inspect(&std::fs::read(&plain).unwrap()),
        GoVerdict::NotGoTls
    );
}

/// curl against the Go server `exe` (comm `comm`): the server's records
/// from the Go plaintext. `late`: the server starts after the probe (found
/// on exec), else before.
fn go_server_case(dir: &Path, exe: &Path, comm: &str, late: bool, symbols: &str) {
    let (cert, key) = make_cert(dir);
    let port = free_port();
    let spawn = || {
        Guard(
            Command::new(exe)
                .arg(format!("127.0.0.1:{port}"))
                .arg(&cert)
                .arg(&key)
                .spawn()
                .unwrap(),
        )
    };
    let mut server = (!late).then(spawn);
    if !late {
        wait_listening(port);
    }
    let probe = Osprey::start(
        &["--comm", comm, "--comm", "curl"],
        dir.join(format!("{comm}.jsonl")),
    );
    if late {
        server = Some(spawn());
        wait_until(
            "the Go server's uprobes",
            || probe.stderr().contains(&format!("/{comm} (go, ")),
            || probe.stderr(),
        );
        wait_listening(port);
    }
    let url = |p: &str| https_url(port, p);
    let post = dir.join("post.bin");
    std::fs::write(&post, body(5000)).unwrap();
    let curl_tls = |args: &[&str]| curl_https(None, args);
    // keep-alive: two GETs on one connection
    curl_tls(&[
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &url("/one"),
        &url("/two?size=777"),
    ]);
    curl_tls(&[
        "-o",
        "/dev/null",
        "--data-binary",
        &format!("@{}", post.display()),
        &url("/post?size=10"),
    ]);
    let got = curl_tls(&[&url("/big?size=2097152")]);
    assert_eq!(got.len(), 2 * 1024 * 1024);
    curl_tls(&["-o", "/dev/null", &url("/missing")]);
    probe.wait_for_records("the Go server's five transactions", |r| {
        txns(r, comm).len() >= 5 && txns(r, "curl").len() >= 5
    });
    let (recs, err) = probe.stop_ok();
    drop(server);
    let client = probed_tls(&recs, "curl", "client", "openssl");
    let srv = probed_tls(&recs, comm, "server", "go");
    assert_eq!(srv, client, "{err}");
    let mut what: Vec<_> = srv
        .iter()
        .map(|t| {
            (
                t.method.as_str(),
                t.target.as_str(),
                t.status,
                t.req_body,
                t.resp_body,
            )
        })
        .collect();
    what.sort();
    assert_eq!(
        what,
        [
            ("GET", "/big?size=2097152", 200, 0, 2 * 1024 * 1024),
            ("GET", "/missing", 404, 0, 100),
            ("GET", "/one", 200, 0, 100),
            ("GET", "/two?size=777", 200, 0, 777),
            ("POST", "/post?size=10", 200, 5000, 10),
        ],
        "{err}"
    );
    // keep-alive: one connection id for /one and /two; addresses and role
    // are the socket's
    let srv_recs = txns(&recs, comm);
    let by = |t: &str| {
        srv_recs
            .iter()
            .find(|r| r["target"] == t)
            .unwrap_or_else(|| panic!("{t}"))
    };
    assert_eq!(by("/one")["conn_id"], by("/two?size=777")["conn_id"]);
    assert_ne!(by("/one")["conn_id"], by("/missing")["conn_id"]);
    assert_eq!(by("/one")["local_port"], port);
    assert_eq!(by("/one")["local_addr"], "127.0.0.1");
    let s = summary(&err);
    assert_eq!(s["kernel"]["tls_go_binaries"], 1, "{err}");
    assert_eq!(s["kernel"]["tls_go_unsupported"], 0, "{err}");
    assert_eq!(s["kernel"]["tls_no_conn"], 0, "{err}");
    assert_eq!(s["kernel"]["tls_table_full"], 0, "{err}");
    assert_eq!(sum_workers(&s, "blind_tls"), 0, "{err}");
    assert_eq!(
        sum_workers(&s, "tls_conns"),
        8,
        "four connections, both ends\n{err}"
    );
    assert!(
        err.contains(&format!("/{comm} (go, go1."))
            && err.contains(&format!("symbols from {symbols}")),
        "{err}"
    );
    assert_eq!(ringbuf_drops(&err), 0);
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn go_https_server_with_symbols_matches_curl() {
    let dir = tmpdir("tls-go-server");
    let exe = go_build(&dir, "gotlssrv", GO_SERVER, false);
    go_server_case(&dir, &exe, "gotlssrv", false, ".symtab");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn go_https_server_stripped_and_started_late_matches_curl() {
    let dir = tmpdir("tls-go-server-strip");
    let exe = go_build(&dir, "gotlssrv-strip", GO_SERVER, true);
    go_server_case(&dir, &exe, "gotlssrv-strip", true, ".gopclntab");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn go_https_client_to_nginx() {
    let dir = tmpdir("tls-go-client");
    let exe = go_build(&dir, "gotlscli", GO_CLIENT, false);
    let (site, tls_port) = Site::nginx_https(
        "tls-go-nginx",
        &dir,
        "",
        NGINX_POST,
        &[
            ("small.txt", &body(123)),
            ("big.bin", &body(2 * 1024 * 1024)),
        ],
    );
    let probe = site.probe(&["--comm", "gotlscli", "--comm", "nginx"]);
    let mut child = Command::new(&exe)
        .arg(https_url(tls_port, ""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // found on exec: its uprobes are on before it makes a request
    wait_until(
        "the Go client's uprobes",
        || probe.stderr().contains("/gotlscli (go, "),
        || probe.stderr(),
    );
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    // what the client read, as the oracle of its own records
    let said: Vec<(String, String, u16, u64)> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(said.len(), 5, "{out}");
    probe.wait_for_records("the Go client's five transactions", |r| {
        txns(r, "gotlscli").len() >= 5 && txns(r, "nginx").len() >= 5
    });
    let (recs, err) = probe.stop_ok();
    let cli = probed_tls(&recs, "gotlscli", "client", "go");
    let srv = probed_tls(&recs, "nginx", "server", "openssl");
    assert_eq!(cli, srv, "{err}");
    let mut got: Vec<(String, String, u16, u64)> = cli
        .iter()
        .map(|t| (t.method.clone(), t.target.clone(), t.status, t.resp_body))
        .collect();
    let mut want = said.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{err}");
    let post = cli.iter().find(|t| t.method == "POST").unwrap();
    assert_eq!((post.req_body, post.resp_body), (3000, 7));
    assert!(cli.iter().any(|t| t.resp_body == 2 * 1024 * 1024));
    // keep-alive: every request on one connection
    let ids: std::collections::BTreeSet<String> = txns(&recs, "gotlscli")
        .iter()
        .map(|r| r["conn_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let s = summary(&err);
    assert_eq!(s["kernel"]["tls_go_binaries"], 1, "{err}");
    assert_eq!(s["kernel"]["tls_no_conn"], 0, "{err}");
    assert_eq!(sum_workers(&s, "blind_tls"), 0, "{err}");
    assert_eq!(ringbuf_drops(&err), 0);
}
