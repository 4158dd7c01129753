// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/1.x head parsing: Osprey's nom parser side by side with httparse on
//! the same realistic inputs. `cargo bench --bench http_parse`; numbers go to
//! docs/performance.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use osprey::protocol::http1::parser::{parse_request, parse_response, Parse};

const BROWSER_GET: &[u8] = b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n\r\n";

const CURL_GET: &[u8] = b"GET /api/v1/items?limit=10 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

const NGINX_RESP: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 15:35:40 GMT\r\n\
Content-Type: text/html\r\nContent-Length: 612\r\nLast-Modified: Tue, 21 Mar 2023 10:00:00 GMT\r\n\
Connection: keep-alive\r\nETag: \"64199b60-264\"\r\nAccept-Ranges: bytes\r\n\r\n";

fn ours_req(b: &[u8]) -> usize {
    match parse_request(b) {
        Parse::Complete(h, n) => h.headers.len() + n,
        _ => panic!("bench input must parse"),
    }
}

fn ours_resp(b: &[u8]) -> usize {
    match parse_response(b) {
        Parse::Complete(h, n) => h.headers.len() + n,
        _ => panic!("bench input must parse"),
    }
}

fn httparse_req(b: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Request::new(&mut headers);
    match r.parse(b) {
        Ok(httparse::Status::Complete(n)) => r.headers.len() + n,
        _ => panic!("bench input must parse"),
    }
}

fn httparse_resp(b: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(b) {
        Ok(httparse::Status::Complete(n)) => r.headers.len() + n,
        _ => panic!("bench input must parse"),
    }
}

fn bench(c: &mut Criterion) {
    for (name, input, is_req) in [
        ("browser_get", BROWSER_GET, true),
        ("curl_get", CURL_GET, true),
        ("nginx_200", NGINX_RESP, false),
    ] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(input.len() as u64));
        if is_req {
            g.bench_function("osprey_nom", |b| b.iter(|| ours_req(black_box(input))));
            g.bench_function("httparse", |b| b.iter(|| httparse_req(black_box(input))));
        } else {
            g.bench_function("osprey_nom", |b| b.iter(|| ours_resp(black_box(input))));
            g.bench_function("httparse", |b| b.iter(|| httparse_resp(black_box(input))));
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
