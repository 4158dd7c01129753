/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Records and the ring buffer: header filling, OPEN/CLOSE/DATA emission
 * (payload copy from user buffers or iovecs into a per-CPU scratch slot),
 * the wakeup policy, and starting to track a connection.  Used by both the
 * syscall hooks and the socket hooks.
 */
#ifndef __OSPREY_RECORDS_BPF_H
#define __OSPREY_RECORDS_BPF_H

/* Write a record; wake the reader only once this CPU has written
 * `cfg.wakeup_bytes` and `cfg.wakeup_records` since its last wakeup, or
 * `cfg.wakeup_max_bytes` whatever the count (the reader also polls on a
 * timer); at once when `urgent` (OPEN records: user space may have to look
 * the connection up in /proc while it still exists).  Both minimums
 * because a wakeup costs the reader a context switch and an inter-processor
 * interrupt whatever it then reads: small records would wake it too often
 * by count, large ones by bytes. */
static __always_inline void submit(void *rec, __u64 size, __u64 payload, bool urgent)
{
	__u64 flags = 0;

	if (urgent) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else if (cfg.wakeup_bytes) {
		__u32 zero = 0;
		struct unwoken *acc = bpf_map_lookup_elem(&unwoken, &zero);

		flags = BPF_RB_NO_WAKEUP;
		if (acc) {
			acc->bytes += size;
			acc->records++;
			if (acc->bytes >= cfg.wakeup_max_bytes ||
			    (acc->bytes >= cfg.wakeup_bytes && acc->records >= cfg.wakeup_records)) {
				acc->bytes = 0;
				acc->records = 0;
				flags = BPF_RB_FORCE_WAKEUP;
			}
		}
	}
	if (bpf_ringbuf_output(&events, rec, size, flags)) {
		count(OSPREY_CNT_RB_DROPS, 1);
		count(OSPREY_CNT_RB_DROP_BYTES, payload);
	} else {
		count(OSPREY_CNT_EVENTS, 1);
	}
}

/* `conn_tgid`/`fd`: the connection id's process and descriptor (syscall
 * hooks: this process; socket hooks: the process that opened it). */
static __always_inline void fill_hdr(struct osprey_hdr *h, __u8 kind, __u8 syscall, __u64 pid_tgid,
				     __u32 conn_tgid, __s32 fd, const struct conn_state *cs)
{
	h->kind = kind;
	h->dir = 0;
	h->role = cs->role;
	h->flags = 0;
	h->syscall = syscall;
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ts_ns = bpf_ktime_get_ns();
	current_comm((__u64 *)h->comm);
	h->conn.tgid = conn_tgid;
	h->conn.fd = fd;
	h->conn.proc_start_ns = cs->proc_start_ns;
	h->conn.gen = cs->gen;
}

/* The OPEN record of connection {conn_tgid, fd}, with its addresses when
 * the socket is known (CO-RE build). */
static __always_inline void emit_open(__u64 pid_tgid, __u32 conn_tgid, __s32 fd, const struct conn_state *cs,
				      void *sk, __u8 syscall, __u8 flags)
{
	struct osprey_open_event ev = {};

	fill_hdr(&ev.hdr, OSPREY_KIND_OPEN, syscall, pid_tgid, conn_tgid, fd, cs);
	ev.hdr.flags = flags;
	if (read_addrs(sk, &ev.addrs))
		ev.hdr.flags |= OSPREY_F_ADDRS;
	/* who opened it: user space turns the id into cgroup path, container
	 * and Pod (the current task is the connection's owner here) */
	ev.cgroup_id = bpf_get_current_cgroup_id();
	submit(&ev, sizeof(ev), 0, true);
}

/* The CLOSE record of connection {conn_tgid, fd}: its final positions.
 * `comm`: the owner's name, or NULL for the current task's. */
static __always_inline void emit_close(__u64 pid_tgid, __u32 conn_tgid, __s32 fd, const struct conn_state *cs,
				       const char *comm)
{
	struct osprey_close_event ev = {};

	fill_hdr(&ev.hdr, OSPREY_KIND_CLOSE, OSPREY_SYS_CLOSE, pid_tgid, conn_tgid, fd, cs);
	if (comm)
		__builtin_memcpy(ev.hdr.comm, comm, sizeof(ev.hdr.comm));
	ev.tx_bytes = cs->pos[OSPREY_DIR_EGRESS];
	ev.rx_bytes = cs->pos[OSPREY_DIR_INGRESS];
	submit(&ev, sizeof(ev), 0, false);
}

