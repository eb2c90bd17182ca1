#!/usr/bin/env python3
"""Writes docs/benchmarks.md from the raw results scripts/bench left in var/bench.

Every figure is the median of the runs, with the smallest and largest beside
it. The part of the existing report between the analysis markers is carried
over unchanged: it is written by hand, from the figures and the profile.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys

ANALYSIS_BEGIN = "<!-- analysis: written by hand, kept by scripts/bench -->"
ANALYSIS_END = "<!-- /analysis -->"
# pgbench's TPC-B-like transaction: BEGIN, three UPDATEs, a SELECT, an
# INSERT, END.
PGBENCH_STATEMENTS = 7
# Every daemon a run may have: a build from before shipping-service (e.g.
# --compare with an older commit) has the first five only; what a run did
# not have is "n/a" in the report.
SERVICES = ["order-service", "payment-service", "inventory-service", "email-service",
            "analytics-service", "shipping-service"]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def pairs(path):
    """A file of "name value" lines as a dict of floats."""
    out = {}
    for line in read(path).splitlines():
        name, _, value = line.partition(" ")
        if value:
            out[name] = float(value)
    return out


def table(path):
    """A file of "name v1 v2 ..." lines as a dict of float lists."""
    out = {}
    for line in read(path).splitlines():
        cols = line.split()
        if cols:
            out[cols[0]] = [float(c) for c in cols[1:]]
    return out


def sustained_rate(csv_path):
    """Sagas ended per second between the 10th and the 90th percentile of the
    end times: the steady part of a flat-out run, without its ramp-up and
    the tail of its last orders."""
    ends = []
    for line in read(csv_path).splitlines()[1:]:
        cols = line.split(",")
        if len(cols) >= 4 and cols[3]:
            ends.append(float(cols[1]) + float(cols[3]))
    ends.sort()
    lo, hi = int(len(ends) * 0.1), int(len(ends) * 0.9)
    if hi <= lo or ends[hi] <= ends[lo]:
        return float("nan")
    return (hi - lo) / ((ends[hi] - ends[lo]) / 1000.0)


def wrk_figures(path):
    text = read(path)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            lat[pct] = float(m.group(1)) * scale
    return rps, lat


def pgbench_tps(path):
    m = re.search(r"tps = ([\d.]+) \(without initial connection", read(path))
    return float(m.group(1))


def cpu_figures(before, after, seconds, ended, loadgen_cpu, prefix=""):
    """The CPU every process used between two snapshots: per saga for each
    (PREFIXcpu_<name>_ms_per_order), for the daemons and the servers
    together, for the load generator and for all of them, and the share of
    the machine's cores they kept busy over seconds."""
    r = {}
    used = {k: after[k] - before[k] for k in after if k.startswith("cpu_")}
    for k, v in used.items():
        r[prefix + k + "_ms_per_order"] = v * 1000.0 / ended
    # PostgreSQL's backends by the daemon they served: a part of cpu_postgres.
    for k in after:
        if k.startswith("pgcpu_") and k in before:
            r[prefix + k + "_ms_per_order"] = (after[k] - before[k]) * 1000.0 / ended
    daemons = sum(v for k, v in used.items() if k not in ("cpu_postgres", "cpu_kafka"))
    r[prefix + "cpu_daemons_ms_per_order"] = daemons * 1000.0 / ended
    total = sum(used.values())
    r[prefix + "cpu_daemons_and_servers_ms_per_order"] = total * 1000.0 / ended
    r[prefix + "cpu_loadgen_ms_per_order"] = loadgen_cpu * 1000.0 / ended
    if loadgen_cpu == loadgen_cpu:
        total += loadgen_cpu
    r[prefix + "cpu_busy_pct"] = 100.0 * total / (seconds * os.cpu_count())
    r[prefix + "cpu_ms_per_order"] = total * 1000.0 / ended
    return r


def step_cpu(d, step, report):
    """cpu_figures of a step of fixed rate, from the snapshots around it
    (STEP-before.txt, STEP-after.txt), per saga of the step's loadgen
    report; {} for a run without them."""
    path = os.path.join(d, step + "-before.txt")
    if not os.path.exists(path):
        return {}
    before, after = pairs(path), pairs(os.path.join(d, step + "-after.txt"))
    ended = report["outcomes"]["CONFIRMED"] + report["outcomes"]["CANCELLED"]
    return cpu_figures(before, after, (after["time"] - before["time"]) / 1000.0, ended,
                       report.get("cpuSeconds", float("nan")), step + "_")


