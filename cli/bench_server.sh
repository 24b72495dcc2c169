#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: cli/bench_server.sh PATH/TO/zbl
#
# `make bench-server`: the same object workload against nginx (nginx-light,
# dav_methods PUT for uploads, sendfile on for downloads) and `zbl serve`,
# both on loopback with two workers and temporary roots. PUT: curl uploads a
# PUT_MIB object PUT_ROUNDS times to each, alternating, and the medians are
# compared; GET: wrk for GET_SECS seconds on a 1 MiB and a 4 KiB object.
# Prints each result and the zbl / nginx ratio.
set -eu

ZBL=${1:?usage: $0 PATH/TO/zbl}
PUT_MIB=${PUT_MIB:-64}
PUT_ROUNDS=${PUT_ROUNDS:-7}
GET_SECS=${GET_SECS:-5}
NGINX=${NGINX:-/usr/sbin/nginx}
for tool in curl wrk "$NGINX"; do
	command -v "$tool" >/dev/null || { echo "bench-server: $tool is needed" >&2; exit 1; }
done

T=$(mktemp -d /tmp/zbl-bench-server.XXXXXX)
ZPID=
cleanup() {
	[ -n "$ZPID" ] && kill "$ZPID" 2>/dev/null && wait "$ZPID" 2>/dev/null
	[ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid")" 2>/dev/null
	sleep 0.2
	rm -rf "$T"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

head -c $((PUT_MIB << 20)) /dev/urandom >"$T/put"
head -c $((1 << 20)) /dev/urandom >"$T/g1m"
head -c 4096 /dev/urandom >"$T/g4k"

# --- nginx: generated config, loopback only, stopped by cleanup.
NPORT=$(free_port)
mkdir -p "$T/nroot" "$T/ntmp"
cat >"$T/nginx.conf" <<NGX
worker_processes 2;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
pid $T/nginx.pid;
error_log $T/nginx-error.log;
daemon on;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	client_body_temp_path $T/ntmp;
	proxy_temp_path $T/ntmp;
	fastcgi_temp_path $T/ntmp;
	uwsgi_temp_path $T/ntmp;
	scgi_temp_path $T/ntmp;
	server {
		listen 127.0.0.1:$NPORT;
		root $T/nroot;
		client_max_body_size 0;
		location / { dav_methods PUT DELETE; }
	}
}
NGX
"$NGINX" -c "$T/nginx.conf" -p "$T" -e "$T/nginx-error.log"
for _ in $(seq 50); do [ -f "$T/nginx.pid" ] && break; sleep 0.1; done

"$ZBL" serve --root "$T/zroot" --listen 127.0.0.1:0 --threads 2 --quiet 2>"$T/zlog" &
ZPID=$!
ZPORT=
for _ in $(seq 100); do
	ZPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/zlog")
	[ -n "$ZPORT" ] && break
	sleep 0.05
done
[ -n "$ZPORT" ] || { cat "$T/zlog" >&2; exit 1; }

# put_once PORT: MiB/s of one upload (replacing the same object each time).
put_once() {
	local t0 t1 c
	t0=$(date +%s.%N)
	c=$(curl -sS -o /dev/null -w '%{http_code}' -T "$T/put" "http://127.0.0.1:$1/obj")
	t1=$(date +%s.%N)
	case $c in 200|201|204) ;; *) echo "bench-server: PUT on port $1 gave $c" >&2; exit 1 ;; esac
	awk -v a="$t0" -v b="$t1" -v m="$PUT_MIB" 'BEGIN { printf "%.0f\n", m / (b - a) }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# put_rates: PUT_ROUNDS uploads to each server, alternating which goes first
# (so page-cache writeback after one server's uploads does not always hit
# the other); sets NPUT and ZPUT to the medians in MiB/s.
put_rates() {
	local r
	: >"$T/nput"; : >"$T/zput"
	for r in $(seq "$PUT_ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			put_once "$NPORT" >>"$T/nput"; put_once "$ZPORT" >>"$T/zput"
		else
			put_once "$ZPORT" >>"$T/zput"; put_once "$NPORT" >>"$T/nput"
		fi
	done
	NPUT=$(median <"$T/nput"); ZPUT=$(median <"$T/zput")
}

# get_rate PORT NAME: wrk requests/s and MiB/s.
get_rate() {
	wrk -t2 -c16 -d"${GET_SECS}s" "http://127.0.0.1:$1/$2" >"$T/wrk.out" 2>&1
	local rps mbs
	rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$T/wrk.out")
	mbs=$(awk '/^Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v += 0;
		if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024; printf "%.0f", v }' "$T/wrk.out")
	echo "$rps $mbs"
}

for p in "$NPORT" "$ZPORT"; do
	curl -sS -o /dev/null -T "$T/g1m" "http://127.0.0.1:$p/g1m"
	curl -sS -o /dev/null -T "$T/g4k" "http://127.0.0.1:$p/g4k"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "== zbl serve vs nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), loopback, 2 workers each"
put_rates
read -r N1R N1M <<<"$(get_rate "$NPORT" g1m)"; read -r Z1R Z1M <<<"$(get_rate "$ZPORT" g1m)"
read -r N4R N4M <<<"$(get_rate "$NPORT" g4k)"; read -r Z4R Z4M <<<"$(get_rate "$ZPORT" g4k)"
printf '%-34s %12s %12s %12s\n' workload nginx zbl "zbl/nginx"
printf '%-34s %12s %12s %12s\n' "PUT ${PUT_MIB} MiB, median of ${PUT_ROUNDS} (curl), MiB/s" "$NPUT" "$ZPUT" "$(ratio "$ZPUT" "$NPUT")"
printf '%-34s %12s %12s %12s\n' "GET 1 MiB (wrk -c16), MiB/s" "$N1M" "$Z1M" "$(ratio "$Z1M" "$N1M")"
printf '%-34s %12s %12s %12s\n' "GET 4 KiB (wrk -c16), req/s" "$N4R" "$Z4R" "$(ratio "$Z4R" "$N4R")"
echo "(targets from issue 6: PUT ratio >= 2, GET ratio >= 1; this machine is shared, so noisy)"
