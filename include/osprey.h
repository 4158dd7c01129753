/* SPDX-License-Identifier: (GPL-3.0-or-later OR BSD-2-Clause) */
/*
 * Osprey kernel/user ABI.
 *
 * Shared by bpf/osprey.bpf.c and mirrored field by field in src/abi.rs
 * (checked by the ABI test against the BTF of the compiled object).
 * Every ring-buffer record starts with `struct osprey_hdr`, whose first byte
 * is the record kind.  All integers are host-endian; addresses and ports are
 * stored in network byte order exactly as the kernel holds them.
 */
#ifndef __OSPREY_H
#define __OSPREY_H

/* ---- limits ------------------------------------------------------------ */

/* Largest payload one data record can carry (bytes).  The run-time cap
 * (`capture_bytes`, default OSPREY_DEFAULT_CAPTURE) is clamped to this. */
#define OSPREY_MAX_PAYLOAD     16384
#define OSPREY_DEFAULT_CAPTURE 4096
/* Bytes of one plain-buffer syscall (read, write, recvfrom, sendto) that
 * are copied in all: past `capture_bytes`, further DATA records of up to
 * OSPREY_MAX_PAYLOAD each, flagged OSPREY_F_CONT, at most OSPREY_MAX_CONT
 * of them (`capture_max_per_call`, default OSPREY_DEFAULT_CAPTURE_MAX, is
 * clamped to capture_bytes + OSPREY_MAX_CONT * OSPREY_MAX_PAYLOAD). */
#define OSPREY_MAX_CONT             64
/* ... and at most this many on kernels without bpf_loop() (before 5.17):
 * there the verifier walks the loop once per iteration in every program. */
#define OSPREY_CONT_NO_LOOP         4
#define OSPREY_DEFAULT_CAPTURE_MAX  262144
/* iovecs gathered per readv/writev/sendmsg/recvmsg into its one DATA
 * record; bytes past them are counted in orig_len but not captured. */
#define OSPREY_MAX_IOV         16
/* Sent iovecs after the first (writev/sendmsg): one of at most
 * `iov_whole` bytes (default OSPREY_DEFAULT_IOV_WHOLE: heads, chunk-size
 * lines) is captured whole, a larger one (a body) only its first
 * OSPREY_IOV_PEEK bytes; all its bytes are counted. */
#define OSPREY_DEFAULT_IOV_WHOLE 1024
#define OSPREY_IOV_PEEK          64
/* Messages of one sendmmsg/recvmmsg whose msg_len is summed: the kernel's
 * own limit on vlen (UIO_MAXIOV), so every byte moved is counted. */
#define OSPREY_MAX_MMSG        1024
/* Entries of the process allowlist maps. */
#define OSPREY_MAX_FILTER_PIDS  256
/* Descendants of --pid processes followed at once (forks since the
 * probe started, and those found in /proc at start-up). */
#define OSPREY_MAX_CHILD_PIDS   16384
#define OSPREY_MAX_FILTER_COMMS 64
/* Entries of the cgroup allowlist map (cgroup v2 ids; --cgroup, --container,
 * --pod, kept up to date by user space while it runs). */
#define OSPREY_MAX_FILTER_CGROUPS 16384
/* Allowlists this short are compared in line (.rodata) instead of looked up
 * in the maps above: a few compares instead of a hash per syscall. */
#define OSPREY_INLINE_FILTER    8
/* Connections tracked at once in the kernel (LRU). */
#define OSPREY_MAX_CONNS       65536
#define OSPREY_COMM_LEN        16
/* Per-CPU record-building slots (nested/preempted programs on one CPU). */
#define OSPREY_SCRATCH_SLOTS   4
/* TLS library calls in flight at once (one per thread; LRU). */
#define OSPREY_MAX_TLS_CALLS    16384
/* TLS sessions (SSL* / Go conn) tied to their socket (LRU). */
#define OSPREY_MAX_TLS_SESSIONS 65536
/* Processes that exec'd, queued for user space to look for TLS libraries. */
#define OSPREY_MAX_TLS_EXECS    1024

