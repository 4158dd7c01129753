// SPDX-License-Identifier: GPL-3.0-or-later
//! osprey: host-side eBPF transaction probe (CLI).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use osprey::bpf::{self, ProbeConfig};
use osprey::pipeline::{EventsWorker, Pipeline, TrackerWorker, Worker};
use osprey::track::TrackerConfig;
use osprey::{abi, check, clock, synthetic};

const EXAMPLES: &str = "\
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

const CHECK_EXAMPLES: &str = "\
Examples:
  sudo osprey check                           every check, one line each
  sudo osprey check --no-mount                the same, without mounting tracefs

Exit status 0 when every check passes, 1 when one fails (the FAIL lines say why).";

const WIRE_EXAMPLES: &str = "\
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

const RECON_EXAMPLES: &str = "\
Examples:
  osprey recon-diff --wire capture.pcap --ebpf probe.jsonl
  osprey recon-diff --wire wire.jsonl --ebpf probe.jsonl --sides server --max-unmatched-pct 1

Exit status 0 when the inputs agree within the limits, 1 when they do not
(errors: docs/recon.md).";

#[derive(Parser, Debug)]
#[command(name = "osprey", version, about = "Host-side eBPF transaction probe: syscalls → HTTP transaction records as JSON lines", after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Cmd {
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
struct CheckArgs {
    /// Do not mount tracefs when it is missing.
    #[arg(long)]
    no_mount: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Records {
    /// One line per HTTP request/response pair.
    Transactions,
    /// One line per HTTP message (request or response), for debugging.
    Messages,
    /// Raw probe events (open/data/close), payload included.
    Events,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum SchedArg {
    /// `batch` with a ring buffer of at least 2 MiB, else `normal`.
    Auto,
    /// SCHED_BATCH: the same CPU share, but a wakeup of Osprey's threads
    /// does not preempt the running (traced) task.
    Batch,
    /// SCHED_OTHER, the default of every process.
    Normal,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum HooksArg {
    Auto,
    Socket,
    Syscalls,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Trace only this process id and its descendants, those running now
    /// and those forked later (repeatable; combined with --comm by OR).
    #[arg(short, long = "pid", value_name = "PID", allow_negative_numbers = true)]
    pids: Vec<u32>,
    /// --pid: trace the given processes alone, not their descendants.
    #[arg(long, requires = "pids")]
    no_descendants: bool,
    /// Trace only processes with this command name (repeatable). The kernel
    /// keeps the first 15 bytes of a name: longer ones match by those.
    #[arg(short, long = "comm", value_name = "NAME")]
    comms: Vec<String>,
    /// Trace only processes in this cgroup v2 directory or below it
    /// (repeatable; OR-ed with --pid/--comm/--container/--pod). A path in
    /// the hierarchy (/system.slice/nginx.service) or under its mount point
    /// (/sys/fs/cgroup/unified/...). Filtered in the kernel; cgroups made
    /// later under it are added as they appear (inotify, within 20 ms; else
    /// at the next walk, --cgroup-rescan-ms).
    #[arg(long = "cgroup", value_name = "PATH")]
    cgroups: Vec<String>,
    /// Trace only this container (repeatable): its id, or at least 12 hex
    /// digits of it, as docker/podman/crictl show it; an LXC or
    /// systemd-nspawn name. Also a container that starts later.
    #[arg(long = "container", value_name = "ID")]
    containers: Vec<String>,
    /// Trace only this Kubernetes Pod (repeatable), NAMESPACE/NAME, found
    /// through --pods-log-dir. Also a Pod that starts later.
    #[arg(long = "pod", value_name = "NAMESPACE/NAME")]
    pods: Vec<String>,
    /// How often the cgroup filters are recomputed from a walk of the cgroup
    /// hierarchy (new cgroups are added sooner through inotify; where that
    /// is unavailable, a new container's first connections within this
    /// window can be missed).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    cgroup_rescan_ms: u64,
    /// The cgroup v2 hierarchy (default: found in /proc/self/mountinfo:
    /// /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). In a
    /// container, the host's, mounted read-only.
    #[arg(long, value_name = "DIR")]
    cgroup_root: Option<PathBuf>,
    /// The kubelet's Pod log directory: Pod namespace and name from
    /// <DIR>/<namespace>_<pod>_<uid>/, container names from the kubelet's
    /// links in <DIR>/../containers/.
    #[arg(long, default_value = "/var/log/pods", value_name = "DIR")]
    pods_log_dir: PathBuf,
    /// The node name written in records' `node` and ClickHouse rows'
    /// `node` column (default: the environment variable OSPREY_NODE_NAME,
    /// in a DaemonSet spec.nodeName through the downward API; else the
    /// host name).
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// Do not resolve cgroup, container, Pod and executable: those record
    /// fields stay null (the cgroup filters still work).
    #[arg(long)]
    no_identity: bool,
    /// Write records to FILE instead of stdout (created mode 0600; an
    /// existing FILE that is a symbolic link is refused unless --force).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write output files through a symbolic link at their path.
    #[arg(long)]
    force: bool,
    /// What to emit.
    #[arg(long, value_enum, default_value = "transactions")]
    records: Records,
    /// Include request and response headers in records.
    #[arg(long)]
    headers: bool,
    /// Also redact the values of this header (repeatable), in --headers
    /// lists and event payloads; added to Authorization,
    /// Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, X-Auth-Token,
    /// X-Amz-Security-Token, Api-Key.
    #[arg(long, value_name = "NAME")]
    redact_header: Vec<String>,
    /// Also redact the values of this query parameter (repeatable), in
    /// `target` and in request lines of event payloads; added to token,
    /// access_token, api_key, password, sig.
    #[arg(long, value_name = "NAME")]
    redact_param: Vec<String>,
    /// DANGEROUS: write credentials (header values, query parameters,
    /// payloads) as captured, unredacted, to whoever reads the output.
    #[arg(long, conflicts_with_all = ["redact_header", "redact_param"])]
    no_redact: bool,
    /// Flush a connection's state after this long without events.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    idle_timeout: u64,
    /// Payload bytes captured in a syscall's first record (64 to 16384, or 0
    /// for no payload); larger transfers are still counted, and copied
    /// further up to --capture-max-per-call.
    #[arg(long, default_value_t = abi::DEFAULT_CAPTURE as u32, value_name = "BYTES", allow_negative_numbers = true)]
    capture_bytes: u32,
    /// Bytes copied of one read/write/recv/send buffer in all: past
    /// --capture-bytes, further records of up to 16384 bytes each, so that
    /// long heads, pipelined requests and chunk-size lines deep in a large
    /// read or write are seen (bytes past this are counted, not copied;
    /// readv/writev/recvmsg/sendmsg iovecs are captured as before). At
    /// most --capture-bytes + 64 x 16384 (4 x 16384 on kernels before
    /// 5.17, which lack bpf_loop); --capture-bytes or less: no further
    /// records.
    #[arg(long, default_value_t = abi::DEFAULT_CAPTURE_MAX as u32, value_name = "BYTES", allow_negative_numbers = true)]
    capture_max_per_call: u32,
    /// Sent writev/sendmsg iovecs after the first: captured whole up to this
    /// size (heads, chunk-size lines), only their first 64 bytes when larger
    /// (bodies: their bytes are still counted). 16384: capture them like
    /// the first.
    #[arg(long, default_value_t = abi::DEFAULT_IOV_WHOLE as u32, value_name = "BYTES", allow_negative_numbers = true)]
    iov_whole: u32,
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES", allow_negative_numbers = true)]
    ringbuf_size: u32,
    /// Wake the reader once a CPU has written this many bytes since its last
    /// wakeup (0: on every record; all CPUs together at most a quarter of the ring).
    #[arg(long, default_value_t = 64 << 10, value_name = "BYTES", allow_negative_numbers = true)]
    wakeup_bytes: u64,
    /// Wake the reader only once a CPU has also written this many records
    /// since its last wakeup (unless a quarter of the ring waits): large
    /// records would otherwise wake it every few records.
    #[arg(
        long,
        default_value_t = 64,
        value_name = "N",
        allow_negative_numbers = true
    )]
    wakeup_records: u32,
    /// Longest a record waits in the ring buffer without a wakeup (at most
    /// 1000; never longer than --duration).
    #[arg(
        long,
        default_value_t = 50,
        value_name = "MS",
        allow_negative_numbers = true
    )]
    poll_ms: u64,
    /// Worker threads (sharded by connection); 0: process everything in the
    /// ring-buffer thread (fewest thread hand-offs). Default: 0 on machines
    /// with up to 4 CPUs (where hand-offs cost more than they spread), else 2.
    #[arg(long, allow_negative_numbers = true)]
    workers: Option<usize>,
    /// CPU scheduling policy of Osprey's threads. `batch` keeps the reader
    /// from preempting the traced processes each time records arrive (it
    /// runs when they block or their slice ends) without lowering its share,
    /// which nice or SCHED_IDLE would (records then pile up); the ring
    /// buffer must hold the few milliseconds it may then wait.
    #[arg(long, value_enum, default_value = "auto")]
    sched: SchedArg,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Load with this BTF file instead of /sys/kernel/btf/vmlinux.
    #[arg(long, value_name = "FILE")]
    btf: Option<PathBuf>,
    /// Where to hook: `socket` (socket-layer tracepoints, kernel BTF and 6.3+:
    /// the cheapest), `syscalls` (syscall tracepoints, any kernel), `auto`
    /// (socket where possible).
    #[arg(long, value_enum, default_value = "auto")]
    hooks: HooksArg,
    /// TLS plaintext: `on` puts uprobes on the TLS libraries (OpenSSL's
    /// libssl.so, found in the library directories and in the traced
    /// processes' mappings) and parses HTTPS from the plaintext, records
    /// with `"tls": true`; `off`: ciphertext only (counted as blind).
    #[arg(long, value_enum, default_value = "on")]
    tls: OnOff,
    /// Generate realistic events without BPF (no root needed).
    #[arg(long)]
    synthetic: bool,
    /// --synthetic: connections to generate (made as they are consumed: stop
    /// with --duration or Ctrl-C).
    #[arg(
        long,
        default_value_t = 5,
        value_name = "N",
        allow_negative_numbers = true
    )]
    synthetic_conns: usize,
    /// --synthetic: transactions per connection (connections overlap: at
    /// most 40000 transactions held, min(conns, txns) x txns).
    #[arg(
        long,
        default_value_t = 4,
        value_name = "N",
        allow_negative_numbers = true
    )]
    synthetic_txns: usize,
    #[command(flatten)]
    sinks: osprey::sink::cli::SinkArgs,
    /// More logging on stderr (-v: progress counters and libbpf messages, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(format!("osprey={level},{level}")),
    )
    .format_timestamp_millis()
    .target(env_logger::Target::Stderr)
    .init();
}

