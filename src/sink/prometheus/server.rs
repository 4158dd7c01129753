// SPDX-License-Identifier: GPL-3.0-or-later
//! The scrape endpoint: `GET /metrics` over HTTP/1.1 on std::net, one
//! connection at a time (a scraper every few seconds), each with a short
//! timeout so a stuck client cannot hold it.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{render_health, Registry};
use crate::health::Health;

pub struct MetricsServer {
    pub addr: SocketAddr,
}

/// Bind `addr` now (a port already taken is an error at start) and serve
/// from a thread of its own until the process ends.
pub fn start(
    addr: &str,
    reg: Arc<Mutex<Registry>>,
    health: Arc<Health>,
) -> io::Result<MetricsServer> {
    let l = TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => {
                ": the port is taken (another process listens there); choose another port"
            }
            io::ErrorKind::AddrNotAvailable => ": no such local address",
            io::ErrorKind::PermissionDenied => ": not allowed to bind there",
            _ => "",
        };
        io::Error::new(e.kind(), format!("--metrics-addr {addr}: {e}{hint}"))
    })?;
    let local = l.local_addr()?;
    std::thread::Builder::new()
        .name("osprey-metrics".into())
        .spawn(move || {
            for c in l.incoming() {
                match c {
                    Ok(s) => {
                        if let Err(e) = serve(s, &reg, &health) {
                            log::debug!("metrics: {e}");
                        }
                    }
                    Err(e) => log::debug!("metrics: accept: {e}"),
                }
            }
        })?;
    Ok(MetricsServer { addr: local })
}

/// The whole exposition: request metrics and health.
pub fn render(reg: &Mutex<Registry>, health: &Health) -> String {
    let mut body = String::with_capacity(64 * 1024);
    // copied under the lock (the writer observes into it), written after
    let snap = reg.lock().map(|r| r.snapshot());
    if let Ok(snap) = snap {
        snap.render(&mut body);
    }
    render_health(health, &mut body);
    body
}

fn serve(s: TcpStream, reg: &Mutex<Registry>, health: &Health) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    // the rest of the head (bounded)
    let mut n = 0;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        n += h.len();
        if n > 64 * 1024 {
            break;
        }
    }
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(reg, health),
        ),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/html",
            "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n".to_string(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".into(),
        ),
    };
    let mut w = s;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        w.write_all(body.as_bytes())?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::http::{request, Url};

    #[test]
    fn serves_metrics_and_refuses_a_taken_port() {
        let reg = Arc::new(Mutex::new(Registry::new(
            super::super::Router::new(&[], 10).unwrap(),
            10,
        )));
        let mut t = crate::jsonline::tests::base();
        t.latency_ns = Some(1_000_000);
        reg.lock().unwrap().observe(&t);
        let h = Arc::new(Health::default());
        let srv = start("127.0.0.1:0", reg.clone(), h.clone()).unwrap();
        let url = Url::parse(&format!("http://{}", srv.addr)).unwrap();
        let r = request(&url, "GET", "/metrics", &[], Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(text.contains("osprey_requests_total{"), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        let r = request(&url, "GET", "/nope", &[], Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 404);
        let e = start(&srv.addr.to_string(), reg, h).err().unwrap();
        assert!(e.to_string().contains("the port is taken"), "{e}");
    }
}