/* Start tracking {tgid, fd} as a new connection and emit an OPEN record. */
static __always_inline struct conn_state *conn_open(__u64 pid_tgid, __s32 fd, void *sk,
						    __u8 role, __u8 syscall, __u8 flags)
{
	struct conn_key key = { .tgid = pid_tgid >> 32, .fd = fd };
	struct conn_state cs = {};

	cs.gen = __sync_fetch_and_add(&next_gen, 1) + 1;
	cs.proc_start_ns = proc_start_ns();
	cs.role = role;
	cs.sk = (__u64)sk;
	if (bpf_map_update_elem(&conns, &key, &cs, BPF_ANY)) {
		count(OSPREY_CNT_CONN_TABLE_FULL, 1);
		return NULL;
	}
	emit_open(pid_tgid, key.tgid, fd, &cs, sk, syscall, flags);
	return bpf_map_lookup_elem(&conns, &key);
}

/* Claim a free per-CPU scratch slot (NULL: all busy, counted). */
static __always_inline struct scratch_slot *claim_slot(void)
{
	__u32 base = bpf_get_smp_processor_id() * OSPREY_SCRATCH_SLOTS;

	for (__u32 i = 0; i < OSPREY_SCRATCH_SLOTS; i++) {
		__u32 k = base + i;
		struct scratch_slot *s = bpf_map_lookup_elem(&scratch, &k);

		if (s && __sync_val_compare_and_swap(&s->busy, 0, 1) == 0)
			return s;
	}
	count(OSPREY_CNT_SCRATCH_BUSY, 1);
	return NULL;
}

/* Copy up to `n` bytes from user memory to `off` in the record's payload;
 * returns the bytes copied (0 on a fault, counted, and the record flagged
 * OSPREY_F_READ_FAULT: user space names the bytes it lacks by that, not
 * by the capture cap). */
static __always_inline __s64 copy_payload(struct scratch_slot *slot, __s64 off, __s64 n, __u64 ubuf)
{
	if (off < 0 || off >= OSPREY_MAX_PAYLOAD)
		return 0;
	if (n > OSPREY_MAX_PAYLOAD)
		n = OSPREY_MAX_PAYLOAD;
	if (n <= 0)
		return 0;
	/* Restate the bounds as masks the compiler cannot drop: 6.1's verifier
	 * can reach this point with contradictory ranges (umin > umax) on a
	 * dead path and then refuses the pointer arithmetic (kernel matrix). */
	barrier_var(off);
	barrier_var(n);
	off &= OSPREY_MAX_PAYLOAD - 1;
	n = ((n - 1) & (OSPREY_MAX_PAYLOAD - 1)) + 1;
	/* off < MAX and n <= MAX: within ev.payload + slack */
	if (bpf_probe_read_user(&slot->ev.payload[off], n, (const void *)ubuf)) {
		count(OSPREY_CNT_READ_ERRORS, 1);
		slot->ev.hdr.flags |= OSPREY_F_READ_FAULT;
		return 0;
	}
	return n;
}

/* One further DATA record (OSPREY_F_CONT) of a plain-buffer syscall: the
 * body of emit_more()'s loop, `i` its iteration (the callback of
 * bpf_loop() where the kernel has it: verified once, not per iteration;
 * see cont_loop() in compat.bpf.h).  1: the last record is out. */
struct cont_ctx {
	struct scratch_slot *slot;
	__u64 ubuf;
	__u64 pos;
	__u64 len;
	__u64 end;
	__u64 last;   /* the loop's last iteration */
	bool vectored;   /* ubuf is slot->iov[]: walk it from cont_iov */
};

/* Where a vectored syscall's next further record starts: the user
 * address of slot->cont_iov_off bytes into iovec slot->cont_iov, and in
 * *avail the bytes of that iovec from there; 0 past the iovecs read. */
