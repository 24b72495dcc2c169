/* SPDX-License-Identifier: MIT */
/*
 * Rings (zbl_ring_*): operations on lists and descriptors, queued in order
 * per descriptor and completed through callbacks, on one of two engines.
 *
 * - The io_uring engine receives into list memory, sends memory (by
 *   SENDMSG_ZC where it can pay), writes files (O_DIRECT from list memory
 *   where aligned) and syncs them through io_uring, so zbl_ring_run never
 *   waits on them. What io_uring does worse than the library (splice and tee
 *   run in a blocking kernel worker there) is done by the library's own
 *   non-blocking calls once an io_uring poll says the descriptor is ready.
 * - The synchronous engine does every step with the library's calls: it
 *   waits for sockets and pipes with epoll, and writes files with blocking
 *   calls. It is what runs where io_uring is refused, and is first-class.
 *
 * One operation of each queue (reads and splices; writes and fsyncs) of a
 * descriptor runs at a time, in submission order, so the two directions of
 * a socket never hold each other up and writes never interleave. Layer 5
 * (see zbl_int.h): it uses the lists and movement below it.
 */
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "ring_int.h"

/* Kernel 6.2: a zero-copy notification says whether the kernel copied anyway. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define RING_ENTRIES_DEFAULT 64u
#define RING_ENTRIES_MAX 4096u
/* One receive asks for at most this much (both engines, so they give the same results). */
#define READ_STEP_BYTES ((size_t)256 * 1024)
/* One io_uring write or send request carries at most this much. */
#define WRITE_STEP_BYTES ((size_t)4 << 20)
/*
 * Zero-copy sends only for runs of at least this much: below it, pinning
 * pages and waiting for the notification cost more than the copy (the
 * kernel's own advice is about 10 KB).
 */
#define ZC_MIN_BYTES ((size_t)16 * 1024)
/* Memory pinned by zero-copy sends in flight, at most (and half of RLIMIT_MEMLOCK). */
#define ZC_BUDGET_MAX ((size_t)8 << 20)
/* What a blocking pipe takes without waiting once poll says it is writable. */
#define PIPE_STEP_BYTES ((size_t)PIPE_BUF)
/* How long an operation whose io_uring polls are useless waits between tries. */
#define POLL_BACKOFF_NS 1000000L
/* O_DIRECT requests go straight from memory only when this aligned (see DIOALIGN). */
#define DIRECT_ALIGN ((uintptr_t)4096)

/* ------------------------------------------------------------------------ */
/* Descriptors */

static struct zbl__rfd **bucket(struct zbl_ring *r, int fd)
{
	return &r->table[(unsigned)fd & (r->table_size - 1)];
}

static struct zbl__rfd *rfd_find(struct zbl_ring *r, int fd)
{
	for (struct zbl__rfd *d = *bucket(r, fd); d; d = d->hnext)
		if (d->fd == fd)
			return d;
	return NULL;
}

static int table_grow(struct zbl_ring *r)
{
	size_t n = r->table_size ? r->table_size * 2 : 64;
	struct zbl__rfd **t = zbl__sys_calloc(n, sizeof(*t));
	struct zbl__rfd **old = r->table;
	size_t old_n = r->table_size;

	if (!t)
		return -ENOMEM;
	r->table = t;
	r->table_size = n;
	for (size_t i = 0; i < old_n; i++) {
		for (struct zbl__rfd *d = old[i], *next; d; d = next) {
			next = d->hnext;
			d->hnext = *bucket(r, d->fd);
			*bucket(r, d->fd) = d;
		}
	}
	free(old);
	return 0;
}

/* What @d->fd is: one fstat, and for sockets one getsockopt. */
static int rfd_probe(struct zbl__rfd *d)
{
	struct stat st;
	int fl = zbl__fd_flags(d->fd), proto = 0;

	if (fl < 0 || zbl__sys_fstat(d->fd, &st) < 0)
		return -errno;
	d->nonblock = fl & O_NONBLOCK;
	d->direct = fl & O_DIRECT;
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		d->kind = ZBL__RFD_FILE;
	} else if (S_ISSOCK(st.st_mode)) {
		d->kind = ZBL__RFD_SOCK;
		if (zbl__sys_getsockopt(d->fd, SOL_SOCKET, SO_PROTOCOL, &proto) == 0 &&
		    (proto == IPPROTO_TCP || proto == IPPROTO_UDP))
			d->kind = ZBL__RFD_SOCK_ZC;
	} else {
		d->kind = ZBL__RFD_STREAM;
	}
	return 0;
}

static struct zbl__rfd *rfd_get(struct zbl_ring *r, int fd, int *err)
{
	struct zbl__rfd *d = rfd_find(r, fd);

	if (d)
		return d;
	if (r->nrfd >= r->table_size && (*err = table_grow(r)) < 0)
		return NULL;
	d = zbl__sys_calloc(1, sizeof(*d));
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	d->fd = fd;
	*err = rfd_probe(d);
	if (*err < 0) {
		free(d);
		return NULL;
	}
	d->hnext = *bucket(r, fd);
	*bucket(r, fd) = d;
	r->nrfd++;
	return d;
}