def one_run(d):
    r = {}
    lat = json.loads(read(os.path.join(d, "latency.json")))
    mx = json.loads(read(os.path.join(d, "max.json")))
    before, after = pairs(os.path.join(d, "before.txt")), pairs(os.path.join(d, "after.txt"))
    quiet = pairs(os.path.join(d, "quiet.txt"))
    # Until the last event was handled (the snapshot came QUIET_MS later).
    seconds = (quiet["all_done"] - before["time"]) / 1000.0
    ended = mx["outcomes"]["CONFIRMED"] + mx["outcomes"]["CANCELLED"]

    for p in ("p50", "p95", "p99"):
        r["saga_" + p] = lat["saga"]["latencyMs"][p]
        r["http_" + p] = lat["http"]["latencyMs"][p]
    r["latency_rate"] = lat["placing"]["acceptedPerSecond"]
    r.update(step_cpu(d, "latency", lat))
    busy_path = os.path.join(d, "busy.json")
    if os.path.exists(busy_path):
        busy = json.loads(read(busy_path))
        for p in ("p50", "p95", "p99"):
            r["busy_saga_" + p] = busy["saga"]["latencyMs"][p]
            r["busy_http_" + p] = busy["http"]["latencyMs"][p]
        r["busy_rate"] = busy["placing"]["acceptedPerSecond"]
    r["accepted_per_s"] = mx["placing"]["acceptedPerSecond"]
    r["max_http_p50"] = mx["http"]["latencyMs"]["p50"]
    r["max_http_p99"] = mx["http"]["latencyMs"]["p99"]
    r["ended_per_s"] = mx["saga"]["endedPerSecond"]
    r["all_done_per_s"] = (mx["placing"]["placed"]
                           / ((quiet["all_done"] - before["time"]) / 1000.0))
    r["catch_up_s"] = (quiet["all_done"] - quiet["sagas_done"]) / 1000.0
    r["sustained_per_s"] = sustained_rate(os.path.join(d, "max.csv"))
    r["max_saga_p50"] = mx["saga"]["latencyMs"]["p50"]
    r["commits_per_order"] = (after["commits"] - before["commits"]) / ended
    r["produced_per_order"] = (after["produced"] - before["produced"]) / ended
    r["consumed_per_order"] = (after["consumed"] - before["consumed"]) / ended
    r["commits_per_s"] = (after["commits"] - before["commits"]) / seconds
    r["produced_per_s"] = (after["produced"] - before["produced"]) / seconds
    r["consumed_per_s"] = (after["consumed"] - before["consumed"]) / seconds
    r["window_s"] = seconds
    queues_path = os.path.join(d, "queues.txt")
    if os.path.exists(queues_path):
        r.update(pairs(queues_path))
    for s in SERVICES:
        if "handler_" + s in after:
            r["busy_pct_" + s] = (100.0 * (after["handler_" + s] - before["handler_" + s])
                                  / seconds)
    r.update(cpu_figures(before, after, seconds, ended, mx.get("cpuSeconds", float("nan"))))

    alone_path = os.path.join(d, "alone.json")
    if os.path.exists(alone_path):
        alone = json.loads(read(alone_path))
        a0 = pairs(os.path.join(d, "alone-before.txt"))
        a1 = pairs(os.path.join(d, "alone-after.txt"))
        r["alone_accepted_per_s"] = alone["placing"]["acceptedPerSecond"]
        r["alone_http_p50"] = alone["http"]["latencyMs"]["p50"]
        r.update(cpu_figures(a0, a1, (a1["time"] - a0["time"]) / 1000.0,
                             alone["placing"]["accepted"], alone.get("cpuSeconds", float("nan")),
                             "alone_"))

    r["get_per_s"], wl = wrk_figures(os.path.join(d, "wrk.txt"))
    r["get_p50"], r["get_p99"] = wl.get("50", float("nan")), wl.get("99", float("nan"))

    start = table(os.path.join(d, "start.txt"))
    mem = table(os.path.join(d, "memory.txt"))
    for s in (s for s in SERVICES if s in start):
        r["start_ms_" + s] = start[s][0]
        r["rss_idle_kb_" + s] = start[s][1]
        r["rss_kb_" + s] = mem[s][0]
        r["hwm_kb_" + s] = mem[s][1]

    r["pg_tps"] = pgbench_tps(os.path.join(d, "pgbench.txt"))
    r["pg_select_tps"] = pgbench_tps(os.path.join(d, "pgbench-select.txt"))
    sizes, kafka = pairs(os.path.join(d, "sizes.txt")), pairs(os.path.join(d, "kafka.txt"))
    r["value_bytes"], r["key_bytes"] = sizes["value_bytes"], sizes["key_bytes"]
    r["kafka_produce_per_s"] = kafka["messages"] / (kafka["produce_ms"] / 1000.0)
    r["kafka_consume_per_s"] = kafka["messages"] / (kafka["consume_ms"] / 1000.0)
    r["pg_version"] = read(os.path.join(d, "pg-version.txt")).strip()
    r["outcomes"] = mx["outcomes"]
    return r


