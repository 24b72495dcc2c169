#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Usage: tests/serve_ring_sync_check.py LABEL TRACE ROOTFD ROOTINO EXPECT [LABEL TRACE ROOTFD ROOTINO EXPECT ...]

Checks, from a perf trace of `zbl serve` on its direct route (O_DIRECT
uploads whose syncs go through io_uring), that every PUT was durable before
it was acknowledged. Used by tests/cli_serve_ring_sync_test.sh; runs on any
trace by hand as well. strace cannot see io_uring operations; the kernel's
tracepoints can.

TRACE is the output of
    perf script -F comm,tid,time,event,trace --show-lost-events
for a `perf record` of the server (with its threads, io_uring's io-wq
workers included) on at least these events:
    io_uring:io_uring_submit_req    (user_data, opcode)
    io_uring:io_uring_file_get      (user_data, fd; for an FSYNC it fires on
                                     the io-wq worker that runs it)
    io_uring:io_uring_complete      (user_data, result)
    ext4:ext4_sync_file_enter/exit  (ino, datasync / ret), unless ROOTINO is -
    syscalls:sys_enter_/sys_exit_   accept4, close, linkat, renameat,
                                    renameat2, pwrite64, and the calls that
                                    send: sendmsg, sendto, write, writev
The order is the order of the lines (perf script sorts by time).

ROOTFD is the server's descriptor of the object directory. ROOTINO is that
directory's inode number, or - when it is not on ext4 (see below). EXPECT
lists the requests, one connection each, in order, separated by ';':
"PUT NAME STATUS INO" (INO: the inode NAME had right after that PUT
answered; - if unknown) or "GET NAME STATUS". The trace does not hold the
bytes sent: the statuses are the ones curl reported, and only label lines.

Telling the two fsyncs apart. io_uring_submit_req's "flags" are the
request's internal REQ_F_* flags, not the SQE's fsync_flags: no io_uring
tracepoint shows IORING_FSYNC_DATASYNC (io_uring_req_failed does, but only
for a failed request). What is relied on instead:
  - with ROOTINO: the FSYNC runs ext4_sync_file(), whose tracepoint
    ext4_sync_file_enter shows the inode and `datasync` (the flag vfs_fsync_range
    was called with: IORING_FSYNC_DATASYNC). An ext4 sync event belongs to
    the FSYNC request still in flight whose io_uring_file_get fired on the
    same thread (an io-wq worker runs one request at a time), or else to the
    only FSYNC request in flight. The upload's sync must show datasync 1 on
    INO; the root's, datasync 0 on ROOTINO.
  - without (ROOTINO -): only the descriptor of io_uring_file_get: the
    upload's sync is an FSYNC of the descriptor its O_DIRECT WRITEVs used,
    the root's an FSYNC of ROOTFD. The DATASYNC flag is not seen then (the
    report says "flag not seen").

