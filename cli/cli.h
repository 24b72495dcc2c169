/* SPDX-License-Identifier: MIT */
/*
 * The zbl command-line tool: one program, one file per subcommand, and the
 * address helpers they share.
 */
#ifndef ZBL_CLI_H
#define ZBL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Exit status for a command line the tool cannot understand. */
#define CLI_EXIT_USAGE 2

int cli_bench(int argc, char **argv);
int cli_caps(int argc, char **argv);
int cli_cp(int argc, char **argv);
int cli_serve(int argc, char **argv);

/*
 * Splits "HOST:PORT" (or "[V6]:PORT") and resolves it. Returns 0 and fills
 * @ss/@len, or -errno / a getaddrinfo failure described in @err (size @errlen).
 */
int cli_resolve(const char *hostport, bool passive, struct sockaddr_storage *ss,
		socklen_t *len, char *err, size_t errlen);

/* Listening TCP socket on @hostport (SO_REUSEADDR, CLOEXEC). Returns fd or -1, message in @err. */
int cli_listen_tcp(const char *hostport, int backlog, char *err, size_t errlen);

/* Formats a socket address as "host:port". */
void cli_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* Parses a decimal size with an optional K/M/G/T suffix (binary). Returns 0 or -EINVAL. */
int cli_parse_size(const char *s, uint64_t *out);

/* Monotonic time in nanoseconds. */
uint64_t cli_now_ns(void);

#endif /* ZBL_CLI_H */
