/* SPDX-License-Identifier: MIT */
/*
 * The fault-injection shim behind sys.h (see fault.h). Compiled to nothing
 * unless ZBL_FAULT_INJECTION is defined, so the normal library is unchanged.
 *
 * Releasing calls are a special case:
 * - close(2) is failed, but only after the descriptor is really closed and
 *   only with EINTR or EIO: Linux releases the descriptor whatever close
 *   reports, so a library must neither retry (the number may already name a
 *   descriptor another thread opened) nor keep it. The tests check both: a
 *   failed close changes nothing the library does, and a close of a
 *   descriptor that is not open (a retry, a double close) is counted
 *   (zbl__fault_bad_closes) and fails them.
 * - munmap(2) and free(3) are not failed. free cannot fail. munmap fails only
 *   for arguments that do not describe a mapping (EINVAL) or when unmapping
 *   part of a mapping would need a new one (ENOMEM); the library always
 *   unmaps whole mappings it made, and after a real failure the mapping is
 *   still there, so the caller has nothing to do but go on. An injected
 *   failure that unmaps is the same as success to the caller, and one that
 *   does not is a leak made by the shim, not by the library: neither tests
 *   anything.
 */
#ifdef ZBL_FAULT_INJECTION

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "sys.h"
#include "fault.h"

enum mode { MODE_OFF, MODE_ERRNO, MODE_SHORT };

/* Plans active at once, each counting its own eligible calls. */
#define PLANS_MAX 4

struct plan {
	enum mode mode;
	const char *name;    /* NULL: every eligible call counts */
	unsigned long nth;
	unsigned long times; /* 0: every call from the nth on */
	int err;
	unsigned long calls;
};

/*
 * The plans, read and written under a lock: the fault build is for tests,
 * and a lock keeps the counts exact if a library thread ever makes calls.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct plan plans[PLANS_MAX];
static size_t nplans;
static pthread_t owner;           /* only this thread's calls count */
static unsigned long injected;
static const char *first;
static unsigned long bad_closes;  /* any thread's, since the last arm */

static void add(enum mode mode, const char *name, unsigned long nth, int err,
		unsigned long times, bool reset)
{
	pthread_mutex_lock(&lock);
	if (reset) {
		nplans = 0;
		injected = 0;
		first = NULL;
		bad_closes = 0;
		owner = pthread_self();
	}
	if (nplans < PLANS_MAX)
		plans[nplans++] = (struct plan){ mode, name, nth, times, err, 0 };
	pthread_mutex_unlock(&lock);
}

void zbl__fault_arm(const char *name, unsigned long nth, int err, unsigned long times)
{
	add(MODE_ERRNO, name, nth, err, times, true);
}

void zbl__fault_arm_short(const char *name, unsigned long nth)
{
	add(MODE_SHORT, name, nth, 0, 1, true);
}

void zbl__fault_add(const char *name, unsigned long nth, int err, unsigned long times)
{
	add(MODE_ERRNO, name, nth, err, times, false);
}

void zbl__fault_add_short(const char *name, unsigned long nth)
{
	add(MODE_SHORT, name, nth, 0, 1, false);
}

void zbl__fault_disarm(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nplans; i++)
		plans[i].mode = MODE_OFF;
	pthread_mutex_unlock(&lock);
}

unsigned long zbl__fault_calls(void)
{
	pthread_mutex_lock(&lock);
	unsigned long n = nplans ? plans[0].calls : 0;
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned long zbl__fault_injected(void)
{
	pthread_mutex_lock(&lock);
	unsigned long n = injected;
	pthread_mutex_unlock(&lock);
	return n;
}

const char *zbl__fault_first(void)
{
	pthread_mutex_lock(&lock);
	const char *s = first;
	pthread_mutex_unlock(&lock);
	return s;
}

unsigned long zbl__fault_bad_closes(void)
{
	pthread_mutex_lock(&lock);
	unsigned long n = bad_closes;
	pthread_mutex_unlock(&lock);
	return n;
}

/* Which calls can fail with which errno: the rest do not count for a plan. */
enum call { CALL_SYS, CALL_ALLOC, CALL_CLOSE };

static bool can_fail_with(enum call call, int err)
{
	switch (call) {
	case CALL_ALLOC:
		return err == ENOMEM;
	case CALL_CLOSE:
		/* What a close can report after releasing the descriptor. */
		return err == EINTR || err == EIO;
	default:
		return true;
	}
}

/* Counts an eligible call in every plan of @mode and says whether to fail it. */
static bool decide(enum mode mode, const char *what, enum call call)
{
	bool hit = false;
	int err = 0;

	pthread_mutex_lock(&lock);
	if (!nplans || !pthread_equal(owner, pthread_self())) {
		pthread_mutex_unlock(&lock);
		return false;
	}
	for (size_t i = 0; i < nplans; i++) {
		struct plan *p = &plans[i];
		if (p->mode != mode || (p->name && strcmp(p->name, what) != 0) ||
		    !can_fail_with(call, p->err))
			continue;
		p->calls++;
		if (!hit && p->calls >= p->nth && (!p->times || p->calls < p->nth + p->times)) {
			hit = true;
			err = p->err;
		}
	}
	if (hit) {
		injected++;
		if (!first)
			first = what;
	}
	pthread_mutex_unlock(&lock);
	if (hit && mode == MODE_ERRNO)
		errno = err;
	return hit;
}

bool zbl__fault(const char *what)
{
	return decide(MODE_ERRNO, what, CALL_SYS);
}

bool zbl__fault_alloc(const char *what)
{
	return decide(MODE_ERRNO, what, CALL_ALLOC);
}

bool zbl__fault_short(const char *what)
{
	return decide(MODE_SHORT, what, CALL_SYS);
}

bool zbl__fault_close(void)
{
	return decide(MODE_ERRNO, "close", CALL_CLOSE);
}

void zbl__fault_bad_close(void)
{
	pthread_mutex_lock(&lock);
	bad_closes++;
	pthread_mutex_unlock(&lock);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int zbl__fault_unused;

#endif /* ZBL_FAULT_INJECTION */