static __always_inline __u64 cont_iov_at(struct scratch_slot *slot, __u64 *avail)
{
	volatile __u32 *k = &slot->cont_iov;
	volatile __u64 *off = &slot->cont_iov_off;
	__u32 i = *k;
	__u64 o = *off, l;
	struct osp_iovec *v;

	*avail = 0;
	if (i >= slot->cont_niov || i >= OSPREY_MAX_IOV)
		return 0;
	v = &slot->iov[i & (OSPREY_MAX_IOV - 1)];
	l = v->iov_len;
	if (o >= l) {
		/* an empty iovec (or one used up): the next one */
		*k = i + 1;
		*off = 0;
		return 0;
	}
	*avail = l - o;
	return v->iov_base + o;
}

static long cont_one(__u64 i, void *data)
{
	struct cont_ctx *x = data;
	struct scratch_slot *slot = x->slot;
	struct osprey_data_event *e;
	/* the offset lives in the map value (see emit_data's `fill`): the
	 * verifier does not carry its exact range from one record to the
	 * next */
	volatile __u64 *at;
	__u64 o, len = x->len, end = x->end;
	__s64 n, c = 0;
	__u64 moved, ubuf;

	if (!slot)
		return 1;
	e = &slot->ev;
	at = &slot->cont_at;
	o = *at;
	if (o >= len)
		return 1;
	n = o < end ? (__s64)(end - o) : 0;
	if (n > OSPREY_MAX_PAYLOAD)
		n = OSPREY_MAX_PAYLOAD;
	if (x->vectored && n > 0) {
		__u64 avail;

		ubuf = cont_iov_at(slot, &avail);
		if (!ubuf) {
			if (slot->cont_iov < slot->cont_niov && i < x->last)
				return 0;   /* an empty iovec skipped: next iteration */
			n = 0;      /* past the iovecs read: the rest is counted */
		} else if ((__u64)n > avail) {
			n = avail;
		}
	} else {
		ubuf = x->ubuf + o;
	}
	if (n > 0)
		c = copy_payload(slot, 0, n, ubuf);
	if (c < 0)
		c = 0;
	if (c > OSPREY_MAX_PAYLOAD)
		c = OSPREY_MAX_PAYLOAD;
	moved = c;
	/* the last record: the copy ends here (budget, fault, or the
	 * loop's bound) -- it counts the rest of the syscall's bytes */
	if (o + c >= end || c < n || i >= x->last)
		moved = len - o;
	e->pos = x->pos + o;
	e->orig_len = moved;
	e->cap_len = c;
	if (moved > (__u64)c)
		count(OSPREY_CNT_TRUNC_BYTES, moved - c);
	count(OSPREY_CNT_CONT_RECORDS, 1);
	submit(e, OSPREY_DATA_HDR_SIZE + c, c, false);
	*at = o + moved;
	if (x->vectored) {
		slot->cont_iov_off += c;
	}
	return o + moved >= len ? 1 : 0;
}

/* Further DATA records (OSPREY_F_CONT) of one plain-buffer syscall that
 * moved `len` bytes at `ubuf`, its stream position `pos`: from offset
 * `from` (what the first record copied) up to cfg.capture_max_per_call
 * bytes in all, OSPREY_MAX_PAYLOAD per record, at most cont_loop_max()
 * records (OSPREY_MAX_CONT; fewer on kernels without bpf_loop); the last
 * record also counts the bytes past that (orig_len > cap_len), so the
 * records cover the syscall's bytes exactly once.  The slot's header is
 * the first record's.  The kernel parses nothing: these are the buffer's
 * next bytes, whatever they hold (a long head, pipelined requests,
 * chunk-size lines). */
static __always_inline void emit_more(struct scratch_slot *slot, __u64 ubuf, __u64 pos, __u64 len, __u64 from,
				      bool vectored)
{
	struct cont_ctx x = {
		.slot = slot,
		.ubuf = ubuf,
		.pos = pos,
		.len = len,
		.end = cfg.capture_max_per_call,
		.last = cont_loop_max() - 1,
		.vectored = vectored,
	};

	if (x.end > len)
		x.end = len;
	slot->cont_at = from;
	slot->ev.hdr.flags = OSPREY_F_CONT;
	cont_loop(cont_one, &x);
}

/* How many of the `len` bytes at stream position `pos` user space said are
 * a body it needs only counted (struct osprey_skip): 0 unless an entry for
 * this connection and direction (and generation) reaches past `pos`. */