/* ---- record kinds ------------------------------------------------------ */

enum osprey_kind {
	OSPREY_KIND_OPEN  = 1, /* connection starts being tracked */
	OSPREY_KIND_DATA  = 2, /* bytes moved by a data syscall */
	OSPREY_KIND_CLOSE = 3, /* close() of a tracked connection */
};

enum osprey_dir {
	OSPREY_DIR_EGRESS  = 0, /* the process sent the bytes */
	OSPREY_DIR_INGRESS = 1, /* the process received the bytes */
};

enum osprey_role {
	OSPREY_ROLE_UNKNOWN = 0,
	OSPREY_ROLE_CLIENT  = 1,
	OSPREY_ROLE_SERVER  = 2,
};

enum osprey_syscall {
	OSPREY_SYS_UNKNOWN  = 0,
	OSPREY_SYS_CONNECT  = 1,
	OSPREY_SYS_ACCEPT   = 2,
	OSPREY_SYS_ACCEPT4  = 3,
	OSPREY_SYS_CLOSE    = 4,
	OSPREY_SYS_READ     = 5,
	OSPREY_SYS_WRITE    = 6,
	OSPREY_SYS_READV    = 7,
	OSPREY_SYS_WRITEV   = 8,
	OSPREY_SYS_SENDTO   = 9,
	OSPREY_SYS_RECVFROM = 10,
	OSPREY_SYS_SENDMSG  = 11,
	OSPREY_SYS_RECVMSG  = 12,
	/* bytes counted, never captured (no user buffer to read) */
	OSPREY_SYS_SENDFILE = 13, /* sendfile(2) to a socket */
	OSPREY_SYS_SPLICE   = 14, /* splice(2) from or to a socket */
	OSPREY_SYS_SENDMMSG = 15, /* sendmmsg(2): the sum of its msg_len */
	OSPREY_SYS_RECVMMSG = 16, /* recvmmsg(2): the sum of its msg_len */
	/* TLS plaintext (bpf/tls_hooks.bpf.h): a DATA record whose bytes a TLS
	 * library call moved, positions of the plaintext stream of the same
	 * connection (conn id of the socket under it).  Library and call. */
	OSPREY_SYS_TLS_FIRST          = 64,
	OSPREY_SYS_OPENSSL_READ       = 64, /* SSL_read */
	OSPREY_SYS_OPENSSL_WRITE      = 65, /* SSL_write */
	OSPREY_SYS_OPENSSL_READ_EX    = 66, /* SSL_read_ex */
	OSPREY_SYS_OPENSSL_WRITE_EX   = 67, /* SSL_write_ex */
	OSPREY_SYS_BORINGSSL_READ     = 68,
	OSPREY_SYS_BORINGSSL_WRITE    = 69,
	OSPREY_SYS_BORINGSSL_READ_EX  = 70,
	OSPREY_SYS_BORINGSSL_WRITE_EX = 71,
	OSPREY_SYS_GO_TLS_READ        = 72, /* crypto/tls (*Conn).Read */
	OSPREY_SYS_GO_TLS_WRITE       = 73, /* crypto/tls (*Conn).Write */
	OSPREY_SYS_TLS_LAST           = 73,
};

/* open-record flags */
#define OSPREY_F_MIDSTREAM  0x1 /* first seen by a data syscall */
#define OSPREY_F_ADDRS      0x2 /* addresses were read */
/* data-record flags */
#define OSPREY_F_SEGMENTS   0x4 /* iovecs captured in part: struct osprey_segments follows the payload */
#define OSPREY_F_READ_FAULT 0x8 /* a bpf_probe_read_user of the payload (or of
				   * the iovec array, the msghdr) failed: the bytes
				   * from the first unread one on are counted, not
				   * captured (OSPREY_CNT_READ_ERRORS); with
				   * OSPREY_F_SEGMENTS, in the last segment */
