// SPDX-License-Identifier: GPL-3.0-or-later
//! The command line: subcommands, flags and their help (`clap` derive),
//! and the checks run on them before anything is loaded (`validate`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use osprey::abi;

pub mod validate;

pub const EXAMPLES: &str = "\
Examples:
  sudo osprey | jq .                          every HTTP transaction on this host
  sudo osprey --comm nginx --comm curl        only these processes (kernel-side filter)
  sudo osprey --pid 1234 -o /tmp/txns.jsonl   one process and its descendants, to a file
  sudo osprey --pid 1234 --no-descendants     that process alone
  sudo osprey --pod shop/cart-0               one Kubernetes Pod (kernel-side filter)
  sudo osprey --container 3f4b1c2d5e6f        one container, by (a prefix of) its id
  sudo osprey --cgroup /system.slice/nginx.service
                                              one cgroup and everything below it
  sudo osprey | jq 'select(.pod_name) | {pod_namespace, pod_name, container_name, status}'
  sudo osprey | jq 'select(.status >= 500)'   server errors as they happen
  sudo osprey --record-format compact -o /var/log/osprey.jsonl
                                              no null fields, no ISO-8601 copies of the times
  sudo osprey --records events | jq 'select(.kind==\"data\")'
                                              raw syscall events with payloads
  sudo osprey --headers --redact-header X-Session --redact-param session
                                              also redact these (Authorization, Cookie,
                                              ?token=... and others are by default)
  sudo osprey --comm nginx | jq 'select(.tls)'
                                              HTTPS as plaintext (TLS library uprobes)
  sudo osprey --tls off                       syscalls only: no uprobes, TLS stays ciphertext
  sudo osprey check                           can this kernel run Osprey?
  osprey wire capture.pcap | jq .             the same records from a pcap (wire side)
  osprey recon-diff --wire capture.pcap --ebpf probe.jsonl
                                              reconcile the two vantages field by field
  sudo osprey -o /var/log/osprey.jsonl --rotate-size 100M --rotate-keep 10
                                              a file for long runs: at most 10 files of 100 MiB
  sudo osprey --no-output --metrics-addr 127.0.0.1:9464 --metrics-route /api/users/:id
                                              Prometheus RED metrics at :9464/metrics only
  sudo osprey --clickhouse http://127.0.0.1:8123 --clickhouse-create --clickhouse-spool /var/spool/osprey
                                              records on stdout and into ClickHouse (osprey.transactions)
  osprey --synthetic | jq .                   try the output without BPF or root

Stop with Ctrl-C (or SIGTERM, SIGHUP): the probe detaches, drains and prints a summary
on stderr. Records go to stdout (or --output); logs go to stderr.";

pub const CHECK_EXAMPLES: &str = "\
Examples:
  sudo osprey check                           every check, one line each
  sudo osprey check --no-mount                the same, without mounting tracefs
  sudo osprey check --comm nginx              and the TLS libraries nginx maps or links in

Exit status 0 when every check passes, 1 when one fails (the FAIL lines say why).";

pub const WIRE_EXAMPLES: &str = "\
Examples:
  osprey wire capture.pcap | jq .             transactions seen on the wire
  sudo tcpdump -i lo -w lo.pcap port 8080     a capture to feed it
  osprey wire --messages capture.pcapng       one record per HTTP message
  osprey wire --headers --redact-header X-Session capture.pcap
                                              headers, this one's values redacted too
  sudo tcpdump -U -i lo -w - port 8080 | osprey wire -
                                              live: records as transactions complete

Exit status 0; 3 when the capture is truncated or corrupt (the records
before the damage are written); 1 on other errors.";

pub const RECON_EXAMPLES: &str = "\
Examples:
  osprey recon-diff --wire capture.pcap --ebpf probe.jsonl
  osprey recon-diff --wire wire.jsonl --ebpf probe.jsonl --sides server --max-unmatched-pct 1