/*
 * Forgets a descriptor nothing is queued on: the caller may close it, and a
 * later descriptor with the same number may be something else.
 */
static void rfd_drop_if_idle(struct zbl_ring *r, struct zbl__rfd *d)
{
	if (d->rhead || d->whead)
		return;
	if (!d->detached) {
		for (struct zbl__rfd **p = bucket(r, d->fd); *p; p = &(*p)->hnext) {
			if (*p == d) {
				*p = d->hnext;
				break;
			}
		}
		if (d->ep_events)
			zbl__sys_epoll_ctl(r->epfd, EPOLL_CTL_DEL, d->fd, NULL);
		r->nrfd--;
		d->detached = true;
	}
	/* Zero-copy sends still pinned keep it, out of the table, until notified. */
	if (!d->zc_pending)
		free(d);
}

/* ------------------------------------------------------------------------ */
/* Queues and completion */

static void enqueue(struct zbl__rop *op)
{
	struct zbl__rfd *d = op->rfd;
	bool reads = op->type == ZBL__ROP_READ || op->type == ZBL__ROP_SPLICE;
	struct zbl__rop **head = reads ? &d->rhead : &d->whead;
	struct zbl__rop **tail = reads ? &d->rtail : &d->wtail;

	op->next = NULL;
	if (*head)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static void unqueue(struct zbl__rop *op)
{
	struct zbl__rfd *d = op->rfd;
	bool reads = op->type == ZBL__ROP_READ || op->type == ZBL__ROP_SPLICE;
	struct zbl__rop **p = reads ? &d->rhead : &d->whead;
	struct zbl__rop **tail = reads ? &d->rtail : &d->wtail;
	struct zbl__rop *prev = NULL;

	for (; *p; prev = *p, p = &(*p)->next) {
		if (*p == op) {
			*p = op->next;
			if (*tail == op)
				*tail = prev;
			return;
		}
	}
}

static void wake(struct zbl_ring *r)
{
	uint64_t one = 1;

	/* One count is enough until zbl_ring_run drains it: no write per submission. */
	if (r->woken)
		return;
	r->woken = true;
	if (write(r->evfd, &one, sizeof(one)) < 0) {
		/* Full (it cannot be) or closed: the ring fd is readable either way. */
	}
}

/* The operation is over: its callback runs from zbl_ring_run(). */
static void finish(struct zbl_ring *r, struct zbl__rop *op, ssize_t result)
{
	unqueue(op);
	/* A cancelled operation that completed first keeps its result. */
	op->result = op->cancelled && result < 0 ? -ECANCELED : result;
	op->next = NULL;
	if (r->done_head)
		r->done_tail->next = op;
	else
		r->done_head = op;
	r->done_tail = op;
	rfd_drop_if_idle(r, op->rfd);
	op->rfd = NULL;
}

static int call_done(struct zbl_ring *r)
{
	int ran = 0;

	while (r->done_head) {
		struct zbl__rop *op = r->done_head;

		r->done_head = op->next;
		if (!r->done_head)
			r->done_tail = NULL;
		ZBL__STAT_ADD(ring_ops, 1);
		if (!r->uring)
			ZBL__STAT_ADD(ring_sync_ops, 1);
		/* A write's own list goes first: release callbacks never run inside the callback. */
		if (op->type == ZBL__ROP_WRITE)
			zbl_free(op->bl);
		free(op->wiov);
		r->ops--;
		if (op->cb) {
			r->in_callback = true;
			op->cb(r, op->result, op->arg);
			r->in_callback = false;
		}
		free(op);
		ran++;
	}
	return ran;
}

/* ------------------------------------------------------------------------ */
/* Readiness */

/* Whether a step on @op may go now without waiting for its descriptor. */
static bool ready(struct zbl__rop *op, short events)
{
	struct pollfd p = { .fd = op->fd, .events = events };

	if (op->rfd->kind == ZBL__RFD_FILE || op->rfd->nonblock)
		return true;
	return zbl__sys_poll(&p, 1, 0) == 1 && (p.revents & (events | POLLERR | POLLHUP | POLLNVAL));
}

static struct io_uring_sqe *sqe_get(struct zbl_ring *r)
{
	struct io_uring_sqe *sqe;

	if (r->in_kernel >= r->entries)
		return NULL;
	sqe = io_uring_get_sqe(&r->ring);
	if (!sqe) {
		zbl__sys_uring_submit(&r->ring);
		sqe = io_uring_get_sqe(&r->ring);
	}
	return sqe;
}

static void sqe_submitted(struct zbl_ring *r, struct io_uring_sqe *sqe, void *p, unsigned tag)
{
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)p | tag);
	r->in_kernel++;
}

/*
 * @op waits until its descriptor is ready for @w: an io_uring poll, or the
 * synchronous engine's epoll set (updated by epoll_sync()).
 */