/// Smallest `--capture-bytes` but 0: a request line with a short target
/// and the start of its head (docs/output.md, `--capture-bytes`).
const MIN_CAPTURE: usize = 64;

/// Longest `--poll-ms`: the poller notices Ctrl-C, SIGTERM and the end of
/// `--duration` only between polls (a signal need not interrupt it).
const MAX_POLL_MS: u64 = 1000;

/// Most transactions `--synthetic` may hold at once: connection `c` starts
/// at `c` ms and lasts about `txns` ms, so about `min(conns, txns)`
/// connections of `txns` transactions overlap and are held until their
/// events are due (~3 KB a transaction: 40,000 are ~120 MB).
const MAX_SYNTHETIC_HELD: u128 = 40_000;

/// The command name the kernel keeps of `name`, for messages: its first 15
/// bytes (the kernel cuts comm by bytes, so a longer `--comm` matches a
/// process by those), cut on a character boundary, with the bytes of a
/// character cut in two shown as `\xNN`.
fn kept_comm(name: &str) -> String {
    let b = name.as_bytes();
    let kept = &b[..b.len().min(abi::COMM_LEN - 1)];
    let whole = match std::str::from_utf8(kept) {
        Ok(s) => s,
        // valid_up_to() is a character boundary of `name`: never panics
        Err(e) => &name[..e.valid_up_to()],
    };
    let mut out = whole.to_string();
    for c in &kept[whole.len()..] {
        out.push_str(&format!("\\x{c:02x}"));
    }
    out
}

