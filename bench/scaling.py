#!/usr/bin/env python3
"""The figures of `scripts/bench --scaling`, as Markdown on stdout.

Reads the directories the rounds left in --dir, SETUP-ROUND for the setups
one (a single broker, one instance of each daemon), two (a single broker,
two instances of each) and cluster (three brokers, one instance of each):
latency.json and max.json (eventshop-loadgen), max.csv (one line per order),
before.txt, after.txt and quiet.txt (the counters around the flat-out load),
exactly as a run of the report has them. Every figure is the median of the
rounds, with the range beside it.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import SERVICES, Figures, pairs, read, sustained_rate  # noqa: E402

SETUPS = [
    ("one", "single broker, 1 instance each"),
    ("two", "single broker, 2 instances each"),
    ("cluster", "3 brokers, 1 instance each"),
]


def one_round(d):
    lat = json.loads(read(os.path.join(d, "latency.json")))
    mx = json.loads(read(os.path.join(d, "max.json")))
    before, after = pairs(os.path.join(d, "before.txt")), pairs(os.path.join(d, "after.txt"))
    quiet = pairs(os.path.join(d, "quiet.txt"))
    ended = mx["outcomes"]["CONFIRMED"] + mx["outcomes"]["CANCELLED"]
    seconds = (quiet["all_done"] - before["time"]) / 1000.0
    r = {
        "saga_p50": lat["saga"]["latencyMs"]["p50"],
        "saga_p99": lat["saga"]["latencyMs"]["p99"],
        "sustained_per_s": sustained_rate(os.path.join(d, "max.csv")),
        "accepted_per_s": mx["placing"]["acceptedPerSecond"],
        "all_done_per_s": mx["placing"]["placed"] / seconds,
        "catch_up_s": (quiet["all_done"] - quiet["sagas_done"]) / 1000.0,
        "commits_per_order": (after["commits"] - before["commits"]) / ended,
    }
    cpu = {k: (after[k] - before[k]) * 1000.0 / ended for k in after if k.startswith("cpu_")}
    r["cpu_daemons"] = sum(v for k, v in cpu.items() if k[4:] in SERVICES)
    r["cpu_postgres"] = cpu.get("cpu_postgres", float("nan"))
    r["cpu_kafka"] = cpu.get("cpu_kafka", float("nan"))
    r["cpu_total"] = sum(cpu.values()) + mx.get("cpuSeconds", 0.0) * 1000.0 / ended
    return r


ROWS = [
    ("Saga at 50 orders/s, p50 (ms)", "saga_p50", 1),
    ("Saga at 50 orders/s, p99 (ms)", "saga_p99", 1),
    ("**Sagas ended per second**, flat out, sustained", "sustained_per_s", 1),
    ("POST /orders accepted per second, flat out", "accepted_per_s", 0),
    ("Orders handled by every daemon per second", "all_done_per_s", 1),
    ("Email and analytics behind when the last saga ended (s)", "catch_up_s", 1),
    ("PostgreSQL commits per saga", "commits_per_order", 1),
    ("CPU per saga, the daemons (ms)", "cpu_daemons", 2),
    ("CPU per saga, PostgreSQL (ms)", "cpu_postgres", 2),
    ("CPU per saga, Kafka (all brokers) (ms)", "cpu_kafka", 2),
    ("**CPU per saga, all processes (ms)**", "cpu_total", 2),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--command", required=True)
    a = ap.parse_args()

    figures = {}
    for setup, _ in SETUPS:
        rounds = [one_round(os.path.join(a.dir, f"{setup}-{r}"))
                  for r in range(1, a.rounds + 1)]
        figures[setup] = Figures(rounds)

    print(f"`{a.command}`: {a.rounds} round(s) of the three setups, each from a fresh "
          "PostgreSQL and Kafka; medians of the rounds, the range in brackets.")
    print()
    print("| | " + " | ".join(label for _, label in SETUPS) + " |")
    print("|---|" + "---|" * len(SETUPS))
    for label, key, digits in ROWS:
        print(f"| {label} | " + " | ".join(figures[s].fmt(key, digits) for s, _ in SETUPS)
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