#define OSPREY_F_CONT       0x20 /* a further record of the same syscall as the
				   * one before it (bytes past capture_bytes) */
#define OSPREY_F_SKIPPED    0x40 /* counted, not copied: bytes user space said
				   * are a body of known length (struct osprey_skip) */

/* ---- body skips (user space -> kernel) --------------------------------- */

/* User space, having parsed a message head whose body has a known length,
 * tells the kernel that a connection's bytes up to stream position `until`
 * in direction `dir` are that body: the kernel then counts them instead of
 * copying them (one OSPREY_F_SKIPPED record, no payload), so the copy
 * budget of a large read or write goes to the bytes after the body (the
 * next head).  The kernel parses nothing: it compares positions.  An
 * mmap'ed array (the `skips` map) of OSPREY_SKIP_SLOTS entries, one per
 * connection and direction at osprey_skip_slot(); an entry is a hint, not
 * a promise: a torn or stale one (check, gen) is ignored. */
#define OSPREY_SKIP_SLOTS 4096   /* power of two */

struct osprey_skip {
	__u32 tgid;
	__s32 fd;
	__u64 gen;
	__u64 until;   /* stream position: the body's end */
	__u32 dir;
	__u32 _pad;
	__u64 check;   /* osprey_skip_check() of the fields above */
};

static inline __u32 osprey_skip_slot(__u32 tgid, __s32 fd, __u32 dir)
{
	return ((tgid * 0x9E3779B1u) ^ (((__u32)fd * 2u + dir) * 0x85EBCA6Bu)) & (OSPREY_SKIP_SLOTS - 1);
}

static inline __u64 osprey_skip_check(__u32 tgid, __s32 fd, __u64 gen, __u64 until, __u32 dir)
{
	return ((((__u64)tgid) << 32) | (__u32)fd) ^ gen ^ until ^ (((__u64)dir + 1) * 0x9E3779B97F4A7C15ull);
}

/* ---- records ----------------------------------------------------------- */

/* Connection identity: survives pid and fd reuse. */
struct osprey_conn_id {
	__u32 tgid;
	__s32 fd;
	__u64 proc_start_ns; /* start time of the process (group leader) */
	__u64 gen;           /* unique per tracked connection */
};

/* Common header of every record: 16 (kind..tid) + 8 (ts_ns) + 16 (comm)
 * + 24 (conn) = 64 bytes (asserted by the ABI test in src/bpf.rs). */
struct osprey_hdr {
	__u8  kind;    /* enum osprey_kind */
	__u8  dir;     /* enum osprey_dir (data) */
	__u8  role;    /* enum osprey_role */
	__u8  flags;   /* OSPREY_F_* */
	__u8  syscall; /* enum osprey_syscall */
	__u8  _pad[3];
	__u32 tgid;
	__u32 tid;
	__u64 ts_ns;   /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	char  comm[OSPREY_COMM_LEN];
	struct osprey_conn_id conn;
};

struct osprey_addrs {
	__u16 family;      /* AF_INET or AF_INET6 */
	__be16 lport;      /* network order */
	__be16 rport;      /* network order */
	__u16 _pad;
	__u8  laddr[16];   /* v4 in the first 4 bytes */
	__u8  raddr[16];
};

struct osprey_open_event {
	struct osprey_hdr hdr;
	struct osprey_addrs addrs;
	__u64 cgroup_id; /* cgroup v2 id of the opening task (0: none) */
};

struct osprey_close_event {
	struct osprey_hdr hdr;
	__u64 tx_bytes; /* final egress position */
	__u64 rx_bytes; /* final ingress position */
};

struct osprey_data_event {
	struct osprey_hdr hdr;
	__u64 start_ns; /* syscall entry time; 0 with the socket hooks (none seen) */
	__u64 pos;      /* stream position of the first byte, this direction */
	__u32 orig_len; /* bytes the syscall moved (this iovec) */
	__u32 cap_len;  /* payload bytes that follow */
	__u8  payload[OSPREY_MAX_PAYLOAD];
};

