#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Usage: tests/serve_sync_check.py LABEL LOG ROOT EXPECT [LABEL LOG ROOT EXPECT ...]

Checks, from an `strace -f -tt -yy` log of `zbl serve`, that every PUT and
DELETE was durable before it was acknowledged. Used by
tests/cli_serve_sync_test.sh; runs on any log by hand as well. Several logs
are checked in one run (interpreter start-up is slow on a loaded machine).

LOG must trace at least fdatasync, fsync, linkat, renameat(2), unlinkat,
sync_file_range and the calls that send responses (write, writev, sendmsg,
sendto), with -yy so descriptors carry their paths. ROOT is the object
directory as -yy prints it (no symlinks). EXPECT lists the responses the
client received, in order, separated by ';': "PUT NAME STATUS [WB]",
"DELETE NAME STATUS" or "GET NAME STATUS"; WB is the least number of
sync_file_range(SYNC_FILE_RANGE_WRITE) calls expected on the upload's file.

The requests must have been sequential (each sent after the previous
response arrived), so the log splits into windows, one per response: from
the start of the previous response's send to the start of this one. A
syscall split over two lines (<unfinished ...> / <... resumed>) is one event
that starts at the first line and ends at the second; an event belongs to
the window in which it ends, so a sync that has not completed when the
response starts counts as missing. For each response in the window:

  PUT    the last successful linkat/renameat giving ROOT/NAME its object is
         the commit. Its file is the O_TMPFILE descriptor linked through
         /proc/self/fd/N (or AT_EMPTY_PATH), directly or via a temporary
         name renamed over NAME, or the named temporary file renamed onto
         NAME. An fdatasync (or fsync) of that file returning 0 must end
         before the file's first link or rename starts (NO_DATASYNC);
         then an fsync of ROOT returning 0 must start after the commit
         ends and end before the response starts (NO_DIRSYNC). At least WB
         sync_file_range calls on the file must end before the fdatasync
         starts (NO_WRITEBACK).
  DELETE an unlinkat(ROOT, NAME) returning 0 (NO_UNLINK), then the same
         fsync of ROOT rule (NO_DIRSYNC).
  all    the response's status is the expected one (BAD_STATUS); the log
         holds as many responses as EXPECT (ACK_COUNT). 1xx responses
         (100 Continue) are not responses here.

Prints one line per response and, per log, "RESULT LABEL ok" or
"RESULT LABEL FAIL CODE=n ..." (codes sorted). Exits 1 if any log failed.
"""
import os
import re
import sys

from serve_check_base import CheckerBase, main

LINE = re.compile(r'^(\d+)\s+\d\d:\d\d:\d\d\.\d+\s+(.*)$')
UNFINISHED = re.compile(r'^(\w+)\((.*) <unfinished \.\.\.>$')
RESUMED = re.compile(r'^<\.\.\. (\w+) resumed>(.*)$')
COMPLETE = re.compile(r'^(\w+)\((.*)$')
# The return value: the last ") = N" (or "= ?") of the line.
RET = re.compile(r'\)\s+=\s+(-?\d+|\?)(?:\s.*)?$')
# A descriptor as -yy prints it: 3</dir>, 13</dir/#123>(deleted), 12<TCP:[a->b]>.
FD = re.compile(r'(-?\d+|AT_FDCWD)<(TCP:\[[^\]]*\]|TCPv6:\[[^\]]*\]|[^>]*)>(\(deleted\))?')
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
STATUS = re.compile(r'HTTP/1\.1 (\d+)[ \\]')
SEND_CALLS = ('write', 'writev', 'sendmsg', 'sendto', 'send')
LINK_CALLS = ('linkat', 'renameat', 'renameat2')
SYNC_CALLS = ('fdatasync', 'fsync')


class Event:
    def __init__(self, name, pid, start, args):
        self.name, self.pid, self.start, self.args = name, pid, start, args
        self.end = start
        self.ret = None

    def fds(self):
        """The annotated descriptors of the arguments: [(number, path)]."""
        return [(m.group(1), m.group(2)) for m in FD.finditer(self.args)]

    def strings(self):
        return STRING.findall(self.args)

    def where(self):
        s = 'L%d' % (self.start + 1)
        return s if self.end == self.start else s + '-L%d' % (self.end + 1)


def parse(path):
    """The log's system calls as Events, in the order they started."""
    events, pending = [], {}
    with open(path, errors='replace') as f:
        for i, raw in enumerate(f):
            m = LINE.match(raw.rstrip('\n'))
            if not m:
                continue
            pid, body = m.group(1), m.group(2)
            if body.startswith(('+++', '---')):
                continue
            m = RESUMED.match(body)
            if m:
                ev = pending.pop((pid, m.group(1)), None)
                if ev is None:
                    continue
                ev.end = i
                ev.args += m.group(2)
                r = RET.search(m.group(2))
                ev.ret = r.group(1) if r else None
                continue
            m = UNFINISHED.match(body)
            if m:
                ev = Event(m.group(1), pid, i, m.group(2))
                pending[(pid, ev.name)] = ev
                events.append(ev)
                continue
            m = COMPLETE.match(body)
            if m:
                ev = Event(m.group(1), pid, i, m.group(2))
                r = RET.search(body)
                ev.ret = r.group(1) if r else None
                events.append(ev)
    return events


