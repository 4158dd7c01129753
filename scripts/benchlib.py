# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pieces of the benchmark scripts (bench-overhead, bench-latency, bench-loss, bench-conns)."""
import atexit, json, os, re, resource, signal, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the release build, in $CARGO_TARGET_DIR when that is set (as cargo puts it);
# OSPREY_BENCH_BIN names another (e.g. target/pgo/osprey of scripts/build-release)
BIN = os.environ.get("OSPREY_BENCH_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "x86_64-unknown-linux-gnu/release/osprey")


def require_root_and_binary(name):
    if os.geteuid() != 0:
        sys.exit(f"{name}: run as root")
    if not os.path.exists(BIN):
        sys.exit(f"{name}: build first (cargo build --release): {BIN} missing")
    require_no_other_probes(name)


# program types that run in traced processes' syscalls (or everywhere)
TRACING_TYPES = {"tracepoint", "raw_tracepoint", "tracing", "kprobe", "perf_event"}


def require_no_other_probes(name):
    """Another probe left attached (a stray osprey, say) slows every mode,
    the no-probe baseline included, and skews every ratio: refuse to run.
    OSPREY_BENCH_ALLOW_PROBES=1 measures anyway."""
    if os.environ.get("OSPREY_BENCH_ALLOW_PROBES") == "1":
        return
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=30).stdout
        progs = [p for p in json.loads(out or "[]") if p.get("type") in TRACING_TYPES]
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        print(f"{name}: warning: cannot list loaded BPF programs ({e}); not checking for other probes", file=sys.stderr)
        return
    if progs:
        listed = ", ".join(f"{p.get('name', '?')} (id {p.get('id')}, {p.get('type')})" for p in progs[:8])
        more = f" and {len(progs) - 8} more" if len(progs) > 8 else ""
        sys.exit(f"{name}: {len(progs)} tracing BPF programs are already loaded: {listed}{more}.\n"
                 f"They would slow every mode, the no-probe runs included. Stop them first "
                 f"(a leftover osprey? `pgrep -a osprey`), or set OSPREY_BENCH_ALLOW_PROBES=1 to measure anyway.")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on {port}")


def start_nginx(d, port, conns=4096, tls=False, h2=False, h1_port=None, workers=1):
    """nginx on 127.0.0.1:port serving d/www (`workers` worker processes,
    `conns` connections each); with tls, HTTPS with a self-signed
    certificate made here (openssl req); with h2, HTTP/2 over cleartext
    (prior knowledge); h1_port: a second server, HTTP/1.x."""
    ssl = ""
    if tls:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem"],
                       check=True, capture_output=True)
        ssl = f" ssl; ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem"
    h1 = f"server {{ listen 127.0.0.1:{h1_port} backlog=4096; root {d}/www; }}" if h1_port else ""
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes {workers}; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
worker_rlimit_nofile {conns + 1000};
events {{ worker_connections {conns + 100}; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 300s; client_body_temp_path {d}/b; proxy_temp_path {d}/p;
fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
server {{ listen 127.0.0.1:{port} backlog=4096{' http2' if h2 else ''}{ssl}; root {d}/www; }}
{h1} }}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-p", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def nginx_worker(master_pid):
    """The pid of the worker of an nginx started with one (a child of the master)."""
    for _ in range(100):
        out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
        if out:
            return int(out[0])
        time.sleep(0.05)
    sys.exit("nginx started no worker process")


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tck  # utime + stime


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wrk(url, duration, conns, threads=1):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", url],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return int(m.group(1)), float(rps.group(1))


def _cpu_jiffies():
    """All CPUs' user, nice, system, idle, iowait, irq, softirq and steal
    jiffies: the first line of /proc/stat."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def busy_jiffies():
    """All CPUs' non-idle time (jiffies) from /proc/stat."""
    v = _cpu_jiffies()
    return sum(v) - v[3] - v[4]  # less idle and iowait


def steal_jiffies():
    """(steal, all) jiffies of all CPUs from /proc/stat: over an interval,
    the difference of steal over that of all is the share of the guest's
    CPU time its host ran something else (a VM's noise, made visible)."""
    v = _cpu_jiffies()
    return v[7], sum(v)


def steal_pct(before, after):
    """Steal between two steal_jiffies() readings, in % of all CPU time."""
    return 100.0 * (after[0] - before[0]) / max(after[1] - before[1], 1)


