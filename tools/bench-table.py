#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Prints zbl_bench's JSON results (bench-results.json) as a Markdown table:
one line per target, with both sides' figures, for the README and issue notes.

usage: tools/bench-table.py [bench-results.json ...]
Several files give one ratio column per file (consecutive runs side by side).
"""
import json
import sys


def figure(v, unit, kind=""):
    if "cpu" in kind:
        for key, name in (("cpu_s_per_gb", "CPU s/GB"), ("cpu_ns_per_op", "CPU ns/op")):
            if key in v:
                return "%.3g %s" % (v[key], name)
    for key, name in (("gb_per_s", "GB/s"), ("mops_per_s", "Mops/s")):
        if key in v:
            return "%.3g %s" % (v[key], name)
    return "%.3g ms" % (v["wall_s"] * 1e3)


def machine(m):
    if isinstance(m, dict):
        return "%s %s %s, %s CPUs" % (m.get("sysname", "?"), m.get("release", "?"),
                                      m.get("machine", "?"), m.get("cpus", "?"))
    return str(m)


def targets(doc):
    for row in doc["rows"]:
        byname = {v["name"]: v for v in row["variants"]}
        for t in row["targets"]:
            num, den = byname.get(t["num"]), byname.get(t["den"])
            if not num or not den:
                continue
            # The kind too: a row may give a throughput and a CPU ratio of one pair.
            key = (row["name"], t["num"], t["den"], t["kind"])
            yield key, row, num, den, t


def ratio(v):
    # Three decimals near 1, where 0.998 must not read as a failing 1.00.
    return "%.3f" % v if v < 10 else "%.0f" % v


def prefix(t):
    # Which figure a ratio divides: throughput unless the kind says time or CPU.
    for word in ("cpu", "time"):
        if word in t["kind"]:
            return word.upper() if word == "cpu" else word
    return ""


def verdict(t):
    if t["kind"].startswith("info"):
        return "info"
    return "PASS" if t["pass"] else "FAIL"


def goal(t):
    if t["kind"].startswith("info"):
        return "-"
    op = "<=" if "le" in t["kind"].split("_")[-1] else ">="
    return "%s %g" % (op, t["threshold"])


def main(paths):
    docs = [json.load(open(p)) for p in paths]
    first = docs[0]
    print("Machine: %s; zbl %s; %s; %s rounds (medians)%s." % (
        machine(first.get("machine")), first.get("zbl_version", "?"), first.get("date", "?"),
        first.get("rounds", "?"), ", quick sizes" if first.get("quick") else ""))
    print()
    head = "| row | zbl variant | baseline | zbl | baseline | target |"
    head += "".join(" run %d |" % (i + 1) for i in range(len(docs)))
    print(head)
    print("|" + "---|" * (6 + len(docs)))
    later = [dict((k, t) for k, _, _, _, t in targets(d)) for d in docs]
    for key, row, num, den, t in targets(first):
        cells = []
        for runs in later:
            tt = runs.get(key)
            cells.append("%s%s %s" % (prefix(tt) + " " if prefix(tt) else "", ratio(tt["value"]),
                                      verdict(tt)) if tt else "-")
        if t["kind"] == "value_le":
            # A variant's own figure (staged bytes per object): no baseline.
            print("| %s | %s | - | %s | - | %s | %s |" % (
                row["name"], t["num"], t.get("what", "value"), goal(t), " | ".join(cells)))
            continue
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            row["name"], t["num"], t["den"], figure(num, row["unit"], t["kind"]),
            figure(den, row["unit"], t["kind"]), goal(t), " | ".join(cells)))


if __name__ == "__main__":
    main(sys.argv[1:] or ["bench-results.json"])