static void wait_for(struct zbl_ring *r, struct zbl__rop *op, enum zbl__wait w)
{
	if (op->cancelled) {
		finish(r, op, -ECANCELED);
		return;
	}
	op->wait = (uint8_t)w;
	if (r->uring) {
		struct io_uring_sqe *sqe = sqe_get(r);
		if (!sqe)
			return; /* tried again on the next pass */
		if (op->poll_useless && w == ZBL__WAIT_OUT) {
			op->backoff = (struct __kernel_timespec){ .tv_nsec = POLL_BACKOFF_NS };
			io_uring_prep_timeout(sqe, &op->backoff, 0, 0);
		} else {
			io_uring_prep_poll_add(sqe, op->fd, w == ZBL__WAIT_IN ? POLLIN : POLLOUT);
		}
		sqe_submitted(r, sqe, op, ZBL__UD_OP);
		op->in_kernel = true;
	}
}

/* Synchronous engine: the epoll set watches what the queues' heads wait for. */
static void epoll_sync(struct zbl_ring *r, struct zbl__rfd *d)
{
	uint32_t want = 0;

	if (d->rhead && d->rhead->wait == ZBL__WAIT_IN)
		want |= EPOLLIN;
	if (d->whead && d->whead->wait == ZBL__WAIT_OUT)
		want |= EPOLLOUT;
	if (want == d->ep_events)
		return;
	struct epoll_event ev = { .events = want, .data.ptr = d };
	int op = !want ? EPOLL_CTL_DEL : d->ep_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (zbl__sys_epoll_ctl(r->epfd, op, d->fd, want ? &ev : NULL) == 0 || !want)
		d->ep_events = want;
}

/* ------------------------------------------------------------------------ */
/* Reads */

/*
 * Room for @want bytes at the list's end, laid out for O_DIRECT as
 * zbl_read_fd lays it, as iovecs in op->iov; their count or -errno.
 */
static int read_prepare(struct zbl__rop *op, size_t want)
{
	char *p1;
	int n = 0, err = zbl__prepare_append(op->bl, want, true, &p1, &op->n1, &op->nb);

	if (err < 0)
		return err;
	if (op->n1)
		op->iov[n++] = (struct iovec){ p1, op->n1 };
	if (op->nb)
		op->iov[n++] = (struct iovec){ zbl__block_room(op->nb), want - op->n1 };
	return n;
}

static void read_commit(struct zbl__rop *op, size_t got)
{
	zbl__commit_append(op->bl, op->n1, got < op->n1 ? got : op->n1, op->nb,
			   got > op->n1 ? got - op->n1 : 0);
	op->nb = NULL;
	op->n1 = 0;
	if (got) {
		ZBL__STAT_ADD(bytes_copied_in, got);
		op->moved += got;
	}
}

static size_t read_want(const struct zbl__rop *op)
{
	size_t left = op->len - op->moved;

	return left < READ_STEP_BYTES ? left : READ_STEP_BYTES;
}

/* A read's step completed with @res (bytes, 0 at end, -errno). */
static void read_done(struct zbl_ring *r, struct zbl__rop *op, ssize_t res)
{
	bool stream = op->off < 0;

	read_commit(op, res > 0 ? (size_t)res : 0);
	if (op->cancelled && res < 0) {
		finish(r, op, -ECANCELED);
		return;
	}
	if (res == -EAGAIN) {
		wait_for(r, op, ZBL__WAIT_IN);
		return;
	}
	if (res < 0)
		finish(r, op, op->moved ? (ssize_t)op->moved : res);
	else if (stream || res == 0 || op->moved == op->len)
		finish(r, op, (ssize_t)op->moved);
	/* else a file read is short of @len: the next pass reads on */
}

static void read_step(struct zbl_ring *r, struct zbl__rop *op)
{
	bool stream = op->off < 0;
	int n;

	if (op->len == op->moved) {
		finish(r, op, (ssize_t)op->moved);
		return;
	}
	if (op->rfd->kind == ZBL__RFD_FILE && op->rfd->direct) {
		/* Unaligned O_DIRECT reads need the aligned read around them: the sync path. */
		int64_t o = op->off + (int64_t)op->moved;
		ssize_t got = zbl__read_copy(op->bl, op->fd, op->off >= 0 ? &o : NULL,
					     op->len - op->moved, false);
		if (got > 0)
			op->moved += (size_t)got;
		finish(r, op, got < 0 && !op->moved ? got : (ssize_t)op->moved);
		return;
	}
	/* io_uring waits for a stream itself; the synchronous engine must not block. */
	if (stream && !r->uring && !ready(op, POLLIN)) {
		wait_for(r, op, ZBL__WAIT_IN);
		return;
	}
	n = read_prepare(op, read_want(op));
	if (n < 0) {
		finish(r, op, op->moved ? (ssize_t)op->moved : n);
		return;
	}
	int64_t at = op->off + (int64_t)op->moved;
	if (r->uring) {
		struct io_uring_sqe *sqe = sqe_get(r);
		if (!sqe) {
			read_commit(op, 0);
			return;
		}
		io_uring_prep_readv(sqe, op->fd, op->iov, (unsigned)n, stream ? (uint64_t)-1 : (uint64_t)at);
		sqe_submitted(r, sqe, op, ZBL__UD_OP);
		op->in_kernel = true;
		return;
	}
	ssize_t got;
	do {
		got = zbl__sys_readv(op->fd, op->iov, n, stream ? NULL : &at);
	} while (got < 0 && errno == EINTR);
	read_done(r, op, got < 0 ? -errno : got);
}

