/* SPDX-License-Identifier: MIT */
/*
 * The ring's internals, shared by ring.c (the operations, their queues and
 * the synchronous engine) and ring_uring.c (the io_uring engine). Layer 5
 * (see zbl_int.h): ring_uring.c only fills in fields of the structures
 * here; ring.c decides what they mean, so nothing calls back up.
 */
#ifndef ZBL_RING_INT_H
#define ZBL_RING_INT_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "zbl_int.h"

enum zbl__rop_type { ZBL__ROP_READ, ZBL__ROP_SPLICE, ZBL__ROP_WRITE, ZBL__ROP_FSYNC };

/* What a descriptor is, found when a ring first sees it busy. */
enum zbl__rfd_kind {
	ZBL__RFD_FILE,     /* regular file or block device: never waits */
	ZBL__RFD_SOCK_ZC,  /* TCP or UDP socket: zero-copy sends may pay */
	ZBL__RFD_SOCK,     /* another socket (AF_UNIX...) */
	ZBL__RFD_STREAM,   /* a pipe or anything else that is polled */
};

/* Tags in the low bits of an io_uring user_data (the pointers are 8-byte aligned). */
#define ZBL__UD_OP 0u      /* a step of an operation */
#define ZBL__UD_ZC 1u      /* a zero-copy send: result, then notification */
#define ZBL__UD_IGNORE 2u  /* a cancel request: its own completion says nothing */
#define ZBL__UD_MASK 7u

/* What an operation waits for before its next step. */
enum zbl__wait { ZBL__WAIT_NONE, ZBL__WAIT_IN, ZBL__WAIT_OUT };

struct zbl__rfd;

struct zbl__rop {
	struct zbl__rop *next;   /* in its descriptor's queue, then in the done list */
	struct zbl__rfd *rfd;
	uint64_t seq;            /* submission order within the ring */
	uint8_t type;
	bool cancelled;          /* asked to cancel; completes with -ECANCELED */
	bool in_kernel;          /* an io_uring request of this operation is in flight */
	uint8_t wait;            /* enum zbl__wait: blocked until the descriptor is ready */
	int fd;
	int64_t off;             /* file offset, -1 for streams */
	size_t len;
	unsigned flags;
	/* read, splice: the caller's list; write: the operation's own list of what is left */
	zbl_t *bl;
	zbl_ring_cb cb;
	void *arg;
	ssize_t result;
	size_t moved;            /* bytes so far */
	/* io_uring read in flight: the room prepared at the list's end */
	struct zbl__block *nb;
	size_t n1;
	struct iovec iov[2];
	/* io_uring write in flight (not zero-copy): its iovecs */
	struct iovec *wiov;
	int wiov_n;
	size_t wiov_cap;
	struct msghdr msg;
	bool direct;             /* the write in flight is O_DIRECT from list memory */
	struct zbl__zc *zc;      /* the zero-copy send in flight */
	/*
	 * An io_uring poll for POLLOUT came back without it: io_uring always
	 * adds POLLRDHUP to a poll's events, so a socket whose peer shut down
	 * its writing side completes every poll at once. Such an operation waits
	 * by short timeouts instead.
	 */
	bool poll_useless;
	struct __kernel_timespec backoff;
};

/* A zero-copy send: held bytes stay referenced until the kernel's notification. */
struct zbl__zc {
	struct zbl__rop *op;     /* until the result completion */
	struct zbl__rfd *rfd;
	zbl_t *held;             /* the bytes the kernel may still read */
	size_t bytes;            /* asked to send */
	size_t sent;             /* the result */
	struct msghdr msg;
	int iov_n;
	struct iovec iov[];
};

struct zbl__rfd {
	struct zbl__rfd *hnext;  /* hash chain */
	int fd;
	uint8_t kind;            /* enum zbl__rfd_kind */
	bool nonblock;
	bool direct;             /* O_DIRECT */
	bool zc_off;             /* the kernel copied a zero-copy send: stop trying */
	uint32_t ep_events;      /* synchronous engine: what the epoll set watches */
	unsigned zc_pending;     /* zero-copy sends not yet notified */
	bool detached;           /* out of the table (idle): freed at its last notification */
	struct zbl__rop *rhead, *rtail;   /* reads and splices, in order */
	struct zbl__rop *whead, *wtail;   /* writes and fsyncs, in order */
};

struct zbl_ring {
	bool uring;              /* engine */
	bool in_callback;
	bool closing;            /* zbl_ring_free: no new operations */
	bool send_zc;            /* the kernel has SEND_ZC and REPORT_USAGE */
	int epfd;                /* zbl_ring_fd() */
	int evfd;                /* "run would make progress" */
	bool woken;              /* evfd holds a count not yet drained */
	uint64_t seq;
	/* descriptors by number */
	struct zbl__rfd **table;
	size_t table_size, nrfd;
	struct zbl__rop *done_head, *done_tail;   /* callbacks to run */
	size_t ops;              /* operations not yet called back */
	size_t in_kernel;        /* io_uring requests in flight, notifications included */
	size_t zc_bytes;         /* memory pinned by zero-copy sends in flight */
	size_t zc_budget;
	unsigned entries;
	struct io_uring ring;
};

/* ring_uring.c: the io_uring engine. */
int zbl__uring_available(const char **why_not, bool *send_zc);
int zbl__uring_init(struct zbl_ring *r, unsigned entries);
void zbl__uring_exit(struct zbl_ring *r);

#endif /* ZBL_RING_INT_H */
