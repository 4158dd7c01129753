# SPDX-License-Identifier: GPL-3.0-or-later
# A stub of ClickHouse's HTTP interface: answers 200 ("1") to every request
# and counts the rows (lines) of the INSERTs it is sent.
#
#   python3 scripts/lib/clickhouse-stub.py PORTFILE ROWSFILE
#
# Listens on 127.0.0.1 on a free port and writes that port to PORTFILE
# once it accepts connections; ROWSFILE holds the rows received so far.
# Used by scripts/callgrind-sinks (the sink's cost) and scripts/build-release
# (the profile-guided build's training), through stub_clickhouse in
# scripts/lib/common.sh.
import http.server
import os
import sys

rows = 0


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        global rows
        b = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if "INSERT" in self.path:
            rows += b.count(b"\n")
            with open(sys.argv[2], "w") as f:
                f.write(str(rows))
        out = b"1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST


srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