/* zbl_ring_splice_from: the library's splice, once the descriptor has bytes. */
static void splice_step(struct zbl_ring *r, struct zbl__rop *op)
{
	ssize_t got;

	if (op->off < 0 && !ready(op, POLLIN)) {
		wait_for(r, op, ZBL__WAIT_IN);
		return;
	}
	if (op->off >= 0) {
		int64_t o = op->off;
		got = op->len ? zbl_splice_from(op->bl, op->fd, &o, op->len, 0) : 0;
	} else {
		got = op->len ? zbl_splice_from(op->bl, op->fd, NULL, op->len, ZBL_SOME) : 0;
	}
	if (got == -EAGAIN) {
		wait_for(r, op, ZBL__WAIT_IN);
		return;
	}
	finish(r, op, got);
}

/* ------------------------------------------------------------------------ */
/* Writes */

/*
 * What a blocking socket or pipe takes now without waiting (after poll said
 * writable): half the socket's free send buffer (its accounting counts
 * buffer overhead too), or one pipe buffer. Non-blocking ones say EAGAIN.
 */
static size_t stream_room(const struct zbl__rfd *d)
{
	int sndbuf = 0, outq = 0;

	if (d->nonblock)
		return SIZE_MAX;
	if (d->kind == ZBL__RFD_STREAM)
		return PIPE_STEP_BYTES;
	if (zbl__sys_getsockopt(d->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf) < 0 ||
	    zbl__sys_ioctl_int(d->fd, SIOCOUTQ, &outq) < 0 || sndbuf <= outq)
		return PIPE_STEP_BYTES;
	size_t room = (size_t)(sndbuf - outq) / 2;
	return room > PIPE_STEP_BYTES ? room : PIPE_STEP_BYTES;
}

/* A write moved @n more bytes; finishes it when nothing is left. */
static void write_moved(struct zbl_ring *r, struct zbl__rop *op, size_t n)
{
	op->moved += n;
	if (!zbl_length(op->bl))
		finish(r, op, (ssize_t)op->moved);
}

/* The library's own write of what is left (bounded for blocking streams). */
static void write_sync(struct zbl_ring *r, struct zbl__rop *op)
{
	struct zbl__rfd *d = op->rfd;
	ssize_t w;

	if (d->kind == ZBL__RFD_FILE) {
		int64_t o = op->off + (int64_t)op->moved;
		w = zbl__write_list(op->bl, op->fd, op->off >= 0 ? &o : NULL, ZBL_DRAIN, SIZE_MAX);
	} else {
		if (!ready(op, POLLOUT)) {
			wait_for(r, op, ZBL__WAIT_OUT);
			return;
		}
		w = zbl__write_list(op->bl, op->fd, NULL,
				    ZBL_DRAIN | ZBL__OUT_DONTWAIT | (d->nonblock ? 0 : ZBL__OUT_ONE),
				    stream_room(d));
	}
	if (w > 0) {
		write_moved(r, op, (size_t)w);
		return;
	}
	if (w == -EAGAIN || w == 0)
		wait_for(r, op, ZBL__WAIT_OUT);
	else
		finish(r, op, w);
}

/* The memory run at the front of a write's list, as iovecs: its bytes (0: kernel pages first). */
static size_t gather(struct zbl__rop *op, size_t max, bool direct)
{
	const zbl_t *bl = op->bl;
	size_t total = 0;
	int n = 0;

	for (size_t i = 0; i < zbl_segments(bl) && n < IOV_MAX && total < max; i++) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		if (zbl__block_is_kernel(s->b))
			break;
		size_t len = s->len < max - total ? s->len : max - total;
		if (direct && (((uintptr_t)s->data | len) & (DIRECT_ALIGN - 1)))
			break;
		if ((size_t)n == op->wiov_cap) {
			size_t cap = op->wiov_cap ? op->wiov_cap * 2 : 16;
			struct iovec *v = realloc(op->wiov, cap * sizeof(*v));
			if (!v)
				break;
			op->wiov = v;
			op->wiov_cap = cap;
		}
		op->wiov[n++] = (struct iovec){ (void *)s->data, len };
		total += len;
	}
	op->wiov_n = n;
	return total;
}

