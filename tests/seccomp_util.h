/* SPDX-License-Identifier: MIT */
/*
 * A seccomp filter that refuses io_uring the way container runtimes do:
 * Docker (since 25.0) and Kubernetes' default profile answer io_uring_setup
 * with EPERM, so a program in such a container sees io_uring as "not
 * permitted" rather than missing. Tests install it in a child process to
 * check that the library notices and uses its synchronous engine.
 *
 * Plain C, no libseccomp: PR_SET_NO_NEW_PRIVS (so an unprivileged process may
 * install a filter too) and PR_SET_SECCOMP with a small BPF program. Only
 * system calls are used, so it may run between fork() and exec(); the filter
 * then stays for the exec'ed program and everything it starts.
 */
#ifndef SECCOMP_UTIL_H
#define SECCOMP_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define ZS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ZS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define ZS_AUDIT_ARCH AUDIT_ARCH_I386
#endif

/* Whether this architecture's filter is known here (otherwise the helpers return -ENOSYS). */
static inline int zs_supported(void)
{
#if defined(ZS_AUDIT_ARCH) && defined(__NR_io_uring_setup)
	return 1;
#else
	return 0;
#endif
}

/*
 * Installs a filter that makes system call @nr fail with @err and allows
 * everything else. A call made through another architecture's ABI (32-bit
 * compat) is refused with @err too, since its numbers mean other calls.
 * Returns 0, or -errno (-ENOSYS where the architecture is not known here).
 */
static inline int zs_deny_syscall(long nr, int err)
{
#if defined(ZS_AUDIT_ARCH)
	struct sock_filter code[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ZS_AUDIT_ARCH, 1, 0), /* to 3, else 2 */
		/* 2 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
		/* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1), /* to 5, else 6 */
		/* 5 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
		/* 6 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		return -errno;
	return 0;
#else
	(void)nr;
	(void)err;
	return -ENOSYS;
#endif
}

/* Makes io_uring_setup(2) fail with EPERM in this process and its children, as Docker does. */
static inline int zs_deny_io_uring_setup(void)
{
#if defined(__NR_io_uring_setup)
	return zs_deny_syscall(__NR_io_uring_setup, EPERM);
#else
	return -ENOSYS;
#endif
}

#endif /* SECCOMP_UTIL_H */
