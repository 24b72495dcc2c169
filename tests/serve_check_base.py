# SPDX-License-Identifier: MIT
"""What the server's two order checkers share: serve_sync_check.py (strace
logs of the buffered route) and serve_ring_sync_check.py (perf traces of
the direct route). Each run is told the expected requests ("METHOD NAME
STATUS ...;..."), counts problems by code, prints one line per
acknowledgement and ends with "RESULT LABEL ok" or "RESULT LABEL FAIL
CODE=N ...". The command line is groups of the checker's own arguments,
one group per run; the exit status is 0 only if every run is ok."""
import collections
import sys


class CheckerBase:
    def __init__(self, label, expect):
        self.label = label
        self.expect = [e.split() for e in expect.split(';') if e.strip()]
        self.problems = collections.Counter()

    def problem(self, n, what, code, detail):
        self.problems[code] += 1
        print('  ack %d %s: %s %s' % (n, what, code, detail))

    def ack_line(self, n, what, status, before, steps):
        """One acknowledgement's line: ok unless a problem was counted since @before."""
        verdict = 'ok' if sum(self.problems.values()) == before else 'FAILED'
        print('  ack %d %s -> %s %s: %s' % (n, what, status, verdict, ' < '.join(steps)))

    def result(self):
        if self.problems:
            print('RESULT %s FAIL %s' % (self.label, ' '.join(
                '%s=%d' % kv for kv in sorted(self.problems.items()))))
        else:
            print('RESULT %s ok' % self.label)
        return not self.problems


def main(argv, per_run, checker, doc):
    """Runs @checker on each group of @per_run arguments; 2 on a bad command line."""
    if len(argv) < per_run + 1 or (len(argv) - 1) % per_run:
        sys.stderr.write(doc)
        return 2
    good = True
    for i in range(1, len(argv), per_run):
        good &= checker(*argv[i:i + per_run]).run()
    return 0 if good else 1