/* Sends a memory run by SENDMSG_ZC: its bytes stay held until the notification. */
static bool send_zc(struct zbl_ring *r, struct zbl__rop *op, size_t bytes)
{
	struct zbl__zc *zc = malloc(sizeof(*zc) + (size_t)op->wiov_n * sizeof(struct iovec));
	struct io_uring_sqe *sqe;

	if (!zc)
		return false;
	zc->held = zbl_new();
	sqe = zc->held ? sqe_get(r) : NULL;
	if (!sqe) {
		zbl_free(zc->held);
		free(zc);
		return false;
	}
	zc->op = op;
	zc->rfd = op->rfd;
	zc->bytes = bytes;
	zc->sent = 0;
	zc->iov_n = op->wiov_n;
	memcpy(zc->iov, op->wiov, (size_t)op->wiov_n * sizeof(struct iovec));
	zc->msg = (struct msghdr){ .msg_iov = zc->iov, .msg_iovlen = (size_t)zc->iov_n };
	io_uring_prep_sendmsg_zc(sqe, op->fd, &zc->msg, MSG_NOSIGNAL);
	sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
	sqe_submitted(r, sqe, zc, ZBL__UD_ZC);
	op->in_kernel = true;
	op->zc = zc;
	op->rfd->zc_pending++;
	r->zc_bytes += bytes;
	return true;
}

static void write_step_uring(struct zbl_ring *r, struct zbl__rop *op)
{
	struct zbl__rfd *d = op->rfd;
	struct io_uring_sqe *sqe;
	bool file = d->kind == ZBL__RFD_FILE;

	/* Pipes (SIGPIPE) and kernel pages go by the library's calls once writable. */
	if (d->kind == ZBL__RFD_STREAM) {
		write_sync(r, op);
		return;
	}
	int64_t at = op->off < 0 ? -1 : op->off + (int64_t)op->moved;
	/* O_DIRECT from list memory where aligned; the rest staged by the library's write. */
	bool unaligned = file && d->direct && (at < 0 || ((uint64_t)at & (DIRECT_ALIGN - 1)));
	size_t bytes = unaligned ? 0 : gather(op, WRITE_STEP_BYTES, file && d->direct);
	if (!bytes) {
		write_sync(r, op);
		return;
	}
	if (file) {
		sqe = sqe_get(r);
		if (!sqe)
			return;
		io_uring_prep_writev(sqe, op->fd, op->wiov, (unsigned)op->wiov_n, (uint64_t)at);
		op->direct = d->direct;
		sqe_submitted(r, sqe, op, ZBL__UD_OP);
		op->in_kernel = true;
		return;
	}
	if (d->kind == ZBL__RFD_SOCK_ZC && r->send_zc && !d->zc_off && bytes >= ZC_MIN_BYTES) {
		if (r->zc_bytes + bytes <= r->zc_budget && send_zc(r, op, bytes))
			return;
		/* Over the pinned-memory budget: this run is copied, and counted as such. */
		ZBL__STAT_ADD(fallbacks, 1);
		zbl__trace("fallback: zero-copy send over the pinned-memory budget", bytes);
	}
	sqe = sqe_get(r);
	if (!sqe)
		return;
	op->msg = (struct msghdr){ .msg_iov = op->wiov, .msg_iovlen = (size_t)op->wiov_n };
	io_uring_prep_sendmsg(sqe, op->fd, &op->msg, MSG_NOSIGNAL);
	op->direct = false;
	sqe_submitted(r, sqe, op, ZBL__UD_OP);
	op->in_kernel = true;
}

/* An io_uring write or send of op->wiov completed with @res. */
static void write_done(struct zbl_ring *r, struct zbl__rop *op, ssize_t res)
{
	if (res > 0) {
		zbl__drop_front(op->bl, (size_t)res);
		ZBL__STAT_ADD(bytes_copied_out, res);
		if (op->direct)
			ZBL__STAT_ADD(bytes_direct, res);
		write_moved(r, op, (size_t)res);
	} else if (res == -EAGAIN) {
		wait_for(r, op, ZBL__WAIT_OUT);
	} else {
		finish(r, op, res ? res : -EIO);
	}
}

/* A zero-copy send's result (@more: a notification follows). */
static void zc_result(struct zbl_ring *r, struct zbl__zc *zc, ssize_t res, bool more)
{
	struct zbl__rop *op = zc->op;

	zc->op = NULL;
	op->in_kernel = false;
	op->zc = NULL;
	if (res > 0) {
		zc->sent = (size_t)res;
		zbl_splice(op->bl, 0, (size_t)res, zc->held);
		/* From user memory, as every send: whether the kernel copied is told later. */
		ZBL__STAT_ADD(bytes_copied_out, res);
	}
	if (res == -ENOMEM || res == -EOPNOTSUPP || res == -EINVAL) {
		/*
		 * Pages could not be pinned (RLIMIT_MEMLOCK), or this socket or
		 * kernel takes no zero-copy sends: copy instead, counted.
		 */
		if (res == -EINVAL)
			r->send_zc = false;
		else if (res == -EOPNOTSUPP)
			zc->rfd->zc_off = true;
		else
			r->zc_budget /= 2;
		ZBL__STAT_ADD(fallbacks, 1);
		zbl__trace("fallback: zero-copy send refused", zc->bytes);
	} else if (res > 0) {
		write_moved(r, op, (size_t)res);
	} else if (res == -EAGAIN) {
		wait_for(r, op, ZBL__WAIT_OUT);
	} else {
		finish(r, op, res ? res : -EIO);
	}
	if (!more) {
		/* No notification follows: the pages are the caller's again now. */
		struct zbl__rfd *d = zc->rfd;
		r->in_kernel--;
		d->zc_pending--;
		r->zc_bytes -= zc->bytes;
		zbl_free(zc->held);
		free(zc);
		rfd_drop_if_idle(r, d);
	}
}