The requests must have been sequential: each connection accepted after the
previous response was sent. Per connection (the fd an accept4 returned, up
to its close), the response is the first send call on it; its window is
from the accept to the start of that send (curl must not send "Expect:
100-continue", which would bring a "100 Continue" first). An io_uring
request belongs to the window it is submitted in, and has completed at its
io_uring_complete line; a system call starts at its sys_enter line and ends
at its sys_exit line. For each PUT:

  NO_DIRECT_WRITE       at least one io_uring WRITEV in the window (the
                        upload took the direct route).
  NO_COMMIT             a successful linkat/renameat/renameat2 whose new
                        directory is ROOTFD; the last one is the commit.
  NO_DATASYNC           an io_uring FSYNC of the upload (above) completes
                        with result 0 before the first successful link or
                        rename into ROOTFD of the window starts.
  WRITE_AFTER_DATASYNC  every WRITEV of the window, and every pwrite64
                        (the buffered prefix), has completed before that
                        FSYNC was submitted.
  NO_DIRSYNC            an io_uring FSYNC of the root (above), submitted
                        after the commit returned (its ext4 sync starting
                        after it too), completes with result 0 before the
                        response's send starts.
and for every log: ACK_COUNT (as many responses as EXPECT), SEQUENCE (a
connection accepted before the previous response), LOST (perf lost events).

Prints one line per response and, per trace, "RESULT LABEL ok" or "RESULT
LABEL FAIL CODE=n ..." (codes sorted). Exits 1 if any trace failed.
"""
import re
import sys

from serve_check_base import CheckerBase, main

# comm (may hold spaces), tid, time, event, the tracepoint's text.
LINE = re.compile(r'^\s*(.*?)\s+(\d+)\s+(\d+\.\d+):\s+([\w]+:[\w]+):\s?(.*)$')
FIELD = re.compile(r'(\w+):? (0x[0-9a-fA-F]+|-?\d+|[A-Z][A-Z0-9_]*)\b')
SEND_CALLS = ('sendmsg', 'sendto', 'write', 'writev')
LINK_CALLS = ('linkat', 'renameat', 'renameat2')


def num(s):
    return int(s, 16) if s.lower().startswith('0x') else int(s)


def signed(v, bits=64):
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def fd_arg(v):
    return signed(v & 0xffffffff, 32)


class Call:
    """A system call: sys_enter line to sys_exit line."""

    def __init__(self, name, tid, start, args):
        self.name, self.tid, self.start, self.args = name, tid, start, args
        self.end = None
        self.ret = None

    def where(self):
        return 'L%d-L%d' % (self.start + 1, self.end + 1) if self.end is not None \
            else 'L%d-(unfinished)' % (self.start + 1)


class Req:
    """An io_uring request: submission, file lookup, (ext4 sync), completion."""

    def __init__(self, ring, user_data, opcode, tid, line):
        self.ring, self.user_data, self.opcode = ring, user_data, opcode
        self.submit, self.submit_tid = line, tid
        self.fd = self.fd_tid = None
        self.done = self.res = None
        self.syncs = []     # [ext4 sync]: dicts ino, datasync, enter, exit, ret

    def sync(self):
        return self.syncs[-1] if self.syncs else None

    def what(self):
        s = self.sync()
        desc = '%s fd %s' % (self.opcode, self.fd)
        if s:
            desc += ' (ext4 ino %d datasync %d)' % (s['ino'], s['datasync'])
        return desc

    def where(self):
        return 'L%d..%s' % (self.submit + 1, 'L%d' % (self.done + 1) if self.done is not None
                            else '(not completed)')


def parse(path):
    """(system calls, io_uring requests, accepts [(line, fd)], lost lines)."""
    calls, reqs, lost = [], [], []
    open_calls = {}           # (tid, name) -> Call
    inflight = {}             # (ring, user_data) -> Req
    pending_sync = {}         # tid -> (Req, sync dict)
    with open(path, errors='replace') as f:
        for i, raw in enumerate(f):
            raw = raw.rstrip('\n')
            if ('LOST' in raw and 'PERF_RECORD' in raw) or raw.lstrip().startswith('LOST'):
                lost.append(i)
                continue
            m = LINE.match(raw)
            if not m:
                continue
            tid, event, text = int(m.group(2)), m.group(4), m.group(5)
            system, name = event.split(':', 1)
            fields = {k: v for k, v in FIELD.findall(text)}
            if system == 'syscalls':
                if name.startswith('sys_enter_'):
                    call = Call(name[len('sys_enter_'):], tid, i, fields)
                    open_calls[(tid, call.name)] = call
                    calls.append(call)
                elif name.startswith('sys_exit_'):
                    call = open_calls.pop((tid, name[len('sys_exit_'):]), None)
                    if call is not None:
                        call.end = i
                        call.ret = signed(num(text.split()[0]))
                continue
            if system == 'io_uring':
                key = (fields.get('ring'), fields.get('user_data'))
                if name == 'io_uring_submit_req':
                    req = Req(key[0], key[1], fields.get('opcode'), tid, i)
                    inflight[key] = req
                    reqs.append(req)
                elif name == 'io_uring_file_get':
                    req = inflight.get(key)
                    if req is not None:
                        req.fd, req.fd_tid = int(fields['fd']), tid
                elif name == 'io_uring_complete':
                    req = inflight.pop(key, None)
                    if req is not None:
                        req.done, req.res = i, int(fields['result'])
                continue
            if system == 'ext4' and name == 'ext4_sync_file_enter':
                fsyncs = [r for r in inflight.values() if r.opcode == 'FSYNC']
                mine = [r for r in fsyncs if r.fd_tid == tid]
                req = mine[-1] if mine else fsyncs[0] if len(fsyncs) == 1 else None
                if req is None:
                    continue    # a plain fsync system call, or unbound
                s = {'ino': int(fields['ino']), 'datasync': int(fields['datasync']),
                     'enter': i, 'exit': None, 'ret': None}
                req.syncs.append(s)
                pending_sync[tid] = s
            elif system == 'ext4' and name == 'ext4_sync_file_exit':
                s = pending_sync.pop(tid, None)
                if s is not None:
                    s['exit'], s['ret'] = i, int(fields['ret'])
    return calls, reqs, lost


class Checker(CheckerBase):
    def __init__(self, label, trace, root_fd, root_ino, expect):
        super().__init__(label, expect)
        self.trace = trace
        self.root_fd = int(root_fd)
        self.root_ino = None if root_ino == '-' else int(root_ino)
        self.calls, self.reqs, self.lost = parse(trace)

    def connections(self):
        """[(accept Call, fd, first send Call or None)], in order."""
        conns, live = [], {}
        for call in self.calls:
            if call.end is None:
                continue
            if call.name in ('accept4', 'accept') and call.ret >= 0:
                live[call.ret] = [call, call.ret, None]
                conns.append(live[call.ret])
            elif call.name == 'close':
                live.pop(fd_arg(num(call.args.get('fd', '-1'))), None)
            elif call.name in SEND_CALLS:
                c = live.get(fd_arg(num(call.args.get('fd', '-1'))))
                if c is not None and c[2] is None:
                    c[2] = call
        return [tuple(c) for c in conns]

    def into_root(self, call):
        """A successful link or rename whose new directory is ROOTFD."""
        if call.name not in LINK_CALLS or call.ret != 0 or call.end is None:
            return False
        return fd_arg(num(call.args.get('newdfd', '0x0'))) == self.root_fd

    def is_upload_sync(self, req, ino, fds):
        s = req.sync()
        if self.root_ino is None:
            return req.fd in fds
        return s is not None and s['ino'] == ino and s['datasync'] == 1

    def is_root_sync(self, req):
        s = req.sync()
        if self.root_ino is None:
            return req.fd == self.root_fd
        return s is not None and s['ino'] == self.root_ino and s['datasync'] == 0

    def check_put(self, n, what, ino, acc, ack, reqs, calls, later):
        steps = []
        writes = [r for r in reqs if r.opcode == 'WRITEV']
        fds = {r.fd for r in writes}
        if not writes:
            self.problem(n, what, 'NO_DIRECT_WRITE', 'no io_uring WRITEV between the accept at L%d and '
                         'the response at L%d: not the direct route' % (acc.start + 1, ack.start + 1))
        else:
            steps.append('%d WRITEV fd %s done by L%d' % (
                len(writes), ','.join(str(x) for x in sorted(fds, key=str)),
                max(r.done if r.done is not None else 10 ** 9 for r in writes) + 1))
        links = [c for c in calls if self.into_root(c)]
        if not links:
            self.problem(n, what, 'NO_COMMIT', 'no successful link or rename into fd %d' % self.root_fd)
            return steps
        first, commit = links[0], links[-1]
        fsyncs = [r for r in reqs if r.opcode == 'FSYNC']
        ups = [r for r in fsyncs if self.is_upload_sync(r, ino, fds)]
        good = [r for r in ups if r.done is not None and r.res == 0 and r.done < first.start]
        if good:
            ds = good[-1]
            steps.append('%s%s %s' % (
                ds.what(), '' if self.root_ino is not None else ' (flag not seen)', ds.where()))
            late_w = [r for r in writes if r.done is None or r.done > ds.submit]
            late_p = [c for c in calls if c.name == 'pwrite64' and (c.end is None or c.end > ds.submit)]
            if late_w or late_p:
                self.problem(n, what, 'WRITE_AFTER_DATASYNC', 'the FSYNC is submitted at L%d, before %s'
                             % (ds.submit + 1, ', '.join(
                                 ['WRITEV %s' % r.where() for r in late_w] +
                                 ['pwrite64 %s' % c.where() for c in late_p])))
        else:
            others = ['%s %s' % (r.what(), r.where()) for r in fsyncs if r.done is None or r.done < ack.start]
            self.problem(n, what, 'NO_DATASYNC',
                         'no io_uring FSYNC of the upload (%s) completes with 0 before the %s at %s%s'
                         % ('ext4 ino %s, datasync 1' % ino if self.root_ino is not None
                            else 'fd %s' % ','.join(str(x) for x in sorted(fds, key=str)),
                            first.name, first.where(),
                            '; FSYNCs in the window: ' + '; '.join(others) if others else
                            '; no FSYNC in the window'))
        for c in links:
            steps.append('%s(newdfd %d) %s' % (c.name, self.root_fd, c.where()))
        roots = [r for r in fsyncs if self.is_root_sync(r) and r.submit > commit.end
                 and (r.sync() is None or r.sync()['enter'] > commit.end)]
        done = [r for r in roots if r.done is not None and r.res == 0 and r.done < ack.start]
        if done:
            steps.append('%s%s %s' % (
                done[0].what(), '' if self.root_ino is not None else ' (flag not seen)', done[0].where()))
        else:
            late = [r for r in later if r.opcode == 'FSYNC' and self.is_root_sync(r)
                    and r.submit > commit.end]
            self.problem(n, what, 'NO_DIRSYNC',
                         'no io_uring FSYNC of the root (%s) submitted after the %s at %s completes '
                         'with 0 before the response at L%d%s'
                         % ('fd %d' % self.root_fd if self.root_ino is None
                            else 'ext4 ino %d, datasync 0' % self.root_ino,
                            commit.name, commit.where(), ack.start + 1,
                            ' (one completes at L%d, after the response started)' % (late[0].done + 1)
                            if late and late[0].done is not None else ''))
        return steps

    def run(self):
        print('== %s: %s (%d system calls, %d io_uring requests, %s)' % (
            self.label, self.trace, len(self.calls), len(self.reqs),
            'ext4 sync events, root ino %d' % self.root_ino if self.root_ino is not None
            else 'fsyncs told apart by descriptor only'))
        if self.lost:
            self.problems['LOST'] += 1
            print('  LOST perf lost events (L%d): the trace is incomplete' % (self.lost[0] + 1))
        conns = self.connections()
        acks = [c for c in conns if c[2] is not None]
        if len(acks) != len(self.expect) or len(conns) != len(acks):
            self.problems['ACK_COUNT'] += 1
            print('  ACK_COUNT %d connections, %d responses in the trace, %d expected'
                  % (len(conns), len(acks), len(self.expect)))
        for n, ((acc, fd, ack), exp) in enumerate(zip(acks, self.expect), 1):
            method, name, status = exp[0], exp[1], exp[2]
            ino = int(exp[3]) if len(exp) > 3 and exp[3] != '-' else None
            what = '%s %s' % (method, name)
            before = sum(self.problems.values())
            if n > 1 and acc.start < acks[n - 2][2].start:
                self.problem(n, what, 'SEQUENCE', 'accepted at L%d, before the previous response at L%d'
                             % (acc.start + 1, acks[n - 2][2].start + 1))
            lo, hi = acc.end, ack.start
            nxt = acks[n][0].start if n < len(acks) else float('inf')
            reqs = [r for r in self.reqs if lo < r.submit < hi]
            later = [r for r in self.reqs if lo < r.submit and r.done is not None and hi < r.done < nxt]
            calls = [c for c in self.calls if lo < c.start < hi and c is not ack]
            steps = []
            if method == 'PUT':
                steps = self.check_put(n, what, ino, acc, ack, reqs, calls, later)
            steps = ['accept4 -> fd %d L%d' % (fd, acc.end + 1)] + (steps or []) + \
                ['%s(fd %d) starts L%d' % (ack.name, fd, ack.start + 1)]
            self.ack_line(n, what, status, before, steps)
        return self.result()


if __name__ == '__main__':
    sys.exit(main(sys.argv, 5, Checker, __doc__))