static __always_inline __u64 skip_ahead(const struct conn_state *cs, __u32 tgid, __s32 fd, __u8 dir,
					__u64 pos, __u64 len)
{
	__u32 k = osprey_skip_slot(tgid, fd, dir);
	struct osprey_skip *s;
	__u64 until, gen;

	s = bpf_map_lookup_elem(&skips, &k);
	if (!s)
		return 0;
	until = s->until;
	gen = s->gen;
	if (until <= pos || s->tgid != tgid || s->fd != fd || s->dir != dir || gen != cs->gen ||
	    s->check != osprey_skip_check(tgid, fd, gen, until, dir))
		return 0;
	return until - pos < len ? until - pos : len;
}

/* One DATA record for the `len` bytes (the syscall's return value) moved at
 * st->buf, or gathered from st->buf's iovec array when vectored: the first
 * min(len, cfg.capture_bytes) bytes are captured (a plain buffer's next
 * bytes in further records, emit_more(), up to cfg.capture_max_per_call), except that a sent iovec
 * after the first larger than `cfg.iov_whole` gives only its first
 * OSPREY_IOV_PEEK (with a segment table when captured bytes follow it);
 * all `len` are counted (none captured when st->buf is 0: bytes moved by
 * something else than a data syscall, seen by the socket hooks).  The
 * connection is {conn_tgid, st->fd}. */