/* The kernel let go of a zero-copy send's pages. */
static void zc_notif(struct zbl_ring *r, struct zbl__zc *zc, int32_t res)
{
	struct zbl__rfd *d = zc->rfd;

	r->in_kernel--;
	d->zc_pending--;
	r->zc_bytes -= zc->bytes;
	if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED) {
		ZBL__STAT_ADD(bytes_zerocopy_copied, zc->sent);
		if (!d->zc_off)
			zbl__trace("fallback: zero-copy send copied by the kernel (loopback?)", zc->sent);
		d->zc_off = true;
	} else {
		ZBL__STAT_ADD(bytes_sent_zerocopy, zc->sent);
	}
	zbl_free(zc->held);
	free(zc);
	rfd_drop_if_idle(r, d);
}

/* ------------------------------------------------------------------------ */
/* Fsync */

static void fsync_step(struct zbl_ring *r, struct zbl__rop *op)
{
	struct zbl__rfd *d = op->rfd;

	/* After every earlier operation on the descriptor: reads too. */
	if (d->rhead && d->rhead->seq < op->seq)
		return;
	if (r->uring) {
		struct io_uring_sqe *sqe = sqe_get(r);
		if (!sqe)
			return;
		io_uring_prep_fsync(sqe, op->fd, (op->flags & ZBL_DATASYNC) ? IORING_FSYNC_DATASYNC : 0);
		sqe_submitted(r, sqe, op, ZBL__UD_OP);
		op->in_kernel = true;
		return;
	}
	int err = (op->flags & ZBL_DATASYNC) ? fdatasync(op->fd) : fsync(op->fd);
	finish(r, op, err < 0 ? -errno : 0);
}

/* ------------------------------------------------------------------------ */
/* The engine loop */

/* One step of @op, which is at the head of its queue and not in the kernel. */
static void step(struct zbl_ring *r, struct zbl__rop *op)
{
	if (op->cancelled) {
		finish(r, op, -ECANCELED);
		return;
	}
	if ((op->type == ZBL__ROP_READ || op->type == ZBL__ROP_WRITE) && op->off >= 0 &&
	    op->rfd->kind != ZBL__RFD_FILE) {
		finish(r, op, -ESPIPE);
		return;
	}
	op->wait = ZBL__WAIT_NONE;
	switch (op->type) {
	case ZBL__ROP_READ:
		read_step(r, op);
		break;
	case ZBL__ROP_SPLICE:
		splice_step(r, op);
		break;
	case ZBL__ROP_WRITE:
		if (!zbl_length(op->bl))
			finish(r, op, (ssize_t)op->moved);
		else if (r->uring)
			write_step_uring(r, op);
		else
			write_sync(r, op);
		break;
	default:
		fsync_step(r, op);
		break;
	}
}

/*
 * Steps every queue head that is not in the kernel until nothing changes.
 * Returns whether an operation finished.
 */
static bool advance(struct zbl_ring *r)
{
	bool any = false, changed = true;

	for (int pass = 0; changed && pass < 64; pass++) {
		changed = false;
		for (size_t i = 0; i < r->table_size; i++) {
			for (struct zbl__rfd *d = r->table[i], *next; d; d = next) {
				int fd = d->fd;

				next = d->hnext;
				for (int q = 0; q < 2 && d; q++) {
					struct zbl__rop *op = q ? d->whead : d->rhead;
					if (!op || op->in_kernel)
						continue;
					size_t done_before = op->moved;
					step(r, op);
					/* finish() frees d when nothing is left on it. */
					if (rfd_find(r, fd) != d) {
						d = NULL;
						changed = any = true;
						break;
					}
					struct zbl__rop *now = q ? d->whead : d->rhead;
					if (now != op || op->moved != done_before)
						changed = any = true;
				}
				if (d && !r->uring)
					epoll_sync(r, d);
			}
		}
		if (r->done_head)
			any = true;
	}
	return any;
}

/* Runs the completions io_uring has posted; returns how many. */
static int reap(struct zbl_ring *r)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int32_t res = cqe->res;
		uint32_t flags = cqe->flags;
		void *p = (void *)(uintptr_t)(ud & ~(uint64_t)ZBL__UD_MASK);

		io_uring_cqe_seen(&r->ring, cqe);
		n++;
		switch (ud & ZBL__UD_MASK) {
		case ZBL__UD_ZC:
			if (flags & IORING_CQE_F_NOTIF)
				zc_notif(r, p, res);
			else
				zc_result(r, p, res, flags & IORING_CQE_F_MORE);
			break;
		case ZBL__UD_OP: {
			struct zbl__rop *op = p;
			r->in_kernel--;
			op->in_kernel = false;
			if (op->wait != ZBL__WAIT_NONE) {
				/* A poll: the descriptor is ready, or the poll was cancelled. */
				if (op->wait == ZBL__WAIT_OUT && res >= 0 && res != -ETIME &&
				    !(res & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)))
					op->poll_useless = true;
				if (res == -ETIME)
					res = 0; /* a back-off timeout ran out: try again */
				op->wait = ZBL__WAIT_NONE;
				if (op->cancelled || (res < 0 && res != -ECANCELED))
					finish(r, op, res);
				break;
			}
			if (op->type == ZBL__ROP_READ)
				read_done(r, op, res);
			else if (op->type == ZBL__ROP_WRITE)
				write_done(r, op, res);
			else
				finish(r, op, res);
			break;
		}
		default:
			r->in_kernel--;
			break;
		}
	}
	return n;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether some operation waits for the kernel or for a descriptor. */