class Figures:
    def __init__(self, runs):
        self.runs = runs

    def values(self, key):
        v = (r.get(key, float("nan")) for r in self.runs)
        return [x for x in v if x == x]  # drop NaN and runs without the figure

    def median(self, key):
        v = self.values(key)
        return statistics.median(v) if v else float("nan")

    def fmt(self, key, digits=0, unit=""):
        """The median, and the range when there is more than one run."""
        v = self.values(key)
        if not v:
            return "n/a"
        f = "{:,.%df}" % digits
        text = f.format(statistics.median(v)) + unit
        if len(v) > 1:
            text += " (" + f.format(min(v)) + "–" + f.format(max(v)) + ")"
        return text


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(root):
    cpu = sh("lscpu | sed -n 's/^Model name:[[:space:]]*//p'") or platform.processor()
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", read("/proc/meminfo")).group(1))
    os_name = sh(". /etc/os-release && echo \"$PRETTY_NAME\"")
    kafka = sh("sed -n 's:.*<kafka.version>\\(.*\\)</kafka.version>.*:\\1:p' %s/tests/infra/kafka-pom.xml"
               % root)
    java = sh("java -version 2>&1 | head -1")
    gcc = sh("gcc -dumpfullversion")
    libs = ", ".join("%s %s" % (lib, sh("pkg-config --modversion " + lib))
                     for lib in ("rdkafka", "jansson", "libmicrohttpd", "libpq", "libcurl"))
    return [
        ("CPU", "%s, %d logical cores" % (cpu, os.cpu_count())),
        ("Memory", "%.0f GiB" % (mem_kb / 1048576.0)),
        ("OS", "%s, Linux %s" % (os_name, platform.release())),
        ("Compiler", "gcc %s, CMake RelWithDebInfo (-O2 -g)" % gcc),
        ("Libraries", libs),
        ("Apache Kafka", "%s, one KRaft node on 127.0.0.1 (tests/infra/kafka), %s" % (kafka, java)),
        ("Tools", "%s; %s; %s" % (sh("wrk -v 2>&1 | head -1 | cut -d' ' -f1-2"),
                                   "kcat " + sh("kcat -V 2>&1 | sed -n 's/^Version \\([^ ]*\\).*/\\1/p'"),
                                   sh("pgbench --version"))),
    ]


def process_name(args):
    """Who a process is, from its command line."""
    for s in SERVICES:
        if "/services/%s/%s" % (s, s) in args:
            return s
    if "kafka.Kafka" in args:
        return "Kafka broker"
    if args.startswith("postgres") or "/bin/postgres" in args:
        return "PostgreSQL"
    if "eventshop-loadgen" in args:
        return "eventshop-loadgen"
    return "other"


