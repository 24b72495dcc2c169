/* SPDX-License-Identifier: MIT */
/*
 * Fault injection for tests: the controls of the shim in sys.h. Only a
 * library built with -DZBL_FAULT_INJECTION (the zbl_fault target) has them;
 * they are internal and never exported by the shared library.
 *
 * A plan fails some "eligible" calls made by the thread that armed it:
 * - errno mode: every system call wrapper in sys.h is eligible, the
 *   allocations too when the errno is ENOMEM, and close when it is EINTR or
 *   EIO (the descriptor is closed all the same, as Linux does); the failed
 *   call returns its failure value with errno set;
 * - short mode: only read- and write-like calls (read, readv, pread, writev,
 *   pwritev, splice, tee, sendfile, copy_file_range) are eligible; the chosen call
 *   is asked to move at most half of what it was asked for.
 * Calls are counted from 1 after arming, optionally only those named @name
 * ("splice", "malloc", ... as in sys.h). Arming replaces every plan;
 * zbl__fault_add*() adds one, so that faults can be combined (a pipe that
 * cannot be had, then a read that stops short and then fails).
 */
#ifndef ZBL_FAULT_H
#define ZBL_FAULT_H

#include <stdbool.h>

/*
 * Fails @times eligible calls (0: all of them) starting with the @nth, each
 * with @err; only calls named @name count when it is not NULL.
 */
void zbl__fault_arm(const char *name, unsigned long nth, int err, unsigned long times);

/* Makes the @nth eligible read- or write-like call (named @name, if not NULL) short. */
void zbl__fault_arm_short(const char *name, unsigned long nth);

/* Adds a plan to the armed ones (at most four), counting calls on its own. */
void zbl__fault_add(const char *name, unsigned long nth, int err, unsigned long times);
void zbl__fault_add_short(const char *name, unsigned long nth);

/* Stops injecting; counts are kept until the next arm. */
void zbl__fault_disarm(void);

/* Eligible calls seen since the plan was armed. */
unsigned long zbl__fault_calls(void);

/* Faults injected since the plan was armed. */
unsigned long zbl__fault_injected(void);

/* Name of the call the first injected fault hit, or NULL. */
const char *zbl__fault_first(void);

/*
 * Closes, by any thread since the last arm, of a descriptor that was not
 * open (EBADF): a double close, which could have closed another's descriptor.
 */
unsigned long zbl__fault_bad_closes(void);

#endif /* ZBL_FAULT_H */