def ok(ev):
    return ev.ret == '0'


def response_status(ev):
    """The status of the HTTP response this send starts, or None."""
    if ev.name not in SEND_CALLS or ev.ret in (None, '?') or int(ev.ret) <= 0:
        return None
    fds = ev.fds()
    if not fds or not fds[0][1].startswith('TCP'):
        return None
    m = STATUS.search(ev.args)
    if not m or not ev.args.split('"', 1)[-1].startswith('HTTP/1.1 '):
        return None
    status = int(m.group(1))
    return None if 100 <= status < 200 else status


class Checker(CheckerBase):
    def __init__(self, label, log, root, expect):
        super().__init__(label, expect)
        self.log, self.root = log, root.rstrip('/')
        self.events = parse(log)

    def is_root(self, fd):
        return fd is not None and fd[1] == self.root

    def in_root(self, fd):
        return fd is not None and os.path.dirname(fd[1]) == self.root

    def dest(self, ev):
        """(dirfd, name) a successful link or rename creates in ROOT, or None."""
        fds, strs = ev.fds(), ev.strings()
        if ev.name == 'linkat':
            # linkat(olddirfd, oldpath, newdirfd, newpath, flags)
            if len(fds) >= 2 and len(strs) >= 2 and self.is_root(fds[-1]):
                return strs[1]
        elif ev.name in ('renameat', 'renameat2'):
            if len(fds) >= 2 and len(strs) >= 2 and self.is_root(fds[-1]):
                return strs[1]
        return None

    def link_source(self, ev):
        """('fd', N) for a linkat of an open descriptor, ('name', S) for a rename of ROOT/S."""
        strs, fds = ev.strings(), ev.fds()
        if ev.name == 'linkat':
            m = re.match(r'/proc/self/fd/(\d+)$', strs[0])
            if m:
                return ('fd', m.group(1))
            if strs[0] == '' and fds:
                return ('fd', fds[0][0])
            return ('name', strs[0])
        return ('name', strs[0])

    def of_file(self, ev, key):
        """Whether a sync or sync_file_range call is on the file @key names."""
        fds = ev.fds()
        if not fds:
            return False
        num, path = fds[0]
        if path == self.root:
            return False
        if key[0] == 'fd':
            return num == key[1] and os.path.dirname(path) == self.root
        return path == os.path.join(self.root, key[1])

    def check_dirsync(self, n, what, window, after, ack, later):
        """An fsync(ROOT) = 0 starting after @after ends and ending before @ack starts."""
        for ev in window:
            if ev.name == 'fsync' and ok(ev) and self.is_root(ev.fds()[0] if ev.fds() else None) \
                    and ev.start > after.end:
                return ev
        late = [ev for ev in later if ev.name == 'fsync' and ev.fds()
                and self.is_root(ev.fds()[0]) and ev.start > after.end]
        self.problem(n, what, 'NO_DIRSYNC',
                     'no fsync of %s after the %s at %s completes before the response at L%d%s'
                     % (self.root, after.name, after.where(), ack.start + 1,
                        ' (one completes at L%d, after the response started)' % (late[0].end + 1)
                        if late else ''))
        return None

    def check_put(self, n, what, name, wb, window, ack, later):
        commits = [ev for ev in window if ev.name in LINK_CALLS and ok(ev) and self.dest(ev) == name]
        if not commits:
            self.problem(n, what, 'NO_COMMIT', 'no successful link or rename onto %s/%s' % (self.root, name))
            return
        commit = commits[-1]
        src = self.link_source(commit)
        links = [commit]
        if src[0] == 'name':
            # A rename of a temporary name: linked there from an O_TMPFILE descriptor?
            via = [ev for ev in window if ev.name == 'linkat' and ok(ev) and ev.end < commit.start
                   and self.dest(ev) == src[1]]
            if via:
                links = [via[-1], commit]
                src = self.link_source(via[-1])
        first = links[0]
        file_desc = 'fd %s' % src[1] if src[0] == 'fd' else src[1]
        syncs = [ev for ev in window if ev.name in SYNC_CALLS and ok(ev) and self.of_file(ev, src)]
        before = [ev for ev in syncs if ev.end < first.start]
        steps = []
        datasync = None
        if before:
            datasync = before[-1]
            steps.append('%s(%s) done %s' % (datasync.name, file_desc, datasync.where()))
        else:
            self.problem(n, what, 'NO_DATASYNC',
                         'no fdatasync of the upload (%s) completes before its %s at %s%s'
                         % (file_desc, first.name, first.where(),
                            ' (one at %s, after it)' % syncs[0].where() if syncs else ''))
        wbs = [ev for ev in window if ev.name == 'sync_file_range' and self.of_file(ev, src)
               and (datasync is None or ev.end < datasync.start)]
        if wb and len(wbs) < wb:
            self.problem(n, what, 'NO_WRITEBACK', '%d sync_file_range calls on the upload (%s), want >= %d'
                         % (len(wbs), file_desc, wb))
        if wbs:
            ranges = []
            for ev in wbs:
                parts = [p.strip() for p in ev.args.split(',')]
                ranges.append('[%s,+%s)' % (parts[1], parts[2]) if len(parts) > 3 else '?')
            steps.insert(0, '%d sync_file_range %s' % (len(wbs), ' '.join(ranges)))
        for ev in links:
            strs = ev.strings()
            steps.append('%s(%s -> %s) %s' % (ev.name, strs[0], strs[1], ev.where()))
        dirsync = self.check_dirsync(n, what, window, commit, ack, later)
        if dirsync:
            steps.append('fsync(root) done %s' % dirsync.where())
        return steps

    def check_delete(self, n, what, name, window, ack, later):
        unlinks = [ev for ev in window if ev.name == 'unlinkat' and ok(ev) and ev.fds()
                   and self.is_root(ev.fds()[0]) and ev.strings()[:1] == [name]]
        if not unlinks:
            self.problem(n, what, 'NO_UNLINK', 'no successful unlinkat of %s/%s' % (self.root, name))
            return
        steps = ['unlinkat(%s) %s' % (name, unlinks[-1].where())]
        dirsync = self.check_dirsync(n, what, window, unlinks[-1], ack, later)
        if dirsync:
            steps.append('fsync(root) done %s' % dirsync.where())
        return steps

    def run(self):
        print('== %s: %s (%d traced calls)' % (self.label, self.log, len(self.events)))
        acks = [(ev, s) for ev in self.events for s in [response_status(ev)] if s is not None]
        if len(acks) != len(self.expect):
            self.problems['ACK_COUNT'] += 1
            print('  ACK_COUNT %d responses in the log, %d expected' % (len(acks), len(self.expect)))
        prev = -1
        for n, ((ack, status), exp) in enumerate(zip(acks, self.expect), 1):
            method, name, want = exp[0], exp[1], int(exp[2])
            wb = int(exp[3]) if len(exp) > 3 else 0
            what = '%s %s' % (method, name)
            # Events ending in (prev, ack.start): this request's. Later ones
            # up to the next response: to say a sync came too late.
            window = [ev for ev in self.events if prev < ev.end < ack.start and ev is not ack]
            nxt = acks[n][0].start if n < len(acks) else float('inf')
            later = [ev for ev in self.events if ack.start < ev.end < nxt]
            prev = ack.start
            before = sum(self.problems.values())
            if status != want:
                self.problem(n, what, 'BAD_STATUS', 'response is %d, expected %d' % (status, want))
            steps = None
            if method == 'PUT':
                steps = self.check_put(n, what, name, wb, window, ack, later)
            elif method == 'DELETE':
                steps = self.check_delete(n, what, name, window, ack, later)
            steps = (steps or []) + ['%s "HTTP/1.1 %d" starts L%d' % (ack.name, status, ack.start + 1)]
            self.ack_line(n, what, status, before, steps)
        return self.result()


if __name__ == '__main__':
    sys.exit(main(sys.argv, 4, Checker, __doc__))