#define OSPREY_DATA_HDR_SIZE (sizeof(struct osprey_data_event) - OSPREY_MAX_PAYLOAD)

/* Follows the payload of a data record flagged OSPREY_F_SEGMENTS: the
 * payload is the captured parts of `count` segments (iovecs) back to back;
 * segment i moved orig_len bytes, of which its first cap_len were
 * captured. Bytes past the segments (the record's orig_len beyond their
 * sum) were not captured. */
struct osprey_segment {
	__u32 orig_len;
	__u32 cap_len;
};

struct osprey_segments {
	__u32 count;
	__u32 _pad;
	struct osprey_segment seg[OSPREY_MAX_IOV];
};

/* Kernel counters: slots of the global `counters[]` array in .bss, read by user space. */
enum osprey_counter {
	OSPREY_CNT_EVENTS = 0,     /* records written to the ring buffer */
	OSPREY_CNT_RB_DROPS,       /* records lost: ring buffer full */
	OSPREY_CNT_RB_DROP_BYTES,  /* payload bytes lost with them */
	OSPREY_CNT_READ_ERRORS,    /* bpf_probe_read_user failures */
	OSPREY_CNT_STASH_FULL,     /* syscalls missed: stash map full */
	OSPREY_CNT_CONN_TABLE_FULL,/* conns not tracked: table update failed */
	OSPREY_CNT_TRUNC_BYTES,    /* bytes counted but not captured (cap) */
	OSPREY_CNT_IOV_OVERFLOW,   /* iovecs past OSPREY_MAX_IOV */
	OSPREY_CNT_SCRATCH_BUSY,   /* records lost: every scratch slot in use */
	OSPREY_CNT_UNSEEN_BYTES,   /* bytes no hook saw move, found by the socket's
				    * own position (counted in a DATA record) */
	OSPREY_CNT_CONT_RECORDS,   /* further records of one syscall (OSPREY_F_CONT) */
	OSPREY_CNT_CHILD_PIDS,     /* descendants of --pid processes added */
	OSPREY_CNT_CHILD_PIDS_FULL,/* descendants not followed: table full */
	OSPREY_CNT_PEEKS,          /* MSG_PEEK reads skipped (no bytes consumed) */
	OSPREY_CNT_TLS_RECORDS,    /* TLS plaintext DATA records */
	OSPREY_CNT_TLS_NO_CONN,    /* TLS calls that moved bytes on a session whose
				    * socket was never seen: not recorded */
	OSPREY_CNT_TLS_REBOUND,    /* a TLS session (SSL*) seen on a new connection:
				    * its plaintext positions start over */
	OSPREY_CNT_TLS_TABLE_FULL, /* TLS calls or sessions not tracked: map update failed */
	OSPREY_CNT_TLS_FAILED,     /* TLS calls that returned an error or no bytes */
	OSPREY_CNT_TLS_EXEC_LOST,  /* exec notifications lost: queue full */
	OSPREY_CNT_TLS_FILTERED,   /* TLS calls of processes outside the allowlist
				    * (--pid/--comm/cgroups): dropped at entry */
	OSPREY_CNT_TLS_GO_NO_CALL, /* Go crypto/tls returns whose entry was not seen
				    * (in flight at attach, or evicted): not recorded */
	OSPREY_CNT_SKIPPED_BYTES,  /* body bytes counted, not copied, on user
				    * space's word (struct osprey_skip) */
	OSPREY_CNT_TLS_REENTRY_DROPPED, /* TLS uprobe runs dropped: they preempted
				    * runs of the same program on their CPU, every
				    * busy slot taken (objects without kfuncs;
				    * compat.bpf.h, UPROBE_GUARDED) */
	OSPREY_CNT_TLS_NO_CONN_PID, /* not a count: the process (tgid) of the last
				    * call counted in OSPREY_CNT_TLS_NO_CONN (0: none) */
	OSPREY_CNT__MAX,
};

#endif /* __OSPREY_H */