def cpu_shares(var):
    """Share of the samples per component: the samples name a process id,
    processes.txt (ps, taken at the end of the run) names the process."""
    names = {}
    path = os.path.join(var, "run-profile", "processes.txt")
    for line in read(path).splitlines():
        pid, _, args = line.strip().partition(" ")
        names[pid] = process_name(args)
    counts = {}
    total = 0
    for line in read(os.path.join(var, "perf-samples.txt")).splitlines():
        m = re.search(r"\s(\d+)/\d+\s*$", line)
        if not m:
            continue
        pid = m.group(1)
        name = "idle" if pid == "0" else names.get(pid, "other")
        counts[name] = counts.get(name, 0) + 1
        total += 1
    return total, sorted(counts.items(), key=lambda kv: -kv[1])


def profile_section(var):
    sym_path = os.path.join(var, "perf-sym.txt")
    if not os.path.exists(sym_path):
        return ["No profile in this report (scripts/bench --no-profile).", ""]
    total, shares = cpu_shares(var)
    out = ["Both cores during the profiled flat-out run, from its first POST until every"
           " daemon had caught up, by process (`perf record -a -g -e cpu-clock -F 499`, %d"
           " samples; \"other\" is the kernel's threads and whatever else ran):" % total, "", "| Process | Share of the CPU time |", "|---|---|"]
    for name, n in shares:
        out.append("| %s | %.1f %% |" % (name, 100.0 * n / total))
    out += ["", "The hottest functions (`perf report --sort comm,dso,sym`, self time,"
            " above 0.5 %; `[k]` is the kernel):", "", "```"]
    rows = [l.rstrip() for l in read(sym_path).splitlines() if l.strip() and not l.startswith("#")]
    out += rows[:30]
    out += ["```", ""]
    return out


def statement_rows(var, name="statements.txt"):
    """pg_stat_statements of the profiled run (flat out, or name): [per saga,
    mean ms, text]."""
    path = os.path.join(var, "run-profile", name)
    if not os.path.exists(path):
        return []
    return [l.split("\t") for l in read(path).splitlines()[1:] if l.count("\t") == 2]


def statements_per_saga(var, name="statements.txt"):
    return sum(float(r[0]) for r in statement_rows(var, name))


def statements_section(var):
    rows = statement_rows(var)
    if not rows:
        return []
    total = sum(float(r[0]) for r in rows)
    begins = sum(float(r[0]) for r in rows if r[2].strip().upper() == "BEGIN")
    out = ["What a saga asks of PostgreSQL, from `pg_stat_statements` in the profiled run:"
           " **%.0f statements per saga, %.1f of them BEGIN**; each is a round trip from a"
           " daemon, but for the BEGINs, which travel with the statement after them. The"
           " server's own execution time of each is the `mean ms` column. The twenty most"
           " frequent:" % (total, begins),
           "", "| Per saga | Mean ms | Statement |", "|---|---|---|"]
    for r in rows[:20]:
        out.append("| %s | %s | `%s` |" % (r[0], r[1], r[2].replace("|", "\\|")))
    out.append("")
    return out


def kept_analysis(path):
    if not os.path.exists(path):
        return [ANALYSIS_BEGIN, "", "(No analysis written yet.)", "", ANALYSIS_END]
    text = read(path)
    a, b = text.find(ANALYSIS_BEGIN), text.find(ANALYSIS_END)
    if a < 0 or b < a:
        return [ANALYSIS_BEGIN, "", "(No analysis written yet.)", "", ANALYSIS_END]
    return text[a:b + len(ANALYSIS_END)].splitlines()


def pct(x):
    if x != x:
        return "n/a"
    return "%.1f %%" % (100.0 * x) if x < 0.01 else "%.0f %%" % (100.0 * x)


# The figures a change is judged by: (key, what, digits, unit, higher is better).
COMPARED = [
    ("sustained_per_s", "Sagas ended per second, sustained", 1, "", True),
    ("all_done_per_s", "Orders fully handled by all the daemons per second", 1, "", True),
    ("accepted_per_s", "POST /orders accepted per second, flat out", 0, "", True),
    ("commits_per_order", "PostgreSQL commits per saga", 1, "", False),
    ("cpu_ms_per_order", "CPU per saga, all processes", 2, " ms", False),
    ("latency_cpu_ms_per_order", "CPU per saga at the fixed rate, all processes", 2, " ms",
     False),
    ("saga_p50", "Saga latency p50 at the fixed rate", 1, " ms", False),
    ("saga_p99", "Saga latency p99 at the fixed rate", 1, " ms", False),
    ("get_per_s", "GET /orders/{id} per second", 0, "", True),
    ("alone_accepted_per_s", "POST /orders accepted per second, the front door alone", 0, "",
     True),
    ("alone_cpu_ms_per_order", "CPU per POST, the front door alone, all processes", 2, " ms",
     False),
]