static bool waiting(const struct zbl_ring *r)
{
	return r->in_kernel > 0 || (!r->uring && r->ops > 0);
}

/* Waits up to @ms (-1: no limit) for something to happen. */
static int wait_some(struct zbl_ring *r, int ms)
{
	if (r->uring) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
		int err = zbl__sys_uring_submit_wait(&r->ring, &cqe, ms < 0 ? NULL : &ts);
		return err == -ETIME || err == -EINTR ? 0 : err < 0 ? err : 0;
	}
	struct epoll_event ev[16];
	int n = zbl__sys_epoll_wait(r->epfd, ev, 16, ms);
	return n < 0 && errno != EINTR ? -errno : 0;
}

static void drain_wake(struct zbl_ring *r)
{
	uint64_t v;

	if (!r->woken)
		return;
	r->woken = false;
	while (read(r->evfd, &v, sizeof(v)) > 0)
		;
}

int zbl_ring_run(zbl_ring_t *r, unsigned min_done, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	unsigned ran = 0;
	int err = 0;

	if (!r)
		return -EINVAL;
	if (r->in_callback)
		return -EBUSY;
	drain_wake(r);
	for (;;) {
		bool more = true;
		while (more) {
			more = advance(r);
			if (r->uring) {
				if (io_uring_sq_ready(&r->ring))
					zbl__sys_uring_submit(&r->ring);
				more = reap(r) > 0 || more;
			}
			ran += (unsigned)call_done(r);
		}
		if (ran >= min_done || !waiting(r))
			break;
		int ms = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				break;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		/* A callback's submission made the eventfd readable: it is handled now. */
		drain_wake(r);
		err = wait_some(r, ms);
		if (err < 0)
			break;
	}
	/* Left to do without waiting (a submission from a callback): say so on the ring fd. */
	if (r->done_head)
		wake(r);
	if (err < 0 && !ran)
		return err;
	return ran > INT_MAX ? INT_MAX : (int)ran;
}

/* ------------------------------------------------------------------------ */
/* Submission */

static int submit(zbl_ring_t *r, enum zbl__rop_type type, zbl_t *bl, int fd, int64_t off,
		  size_t len, unsigned flags, zbl_ring_cb cb, void *arg)
{
	struct zbl__rop *op;
	int err = 0;

	if (!r || fd < 0 || off < -1)
		return -EINVAL;
	if (r->closing)
		return -ESHUTDOWN;
	op = zbl__sys_calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->type = (uint8_t)type;
	op->fd = fd;
	op->off = off;
	op->len = len;
	op->flags = flags;
	op->cb = cb;
	op->arg = arg;
	/* The descriptor first: a failed submission must leave @bl as it was. */
	op->rfd = rfd_get(r, fd, &err);
	if (err) {
		free(op);
		return err;
	}
	if (type == ZBL__ROP_WRITE) {
		op->bl = zbl_new();
		err = !op->bl ? -ENOMEM
		      : (flags & ZBL_DRAIN) ? zbl_claim_append(op->bl, bl) : zbl_append_list(op->bl, bl);
	} else {
		op->bl = bl;
	}
	if (err) {
		/* Nothing moved into op->bl (a failed append leaves both lists as they were). */
		if (type == ZBL__ROP_WRITE)
			zbl_free(op->bl);
		rfd_drop_if_idle(r, op->rfd);
		free(op);
		return err;
	}
	op->seq = ++r->seq;
	enqueue(op);
	r->ops++;
	wake(r);
	return 0;
}

int zbl_ring_read(zbl_ring_t *r, zbl_t *bl, int fd, int64_t off, size_t len, unsigned flags,
		  zbl_ring_cb cb, void *arg)
{
	if (!bl || (flags & ~ZBL_SOME))
		return -EINVAL;
	return submit(r, ZBL__ROP_READ, bl, fd, off, len, flags, cb, arg);
}

int zbl_ring_splice_from(zbl_ring_t *r, zbl_t *bl, int fd, int64_t off, size_t len,
			 unsigned flags, zbl_ring_cb cb, void *arg)
{
	if (!bl || (flags & ~ZBL_SOME))
		return -EINVAL;
	return submit(r, ZBL__ROP_SPLICE, bl, fd, off, len, flags, cb, arg);
}

