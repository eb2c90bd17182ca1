#!/usr/bin/env python3
"""The figures of `scripts/bench --console-pages N`, as Markdown on stdout.

Reads what the rounds left in --dir: a-R.csv and b-R.csv (eventshop-loadgen
--csv: one line per order, with its POST and saga latency), for round R
without (a) and with (b) the pages open, and cpu.txt ("label pages
cpu_before cpu_after ms_before ms_after" of the console's process per
phase). Percentiles are exact, nearest rank, over every order of a
condition (all its rounds pooled) and of each round.
"""
import argparse
import csv
import math
import os
import sys


def nearest_rank(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def read_phase(path):
    saga, post, pending = [], [], 0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            post.append(float(row["http_ms"]))
            if row["saga_ms"]:
                saga.append(float(row["saga_ms"]))
            else:
                pending += 1
    return saga, post, pending


def fmt(x):
    return "n/a" if math.isnan(x) else f"{x:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--pages", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--command", required=True)
    a = ap.parse_args()

    cpu = {}
    with open(os.path.join(a.dir, "cpu.txt")) as f:
        for line in f:
            f = line.split()
            label, c0, c1, t0, t1 = f[0], float(f[2]), float(f[3]), int(f[4]), int(f[5])
            readers = float(f[7]) - float(f[6]) if len(f) >= 8 else float("nan")
            cpu[label] = (c1 - c0, (t1 - t0) / 1000, readers)

    pooled = {"a": ([], [], 0), "b": ([], [], 0)}
    rounds = []
    for r in range(1, a.rounds + 1):
        row = {}
        for c in ("a", "b"):
            saga, post, pending = read_phase(os.path.join(a.dir, f"{c}-{r}.csv"))
            s, p, n = pooled[c]
            pooled[c] = (s + saga, p + post, n + pending)
            row[c] = (saga, post)
        rounds.append(row)

    names = {"a": "no page open", "b": f"{a.pages} pages open"}
    out = []
    out.append(f"`{a.command}`: {a.rounds} rounds, each {a.rate} orders/s for "
               f"{a.seconds} s without pages and {a.seconds} s with {a.pages} event "
               "streams open, alternated (A B, B A, ...).")
    out.append("")
    out.append("| | orders | saga p50 ms | saga p99 ms | POST p50 ms | POST p99 ms "
               "| console CPU | the readers' CPU |")
    out.append("|---|---|---|---|---|---|---|---|")
    for c in ("a", "b"):
        saga, post, pending = pooled[c]
        used = sum(cpu[k][0] for k in cpu if k.startswith(c + "-"))
        wall = sum(cpu[k][1] for k in cpu if k.startswith(c + "-"))
        readers = sum(cpu[k][2] for k in cpu if k.startswith(c + "-"))
        out.append(f"| {names[c]} | {len(post)}{f' ({pending} unfinished)' if pending else ''} "
                   f"| {fmt(nearest_rank(saga, 50))} | {fmt(nearest_rank(saga, 99))} "
                   f"| {fmt(nearest_rank(post, 50))} | {fmt(nearest_rank(post, 99))} "
                   f"| {100 * used / wall:.1f} % of a core "
                   f"| {fmt(100 * readers / wall)} % of a core |")
    sa, sb = pooled["a"][0], pooled["b"][0]
    d50 = nearest_rank(sb, 50) - nearest_rank(sa, 50)
    d99 = nearest_rank(sb, 99) - nearest_rank(sa, 99)
    diffs = sorted(nearest_rank(r["b"][0], 50) - nearest_rank(r["a"][0], 50) for r in rounds)
    worse = sum(1 for d in diffs if d > 0)
    mid = len(diffs) // 2
    median = diffs[mid] if len(diffs) % 2 else (diffs[mid - 1] + diffs[mid]) / 2
    out.append("")
    out.append(f"With the pages open the saga's p50 moved by {d50:+.1f} ms and its p99 by "
               f"{d99:+.1f} ms (all rounds pooled). Round by round, the p50 with the pages "
               f"open was higher in {worse} of {len(diffs)} rounds; the median of the "
               f"rounds' differences is {median:+.1f} ms. A difference smaller than the "
               "spread between rounds of the same condition is noise, not the pages' cost.")
    out.append("")
    out.append("Round by round (saga p50 / p99 ms):")
    out.append("")
    out.append("| round | " + " | ".join(names[c] for c in ("a", "b")) + " |")
    out.append("|---|---|---|")
    for i, row in enumerate(rounds, 1):
        cells = [f"{fmt(nearest_rank(row[c][0], 50))} / {fmt(nearest_rank(row[c][0], 99))}"
                 for c in ("a", "b")]
        out.append(f"| {i} | " + " | ".join(cells) + " |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
