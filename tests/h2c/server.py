# SPDX-License-Identifier: GPL-3.0-or-later
"""An HTTP/2 server over cleartext that accepts the HTTP/1.1 upgrade
(RFC 7540 §3.2: `Upgrade: h2c` + `HTTP2-Settings`, answered `101 Switching
Protocols`), for tests/live_h2c_upgrade.rs. Standard library plus the `h2`
package.

  server.py PORT      serve on 127.0.0.1:PORT, one thread per connection

Answers (any method; a request body is read and its size echoed):
  /small      200, 123 bytes of text/plain
  /echo       200, "got N bytes" (N: the request body's size)
  anything else  404, "no such page\n"
The upgrade request is stream 1 (its body, if any, read as HTTP/1.1);
requests sent afterwards on the same connection are HTTP/2 streams.
"""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events

SMALL = (b"0123456789abcdef" * 8)[:122] + b"\n"


def answer(path, body_len):
    if path.split("?")[0] == "/small":
        return 200, b"text/plain", SMALL
    if path.split("?")[0] == "/echo":
        return 200, b"text/plain", b"got %d bytes" % body_len
    return 404, b"text/plain", b"no such page\n"


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = sock.recv(65536)
        if not b:
            return None, b""
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def respond(conn, sock, stream, path, body_len):
    status, ctype, body = answer(path, body_len)
    conn.send_headers(
        stream,
        [
            (":status", str(status)),
            ("content-type", ctype.decode()),
            ("content-length", str(len(body))),
            ("server", "h2c-test"),
        ],
    )
    conn.send_data(stream, body, end_stream=True)
    sock.sendall(conn.data_to_send())


def serve(sock):
    try:
        head, rest = read_head(sock)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("upgrade", "").lower() != "h2c":
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            return
        want = int(headers.get("content-length", "0"))
        while len(rest) < want:
            b = sock.recv(65536)
            if not b:
                return
            rest += b
        body, rest = rest[:want], rest[want:]
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        )
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False)
        )
        conn.initiate_upgrade_connection(headers.get("http2-settings", ""))
        sock.sendall(conn.data_to_send())
        respond(conn, sock, 1, path, len(body))
        bodies = {}
        paths = {}
        if rest:
            events = conn.receive_data(rest)
        else:
            events = []
        while True:
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    h = dict(
                        (k.decode() if isinstance(k, bytes) else k,
                         v.decode() if isinstance(v, bytes) else v)
                        for k, v in ev.headers
                    )
                    paths[ev.stream_id] = h.get(":path", "/")
                    bodies[ev.stream_id] = 0
                elif isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id] = bodies.get(ev.stream_id, 0) + len(ev.data)
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id
                    )
                elif isinstance(ev, h2.events.StreamEnded):
                    respond(
                        conn, sock, ev.stream_id, paths.get(ev.stream_id, "/"),
                        bodies.get(ev.stream_id, 0),
                    )
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            b = sock.recv(65536)
            if not b:
                return
            events = conn.receive_data(b)
    except (OSError, h2.exceptions.ProtocolError):
        pass
    finally:
        sock.close()


def main():
    port = int(sys.argv[1])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    main()
