#!/usr/bin/env python3
"""Turns the JSON lines of scripts/bench-peers.sh (one per measurement, each
with its "tag" and "proto") into one markdown table of medians, ratios and
the issue's goals.

    scripts/peers-table.py RESULTS.jsonl
"""
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(tag, proto, key):
    v = [r[key] for r in rows if r.get("tag") == tag and r.get("proto") == proto and not r.get("failed") and r.get(key) is not None]
    return statistics.median(v) if v else None
def fmt(v, unit=""):
    if v is None: return "failed"
    if abs(v) >= 1000: return f"{v:,.0f}{unit}"
    if abs(v) >= 10: return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"
def ratio(a, b):
    return "–" if a is None or b in (None, 0) else f"{a / b:.2f}x"
def verdict(ok):
    return "met" if ok else "**not met**"
tags = []
for r in rows:
    if r.get("tag") not in tags: tags.append(r["tag"])
print("| measure | relay | NATS | mosquitto | relay/NATS | relay/mosquitto | goal | met? |")
print("|---|---|---|---|---|---|---|---|")
for t in tags:
    if t.startswith("throughput"):
        r, n, m = (med(t, p, "delivered_per_sec") for p in ("relay", "nats", "mqtt"))
        lr, ln, lm = (med(t, p, "loss_pct") for p in ("relay", "nats", "mqtt"))
        print(f"| {t} msgs/s (loss %) | {fmt(r)} ({fmt(lr)}) | {fmt(n)} ({fmt(ln)}) | {fmt(m)} ({fmt(lm)}) | {ratio(r, n)} | {ratio(r, m)} | ≥1.3x NATS, 0 loss | {verdict(r is not None and n and r >= 1.3 * n and lr == 0)} |")
        r, n, m = (med(t, p, "server_cpu_us_per_delivery") for p in ("relay", "nats", "mqtt"))
        print(f"| {t} server CPU µs/delivery | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | ≤0.8x NATS | {verdict(r is not None and n and r <= 0.8 * n)} |")
        r, n, m = (med(t, p, "server_peak_rss_kib") for p in ("relay", "nats", "mqtt"))
        if r is not None or n is not None:
            print(f"| {t} server peak RSS KiB | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | ≤ NATS | {verdict(r is not None and n and r <= n)} |")
    elif t.startswith("latency"):
        for key, label in (("p50_us", "p50"), ("p99_us", "p99"), ("max_us", "max")):
            r, n, m = (med(t, p, key) for p in ("relay", "nats", "mqtt"))
            goal = "≤ lower peer" if key == "p99_us" else ""
            ok = verdict(r is not None and r <= min(x for x in (n, m) if x is not None)) if key == "p99_us" and (n or m) else ""
            print(f"| {t} {label} µs | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | {goal} | {ok} |")
    elif t.startswith("memory") and "one room" in t:
        r, n, m = (med(t, p, "kib_per_conn") for p in ("relay", "nats", "mqtt"))
        print(f"| {t} KiB/conn | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | ≤ mosquitto | {verdict(r is not None and m and r <= m)} |")
        r, n, m = (med(t, p, "opened_per_sec") for p in ("relay", "nats", "mqtt"))
        print(f"| {t}: connections opened into it /s | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | ≥ NATS | {verdict(r is not None and n and r >= n)} |")
    elif t.startswith("memory"):
        r, n, m = (med(t, p, "kib_per_conn") for p in ("relay", "nats", "mqtt"))
        low = min(x for x in (n, m) if x is not None) if (n or m) else None
        print(f"| {t} KiB/conn | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | ≤0.8x lower peer | {verdict(r is not None and low and r <= 0.8 * low)} |")
    elif t.startswith("many rooms"):
        r, n, m = (med(t, p, "best_total_rate") for p in ("relay", "nats", "mqtt"))
        print(f"| {t}: highest total msgs/s with p99 ≤ 10 ms | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | | |")
    elif t.startswith("accepts"):
        r, n, m = (med(t, p, "per_sec") for p in ("relay", "nats", "mqtt"))
        print(f"| {t} /s | {fmt(r)} | {fmt(n)} | {fmt(m)} | {ratio(r, n)} | {ratio(r, m)} | ≥ both | {verdict(r is not None and all(x is None or r >= x for x in (n, m)))} |")
