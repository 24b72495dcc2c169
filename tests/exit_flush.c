/* SPDX-License-Identifier: MIT */
/*
 * A helper linked into every test program: at exit it closes the idle pipes
 * the library pools for reuse, so that a descriptor still open at exit
 * (valgrind --track-fds, make check-valgrind) is one that a list or a test
 * really leaked, not the pool's cache.
 */
#include <zbl.h>

__attribute__((destructor)) static void zbl_test_exit_flush(void)
{
	zbl_pool_flush();
}