def before_after(label, old, new):
    """A table of the COMPARED figures for the two builds of one invocation."""
    L = ["## Before and after", "",
         "The same invocation measured `%s` too, its runs alternating with this"
         " tree's on the same machine (medians, ranges in brackets):" % label, "",
         "| Figure | Before | After | Change |", "|---|---|---|---|"]
    for key, what, digits, unit, up in COMPARED:
        a, b = old.median(key), new.median(key)
        change = "n/a"
        if a == a and b == b and a:
            d = 100.0 * (b - a) / a
            change = "%+.0f %%%s" % (d, "" if abs(d) < 10 else
                                    (" better" if (d > 0) == up else " worse"))
        L.append("| %s | %s | %s | %s |" % (what, old.fmt(key, digits, unit),
                                           new.fmt(key, digits, unit), change))
    L.append("")
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--var", required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--settings", required=True)
    ap.add_argument("--before", help="the revision measured in the run-before-N directories")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    settings = dict(kv.split("=", 1) for kv in args.settings.split())

    runs = [one_run(os.path.join(args.var, "run-%d" % i)) for i in range(1, args.runs + 1)]
    before = ([one_run(os.path.join(args.var, "run-before-%d" % i))
               for i in range(1, args.runs + 1)] if args.before else None)
    f = Figures(runs)
    m = f.median
    n = len(runs)

    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w("Measured by `%s`, which wrote this file (its analysis section is kept"
      " from the previous version, as written by hand). Every figure is the"
      " median of %d run%s, the range in brackets.%s"
      % (args.command, n, "s" if n > 1 else "",
         " **Quick mode: small loads, the figures mean little.**"
         if settings.get("quick") == "1" else ""))
    w("")
    w("Each run starts from nothing: a fresh PostgreSQL %s with its durable"
      " defaults (`fsync`, `synchronous_commit` and `full_page_writes` on),"
      " a fresh single-node Apache Kafka, the topics of `deploy/topics.txt`"
      " (6 partitions each for the saga's), and the daemons with their"
      " default settings (one consumer loop per daemon, `PAYMENT_LATENCY_MS=0`),"
      " but for `SHIPPING_DELAY_MS=100` (a shipment's whole life within the run).%s"
      " Everything, the load generators included, shares one machine:"
      % (runs[0]["pg_version"],
         " Before anything is measured, %s s at 100 orders/s warm the shop up"
         " (the broker's JIT compiler works for about a minute of load after"
         " a start)." % settings["warmup_seconds"]
         if "warmup_seconds" in settings else ""))
    w("")
    w("| | |")
    w("|---|---|")
    for k, v in machine(root):
        w("| %s | %s |" % (k, v))
    w("")

    w("## The shop")
    w("")
    w("| Figure | Value | Ceiling of the same infrastructure | Share of the ceiling |")
    w("|---|---|---|---|")
    sag = m("sustained_per_s")
    w("| **Sagas ended per second**, sustained (flat out, %s orders, 10th to 90th"
      " percentile of their end times) | **%s** | PostgreSQL: %s commits/s ÷ %s commits per"
      " saga = %s sagas/s | %s |"
      % (settings["max_orders"], f.fmt("sustained_per_s", 1), f"{m('pg_tps'):,.0f}",
         f"{m('commits_per_order'):.1f}", f"{m('pg_tps') / m('commits_per_order'):,.0f}",
         pct(sag / (m("pg_tps") / m("commits_per_order")))))
    stmts = statements_per_saga(args.var)
    if stmts:
        per_s = m("pg_tps") * PGBENCH_STATEMENTS
        w("| | | PostgreSQL: %s statements/s (pgbench's %d per transaction) ÷ %.0f statements"
          " per saga (profiled run) = %s sagas/s | %s |"
          % (f"{per_s:,.0f}", PGBENCH_STATEMENTS, stmts, f"{per_s / stmts:,.0f}",
             pct(sag / (per_s / stmts))))
    w("| | | Kafka: %s produced/s ÷ %s events per saga = %s sagas/s | %s |"
      % (f"{m('kafka_produce_per_s'):,.0f}", f"{m('produced_per_order'):.1f}",
         f"{m('kafka_produce_per_s') / m('produced_per_order'):,.0f}",
         pct(sag / (m("kafka_produce_per_s") / m("produced_per_order")))))
    w("| | | Kafka: %s consumed/s ÷ %s deliveries per saga = %s sagas/s | %s |"
      % (f"{m('kafka_consume_per_s'):,.0f}", f"{m('consumed_per_order'):.1f}",
         f"{m('kafka_consume_per_s') / m('consumed_per_order'):,.0f}",
         pct(sag / (m("kafka_consume_per_s") / m("consumed_per_order")))))
    w("| Sagas ended per second, whole run (first POST to last end) | %s | | |"
      % f.fmt("ended_per_s", 1))
    w("| Orders handled by all the daemons per second (first POST to the last event"
      " consumed: email and analytics were still %s s behind when the last saga ended)"
      " | %s | | |" % (f.fmt("catch_up_s", 1), f.fmt("all_done_per_s", 1)))
    w("| **POST /orders accepted per second** (flat out, %s in flight) | **%s** |"
      " PostgreSQL: %s commits/s (one commit per order) | %s |"
      % (settings["concurrency"], f.fmt("accepted_per_s"), f"{m('pg_tps'):,.0f}",
         pct(m("accepted_per_s") / m("pg_tps"))))
    w("| **GET /orders/{id} per second** (wrk, 2 threads, 16 connections, %s s) | **%s** |"
      " PostgreSQL: %s read-only transactions/s (pgbench -S) | %s |"
      % (settings["wrk_seconds"], f.fmt("get_per_s"), f"{m('pg_select_tps'):,.0f}",
         pct(m("get_per_s") / m("pg_select_tps"))))
    w("")
    w("Saga latency, 202 Accepted to the terminal event read from the `orders` topic,"
      " at a fixed %s orders/s (%s orders) and at a busy %s orders/s (%s orders);"
      " no ceiling applies: it is a sum of hops:"
      % (settings["latency_rate"], settings["latency_orders"], settings["busy_rate"],
         settings["busy_orders"]))
    w("")
    w("| | p50 | p95 | p99 |")
    w("|---|---|---|---|")
    w("| Saga at %s/s (ms) | %s | %s | %s |" % (settings["latency_rate"], f.fmt("saga_p50", 1),
                                              f.fmt("saga_p95", 1), f.fmt("saga_p99", 1)))
    w("| POST /orders at %s/s (ms) | %s | %s | %s |"
      % (settings["latency_rate"], f.fmt("http_p50", 2), f.fmt("http_p95", 2),
         f.fmt("http_p99", 2)))
    w("| Saga at %s/s (ms) | %s | %s | %s |" % (settings["busy_rate"], f.fmt("busy_saga_p50", 1),
                                              f.fmt("busy_saga_p95", 1),
                                              f.fmt("busy_saga_p99", 1)))
    w("| POST /orders at %s/s (ms) | %s | %s | %s |"
      % (settings["busy_rate"], f.fmt("busy_http_p50", 2), f.fmt("busy_http_p95", 2),
         f.fmt("busy_http_p99", 2)))
    w("")
    if "latency_cpu_ms_per_order" in f.runs[0]:
        slow = statements_per_saga(args.var, "statements-latency.txt")
        fast = statements_per_saga(args.var)
        w("What a saga cost at %s orders/s, from the CPU of every process before and after"
          " that step: **%s ms of CPU per saga** (PostgreSQL %s ms, the broker %s ms, the"
          " daemons %s ms), with the machine's %d cores %s busy%s; flat out, with batches of"
          " many events, a saga cost %s ms%s. At a low rate a batch of the saga's daemons"
          " holds one event, so every event pays for a transaction, a relay round and a"
          " fetch of its own."
          % (settings["latency_rate"], f.fmt("latency_cpu_ms_per_order", 2),
             f.fmt("latency_cpu_postgres_ms_per_order", 2),
             f.fmt("latency_cpu_kafka_ms_per_order", 2),
             f.fmt("latency_cpu_daemons_ms_per_order", 2), os.cpu_count(),
             f.fmt("latency_cpu_busy_pct", 0, " %"),
             ("; PostgreSQL ran %.0f statements per saga (profiled run)" % slow
              if slow else ""),
             f.fmt("cpu_ms_per_order", 2),
             " and %.0f statements" % fast if fast else ""))
        w("")
    w("Flat out, the POSTs take %s ms (p50) and %s ms (p99), GET /orders/{id} %s ms (p50)"
      " and %s ms (p99), and the sagas queue: their p50 latency is %s ms."
      % (f.fmt("max_http_p50", 1), f.fmt("max_http_p99", 1), f.fmt("get_p50", 2),
         f.fmt("get_p99", 2), f.fmt("max_saga_p50")))
    w("")

    w("### Where a saga's work goes")
    w("")
    w("Counted from the first POST of the flat-out run until every daemon had handled"
      " every event (%s s): PostgreSQL's commits"
      " (`pg_stat_database.xact_commit`), the daemons' own counters"
      " (`es_events_produced_total`, `es_events_consumed_total`), and the CPU"
      " time of every process from `/proc` (user + system)."
      % f.fmt("window_s", 1))
    w("")
    w("| Per saga | Value |")
    w("|---|---|")
    w("| PostgreSQL commits | %s |" % f.fmt("commits_per_order", 1))
    w("| Events produced (outbox relays and dead letters) | %s |"
      % f.fmt("produced_per_order", 1))
    w("| Events consumed (every consumer group) | %s |" % f.fmt("consumed_per_order", 1))
    w("| Average event size | %s B value, %s B key |"
      % (f.fmt("value_bytes"), f.fmt("key_bytes")))
    for s in SERVICES:
        w("| CPU, %s | %s ms |" % (s, f.fmt("cpu_%s_ms_per_order" % s, 2)))
    w("| CPU, PostgreSQL (all backends) | %s ms |" % f.fmt("cpu_postgres_ms_per_order", 2))
    w("| CPU, Kafka broker | %s ms |" % f.fmt("cpu_kafka_ms_per_order", 2))
    w("| CPU, the daemons, PostgreSQL and Kafka | %s ms |"
      % f.fmt("cpu_daemons_and_servers_ms_per_order", 2))
    w("| CPU, eventshop-loadgen | %s ms |" % f.fmt("cpu_loadgen_ms_per_order", 2))
    w("| **CPU, all of the above** | **%s ms** |" % f.fmt("cpu_ms_per_order", 2))
    w("")
    w("Those processes kept the machine's %d cores %s busy during the run."
      % (os.cpu_count(), f.fmt("cpu_busy_pct", 0, " %")))
    w("")
    w("Each daemon has one consumer loop, which applies a batch of events at a time. The share of"
      " the flat-out run its loop spent inside handlers (`es_handler_duration_seconds_sum`),"
      " the CPU its whole process used per saga, and the deepest its queues were while the"
      " load ran, sampled once a second: the events produced to its topics that it had not"
      " read yet (`es_events_produced_total` of every daemon less its"
      " `es_events_consumed_total`), and its outbox's rows not yet published"
      " (`es_outbox_backlog`). A queue that grows belongs to the daemon the sagas wait for."
      " The PostgreSQL column is the CPU of the backends that served the daemon's"
      " connections (matched by their client port), a part of PostgreSQL's %s ms per saga:"
      % f.fmt("cpu_postgres_ms_per_order", 2))
    w("")
    w("| Daemon | Consumer loop busy | CPU per saga | PostgreSQL's CPU for it per saga"
      " | Deepest queue of events to read | Deepest outbox backlog |")
    w("|---|---|---|---|---|---|")
    for s in SERVICES:
        w("| %s | %s | %s ms | %s ms | %s | %s |" % (
            s, f.fmt("busy_pct_" + s, 0, " %"), f.fmt("cpu_%s_ms_per_order" % s, 2),
            f.fmt("pgcpu_%s_ms_per_order" % s, 2),
            f.fmt("queue_" + s, 0), f.fmt("backlog_" + s, 0)))
    w("")
    if f.values("alone_accepted_per_s"):
        w("### The front door alone")
        w("")
        w("order-service started again on its own, no daemon of the saga running, and POST"
          " /orders flat out as above (%s orders, %s in flight; the orders stay pending):"
          " **%s accepted/s**, %s ms per POST (p50). One order cost **%s ms of CPU** over"
          " every process: PostgreSQL %s ms, the broker %s ms (the relay's OrderPlaced),"
          " order-service %s ms, eventshop-loadgen %s ms (from the first POST until the"
          " relay had published every OrderPlaced). This is what batching the consumers"
          " cannot reach: every POST is a transaction of its own, committed before its 202."
          % (settings["max_orders"], settings["concurrency"],
             f.fmt("alone_accepted_per_s", 0), f.fmt("alone_http_p50", 2),
             f.fmt("alone_cpu_ms_per_order", 2), f.fmt("alone_cpu_postgres_ms_per_order", 2),
             f.fmt("alone_cpu_kafka_ms_per_order", 2),
             f.fmt("alone_cpu_order-service_ms_per_order", 2),
             f.fmt("alone_cpu_loadgen_ms_per_order", 2)))
        w("")
    L.extend(statements_section(args.var))
    if before:
        L.extend(before_after(args.before, Figures(before), f))

    w("## The daemons")
    w("")
    w("Start-to-ready: from exec to the first 200 from `/readyz` (database migrated,"
      " consumer group joined), each daemon started alone, polled every 10 ms. Resident"
      " memory (`VmRSS`, `VmHWM` from `/proc`): idle just after it became ready, and"
      " after the loads (%s + %s orders and the wrk run)."
      % (settings["latency_orders"], settings["max_orders"]))
    w("")
    w("| Daemon | Start to ready | RSS idle | RSS after the loads | Peak RSS |")
    w("|---|---|---|---|---|")
    for s in SERVICES:
        w("| %s | %s | %s | %s | %s |" % (
            s, f.fmt("start_ms_" + s, 0, " ms"),
            f.fmt("rss_idle_kb_" + s, 0, " KiB"), f.fmt("rss_kb_" + s, 0, " KiB"),
            f.fmt("hwm_kb_" + s, 0, " KiB")))
    w("")

    w("## The ceilings")
    w("")
    w("Measured in the same runs, on the same servers, after the daemons stopped:")
    w("")
    w("| Ceiling | Value | How |")
    w("|---|---|---|")
    w("| PostgreSQL commits/s | %s | `pgbench -M prepared -c %s -j 2 -T %s`, TPC-B-like"
      " (5 statements, one commit), scale 10 |"
      % (f.fmt("pg_tps"), settings["pgbench_clients"], settings["pgbench_seconds"]))
    w("| PostgreSQL read-only transactions/s | %s | the same with `-S` (one primary-key"
      " select) |" % f.fmt("pg_select_tps"))
    w("| Kafka produce, messages/s | %s | `kcat -P` of %s messages (keys of %s B, values"
      " of %s B, the saga's averages) to a 6-partition topic, `enable.idempotence=true`"
      " (acks=all), `linger.ms=5`: the daemons' producer settings |"
      % (f.fmt("kafka_produce_per_s"), f"{int(settings['kafka_messages']):,}",
         f.fmt("key_bytes"), f.fmt("value_bytes")))
    w("| Kafka consume, messages/s | %s | `kcat -C` of the same messages from the"
      " beginning |" % f.fmt("kafka_consume_per_s"))
    w("")

    w("## Profile")
    w("")
    L.extend(profile_section(args.var))

    w("## Analysis")
    w("")
    L.extend(kept_analysis(args.out))
    w("")

    w("## Reproducing")
    w("")
    w("```sh")
    w("scripts/bench            # %d runs and a profiled run; about two minutes a run" % 3)
    w("scripts/bench --quick    # one small run: checks the script")
    w("```")
    w("")
    w("The raw results of every run (loadgen's JSON and CSV reports, wrk's and pgbench's"
      " output, the counters before and after, daemon logs, `perf.data`) stay in"
      " `var/bench/`. Settings of this report: `%s`." % args.settings)
    w("")

    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