Exit status 0 when the inputs agree within the limits, 1 when they do not
(errors: docs/recon.md).";

#[derive(Parser, Debug)]
#[command(name = "osprey", version, about = "Host-side eBPF transaction probe: syscalls → HTTP transaction records as JSON lines", after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Cmd {
    /// Capture (the default when no subcommand is given).
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
    /// Check this kernel: version, BTF, tracefs, tracepoints and their layouts.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Wire side: HTTP transaction records from a pcap/pcapng capture.
    #[command(after_help = WIRE_EXAMPLES)]
    Wire(osprey::wire::WireArgs),
    /// Reconcile probe records with wire-side records (or a pcap), field by field.
    #[command(after_help = RECON_EXAMPLES)]
    ReconDiff(osprey::recon::ReconArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Do not mount tracefs when it is missing.
    #[arg(long)]
    pub no_mount: bool,
    /// Report the TLS libraries of this process (repeatable; with --comm:
    /// the processes a capture with the same flags would trace).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Report the TLS libraries of processes with this command name
    /// (repeatable).
    #[arg(long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Records {
    /// One line per HTTP request/response pair.
    Transactions,
    /// One line per HTTP message (request or response), for debugging.
    Messages,
    /// Raw probe events (open/data/close), payload included.
    Events,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchedArg {
    /// `batch` with a ring buffer of at least 2 MiB, else `normal`.
    Auto,
    /// SCHED_BATCH: the same CPU share, but a wakeup of Osprey's threads
    /// does not preempt the running (traced) task.
    Batch,
    /// SCHED_OTHER, the default of every process.
    Normal,
    /// SCHED_IDLE: the reader runs only on a CPU nothing else wants, and
    /// any traced task that wakes preempts it at once (no batch of records
    /// stands in front of a request). For a service at moderate load that
    /// cares about its tail latency; under saturation the reader gets ≈0.3%
    /// of a CPU and the ring buffer fills (drops are counted).
    Idle,
    /// SCHED_IDLE while the ring buffer has room, SCHED_BATCH when an
    /// eighth of it waits (a watchdog looks every 2 ms), until it is nearly
    /// empty again: the tail latency of `idle`, the share of `batch` when
    /// the traffic needs it. Needs CAP_SYS_NICE (else `batch`).
    Adaptive,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum HooksArg {
    Auto,
    Socket,
    Syscalls,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Trace only this process id and its descendants, those running now
    /// and those forked later (repeatable; combined with --comm by OR).
    #[arg(short, long = "pid", value_name = "PID", allow_negative_numbers = true)]
    pub pids: Vec<u32>,
    /// --pid: trace the given processes alone, not their descendants.
    #[arg(long, requires = "pids")]
    pub no_descendants: bool,
    /// Trace only processes with this command name (repeatable). The kernel
    /// keeps the first 15 bytes of a name: longer ones match by those.
    #[arg(short, long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,
    /// Trace only processes in this cgroup v2 directory or below it
    /// (repeatable; OR-ed with --pid/--comm/--container/--pod). A path in
    /// the hierarchy (/system.slice/nginx.service) or under its mount point
    /// (/sys/fs/cgroup/unified/...). Filtered in the kernel; cgroups made
    /// later under it are added as they appear (inotify, within 20 ms; else
    /// at the next walk, --cgroup-rescan-ms).
    #[arg(long = "cgroup", value_name = "PATH")]
    pub cgroups: Vec<String>,
    /// Trace only this container (repeatable): its id, or at least 12 hex
    /// digits of it, as docker/podman/crictl show it; an LXC or
    /// systemd-nspawn name. Also a container that starts later.
    #[arg(long = "container", value_name = "ID")]
    pub containers: Vec<String>,
    /// Trace only this Kubernetes Pod (repeatable), NAMESPACE/NAME, found
    /// through --pods-log-dir. Also a Pod that starts later.
    #[arg(long = "pod", value_name = "NAMESPACE/NAME")]
    pub pods: Vec<String>,
    /// How often the cgroup filters are recomputed from a walk of the cgroup
    /// hierarchy (new cgroups are added sooner through inotify; where that
    /// is unavailable, a new container's first connections within this
    /// window can be missed).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub cgroup_rescan_ms: u64,
    /// The cgroup v2 hierarchy (default: found in /proc/self/mountinfo:
    /// /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). In a
    /// container, the host's, mounted read-only.
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// The kubelet's Pod log directory: Pod namespace and name from
    /// <DIR>/<namespace>_<pod>_<uid>/, container names from the kubelet's
    /// links in <DIR>/../containers/.
    #[arg(long, default_value = "/var/log/pods", value_name = "DIR")]
    pub pods_log_dir: PathBuf,
    /// The node name written in records' `node` and ClickHouse rows'
    /// `node` column (default: the environment variable OSPREY_NODE_NAME,
    /// in a DaemonSet spec.nodeName through the downward API; else the
    /// host name).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Do not resolve cgroup, container, Pod and executable: those record
    /// fields stay null (the cgroup filters still work).
    #[arg(long)]
    pub no_identity: bool,
    /// Write records to FILE instead of stdout (created mode 0600; an
    /// existing FILE that is a symbolic link is refused unless --force).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write output files through a symbolic link at their path.
    #[arg(long)]
    pub force: bool,
    /// What to emit.
    #[arg(long, value_enum, default_value = "transactions")]
    pub records: Records,
    /// Include request and response headers in records.
    #[arg(long)]
    pub headers: bool,
    /// Also redact the values of this header (repeatable), in --headers
    /// lists and event payloads; added to Authorization,
    /// Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, X-Auth-Token,
    /// X-Amz-Security-Token, Api-Key.
    #[arg(long, value_name = "NAME")]
    pub redact_header: Vec<String>,
    /// Also redact the values of this query parameter (repeatable), in
    /// `target` and in request lines of event payloads; added to token,
    /// access_token, api_key, password, sig.
    #[arg(long, value_name = "NAME")]
    pub redact_param: Vec<String>,
    /// DANGEROUS: write credentials (header values, query parameters,
    /// payloads) as captured, unredacted, to whoever reads the output.
    #[arg(long, conflicts_with_all = ["redact_header", "redact_param"])]
    pub no_redact: bool,
    /// Flush a connection's state after this long without events.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    pub idle_timeout: u64,
    /// Payload bytes captured in a syscall's first record (64 to 16384, or 0
    /// for no payload); larger transfers are still counted, and copied
    /// further up to --capture-max-per-call.
    #[arg(long, default_value_t = abi::DEFAULT_CAPTURE as u32, value_name = "BYTES", allow_negative_numbers = true)]
    pub capture_bytes: u32,
    /// Bytes copied of one read/write/recv/send buffer in all: past
    /// --capture-bytes, further records of up to 16384 bytes each, so that
    /// long heads, pipelined requests and chunk-size lines deep in a large
    /// read or write are seen (bytes past this are counted, not copied;
    /// readv/writev/recvmsg/sendmsg iovecs are captured as before). At
    /// most --capture-bytes + 64 x 16384 (4 x 16384 on kernels before
    /// 5.17, which lack bpf_loop); --capture-bytes or less: no further
    /// records.
    #[arg(long, default_value_t = abi::DEFAULT_CAPTURE_MAX as u32, value_name = "BYTES", allow_negative_numbers = true)]
    pub capture_max_per_call: u32,
    /// Sent writev/sendmsg iovecs after the first: captured whole up to this
    /// size (heads, chunk-size lines), only their first 64 bytes when larger
    /// (bodies: their bytes are still counted). 16384: capture them like
    /// the first.
    #[arg(long, default_value_t = abi::DEFAULT_IOV_WHOLE as u32, value_name = "BYTES", allow_negative_numbers = true)]
    pub iov_whole: u32,
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES", allow_negative_numbers = true)]
    pub ringbuf_size: u32,
    /// Wake the reader once a CPU has written this many bytes since its last
    /// wakeup (0: on every record; all CPUs together at most a quarter of the ring).
    #[arg(long, default_value_t = 64 << 10, value_name = "BYTES", allow_negative_numbers = true)]
    pub wakeup_bytes: u64,
    /// Wake the reader only once a CPU has also written this many records
    /// since its last wakeup (unless a quarter of the ring waits): large
    /// records would otherwise wake it every few records.
    #[arg(
        long,
        default_value_t = 64,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub wakeup_records: u32,
    /// Longest a record waits in the ring buffer without a wakeup (at most
    /// 1000; never longer than --duration).
    #[arg(
        long,
        default_value_t = 50,
        value_name = "MS",
        allow_negative_numbers = true
    )]
    pub poll_ms: u64,
    /// Worker threads (sharded by connection); 0: process everything in the
    /// ring-buffer thread (fewest thread hand-offs). Default: 0 on machines
    /// with up to 4 CPUs (where hand-offs cost more than they spread), else 2.
    #[arg(long, allow_negative_numbers = true)]
    pub workers: Option<usize>,
    /// CPU scheduling policy of Osprey's threads. `batch` keeps the reader
    /// from preempting the traced processes each time records arrive (it
    /// runs when they block or their slice ends) without lowering its share;
    /// the ring buffer must hold the few milliseconds it may then wait.
    /// `idle` also lets any traced task that wakes preempt the reader (the
    /// least tail latency added) but starves it on a busy machine;
    /// `adaptive` is `idle` with a watchdog that raises the threads to
    /// `batch` while the ring fills.
    #[arg(long, value_enum, default_value = "auto")]
    pub sched: SchedArg,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Load with this BTF file instead of /sys/kernel/btf/vmlinux.
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
    /// Where to hook: `socket` (socket-layer tracepoints, kernel BTF and 6.3+:
    /// the cheapest), `syscalls` (syscall tracepoints, any kernel), `auto`
    /// (socket where possible).
    #[arg(long, value_enum, default_value = "auto")]
    pub hooks: HooksArg,
    /// TLS plaintext: `on` puts uprobes on the TLS libraries (OpenSSL's
    /// libssl.so, found in the library directories and in the traced
    /// processes' mappings) and parses HTTPS from the plaintext, records
    /// with `"tls": true`; `off`: ciphertext only (counted as blind).
    #[arg(long, value_enum, default_value = "on")]
    pub tls: OnOff,
    /// Body skips: `on` tells the kernel, once a message head with a long
    /// body of known length (Content-Length) is parsed, to count the rest
    /// of that body instead of copying it, so a large read or write spends
    /// its copy budget (--capture-max-per-call) on the head that follows;
    /// `off`: every byte up to the budget is copied.
    #[arg(long, value_enum, default_value = "on")]
    pub body_skip: OnOff,
    /// Generate realistic events without BPF (no root needed).
    #[arg(long)]
    pub synthetic: bool,
    /// --synthetic: connections to generate (made as they are consumed: stop
    /// with --duration or Ctrl-C).
    #[arg(
        long,
        default_value_t = 5,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub synthetic_conns: usize,
    /// --synthetic: transactions per connection (connections overlap: at
    /// most 40000 transactions held, min(conns, txns) x txns).
    #[arg(
        long,
        default_value_t = 4,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub synthetic_txns: usize,
    #[command(flatten)]
    pub sinks: osprey::sink::cli::SinkArgs,
    /// More logging on stderr (-v: progress counters and libbpf messages, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// `--workers` when not given: inline processing on small machines.
pub fn default_workers() -> usize {
    match std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
    {
        0..=4 => 0,
        _ => 2,
    }
}
