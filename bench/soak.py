#!/usr/bin/env python3
"""Writes docs/soak.md and its plot from the samples `scripts/bench --soak` took.

The samples are a CSV: seconds since the start, sagas ended so far, each
daemon's resident KiB, and the rows of es_outbox and es_inbox over all the
services' schemas. The report shows them minute by minute, plots them with
gnuplot, and compares the second minute with the last: flat means within
the noise of one machine.
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import time

SERVICES = ["order-service", "payment-service", "inventory-service", "email-service",
            "analytics-service", "shipping-service"]


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [{k: float(v) for k, v in r.items()} for r in rows]


def rates(rows):
    """Sagas ended per second between two samples, at the later one."""
    out = []
    for a, b in zip(rows, rows[1:]):
        dt = b["seconds"] - a["seconds"]
        if dt > 0:
            out.append((b["seconds"], (b["ended"] - a["ended"]) / dt))
    return out


def window(rows, lo, hi):
    return [r for r in rows if lo <= r["seconds"] < hi]


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def plot(rows, svg, csv_path):
    """Three panels over time: sagas/s, resident memory, table rows."""
    rate_path = csv_path + ".rate"
    with open(rate_path, "w", encoding="utf-8") as f:
        for t, r in rates(rows):
            f.write("%g %g\n" % (t / 60.0, r))
    mem = "; ".join(
        "'%s' using ($1/60):($%d/1024) skip 1 with lines title '%s'"
        % (csv_path, 3 + i, s) for i, s in enumerate(SERVICES))
    script = f"""
set terminal svg size 900,900 dynamic font 'sans,12'
set output '{svg}'
set datafile separator ','
set multiplot layout 3,1
set grid
set xlabel 'minutes'
set key outside right
set title 'Sagas ended per second'
set datafile separator ' '
plot '{rate_path}' using 1:2 with lines title 'sagas/s'
set datafile separator ','
set title 'Resident memory per daemon (MiB)'
plot {mem.replace("; ", ", ")}
set title 'Rows in the outbox and inbox tables (all schemas)'
plot '{csv_path}' using ($1/60):{3 + len(SERVICES)} skip 1 with lines title 'es_outbox', \\
     '{csv_path}' using ($1/60):{4 + len(SERVICES)} skip 1 with lines title 'es_inbox'
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(rate_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--minutes", type=int, required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--command", required=True)
    args = ap.parse_args()
    rows = load(args.csv)
    lg = json.load(open(args.loadgen, encoding="utf-8"))
    plot(rows, args.svg, args.csv)

    # The load's last full minute: the samples after it are the drain.
    last = args.minutes * 60
    second = (60, 120)
    final = (last - 60, last)
    rr = rates(rows)
    L = ["# Soak", "",
         "<!-- Written by bench/soak.py from `scripts/bench --soak`; do not edit. -->", "",
         "Written by `%s` on %s (%s, %d CPUs)." % (args.command, time.strftime("%Y-%m-%d"),
                                                  platform.node(), os.cpu_count()), "",
         "The saga at a steady %d orders/s for %d minutes (eventshop-loadgen --rate %d),"
         " every daemon on its defaults except that processed inbox rows and published"
         " outbox rows are kept 60 s instead of 8 days and 1 hour"
         " (`INBOX_RETENTION_S=60 OUTBOX_RETENTION_S=60`), so that the tables reach"
         " their plateau within the soak, and that every product has stock for the"
         " whole soak, so that the mix of outcomes stays the same. With the default"
         " retention the plateau has the same shape, only that much higher. The rate is"
         " one the saga sustains here: faster, POST /orders would go on accepting while"
         " the sagas fall behind and time out, and the soak would measure a growing"
         " backlog rather than a steady state." % (args.rate, args.minutes, args.rate), "",
         "![sagas per second, resident memory per daemon, outbox and inbox rows over"
         " the soak](%s)" % os.path.basename(args.svg), "",
         "Orders accepted: %d; sagas ended: %d (%d confirmed, %d cancelled)."
         % (lg["placing"]["placed"], lg["outcomes"]["CONFIRMED"] + lg["outcomes"]["CANCELLED"],
            lg["outcomes"]["CONFIRMED"], lg["outcomes"]["CANCELLED"]), "",
         "## The second minute against the last", "",
         "| | minute 2 | last minute | change |", "|---|---|---|---|"]

    def line(what, a, b, digits=0):
        change = "%+.0f %%" % (100.0 * (b - a) / a) if a else "n/a"
        fmt = "{:,.%df}" % digits
        L.append("| %s | %s | %s | %s |" % (what, fmt.format(a), fmt.format(b), change))

    line("Sagas ended per second", mean([r for t, r in rr if second[0] <= t < second[1]]),
         mean([r for t, r in rr if final[0] <= t < final[1]]), 1)
    for s in SERVICES:
        line("%s resident MiB" % s,
             mean([r[s] / 1024 for r in window(rows, *second)]),
             mean([r[s] / 1024 for r in window(rows, *final)]), 1)
    line("es_outbox rows", mean([r["outbox_rows"] for r in window(rows, *second)]),
         mean([r["outbox_rows"] for r in window(rows, *final)]))
    line("es_inbox rows", mean([r["inbox_rows"] for r in window(rows, *second)]),
         mean([r["inbox_rows"] for r in window(rows, *final)]))
    L += ["", "## Minute by minute", "",
          "| minute | sagas/s | " + " | ".join("%s MiB" % s.split("-")[0] for s in SERVICES)
          + " | outbox rows | inbox rows |",
          "|---" * (4 + len(SERVICES)) + "|"]
    for m in range(args.minutes):
        w = window(rows, m * 60, (m + 1) * 60)
        if not w:
            continue
        L.append("| %d | %.1f | %s | %.0f | %.0f |" % (
            m + 1, mean([r for t, r in rr if m * 60 <= t < (m + 1) * 60]),
            " | ".join("%.1f" % mean([r[s] / 1024 for r in w]) for s in SERVICES),
            mean([r["outbox_rows"] for r in w]), mean([r["inbox_rows"] for r in w])))
    L.append("")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
