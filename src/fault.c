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

/*
 * One plan, read and written under a lock: the fault build is for tests, and
 * a lock keeps the counts exact if a library thread ever makes calls too.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	enum mode mode;
	pthread_t owner;     /* only this thread's calls count */
	const char *name;    /* NULL: every eligible call counts */
	unsigned long nth;
	unsigned long times; /* 0: every call from the nth on */
	int err;
	unsigned long calls;
	unsigned long injected;
	const char *first;
} plan;

void zbl__fault_arm(const char *name, unsigned long nth, int err, unsigned long times)
{
	pthread_mutex_lock(&lock);
	plan.mode = MODE_ERRNO;
	plan.owner = pthread_self();
	plan.name = name;
	plan.nth = nth;
	plan.times = times;
	plan.err = err;
	plan.calls = plan.injected = 0;
	plan.first = NULL;
	pthread_mutex_unlock(&lock);
}

void zbl__fault_arm_short(const char *name, unsigned long nth)
{
	zbl__fault_arm(name, nth, 0, 1);
	pthread_mutex_lock(&lock);
	plan.mode = MODE_SHORT;
	pthread_mutex_unlock(&lock);
}

void zbl__fault_disarm(void)
{
	pthread_mutex_lock(&lock);
	plan.mode = MODE_OFF;
	pthread_mutex_unlock(&lock);
}

unsigned long zbl__fault_calls(void)
{
	pthread_mutex_lock(&lock);
	unsigned long n = plan.calls;
	pthread_mutex_unlock(&lock);
	return n;
}

unsigned long zbl__fault_injected(void)
{
	pthread_mutex_lock(&lock);
	unsigned long n = plan.injected;
	pthread_mutex_unlock(&lock);
	return n;
}

const char *zbl__fault_first(void)
{
	pthread_mutex_lock(&lock);
	const char *s = plan.first;
	pthread_mutex_unlock(&lock);
	return s;
}

/* Counts an eligible call in @mode and says whether to fail it. */
static bool decide(enum mode mode, const char *what, bool alloc)
{
	bool hit = false;
	int err;

	pthread_mutex_lock(&lock);
	if (plan.mode != mode || !pthread_equal(plan.owner, pthread_self()) ||
	    (plan.name && strcmp(plan.name, what) != 0) ||
	    (alloc && plan.err != ENOMEM)) {
		pthread_mutex_unlock(&lock);
		return false;
	}
	plan.calls++;
	if (plan.calls >= plan.nth && (!plan.times || plan.calls < plan.nth + plan.times)) {
		hit = true;
		plan.injected++;
		if (!plan.first)
			plan.first = what;
	}
	err = plan.err;
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