static __always_inline void emit_data(struct conn_state *cs, const struct stash *st, __u64 pid_tgid,
				      __u32 conn_tgid, __u8 dir, __u64 len)
{
	struct scratch_slot *slot;
	struct osprey_data_event *e;
	__s64 cap = cfg.capture_bytes;
	__s64 got = 0;
	__u64 pos, ubuf = st->buf;

	/* the position advances even if the record is lost: user space sees
	 * exactly which bytes are missing */
	pos = __sync_fetch_and_add(&cs->pos[dir & 1], len);

	slot = claim_slot();
	if (!slot)
		return;
	e = &slot->ev;
	fill_hdr(&e->hdr, OSPREY_KIND_DATA, st->syscall, pid_tgid, conn_tgid, st->fd, cs);
	e->hdr.dir = dir;
	e->start_ns = st->start_ns;
	e->pos = pos;
	e->orig_len = len;
	if (st->fault)
		e->hdr.flags |= OSPREY_F_READ_FAULT;   /* the msghdr was unreadable */

	if (cap > OSPREY_MAX_PAYLOAD)
		cap = OSPREY_MAX_PAYLOAD;
	if ((__s64)len < cap)
		cap = len;
	if (!ubuf)
		cap = 0;

	if (!st->vectored) {
		/* Body skips on plain buffers only, and inside this branch:
		 * the verifier walks what follows a skip and what follows no
		 * skip apart, and the iovec loop below is the costly part
		 * (outside, sock_send passed 1M instructions on 7.2/7.3). */
		__u64 k = cfg.body_skip && ubuf ? skip_ahead(cs, conn_tgid, st->fd, dir, pos, len) : 0;

		if (k) {
			/* a body user space needs only counted: one record
			 * without payload, then the bytes after it as usual */
			e->hdr.flags |= OSPREY_F_SKIPPED;
			e->orig_len = k;
			e->cap_len = 0;
			count(OSPREY_CNT_SKIPPED_BYTES, k);
			submit(e, OSPREY_DATA_HDR_SIZE, 0, false);
			if (k >= len) {
				slot->busy = 0;
				return;
			}
			e->hdr.flags &= ~OSPREY_F_SKIPPED;
			ubuf += k;
			pos += k;
			len -= k;
			e->pos = pos;
			e->orig_len = len;
			if ((__s64)len < cap)
				cap = len;
		}
		got = copy_payload(slot, 0, cap, ubuf);
		if (got > 0 && got == cap && len > (__u64)cap && cfg.capture_max_per_call > (__u32)cap) {
			/* more of this buffer is copied: further records */
			e->orig_len = got;
			e->cap_len = got;
			submit(e, OSPREY_DATA_HDR_SIZE + got, got, false);
			emit_more(slot, ubuf, pos, len, got, false);
			slot->busy = 0;
			return;
		}
	} else {
		/* The running offset lives in the map value, not in a register:
		 * loaded back it is an unknown scalar bounded by copy_payload(),
		 * so the verifier does not carry (and multiply states by) its
		 * exact range from one iovec to the next -- 6.1 gave up at 1M
		 * instructions otherwise. */
		volatile __u32 *fill = &slot->fill;
		__u64 left = len;
		__u32 niov = st->iovcnt;
		int i;

		*fill = 0;
		/* one read for the whole array (the syscall itself just read it) */
		if (niov > OSPREY_MAX_IOV)
			niov = OSPREY_MAX_IOV;
		if (niov == 0 || bpf_probe_read_user(slot->iov, niov * sizeof(struct osp_iovec),
						     (const void *)st->buf)) {
			if (niov) {
				count(OSPREY_CNT_READ_ERRORS, 1);
				e->hdr.flags |= OSPREY_F_READ_FAULT;
			}
			niov = 0;
		}
		volatile __u32 *lim = &slot->lim;

		slot->cut_at = OSPREY_MAX_IOV;
		slot->segs.count = 0;
		slot->cont_niov = niov;
		slot->cont_iov = 0;
		slot->cont_iov_off = 0;
		for (i = 0; i < OSPREY_MAX_IOV; i++) {
			struct osp_iovec *iov = &slot->iov[i];
			__s64 seg, n, c, off = *fill;

			if (i >= niov || !left || off >= cap)
				break;
			seg = iov->iov_len < left ? iov->iov_len : left;
			left -= seg;
			n = cap - off;
			if (seg < n)
				n = seg;
			/* a large sent iovec after the first is a body: its
			 * start only (the bytes are counted all the same).
			 * The length goes through the map value, like `fill`:
			 * reloaded it is one unknown scalar on both paths, so
			 * the verifier does not double its states per iovec
			 * (7.x gave up at 1M instructions otherwise). */
			*lim = n;
			if (i > 0 && dir == OSPREY_DIR_EGRESS && seg > cfg.iov_whole && n > OSPREY_IOV_PEEK) {
				*lim = OSPREY_IOV_PEEK;
				if (slot->cut_at == OSPREY_MAX_IOV)
					slot->cut_at = i;
			}
			n = *lim;
			c = copy_payload(slot, off, n, iov->iov_base);
			*fill = off + c;
			/* where further records would go on: c bytes into
			 * iovec i (cont_iov_at() moves to the next when that
			 * is its end; no branch here, or the verifier's states
			 * double per iovec) */
			slot->cont_iov = i;
			slot->cont_iov_off = c;
			slot->segs.seg[i & (OSPREY_MAX_IOV - 1)].orig_len = seg;
			slot->segs.seg[i & (OSPREY_MAX_IOV - 1)].cap_len = c;
			slot->segs.count = i + 1;
			if (c < n)
				break;   /* unreadable: keep the contiguous prefix */
		}
		got = *fill;
		if (i == OSPREY_MAX_IOV && left && got < cap)
			count(OSPREY_CNT_IOV_OVERFLOW, 1);   /* counted, not captured */
		if (dir == OSPREY_DIR_INGRESS && got > 0 && got == cap && len > (__u64)got &&
		    cfg.capture_max_per_call > (__u32)cap) {
			/* received bytes (vectored reads; dir is a constant in
			 * each program, so the send programs carry none of
			 * this: sock_send passed 1M instructions on 7.2/7.3
			 * with it): the next bytes in further records,
			 * walking the iovec array from where this one stopped */
			if (got > OSPREY_MAX_PAYLOAD)
				got = OSPREY_MAX_PAYLOAD;
			e->orig_len = got;
			e->cap_len = got;
			submit(e, OSPREY_DATA_HDR_SIZE + got, got, false);
			emit_more(slot, 0, pos, len, got, true);
			slot->busy = 0;
			return;
		}
	}
	if (got < 0)
		got = 0;
	if (got > OSPREY_MAX_PAYLOAD)
		got = OSPREY_MAX_PAYLOAD;
	e->cap_len = got;
	if (len > (__u64)got)
		count(OSPREY_CNT_TRUNC_BYTES, len - got);
	__u64 table = 0;   /* bytes of segment table after the payload */

	if (st->vectored && slot->cut_at + 1 < slot->segs.count) {
		/* captured bytes with holes between them: the table of
		 * segments after the payload says where (the slack holds it) */
		__s64 at = got;

		barrier_var(at);
		at &= 2 * OSPREY_MAX_PAYLOAD - 1;
		if (at <= OSPREY_MAX_PAYLOAD &&
		    !bpf_probe_read_kernel(&e->payload[at], sizeof(slot->segs), &slot->segs)) {
			e->hdr.flags |= OSPREY_F_SEGMENTS;
			table = sizeof(slot->segs);
		} else {
			/* (cannot happen) no table: nothing captured, all counted */
			e->cap_len = 0;
			got = 0;
		}
	}
	submit(e, OSPREY_DATA_HDR_SIZE + got + table, got, false);
	slot->busy = 0;
}