int zbl_ring_write(zbl_ring_t *r, zbl_t *bl, int fd, int64_t off, unsigned flags,
		   zbl_ring_cb cb, void *arg)
{
	if (!bl || (flags & ~ZBL_DRAIN))
		return -EINVAL;
	return submit(r, ZBL__ROP_WRITE, bl, fd, off, zbl_length(bl), flags, cb, arg);
}

int zbl_ring_fsync(zbl_ring_t *r, int fd, unsigned flags, zbl_ring_cb cb, void *arg)
{
	if (flags & ~ZBL_DATASYNC)
		return -EINVAL;
	return submit(r, ZBL__ROP_FSYNC, NULL, fd, -1, 0, flags, cb, arg);
}

/* Cancels @op: at once if it is not in the kernel, else by an io_uring cancel. */
static void cancel_op(struct zbl_ring *r, struct zbl__rop *op)
{
	op->cancelled = true;
	if (!op->in_kernel) {
		finish(r, op, -ECANCELED);
		return;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (!sqe) {
		zbl__sys_uring_submit(&r->ring);
		sqe = io_uring_get_sqe(&r->ring);
	}
	if (!sqe)
		return; /* it completes on its own, as cancelled */
	/* A zero-copy send's request is tagged as such. */
	uint64_t ud = op->zc ? (uint64_t)(uintptr_t)op->zc | ZBL__UD_ZC : (uint64_t)(uintptr_t)op;
	io_uring_prep_cancel64(sqe, ud, 0);
	sqe_submitted(r, sqe, NULL, ZBL__UD_IGNORE);
}

int zbl_ring_cancel(zbl_ring_t *r, int fd)
{
	struct zbl__rfd *d;
	int n = 0;

	if (!r || fd < 0)
		return -EINVAL;
	d = rfd_find(r, fd);
	if (!d)
		return 0;
	d->zc_pending++; /* keeps d while its operations finish */
	while (d->rhead || d->whead) {
		struct zbl__rop *op = NULL;
		for (struct zbl__rop *o = d->rhead; o && !op; o = o->next)
			if (!o->cancelled)
				op = o;
		for (struct zbl__rop *o = d->whead; o && !op; o = o->next)
			if (!o->cancelled)
				op = o;
		if (!op)
			break;
		cancel_op(r, op);
		n++;
	}
	d->zc_pending--;
	rfd_drop_if_idle(r, d);
	if (n)
		wake(r);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Life */

zbl_ring_t *zbl_ring_new(unsigned entries, unsigned flags)
{
	struct zbl_ring *r;
	struct rlimit rl;
	struct epoll_event ev = { .events = EPOLLIN };

	if ((flags & ~ZBL_RING_SYNC) || entries > RING_ENTRIES_MAX) {
		errno = EINVAL;
		return NULL;
	}
	r = zbl__sys_calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->epfd = r->evfd = -1;
	if (table_grow(r) < 0)
		goto fail;
	r->epfd = zbl__sys_epoll_create();
	r->evfd = zbl__sys_eventfd();
	if (r->epfd < 0 || r->evfd < 0)
		goto fail;
	ev.data.ptr = NULL;
	if (zbl__sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) < 0)
		goto fail;
	entries = entries ? entries : RING_ENTRIES_DEFAULT;
	r->entries = entries;
	if (!(flags & ZBL_RING_SYNC) && zbl__uring_init(r, entries) == 0) {
		r->uring = true;
		ev.data.ptr = r;
		if (zbl__sys_epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->ring.ring_fd, &ev) < 0) {
			zbl__uring_exit(r);
			r->uring = false;
		}
	}
	r->zc_budget = ZC_BUDGET_MAX;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 2 < r->zc_budget)
		r->zc_budget = rl.rlim_cur / 2;
	return r;
fail:
	if (r->epfd >= 0)
		zbl__sys_close(r->epfd);
	if (r->evfd >= 0)
		zbl__sys_close(r->evfd);
	free(r->table);
	free(r);
	errno = ENOMEM;
	return NULL;
}

void zbl_ring_free(zbl_ring_t *r)
{
	if (!r)
		return;
	r->closing = true;
	for (size_t i = 0; i < r->table_size; i++) {
		for (struct zbl__rfd *d = r->table[i], *next; d; d = next) {
			next = d->hnext;
			zbl_ring_cancel(r, d->fd);
		}
	}
	/* Run what is left; wait for the kernel's last completions and notifications. */
	while (r->ops || r->in_kernel || r->done_head) {
		advance(r);
		if (r->uring) {
			if (io_uring_sq_ready(&r->ring))
				zbl__sys_uring_submit(&r->ring);
			reap(r);
		}
		call_done(r);
		if (r->uring && r->in_kernel && !r->done_head)
			wait_some(r, 100);
	}
	if (r->uring)
		zbl__uring_exit(r);
	zbl__sys_close(r->epfd);
	zbl__sys_close(r->evfd);
	free(r->table);
	free(r);
}

const char *zbl_ring_backend(const zbl_ring_t *r)
{
	return !r ? NULL : r->uring ? "io_uring" : "sync";
}

int zbl_ring_fd(const zbl_ring_t *r)
{
	return r ? r->epfd : -EINVAL;
}
