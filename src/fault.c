/* SPDX-License-Identifier: MIT */
/*
 * The fault-injection shim behind sys.h (see fault.h). Compiled to nothing
 * unless ZBL_FAULT_INJECTION is defined, so the normal library is unchanged.
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

static void add(enum mode mode, const char *name, unsigned long nth, int err,
		unsigned long times, bool reset)
{
	pthread_mutex_lock(&lock);
	if (reset) {
		nplans = 0;
		injected = 0;
		first = NULL;
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

/* Counts an eligible call in every plan of @mode and says whether to fail it. */
static bool decide(enum mode mode, const char *what, bool alloc)
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
		    (alloc && p->err != ENOMEM))
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
	return decide(MODE_ERRNO, what, false);
}

bool zbl__fault_alloc(const char *what)
{
	return decide(MODE_ERRNO, what, true);
}

bool zbl__fault_short(const char *what)
{
	return decide(MODE_SHORT, what, false);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int zbl__fault_unused;

#endif /* ZBL_FAULT_INJECTION */