/// `--cgroup`, `--container`, `--pod` as a selection.
fn cgroup_selection(
    a: &RunArgs,
    root: Option<&std::path::Path>,
) -> Result<osprey::identity::filter::Selection> {
    use osprey::identity::filter;
    let e = |m: String| anyhow::anyhow!(m);
    Ok(filter::Selection {
        cgroups: a
            .cgroups
            .iter()
            .map(|c| filter::normalize_cgroup(c, root).map_err(e))
            .collect::<Result<_>>()?,
        containers: a
            .containers
            .iter()
            .map(|c| filter::check_container(c).map_err(e))
            .collect::<Result<_>>()?,
        pods: a
            .pods
            .iter()
            .map(|p| filter::parse_pod(p).map_err(e))
            .collect::<Result<_>>()?,
    })
}

fn validate(a: &RunArgs) -> Result<()> {
    a.sinks.validate(a.output.as_deref())?;
    cgroup_selection(a, None)?;
    if a.cgroup_rescan_ms == 0 || a.cgroup_rescan_ms > 3_600_000 {
        bail!("--cgroup-rescan-ms {}: 1 to 3600000", a.cgroup_rescan_ms);
    }
    if a.capture_bytes as usize > abi::MAX_PAYLOAD {
        bail!(
            "--capture-bytes {}: at most {} (OSPREY_MAX_PAYLOAD)",
            a.capture_bytes,
            abi::MAX_PAYLOAD
        );
    }
    let most = a.capture_bytes as usize + abi::MAX_CONT * abi::MAX_PAYLOAD;
    if a.capture_max_per_call as usize > most {
        bail!(
            "--capture-max-per-call {}: at most {most} (--capture-bytes + {} further records of {} bytes)",
            a.capture_max_per_call,
            abi::MAX_CONT,
            abi::MAX_PAYLOAD
        );
    }
    if a.iov_whole as usize > abi::MAX_PAYLOAD {
        bail!(
            "--iov-whole {}: at most {} (OSPREY_MAX_PAYLOAD: every iovec captured whole)",
            a.iov_whole,
            abi::MAX_PAYLOAD
        );
    }
    if !a.ringbuf_size.is_power_of_two() || a.ringbuf_size < 4096 {
        bail!(
            "--ringbuf-size {}: must be a power of two and at least 4096",
            a.ringbuf_size
        );
    }
    if a.pids.len() > abi::MAX_FILTER_PIDS {
        bail!(
            "--pid given {} times: at most {}",
            a.pids.len(),
            abi::MAX_FILTER_PIDS
        );
    }
    if a.comms.len() > abi::MAX_FILTER_COMMS {
        bail!(
            "--comm given {} times: at most {}",
            a.comms.len(),
            abi::MAX_FILTER_COMMS
        );
    }
    if a.comms.iter().any(|c| c.is_empty()) {
        bail!("--comm: empty name");
    }
    // one warning for every name cut, each named once
    let mut cut: Vec<&String> = a
        .comms
        .iter()
        .filter(|c| c.len() >= abi::COMM_LEN)
        .collect();
    cut.sort();
    cut.dedup();
    if !cut.is_empty() {
        let given: Vec<String> = cut.iter().map(|c| format!("--comm {c}")).collect();
        let kept: Vec<String> = cut
            .iter()
            .map(|c| format!("\"{}\"", kept_comm(c)))
            .collect();
        log::warn!(
            "{}: the kernel keeps only the first {} bytes of a command name; matching {}",
            given.join(", "),
            abi::COMM_LEN - 1,
            kept.join(", ")
        );
    }
    if a.capture_bytes != 0 && (a.capture_bytes as usize) < MIN_CAPTURE {
        bail!(
            "--capture-bytes {}: at least {MIN_CAPTURE} (a request line, e.g. \"GET /path HTTP/1.1\", and the \
             start of a head must fit in one capture), or 0 to capture no payload",
            a.capture_bytes
        );
    }
    if a.capture_bytes == 0 && !a.synthetic && a.records != Records::Events {
        log::warn!(
            "--capture-bytes 0: no payload is captured, so no HTTP message can be parsed and no transaction \
             is recorded (only the probe's counters and --records events are meaningful)"
        );
    }
    if let Some(p) = &a.btf {
        bpf::check_btf_file(p)?;
    }
    if let Some(w) = a.workers.filter(|&w| w > 64) {
        bail!("--workers {w}: at most 64");
    }
    if let Some(d) = a.duration {
        if !(d > 0.0 && d.is_finite()) {
            bail!("--duration {d}: must be a positive number of seconds");
        }
        if Duration::try_from_secs_f64(d).is_err() {
            bail!(
                "--duration {d:e}: too long (at most {:e} seconds)",
                Duration::MAX.as_secs() as f64
            );
        }
    }
    if a.poll_ms > MAX_POLL_MS {
        bail!(
            "--poll-ms {}: at most {MAX_POLL_MS} (Ctrl-C and the end of --duration are noticed between polls)",
            a.poll_ms
        );
    }
    if a.synthetic {
        let held = a.synthetic_conns.min(a.synthetic_txns) as u128 * a.synthetic_txns as u128;
        if held > MAX_SYNTHETIC_HELD {
            bail!(
                "--synthetic-txns {} with --synthetic-conns {}: connections overlap in time, about {held} \
                 transactions would be held in memory; at most {MAX_SYNTHETIC_HELD} (min(conns, txns) x txns): \
                 fewer transactions per connection (--synthetic-conns has no limit)",
                a.synthetic_txns,
                a.synthetic_conns
            );
        }
    }
    Ok(())
}