def wrk_measuring(url, duration, conns, worker, who_pays=None):
    """One wrk run: (requests, req/s, CPU seconds of the server process
    `worker` during it, the run's length in seconds). With a dict
    `who_pays`, also the CPU seconds of wrk itself (`wrk_cpu_s`: the
    children's rusage around the run, which counts wrk alone, the one
    child waited for meanwhile), of all CPUs (`machine_cpu_s`) and the
    host's steal (`steal_pct`)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    j0, st0 = busy_jiffies(), steal_jiffies()
    c0, t0 = proc_cpu_s(worker), time.monotonic()
    requests, rps = wrk(url, duration, conns)
    c1, t1 = proc_cpu_s(worker), time.monotonic()
    if who_pays is not None:
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        who_pays["wrk_cpu_s"] = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        who_pays["machine_cpu_s"] = (busy_jiffies() - j0) / os.sysconf("SC_CLK_TCK")
        who_pays["steal_pct"] = steal_pct(st0, steal_jiffies())
    return requests, rps, c1 - c0, t1 - t0


def h2load_measuring(url, duration, conns, streams, worker):
    """One h2load run (prior knowledge, one thread): (requests succeeded,
    req/s, CPU seconds of `worker` during it, the run's length)."""
    c0, t0 = proc_cpu_s(worker), time.monotonic()
    out = subprocess.run(["h2load", "-t1", f"-c{conns}", f"-m{streams}", f"-D{duration}", url],
                         capture_output=True, text=True, check=True).stdout
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    if not ok or not rps:
        sys.exit("h2load output not understood:\n" + out)
    return int(ok.group(1)), float(rps.group(1)), proc_cpu_s(worker) - c0, time.monotonic() - t0


# Probes and captures started and not stopped yet: a bench that fails
# half-way (sys.exit, an exception) must not leave a probe attached, which
# would slow every later run on the machine (it happened: a bench-conns
# client failed and its probe stayed loaded).
_RUNNING = []


@atexit.register
def _stop_leftovers():
    for p in _RUNNING:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            print(f"benchlib: stopped a leftover {os.path.basename(p.args[0])} (pid {p.pid})", file=sys.stderr)


class Probe:
    """osprey -v -o OUT ARGS..., started and attached (out_path None: no
    -o, for ARGS with --no-output; stop() then counts no records)."""

    def __init__(self, args, out_path, binary=None):
        self.out = out_path
        out = ["-o", out_path] if out_path else []
        self.p = subprocess.Popen([binary or BIN, "-v"] + out + args, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        _RUNNING.append(self.p)
        buf = ""
        t0 = time.time()
        while "attached" not in buf:
            line = self.p.stderr.readline()
            if not line:
                sys.exit("osprey did not start:\n" + buf)
            buf += line
            if time.time() - t0 > 60:
                sys.exit("osprey did not attach")
        self.cpu0 = proc_cpu_s(self.p.pid)

    def cpu_s(self):
        return proc_cpu_s(self.p.pid) - self.cpu0

    def stop(self):
        """SIGINT; returns dict(cpu_s, rss_hwm_kib, drops, summary, records)."""
        cpu = self.cpu_s()
        hwm = proc_status_kib(self.p.pid, "VmHWM")
        self.p.send_signal(signal.SIGINT)
        err = self.p.stderr.read()
        self.p.wait(timeout=120)
        _RUNNING.remove(self.p)
        m = re.search(r'"ringbuf_drops":(\d+)', err)
        recs = None
        if self.out:
            recs = 0
            with open(self.out) as f:
                for line in f:
                    x = json.loads(line)
                    if x.get("type") == "http_transaction" and not x.get("no_response"):
                        recs += 1
            os.remove(self.out)
        return {"cpu_s": cpu, "rss_hwm_kib": hwm, "drops": int(m.group(1)) if m else -1, "records": recs, "stderr": err}


def machine_line():
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    return f"{time.strftime('%Y-%m-%d')}, kernel {os.uname().release}, {os.cpu_count()} CPUs ({cpu})"


class Tcpdump:
    """`tcpdump -i lo -w FILE tcp port PORT`, started once it is listening."""

    def __init__(self, path, port):
        self.path = path
        self.p = subprocess.Popen(["tcpdump", "-i", "lo", "-w", path, "tcp", "port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _RUNNING.append(self.p)
        said = ""
        while "listening on" not in said:
            line = self.p.stderr.readline()
            if not line:
                sys.exit("tcpdump did not start:\n" + said)
            said += line
        self.cpu0 = proc_cpu_s(self.p.pid)

    def stop(self):
        cpu = proc_cpu_s(self.p.pid) - self.cpu0
        self.p.send_signal(signal.SIGINT)
        err = self.p.stderr.read()
        self.p.wait(timeout=60)
        _RUNNING.remove(self.p)
        m = re.search(r"(\d+) packets? dropped by kernel", err)
        size = os.path.getsize(self.path)
        os.remove(self.path)
        return {"cpu_s": cpu, "drops": int(m.group(1)) if m else -1, "pcap_bytes": size}