/* A DATA record of `len` bytes at `pos` that moved without being seen by
 * a hook: counted, nothing captured (no scratch slot: header only). */
static __always_inline void emit_counted(const struct conn_state *cs, __u64 pid_tgid, __u32 conn_tgid,
					 __s32 fd, __u8 dir, __u64 pos, __u64 len, const char *comm)
{
	struct {
		struct osprey_hdr hdr;
		__u64 start_ns;
		__u64 pos;
		__u32 orig_len;
		__u32 cap_len;
	} ev = {};

	fill_hdr(&ev.hdr, OSPREY_KIND_DATA, OSPREY_SYS_UNKNOWN, pid_tgid, conn_tgid, fd, cs);
	if (comm)
		__builtin_memcpy(ev.hdr.comm, comm, sizeof(ev.hdr.comm));
	ev.hdr.dir = dir;
	ev.pos = pos;
	ev.orig_len = len;
	count(OSPREY_CNT_TRUNC_BYTES, len);
	submit(&ev, sizeof(ev), 0, false);
}

/* Positions must add up: `seq` is the socket's own position in direction
 * `dir` (TCP copied_seq or write_seq, read after the `len` bytes about to
 * be counted moved). Bytes it advanced by since the last bytes counted,
 * other than these `len`, moved by a path no hook sees (splice out of a
 * TCP socket under the socket hooks; io_uring, aio under the syscall
 * hooks): they advance the position too, in a DATA record of their own
 * (counted, not captured) before this one. From the first bytes counted
 * in each direction on; `len` 0 at the end (close: bytes received only,
 * the FIN a close queues is not known to be in write_seq yet or not;
 * a FIN a read took is left out by rx_data_seq()). Two threads moving
 * bytes on one socket at the same moment can see each other's bytes
 * before their records are counted: then a later record's bytes are
 * counted twice. `comm`: the owner's name, or NULL for the current
 * task's. */
static __always_inline void account_unseen(struct conn_state *cs, __u64 pid_tgid, __u32 conn_tgid,
					   __s32 fd, __u8 dir, __u32 seq, __u64 len, const char *comm)
{
	__u8 bit = 1 << (dir & 1);
	__s32 unseen;

	if (!(cs->seq_ok & bit)) {
		if (!len)
			return;
		cs->seq_ok |= bit;
		cs->seq[dir & 1] = seq;
		return;
	}
	unseen = (__s32)(seq - (__u32)len - cs->seq[dir & 1]);
	if ((__s32)(seq - cs->seq[dir & 1]) > 0)
		cs->seq[dir & 1] = seq;
	if (unseen <= 0)
		return;
	count(OSPREY_CNT_UNSEEN_BYTES, unseen);
	emit_counted(cs, pid_tgid, conn_tgid, fd, dir, __sync_fetch_and_add(&cs->pos[dir & 1], unseen),
		     unseen, comm);
}

/* A read returned 0 (end of stream): `data_seq` is the socket's data
 * position (rx_data_seq(): the FIN it took left out). */
static __always_inline void account_eof(struct conn_state *cs, __u64 pid_tgid, __u32 conn_tgid,
					__s32 fd, __u32 data_seq, const char *comm)
{
	if (!(cs->seq_ok & (1 << OSPREY_DIR_INGRESS)))
		return;
	account_unseen(cs, pid_tgid, conn_tgid, fd, OSPREY_DIR_INGRESS, data_seq, 0, comm);
}

#endif /* __OSPREY_RECORDS_BPF_H */
