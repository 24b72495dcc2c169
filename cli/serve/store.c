/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, store.c: owns the objects on disk. An object is a regular file
 * in the root directory; an upload is written to a temporary file and
 * committed (linked or renamed into place) only whole, so a reader sees the
 * old object or the new one, never a part. Nothing here knows HTTP: results
 * are -errno, and store_status() is the one place that turns an errno into
 * a status code.
 *
 * Durability (docs/DESIGN.md, "Stored means durable"): with @durable set, a
 * commit makes the bytes durable (fdatasync) before the name exists, and
 * the name durable (fsync of the root) before it returns; a delete fsyncs
 * the root after the unlink. These calls block on the disk, so the server
 * runs them on its job threads (jobs.c), never on an event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve.h"

int store_status(int err)
{
	switch (err) {
	case ENOENT:
	case ELOOP:
	case ENOTDIR:
		return 404;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return 507;
	default:
		return 500;
	}
}

/* Opens an object for reading; only regular files are objects. Returns the fd or -errno. */
int store_open_object(int root_fd, const char *name, uint64_t *size)
{
	struct stat st;
	int fd = openat(root_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

static void tmp_name_next(struct server *srv, char *buf, size_t len)
{
	snprintf(buf, len, HTTP_TMP_PREFIX "%d.%u", (int)getpid(),
		 (unsigned)atomic_fetch_add(&srv->tmp_seq, 1));
}

/*
 * The temporary file for an upload: an unnamed O_TMPFILE in the root (so
 * nothing is left behind even if the server dies), or a named one, removed
 * on abort, where the filesystem lacks O_TMPFILE or there is no /proc to
 * link an unnamed file into place with. @tmp_name is set only for a named
 * one. Returns the fd or -errno.
 */
int store_open_tmp(struct server *srv, char *tmp_name, size_t tmp_name_len)
{
	int fd;

	tmp_name[0] = '\0';
	if (!atomic_load(&srv->named_tmp)) {
		fd = openat(srv->root_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0)
			return fd;
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -errno;
	}
	for (int tries = 0; tries < 100; tries++) {
		tmp_name_next(srv, tmp_name, tmp_name_len);
		fd = openat(srv->root_fd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			break;
	}
	fd = -errno;
	tmp_name[0] = '\0';
	return fd;
}

/* Writes all of @buf at @off of @fd (an upload's temporary file); 0 or -errno. */
int store_write_at(int fd, const void *buf, size_t n, uint64_t off)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	return 0;
}

/* An aborted upload must leave nothing: removes a named temporary file. */
void store_discard_tmp(int root_fd, char *tmp_name)
{
	if (tmp_name[0]) {
		unlinkat(root_fd, tmp_name, 0);
		tmp_name[0] = '\0';
	}
}

/*
 * Starts writeback of [from, to) of an upload while the rest still arrives,
 * so the fdatasync before the acknowledgement has little left to do. It
 * only queues the pages for writing: it does not wait for them.
 */
void store_start_writeback(int fd, uint64_t from, uint64_t to)
{
	if (to > from)
		sync_file_range(fd, (off64_t)from, (off64_t)(to - from), SYNC_FILE_RANGE_WRITE);
}

/*
 * Gives the unnamed temporary file the name @name in the root. Through
 * /proc/self/fd any user may; linkat(AT_EMPTY_PATH) would need
 * CAP_DAC_READ_SEARCH, so it is only the second try. Returns 0 or -errno
 * (-EEXIST if @name exists).
 */
static int link_unnamed(struct server *srv, int tmp_fd, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tmp_fd);
	if (linkat(AT_FDCWD, proc, srv->root_fd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	if (linkat(tmp_fd, "", srv->root_fd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno == ENOENT || errno == EPERM) {
		/*
		 * /proc went away after start-up: later uploads take the named
		 * path. This one cannot be linked; that is the server's failure
		 * (500), not a missing object (404), and the client may retry.
		 */
		atomic_store(&srv->named_tmp, true);
		return -EIO;
	}
	return -errno;
}

/* Keeps the object about to be replaced open (*@old_fd); nothing if there is none. */
static void hold_old(int root_fd, const char *name, int *old_fd)
{
	if (*old_fd < 0)
		*old_fd = openat(root_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

static int sync_root(struct server *srv, bool durable)
{
	return durable && fsync(srv->root_fd) < 0 ? -errno : 0;
}

/*
 * Links the finished upload in @tmp_fd (named @tmp_name, or unnamed when
 * that is empty) into place as @name. The object it replaces is kept open
 * in *@old_fd. Returns 201 (new), 200 (replaced) or -errno; on failure no
 * name was changed, except that a durable commit whose directory fsync
 * failed has linked the object but cannot say it is stored.
 */
int store_commit(struct server *srv, int tmp_fd, char *tmp_name, const char *name,
		 int *old_fd, bool durable)
{
	char tmp[64];
	bool existed;
	int r;

	if (durable && fdatasync(tmp_fd) < 0)
		return -errno;
	if (tmp_name[0]) {
		hold_old(srv->root_fd, name, old_fd);
		existed = *old_fd >= 0 ||
			  faccessat(srv->root_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
		if (renameat(srv->root_fd, tmp_name, srv->root_fd, name) < 0)
			return -errno;
		tmp_name[0] = '\0';
		r = sync_root(srv, durable);
		return r < 0 ? r : existed ? 200 : 201;
	}
	/* A new name is linked directly, which cannot replace anything. */
	r = link_unnamed(srv, tmp_fd, name);
	if (r != -EEXIST) {
		if (r == 0)
			r = sync_root(srv, durable);
		return r < 0 ? r : 201;
	}
	/* Replacing: link under a temporary name, then rename over the old object. */
	for (int tries = 0; tries < 100; tries++) {
		tmp_name_next(srv, tmp, sizeof(tmp));
		r = link_unnamed(srv, tmp_fd, tmp);
		if (r != -EEXIST)
			break;
	}
	if (r < 0)
		return r;
	hold_old(srv->root_fd, name, old_fd);
	if (renameat(srv->root_fd, tmp, srv->root_fd, name) < 0) {
		r = -errno;
		unlinkat(srv->root_fd, tmp, 0);
		return r;
	}
	r = sync_root(srv, durable);
	return r < 0 ? r : 200;
}

/* Removes object @name. Returns 0, -ENOENT if there is no such object, or -errno. */
int store_delete(int root_fd, const char *name, bool durable)
{
	struct stat st;

	/* Only regular files are objects; anything else in the root is not ours. */
	if (fstatat(root_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	if (unlinkat(root_fd, name, 0) < 0)
		return -errno;
	if (durable && fsync(root_fd) < 0)
		return -errno;
	return 0;
}