/// How long one ring-buffer poll may block: `--poll-ms` (0: 1 ms), and
/// not longer than `--duration`, which is noticed only between polls.
fn poll_interval(a: &RunArgs) -> Duration {
    let poll = Duration::from_millis(a.poll_ms.clamp(1, MAX_POLL_MS));
    match a.duration.and_then(|d| Duration::try_from_secs_f64(d).ok()) {
        Some(d) => poll.min(d.max(Duration::from_millis(1))),
        None => poll,
    }
}

/// Smallest ring buffer `--sched auto` runs SCHED_BATCH with.
const SCHED_BATCH_MIN_RING: u32 = 2 << 20;

/// SCHED_BATCH for this thread and the threads it starts from now on (they
/// inherit it). Measured with nginx under wrk on 2 CPUs, where wrk and the
/// reader share a CPU: with SCHED_OTHER the reader, woken for a batch of
/// records, preempted wrk, and nginx ran out of requests (busy 95-97% of
/// the run against 98-99% without a probe); with SCHED_BATCH 98%
/// (docs/performance.md). Not being allowed to is no error.
fn set_sched_batch() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall on the calling thread with a valid parameter.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        log::info!("SCHED_BATCH not set: {}", std::io::Error::last_os_error());
    }
}

fn run(a: RunArgs) -> Result<()> {
    validate(&a)?;
    for pid in &a.pids {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            log::warn!("--pid {pid}: no such process (yet); it is traced if it appears");
        }
    }
    // SCHED_BATCH delays the reader by up to a scheduler slice (1-3 ms):
    // 2 MiB hold that at 300 MB/s of records (4 KiB captures at 70k
    // requests/s) four times over. With a 64 KiB ring it lost 17% of the
    // records at 16 wrk connections, against 0.6% under SCHED_OTHER.
    let batch = match a.sched {
        SchedArg::Auto => a.ringbuf_size >= SCHED_BATCH_MIN_RING,
        SchedArg::Batch => true,
        SchedArg::Normal => false,
    };
    if batch {
        set_sched_batch();
    }
    let stop = Arc::new(AtomicBool::new(false));
    // SIGHUP (the terminal went away) stops like SIGTERM, with the summary
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    if let Some(d) = a.duration {
        let stop = stop.clone();
        // validate() checked that d fits a Duration
        let d = Duration::try_from_secs_f64(d).unwrap_or(Duration::MAX);
        std::thread::spawn(move || {
            std::thread::sleep(d);
            stop.store(true, Ordering::Relaxed);
        });
    }

    let offset = clock::realtime_offset_ns();
    let health = std::sync::Arc::new(osprey::health::Health::default());
    let sink = a.sinks.build(
        a.output.as_deref(),
        a.force,
        health.clone(),
        a.node_name.as_deref(),
    )?;
    let records = a.records;
    if a.sinks.clickhouse.is_some() && records != Records::Transactions {
        log::warn!(
            "--clickhouse takes transactions only: with --records {records:?} nothing is inserted"
        );
    }
    let redact = if a.no_redact {
        log::warn!("--no-redact: credentials (header values, query parameters, payloads) are written as captured");
        osprey::redact::Redact::off()
    } else {
        osprey::redact::Redact::with(&a.redact_header, &a.redact_param)
    };
    let tcfg = TrackerConfig {
        idle_timeout_ns: a.idle_timeout.saturating_mul(1_000_000_000),
        headers: a.headers,
        redact: redact.clone(),
        emit_transactions: records == Records::Transactions,
        emit_messages: records == Records::Messages,
        realtime_offset_ns: offset as i128,
        ..TrackerConfig::default()
    };
    let (tcfg_max_conns, tcfg_max_buf) = (tcfg.max_conns, tcfg.max_buf_bytes);
    let make = move |_shard: usize| -> Box<dyn Worker> {
        match records {
            Records::Events => Box::new(EventsWorker::new(offset, redact.clone())),
            Records::Transactions | Records::Messages => Box::new(TrackerWorker::new(tcfg.clone())),
        }
    };
    let workers = a.workers.unwrap_or_else(default_workers);
    log::debug!("{workers} worker threads");
    let pipeline = Pipeline::start_with_health(workers, 1024, make, sink, health);
    let started = Instant::now();

    let kernel = if a.synthetic {
        let mut g = synthetic::Synthetic::new(a.capture_bytes as usize, 0x05b2e7);
        for ev in g.stream(a.synthetic_conns, a.synthetic_txns) {
            if stop.load(Ordering::Relaxed) || !pipeline.healthy() {
                break;
            }
            pipeline.submit(ev);
        }
        None
    } else {
        let want_filter = !(a.cgroups.is_empty() && a.containers.is_empty() && a.pods.is_empty());
        let identity = (want_filter || !a.no_identity).then(|| {
            osprey::identity::Shared::new(osprey::identity::IdentityConfig {
                cgroup_root: a.cgroup_root.clone(),
                pods_log_dir: a.pods_log_dir.clone(),
                node: osprey::identity::node_name(a.node_name.as_deref()),
                ..Default::default()
            })
        });
        let root = identity.as_ref().and_then(|s| s.root.clone());
        if want_filter && root.is_none() {
            bail!(
                "--cgroup/--container/--pod: no cgroup v2 hierarchy found (give --cgroup-root DIR)"
            );
        }
        let cgroup_filter = cgroup_selection(&a, root.as_deref())?;
        for c in &cgroup_filter.cgroups {
            if let Some(r) = &root {
                if !r.join(c.trim_start_matches('/')).is_dir() {
                    log::warn!(
                        "--cgroup {c}: no such cgroup (yet) under {}; it is traced if it appears",
                        r.display()
                    );
                }
            }
        }
        let cfg = ProbeConfig {
            identity,
            resolve_identity: !a.no_identity,
            cgroup_filter,
            cgroup_rescan: Duration::from_millis(a.cgroup_rescan_ms),
            pids: a.pids.clone(),
            comms: a.comms.clone(),
            capture_bytes: a.capture_bytes,
            capture_max_per_call: a.capture_max_per_call,
            follow_children: !a.no_descendants,
            iov_whole: a.iov_whole,
            ringbuf_bytes: a.ringbuf_size,
            wakeup_bytes: a.wakeup_bytes,
            wakeup_records: a.wakeup_records,
            poll_interval: poll_interval(&a),
            btf: a.btf.clone(),
            hooks: match a.hooks {
                HooksArg::Auto => bpf::Hooks::Auto,
                HooksArg::Socket => bpf::Hooks::Socket,
                HooksArg::Syscalls => bpf::Hooks::Syscalls,
            },
            tls: a.tls == OnOff::On,
            verbose: a.verbose > 0,
            progress: (a.verbose > 0).then_some(Duration::from_secs(5)),
        };
        match bpf::run(&cfg, &pipeline, &stop) {
            Ok(k) => Some(k),
            Err(e) => {
                pipeline.finish();
                return Err(e);
            }
        }
    };

    let summary = pipeline.finish();
    // stderr may be gone (closed pipe): the summary must not turn into a panic
    macro_rules! say {
        ($($t:tt)*) => {{
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), $($t)*);
        }};
    }
    let secs = started.elapsed().as_secs_f64();
    let s = &summary.stats;
    match &kernel {
        Some(k) => say!(
            "osprey: {:.1}s, {} events ({} ring-buffer drops, {} bytes lost, {} lost to busy scratch slots, {} program runs skipped by the kernel; {} bytes past the capture cap, {} moved by paths no hook sees, counted; {} further records of large reads and writes), {} records written, {} decode errors",
            secs, k.events, k.ringbuf_drops, k.ringbuf_drop_bytes, k.scratch_busy, k.prog_misses, k.truncated_bytes, k.unseen_bytes, k.cont_records, s.records, s.decode_errors
        ),
        None => say!("osprey: synthetic, {} events, {} records written", s.events, s.records),
    }
    if records != Records::Events {
        // the connection tables' bounds and what they cost, summed over workers
        let sum = |k: &str| {
            summary
                .workers
                .iter()
                .filter_map(|w| w.get(k)?.as_u64())
                .sum::<u64>()
        };
        say!(
            "osprey: tracker: {} connections ({} evicted at the cap of {} per worker, {} expired idle), {} captured bytes dropped (buffers capped at {} bytes per direction), {} incomplete requests, {} parser panics",
            sum("conns_seen"), sum("conns_evicted"), tcfg_max_conns, sum("conns_expired"), sum("bytes_dropped"), tcfg_max_buf, sum("incomplete_requests"), sum("parser_panics")
        );
        // what is not seen: always said, so that a quiet run is not mistaken
        // for one with nothing to see (docs/output.md)
        let not_tcp = match &kernel {
            // counted only where user space sees them (the BTF-less fallback)
            Some(k) if k.non_tcp_dropped > 0 => format!("{} not TCP (not traced)", k.non_tcp_dropped),
            Some(_) => "not TCP: not traced (unix-domain and UDP sockets are left out in the kernel, uncounted)".into(),
            None => "not TCP: none (synthetic)".into(),
        };
        say!(
            "osprey: connections with traffic but no records: {} TLS (encrypted at the syscalls), {} unknown protocol, {}",
            sum("blind_tls"), sum("blind_unknown"), not_tcp
        );
        if let Some(k) = kernel
            .as_ref()
            .filter(|k| k.tls.tls_libraries > 0 || k.tls.tls_no_symbols > 0 || k.tls_records > 0)
        {
            say!(
                "osprey: TLS: uprobes on {} library files ({} failed to attach, {} executables with TLS linked in but no symbols), {} plaintext records on {} connections ({} ciphertext events of them not parsed), {} calls on sockets never seen, {} failed calls",
                k.tls.tls_libraries, k.tls.tls_attach_failed, k.tls.tls_no_symbols, k.tls_records, sum("tls_conns"), sum("tls_ciphertext_events"), k.tls_no_conn, k.tls_failed
            );
        }
        // why records have gap: true, per cause (docs/output.md, gap_cause)
        let causes: Vec<String> = osprey::record::GapCauses::NAMES
            .iter()
            .map(|(_, n)| (n, sum(&format!("gap_{n}"))))
            .filter(|(_, v)| *v > 0)
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        say!(
            "osprey: records with gap by cause: {}",
            if causes.is_empty() {
                "none".to_string()
            } else {
                causes.join(", ")
            }
        );
    }
    // every sink besides the record stream: what it delivered and dropped
    for r in &summary.sinks {
        say!("osprey: {r}");
        if r.sink_dropped > 0 {
            log::warn!(
                "sink {}: {} records not delivered (sink_dropped)",
                r.name,
                r.sink_dropped
            );
        }
    }
    if let Some(i) = kernel.as_ref().and_then(|k| k.identity.as_ref()) {
        say!(
            "osprey: identity: {} connections looked up, unresolved: {} cgroup ids, {} Pods without namespace/name, {} container names, {} executables; pods dir unreadable {} times{}",
            i.lookups, i.cgroup_unresolved, i.pod_unresolved, i.container_name_unresolved, i.exe_unresolved, i.pods_dir_errors,
            if i.filter_cgroups > 0 || i.filter_map_errors > 0 {
                format!("; cgroup filter: {} cgroups, {} not added (map full)", i.filter_cgroups, i.filter_map_errors)
            } else {
                String::new()
            }
        );
    }
    if a.verbose > 0 {
        let full = serde_json::json!({"kernel": kernel, "pipeline": summary.stats, "workers": summary.workers, "sinks": summary.sinks});
        say!("osprey: summary {full}");
    }
    if let Some(k) = &kernel {
        if k.prog_misses > 0 {
            log::warn!(
                "the kernel skipped {} runs of Osprey's programs because another BPF program was active on \
                 the same CPU (a preempted program on PREEMPT_FULL/LAZY kernels, or other BPF tools): \
                 the syscalls they would have seen are missing, and their records may be marked gap",
                k.prog_misses
            );
        }
        if k.ringbuf_drops > 0 {
            log::warn!(
                "{} records were dropped because the ring buffer was full: raise --ringbuf-size or filter with --pid/--comm",
                k.ringbuf_drops
            );
        }
    }
    if let Some(e) = summary.sink_error {
        if !e.contains("Broken pipe") {
            bail!("writing records failed: {e}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = match &cli.cmd {
        Some(Cmd::Run(r)) => r.verbose,
        _ => cli.run.verbose,
    };
    init_logging(verbose);
    let res = match cli.cmd {
        None => run(cli.run),
        Some(Cmd::Run(r)) => run(r),
        Some(Cmd::Check(c)) => check::run(!c.no_mount),
        Some(Cmd::Wire(w)) => match osprey::wire::wire_cmd(&w) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Some(Cmd::ReconDiff(r)) => {
            return match osprey::recon::recon_cmd(&r) {
                Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
                Err(e) => {
                    eprintln!("osprey: error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "osprey: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--workers` when not given: inline processing on small machines.
fn default_workers() -> usize {
    match std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
    {
        0..=4 => 0,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("osprey").chain(a.iter().copied()))
            .unwrap()
            .run
    }

    /// clap checks its definitions (unique names, valid defaults) only in
    /// debug builds when parsing; this checks them in every build.
    #[test]
    fn the_command_line_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn long_comms_are_shown_as_the_kernel_keeps_them() {
        assert_eq!(kept_comm("nginx"), "nginx");
        assert_eq!(kept_comm("a-very-long-process-name"), "a-very-long-pro");
        // 'é' is two bytes: the 15th byte is the first half of the 8th
        assert_eq!(kept_comm("ééééééééé"), "ééééééé\\xc3");
        assert_eq!(kept_comm("€€€€€€"), "€€€€€"); // 3-byte chars: 15 bytes exactly
        assert_eq!(kept_comm("x€€€€€"), "x€€€€\\xe2\\x82");
    }

    #[test]
    fn a_poll_never_outlasts_the_run() {
        assert_eq!(poll_interval(&args(&[])), Duration::from_millis(50));
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "0"])),
            Duration::from_millis(1)
        );
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "900", "--duration", "0.2"])),
            Duration::from_millis(200)
        );
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "900", "--duration", "1e-9"])),
            Duration::from_millis(1)
        );
        assert_eq!(
            poll_interval(&args(&["--poll-ms", "900", "--duration", "5"])),
            Duration::from_millis(900)
        );
    }

    #[test]
    fn numeric_flags_out_of_range_are_errors() {
        for bad in [
            &["--duration", "1e300"][..],
            &["--duration", "inf"],
            &["--duration", "NaN"],
            &["--duration", "0"],
            &["--duration", "-1"],
            &["--poll-ms", "1001"],
            &["--poll-ms", "18446744073709551615"],
            &["--capture-bytes", "16385"],
            &["--iov-whole", "16385"],
            &["--capture-max-per-call", "1052673"],
            &["--ringbuf-size", "4095"],
            &["--ringbuf-size", "12288"],
            &["--workers", "65"],
            &["--rotate-size", "1M"],
            &["-o", "-", "--rotate-interval", "1h"],
            &["-o", "x", "--rotate-size", "100"],
            &["-o", "x", "--rotate-size", "1M", "--rotate-keep", "0"],
            &["--no-output"],
            &["--no-output", "-o", "x", "--metrics-addr", "127.0.0.1:1"],
            &["--clickhouse", "ftp://x"],
            &["--clickhouse", "https://x"],
            &[
                "--metrics-addr",
                "127.0.0.1:1",
                "--metrics-route",
                "no-slash",
            ],
            &["--metrics-addr", "127.0.0.1:1", "--metrics-max-routes", "0"],
            &["--synthetic", "--synthetic-txns", "18446744073709551615"],
            &[
                "--synthetic",
                "--synthetic-conns",
                "300",
                "--synthetic-txns",
                "300",
            ],
        ] {
            assert!(validate(&args(bad)).is_err(), "{bad:?} accepted");
        }
        for good in [
            &["--duration", "1e9"][..],
            &["--poll-ms", "1000", "--duration", "0.001"],
            &["--idle-timeout", "18446744073709551615"],
            &[
                "--wakeup-bytes",
                "18446744073709551615",
                "--wakeup-records",
                "4294967295",
            ],
            &["--synthetic", "--synthetic-conns", "18446744073709551615"],
            &[
                "--synthetic",
                "--synthetic-conns",
                "1",
                "--synthetic-txns",
                "40000",
            ],
            &["--comm", "ééééééééé"],
            &[
                "-o",
                "x",
                "--rotate-size",
                "100M",
                "--rotate-interval",
                "1d",
                "--rotate-keep",
                "1",
            ],
            &[
                "--no-output",
                "--metrics-addr",
                "127.0.0.1:1",
                "--metrics-route",
                "/u/:id/**",
            ],
            &[
                "--clickhouse",
                "http://u:p@h:8123",
                "--clickhouse-spool-max",
                "10M",
            ],
            &["--capture-max-per-call", "1052672"],
            &["--capture-max-per-call", "0"],
        ] {
            validate(&args(good)).unwrap();
        }
    }
}
