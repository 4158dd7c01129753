# SPDX-License-Identifier: GPL-3.0-or-later
"""gRPC peers for tests/live_grpc.rs, written without protoc: generic
handlers and raw-bytes (identity) serializers.

  peer.py server PORT        serve osprey.test.Echo on 127.0.0.1:PORT
  peer.py client PORT [BIG]  wait for a line on stdin, make the calls,
                             print one JSON line per call, exit (BIG: the
                             size of Bidi's large message, 70000 bytes)

The service (messages are opaque bytes):
  Unary         one message in, the same one back
  Fail          aborts with NOT_FOUND "no such user: café" (trailers-only)
  ServerStream  the request's text is N: N messages back
  ClientStream  any number of messages in, one back (their count)
  Bidi          every message echoed as it comes
  Slow          waits until the client's deadline has passed
"""
import json
import sys
import time
from concurrent import futures

import grpc

SERVICE = "osprey.test.Echo"


def unary(req, ctx):
    return req


def fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such user: café")


def server_stream(req, ctx):
    for i in range(int(req.decode())):
        yield b"item-%d" % i


def client_stream(it, ctx):
    return str(sum(1 for _ in it)).encode()


def bidi(it, ctx):
    for m in it:
        yield m


def slow(req, ctx):
    end = time.monotonic() + 10
    while ctx.is_active() and time.monotonic() < end:
        time.sleep(0.01)
    return b"late"


def server(port):
    h = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
        },
    )
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    s.add_generic_rpc_handlers((h,))
    s.add_insecure_port("127.0.0.1:%d" % port)
    s.start()
    s.wait_for_termination()


def client(port, big=70000):
    sys.stdin.readline()
    out = []
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        m = lambda kind, name: getattr(ch, kind)("/%s/%s" % (SERVICE, name))

        def call(name, f):
            try:
                r = f()
                out.append({"call": name, "code": "OK", "result": r})
            except grpc.RpcError as e:
                out.append({"call": name, "code": e.code().name, "details": e.details()})

        call("Unary", lambda: m("unary_unary", "Unary")(b"hello", timeout=10).decode())
        call("Fail", lambda: m("unary_unary", "Fail")(b"who", timeout=10))
        call("ServerStream", lambda: len(list(m("unary_stream", "ServerStream")(b"5", timeout=10))))
        call("ClientStream", lambda: m("stream_unary", "ClientStream")(iter([b"a", b"b", b"c"]), timeout=10).decode())
        call("Bidi", lambda: len(list(m("stream_stream", "Bidi")(iter([b"x" * n for n in (1, big, 3, 4)]), timeout=10))))
        call("Slow", lambda: m("unary_unary", "Slow")(b"zzz", timeout=0.3))
        call("Gzip", lambda: m("unary_unary", "Unary")(b"y" * 2000, timeout=10, compression=grpc.Compression.Gzip).decode()[:1])
    for o in out:
        print(json.dumps(o), flush=True)


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](*map(int, sys.argv[2:]))
