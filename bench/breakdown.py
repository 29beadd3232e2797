#!/usr/bin/env python3
"""Where the engine -> Job time goes, from the controller's request log and the driver's timestamps.

For each engine: (a) engine POST sent -> the controller's first request for it (watch delivery +
work queue + waiting for a free reconcile slot), (b) first request -> the Job POST is sent (the
requests in front of it: ChaosExperiment GET, ServiceAccount GET, with the chart's policy the author's
LocalSubjectAccessReviews, without it the finalizer PATCH, then the launch-intent status PATCH), split
into the time one of those requests was open and the controller's own rest, (c) Job POST sent -> the
Job's ADDED event on the driver's watch (create round trip + watch delivery).
Also the controller's request latency (request sent -> response body done) by kind.
Prints a Markdown section; usage: breakdown.py WORKDIR results-full-engines.json
"""
import calendar
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bench import Bench, pct  # noqa: E402


def ts(s):
    # 2026-11-27T00:05:15.776966Z
    base, frac = s[:19], s[19:-1]
    return calendar.timegm(tuple(int(x) for x in (base[0:4], base[5:7], base[8:10], base[11:13], base[14:16], base[17:19])) + (0, 0, 0)) + (float(frac) if frac else 0.0)


def failures(workdir):
    """409 conflicts of reconcile passes, and engines whose Jobs/pods were delete_collection'ed."""
    conflicts = other = 0
    deleted = set()
    for path in sorted(glob.glob(os.path.join(workdir, "controller-*.log"))):
        for line in open(path, "rb"):
            if b'"reconcile failed"' in line:
                if b"Conflict" in line:
                    conflicts += 1
                else:
                    other += 1
            elif b'"requesting"' in line and b"DELETE" in line and b"/jobs?" in line and b"labelSelector" in line:
                j = json.loads(line)
                uid = next((s.get("chaosUID") for s in j.get("spans") or [] if s.get("chaosUID")), None)
                if uid:
                    deleted.add(uid)
    return conflicts, other, deleted


def parse_logs(workdir):
    first_req, job_post, lat, spans_of = {}, {}, {}, {}
    for path in sorted(glob.glob(os.path.join(workdir, "controller-*.log"))):
        open_reqs = {}
        for line in open(path, "rb"):
            if b"kube_client" not in line:
                continue
            try:
                j = json.loads(line)
            except ValueError:
                continue
            msg = j.get("message")
            span = j.get("span") or {}
            spans = j.get("spans") or []
            eng = next((s.get("chaosUID") for s in spans if s.get("chaosUID") is not None), None)
            m, u = span.get("http.method"), span.get("http.url")
            if not m:
                continue
            t = ts(j["timestamp"])
            key = (eng, m, u)
            if msg == "requesting":
                if eng:
                    first_req.setdefault(eng, t)
                    if m == "POST" and "/jobs" in u:
                        job_post.setdefault(eng, t)
                open_reqs.setdefault(key, []).append(t)
            elif msg == "stream closed" and open_reqs.get(key):
                t0 = open_reqs[key].pop(0)
                res, kind = Bench.classify(m, u)
                if kind != "watch":
                    lat.setdefault(f"{kind} {res}", []).append(t - t0)
                    if eng:
                        spans_of.setdefault(eng, []).append((t0, t))
    return first_req, job_post, lat, spans_of


def in_flight(intervals, start, end):
    """Seconds of [start, end] during which at least one of the intervals (requests) was open."""
    total, cur = 0.0, start
    for t0, t1 in sorted(intervals):
        t0, t1 = max(t0, cur), min(t1, end)
        if t1 > t0:
            total += t1 - t0
            cur = t1
    return total


def tail_split(rows):
    """Mean of each segment over the slowest 1% (at least one engine) by total."""
    rows = sorted(rows, key=lambda r: r[-1])
    cut = pct([r[-1] for r in rows], 99)
    tail = [r for r in rows if r[-1] >= cut] or rows[-1:]
    return len(tail), [sum(r[i] for r in tail) / len(tail) for i in range(len(rows[0]))]


def fmt(v):
    return " / ".join(f"{pct(v, q) * 1000:.0f}" for q in (50, 95, 99, 99.9)) + " ms" if v else "–"


def main():
    workdir, raw = sys.argv[1], json.load(open(sys.argv[2]))
    first_req, job_post, lat, spans_of = parse_logs(workdir)
    tails = []
    out = ["## Where the engine → Job time goes", "",
           "Per engine, from the driver's clock and the controller's request log (same host clock): "
           "p50 / p95 / p99 / p99.9.", "",
           "| scenario | n | POST sent → controller's first request for it | first request → Job POST sent | Job POST sent → Job ADDED seen | total |",
           "|---|---|---|---|---|---|"]
    for phase in ("steady", "burst", "fill"):
        a, b, c, tot, rows = [], [], [], [], []
        for n, e in raw.items():  # keyed by engine uid, as the log's reconcile span (chaosUID)
            if e["phase"] != phase or e.get("job_added") is None:
                continue
            if n not in first_req or n not in job_post:
                continue
            a.append(first_req[n] - e["t_send"])
            b.append(job_post[n] - first_req[n])
            c.append(e["job_added"] - job_post[n])
            tot.append(e["job_added"] - e["t_send"])
            api = in_flight(spans_of.get(n, []), first_req[n], job_post[n])
            rows.append((a[-1], api, b[-1] - api, c[-1], tot[-1]))
        if tot:
            out.append(f"| {phase} | {len(tot)} | {fmt(a)} | {fmt(b)} | {fmt(c)} | {fmt(tot)} |")
            tails.append((phase, *tail_split(rows)))
    out += ["", "Where the tail goes: the mean of each part over the slowest 1% of engines (engine → Job ≥ its p99). "
            "\"First request → Job POST\" is split into the time a request of the engine was open at the apiserver "
            "(the reads, the writes before the Job: apiserver and network) and the rest (the controller's own: "
            "planning, waiting for a runtime thread, the client's rate limiter).", "",
            "| scenario | engines | queue (POST → first request) | requests before the Job (apiserver) | controller's own | Job POST → ADDED (apiserver + watch) | total |",
            "|---|---|---|---|---|---|---|"]
    for phase, n, means in tails:
        out.append(f"| {phase} | {n} | " + " | ".join(f"{m * 1000:.0f} ms" for m in means) + " |")
    out += ["", "Controller request latency (request sent → response body read), all phases, p50 / p95 / p99 / p99.9:", "",
            "| request | n | latency |", "|---|---|---|"]
    for k, v in sorted(lat.items(), key=lambda kv: -len(kv[1])):
        if len(v) >= 5:
            out.append(f"| `{k}` | {len(v)} | {fmt(v)} |")
    conflicts, other, deleted = failures(workdir)
    done = [u for u in deleted if u in raw and raw[u].get("verdict")]
    out += ["", f"Reconcile passes that failed: {conflicts} with 409 Conflict, {other} otherwise "
            f"({len(raw)} engines). Engines whose Jobs and pods the controller deleted with "
            f"delete_collection (an abort) although nobody aborted them: {len(deleted)} "
            f"({len(done)} of them had their verdict recorded) — see §2 of the analysis."]
    print("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
