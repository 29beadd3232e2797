#!/usr/bin/env python3
"""Turns bench.py's results JSON into the Markdown report (stdout, and --write FILE)."""
import argparse
import glob
import json
import math
import os
import re


def ms(x):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 1000:.0f} ms"


def lat(x):
    """A latency that may be far beyond a second (a starved launch)."""
    return ms(x) if x is None or x < 10 else sec(x)


def sec(x):
    return "–" if x is None else f"{x:.2f} s"


def litmus_cost(run_seconds):
    """litmus-spec §4.8 for one single-experiment run (runner only; N = 0 ConfigMaps/Secrets).
    Preparation 16 (ChaosExperiment GET x6, engine GET x5, 2 events x (GET + write), Job create);
    while running, per ~6 s: 2 pod LISTs + engine GET + engine UPDATE; completion: result GET,
    pod LIST, 2 engine GETs + UPDATE, Job DELETE, event GET + write."""
    polls = max(1, math.ceil(run_seconds / 6.0))
    reads = (6 + 5 + 2) + 3 * polls + (1 + 1 + 2 + 1)
    writes = (2 + 1) + 1 * polls + (1 + 1 + 1)
    return reads, writes, polls


# Request kinds of the per-run table (issue 16): method x resource, from bench.py's `kind resource` keys.
KINDS = (("engine PATCH", lambda k: k == "patch chaosengines"),
         ("status PATCH", lambda k: k == "patch chaosengines/status"),
         ("Event POST", lambda k: k == "post events"),
         ("Job POST", lambda k: k == "post jobs"),
         ("other writes", lambda k: k.split(" ")[0] not in ("get", "list", "watch")
          and k not in ("patch chaosengines", "patch chaosengines/status", "post events", "post jobs")
          and not k.endswith("subjectaccessreviews")),
         ("access reviews (not stored)", lambda k: k.endswith("subjectaccessreviews")),
         ("GET/LIST", lambda k: k.split(" ")[0] in ("get", "list")))
MODE_NAMES = {"subresource": "our CRD (status subresource), policy off",
              "litmus": "Litmus's CRD (no status subresource), policy off",
              "subresource+policy": "our CRD (status subresource), chart's admission policy on",
              "litmus+policy": "Litmus's CRD (no status subresource), chart's admission policy on"}


def kinds_of(run):
    return [sum(n for k, n in run["by"].items() if match(k)) for _, match in KINDS]


def per_mode_table(modes, before=None):
    """Requests per single-experiment run by kind and CRD mode; with `before` (an earlier results
    JSON's api_modes) a before row next to each after row."""
    out = ["| CRD mode | build | run length | " + " | ".join(n for n, _ in KINDS) +
           " | writes | requests | requests/s while the experiment runs |",
           "|---|---|---|" + "---|" * len(KINDS) + "---|---|---|"]
    rows = []
    for mode, res in modes.items():
        if before and mode in before:
            rows.append((mode, "before", before[mode]))
        rows.append((mode, "after" if before else "this build", res))
    for mode, build, res in rows:
        for run in res.get("runs", [])[:1]:
            k = kinds_of(run)
            t = run["totals"]
            w = run.get("while_running")
            rate = f"{w['requests'] / w['seconds']:.2f} ({w['requests']} in {w['seconds']:.1f} s)" if w else "–"
            out.append(f"| {MODE_NAMES.get(mode, mode)} | {build} | {run['run_seconds']:.1f} s | " +
                       " | ".join(str(n) for n in k) + f" | **{t['write']}** | {t['read'] + t['write'] + t.get('review', 0)} | {rate} |")
    blank = " | ".join("–" for _ in KINDS)
    out.append(f"| Litmus chaos-operator + chaos-runner, side by side on one cluster (issue 16) | – | 10 s | {blank} "
               "| ≈ 13.5 (1.23 × our 11.0) | 40.2 | ≈ 0.67 |")
    lr, lw, polls = litmus_cost(10)
    out.append(f"| Litmus chaos-runner alone, from its code (litmus-spec §4.8) | – | 10 s | {blank} | ≈ {lw} | ≈ {lr + lw} "
               "| ≈ 0.67 (4 per ≈ 6 s) |")
    return out


def goal_row(name, value, shown, goal, ok):
    mark = "–" if ok is None else ("yes" if ok else "**no**")
    return f"| {name} | {shown} | {goal} | {mark} |"


# Issue 16 item 2: no backlog at 20 engines/s sustained for 60 s.
STEADY_GOAL = dict(rate=20, seconds=60, p99=0.25, p999=0.5)


def steady_goal_row(st):
    """engine → Job p99 ≤ 250 ms and p99.9 ≤ 500 ms at 20/s for 60 s; met from the measured numbers
    (an engine without a Job fails it), qualified when the run was slower or shorter than that."""
    g, j = STEADY_GOAL, st.get("engine_to_job", {})
    p99, p999 = j.get("p99"), j.get("p999")
    n, got, rate = st.get("n", 0), j.get("n", 0), st.get("rate", 0)
    seconds = st.get("seconds") or (n / rate if rate else 0)  # results of before --steady-seconds
    mark = "–"
    if p99 is not None and p999 is not None and not (math.isnan(p99) or math.isnan(p999)):
        mark = "yes" if got == n and p99 <= g["p99"] and p999 <= g["p999"] else "**no**"
        if rate < g["rate"] or seconds < g["seconds"]:
            mark += f" (a lighter scenario than the goal's {g['rate']}/s for {g['seconds']} s)"
    shown = f"p99 {ms(p99)}, p99.9 {ms(p999)}" + ("" if got == n else f" ({n - got} of {n} engines without a Job)")
    created = f", created in {sec(st['create_seconds'])}" if st.get("create_seconds") is not None else ""
    return (f"| engine created → Job created at {rate:.0f} engines/s for {seconds:.0f} s ({n} engines{created}) "
            f"| {shown} | p99 ≤ {g['p99'] * 1000:.0f} ms and p99.9 ≤ {g['p999'] * 1000:.0f} ms at {g['rate']}/s "
            f"for {g['seconds']} s (issue 16) | {mark} |")


def render(r, machine, command, before=None):
    out = []
    p = r.get("phases", {})
    cps = r.get("checkpoints", [])
    api = r.get("api", {})
    runs = api.get("runs", [])
    quick = r.get("quick")
    st, bu = p.get("steady", {}), p.get("burst", {})
    steady_only = r.get("steady_only")
    title = (" (requests per run only)" if r.get("requests_only") else " (footprint only)" if r.get("memory_only")
             else " (mass abort only)" if r.get("abort_only")
             else f" (steady {st.get('rate', 20):.0f}/s for {st.get('seconds', 0):.0f} s and a burst of {bu.get('n', 0)} only, "
             f"chart's admission policy {'on' if r.get('steady_policy') else 'off'})"
             if steady_only else " (quick mode)" if quick else "")
    out.append("# Benchmarks" + title)
    out.append("")
    out.append(f"chaos-conductor ({machine.get('profile', 'release')} build) against a private local control plane (etcd, kube-apiserver, "
               "kube-controller-manager, kube-scheduler, kwok as the kubelet), measured by `scripts/bench`. "
               "A stand-in for litmus-go (bench/bench.py) writes the ChaosResult and annotates the experiment pod "
               "so that kwok terminates its containers; every 10th engine's experiment never finishes "
               "(those stay *running*).")
    out.append("")
    out.append(f"Reproduce: `{command}`" + (" (writes this file; `BENCH_REV=<commit>` benchmarks that commit instead of the working tree; "
                                          "`scripts/bench --quick` writes target/bench/BENCHMARKS.quick.md, "
                                          "`scripts/bench --requests` only the requests per run of both CRD modes, "
                                          "target/bench/BENCHMARKS.requests.md, `scripts/bench --abort` only the mass abort, "
                                          "target/bench/BENCHMARKS.abort.md, `scripts/bench --steady` only the steady "
                                          "scenario and the burst, target/bench/BENCHMARKS.steady.md)"
                                          if not (quick or r.get("requests_only") or r.get("abort_only") or steady_only)
                                          else ""))
    out.append("")
    out.append("**Noise:** everything (etcd, apiserver, KCM, scheduler, kwok, the controller and the Python driver) "
               "shares one 2-core machine that colleagues use at the same time; latencies are client-side "
               "watch timestamps and include the driver's own scheduling delay. Treat the numbers as "
               "upper bounds, not as a lab measurement: between two full runs an hour apart (load average 6–8 "
               "from other builds and test clusters) the latencies differed 2–10×, while memory, request counts "
               "and the restart's request pattern reproduced within a few %.")
    out.append("")
    out.append("## Machine and versions")
    out.append("")
    for k, v in machine.items():
        out.append(f"- {k}: {v}")
    out.append(f"- controller: `--concurrency {r.get('concurrency')}`, default settings otherwise; "
               f"log level info plus kube_client request spans (debug) for the request counts")
    out.append(f"- wall time of the run: {r.get('wall_seconds', 0) / 60:.1f} min")
    out.append("")

    # ---------------------------------------------------------------- goals
    all_runs = [x for m in (r.get("api_modes") or {"": api}).values() for x in m.get("runs", [])]
    writes = [x["totals"]["write"] for x in all_runs]
    last = cps[-1] if cps else None
    cp1000 = min(cps, key=lambda c: abs(c["engines"] - 1000)) if cps else None
    out.append("## Summary against the goals of issues 7 and 16")
    out.append("")
    out.append("| metric | measured | goal | met |")
    out.append("|---|---|---|---|")
    j = st.get("engine_to_job", {})
    if p:
        out.append(goal_row(f"engine created → Job created, p99 at {st.get('rate', 20):.0f} engines/s ({j.get('n', 0)} engines)",
                            j.get("p99"), ms(j.get("p99")), "≤ 1 s", j.get("p99") is not None and j.get("p99") <= 1.0))
        out.append(steady_goal_row(st))
        jb = bu.get("engine_to_job", {})
        out.append(goal_row(f"engine created → Job created, p99 and p99.9, burst of {bu.get('n', 0)} (the controller's share: "
                            "the breakdown below)", jb.get("p99"), f"{ms(jb.get('p99'))}, {ms(jb.get('p999'))}", "(none)", None))
    if writes:
        out.append(goal_row(f"API writes per single-experiment run ({', '.join(r.get('api_modes') or ['subresource'])} CRD)",
                            max(writes),
                            f"{min(writes)}–{max(writes)}" if min(writes) != max(writes) else f"{max(writes)}",
                            "≤ 8 (issue 16)", max(writes) <= 8))
    if cps:
        worst = max(cps, key=lambda c: c["idle"]["requests"]["read"] + c["idle"]["requests"]["write"])
        n_req = worst["idle"]["requests"]["read"] + worst["idle"]["requests"]["write"]
        per = n_req / max(worst["running"], 1) / worst["idle"]["seconds"]
        out.append(goal_row(f"requests/s per running engine beyond watches (idle {worst['idle']['seconds']:.0f} s, "
                            f"{worst['running']} running)", per, f"{per:.4f} ({n_req} requests)", "0", n_req == 0))
    if cp1000:
        rss = cp1000["before"]["rss_mib"]
        out.append(goal_row(f"controller RSS at {cp1000['engines']} engines", rss, f"{rss:.1f} MiB", "≤ 64 MiB", rss <= 64))
    if last and last["engines"] >= 4000:
        rss = last["before"]["rss_mib"]
        out.append(goal_row(f"controller RSS at {last['engines']} engines", rss, f"{rss:.1f} MiB", "≤ 256 MiB", rss <= 256))
        s = last["restart"]["synced_log_s"]
        out.append(goal_row(f"start → caches synced (log line; /readyz 200 at {sec(last['restart']['readyz_s'])}) "
                            f"at {last['engines']} engines", s, sec(s), "≤ 5 s", s is not None and s <= 5))
    ab, ds = r.get("abort"), r.get("delete_starvation")
    if ab:
        z = ab.get("zero_residue_s")
        out.append(goal_row(f"{ab['n']} running engines aborted at once (mixed triggers) → zero residue", z, sec(z),
                            "≤ 30 s (issue 16)", z is not None and z <= 30))
    if ds:
        out.append(goal_row(f"fresh engine → Job while {ds['n']} engines are deleted at once, worst of {ds['fresh_n']}",
                            ds.get("fresh_max"), lat(ds.get("fresh_max")), "≤ 1 s each (issue 16)",
                            ds["fresh_over_1s"] == 0))
    out.append("")

    # ---------------------------------------------------------------- latency
    if p:
        out.append("## Latencies")
        out.append("")
        out.append("Engine → Job: from just before our engine POST is sent to the Job's ADDED event on our Job watch. "
                   "Terminated → verdict: from the pod watch event that shows the experiment container terminated "
                   "to the engine watch event carrying `status.experiments[0].verdict`.")
        out.append("")
        out.append("| scenario | what | n | p50 | p95 | p99 | p99.9 | max |")
        out.append("|---|---|---|---|---|---|---|---|")
        names = {"steady": f"steady {st.get('rate', 20):.0f}/s", "burst": "burst", "fill": "fill to target"}
        for key in ("steady", "burst", "fill"):
            ph = p.get(key)
            if not ph:
                continue
            label = names[key]
            if key == "steady" and ph.get("create_seconds") is not None:
                label += f" ({ph['n']} created in {ph['create_seconds']:.1f} s)"
            if key == "burst":
                label += f" ({ph['n']} created in {ph['create_seconds']:.1f} s)"
            if key == "fill":
                label += f" ({ph['n']} created in {ph['create_seconds']:.0f} s, backlog-limited)"
            for what, k in (("engine → Job", "engine_to_job"), ("terminated → verdict", "term_to_verdict"),
                            ("engine POST round trip", "create_rtt")):
                s = ph[k]
                out.append(f"| {label} | {what} | {s['n']} | {ms(s['p50'])} | {ms(s['p95'])} | {ms(s['p99'])} | {ms(s.get('p999'))} | {ms(s['max'])} |")
        out.append("")
    if p:
        v = {}
        for ph in p.values():
            for k, n in ph.get("verdicts", {}).items():
                v[k] = v.get(k, 0) + n
        out.append(f"Verdicts recorded: {', '.join(f'{k} {n}' for k, n in sorted(v.items()))}; "
                   f"fake-experiment errors: {r.get('fake_errors', 0)}.")
        out.append("")

    # ---------------------------------------------------------------- API cost
    if runs and not r.get("requests_only"):
        out.append("## API requests per single-experiment run")
        out.append("")
        out.append(f"Engines run one at a time, nothing else happening; the experiment writes a Running/Awaited "
                   f"ChaosResult at start and the verdict after {api.get('run_for', 0):.0f} s. Counted from the "
                   f"controller's own HTTP client log (one line per request, method + URL) from the engine POST "
                   f"until its log is quiet for 2 s after `completed`. Litmus: litmus-spec §4.8 for the same run "
                   f"length (chaos-runner only — the operator's own requests, e.g. creating the runner pod and its "
                   f"status updates, are not even counted).")
        out.append("")
        out.append("| run | length | reads (GET/LIST) | writes | watch starts |")
        out.append("|---|---|---|---|---|")
        for i, x in enumerate(runs):
            t = x["totals"]
            out.append(f"| chaos-conductor run {i + 1} | {x['run_seconds']:.1f} s | {t['read']} | {t['write']} | {t['watch']} |")
        avg_len = sum(x["run_seconds"] for x in runs) / len(runs)
        lr, lw, polls = litmus_cost(max(avg_len - 3, 1))
        out.append(f"| Litmus chaos-runner (§4.8) | {avg_len:.1f} s | ≈{lr} | ≈{lw} | 0 (polls: {polls} × 6 s) |")
        out.append("")
        out.append("Breakdown of run 1 (controller log): " +
                   ", ".join(f"`{k}` {n}" for k, n in runs[0]["by"].items()))
        out.append("")
        d = runs[0].get("apiserver_delta", {})
        keep = {k: v for k, v in d.items() if k.split("|")[1] == "litmuschaos.io" or k.split("|")[2] in ("serviceaccounts",)}
        if keep:
            out.append("Cross-check, apiserver_request_total delta over run 1 (all clients; chaosengines includes the "
                       "driver's 1 POST, chaosresults the driver's 2 writes): " +
                       ", ".join(f"`{k.replace('|', ' ')}` {v:.0f}" for k, v in sorted(keep.items())))
            out.append("")
        out.append("While the experiment runs the controller makes no request at all: it reacts to watch events "
                   "(pod Running, ChaosResult written, container terminated) and its only timer is the experiment "
                   "deadline (1 h by default). Litmus's cost grows with the run length (4 requests per ≈6 s); "
                   "this one does not.")
        out.append("")

    modes = r.get("api_modes") or {}
    if modes:
        out.append("## API requests per single-experiment run, by kind and CRD mode")
        out.append("")
        out.append("The same single-experiment run (the experiment writes Running/Awaited at start and its "
                   f"verdict after {next(iter(modes.values())).get('run_for', 0):.0f} s) against both ChaosEngine CRDs: "
                   "ours with the status subresource (status written on `/status`) and Litmus's without one "
                   "(status written on the object itself; bench.py swaps the CRD the way tests/litmus_crds.rs "
                   "does). Counted from the controller's HTTP client log; first run of each mode; what each write "
                   "carries and why the rest cannot be combined: docs/performance.md. Litmus for a 10 s run: "
                   "40.2 requests, measured side by side with its chaos-operator + chaos-runner (issue 16), and "
                   "its polling adds ≈ 0.67 requests/s per running engine (litmus-spec §4.8: 4 requests per "
                   "≈ 6 s); ours make no request while an experiment runs. *Policy on*: the chart's "
                   "MutatingAdmissionPolicy (charts/chaos-conductor/templates/admission-policy.yaml, rendered "
                   "by helm template) is in effect, as in a default install: it adds our finalizer on create "
                   "(so the controller's first pass writes none) and records the author, which the controller "
                   "re-checks before the launch with 2 LocalSubjectAccessReviews (a question to the apiserver; "
                   "nothing is stored). The controller runs as a process with the admin kubeconfig, not as "
                   "the chart's ServiceAccount, so the policy's exemption of the controller's own writes does not "
                   "apply to it (it only re-records the author on its `stop`, which adds no request). "
                   "*Policy off*: no admission policy, as without the chart.")
        out.append("")
        out.extend(per_mode_table(modes, before))
        out.append("")
        for mode, res in modes.items():
            for i, run in enumerate(res.get("runs", [])):
                out.append(f"- {MODE_NAMES.get(mode, mode)}, run {i + 1}: " +
                           ", ".join(f"`{k}` {n}" for k, n in run["by"].items()))
        out.append("")

    out.extend(mass_abort(ab, ds))

    # ---------------------------------------------------------------- scale
    if cps:
        out.append("## Controller footprint by engine count")
        out.append("")
        out.append("Engines present in the watched namespace: completed ones keep their Job and pod "
                   "(`jobCleanUpPolicy: retain`, Litmus's default) and ChaosResult; running ones have a Running pod "
                   "that never finishes. *RSS* is after creating and running all of them (the process that did the work); "
                   "*idle* is a window with nothing happening; *restart* stops that process and starts a new one.")
        out.append("")
        out.append("| engines (completed + running) | RSS | peak RSS | CPU used so far | idle CPU | idle requests (reads/writes) | restart: caches synced (log) / readyz | first reconcile | all reconciled once (CPU quiet) | RSS after restart | restart CPU | restart requests (reads/writes/watches) | /metrics scrape |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for c in cps:
            b, i, rs = c["before"], c["idle"], c["restart"]
            out.append(f"| {c['engines']} ({c['completed']} + {c['running']}) | {b['rss_mib']:.1f} MiB | {b['hwm_mib']:.1f} MiB | "
                       f"{b['cpu_total_s']:.1f} s | {i['cpu_pct']:.2f} % | {i['requests']['read']}/{i['requests']['write']} "
                       f"({i['reconciles']:.0f} reconciles) | "
                       f"{sec(rs['synced_log_s'])} / {sec(rs['readyz_s'])} | {sec(rs['first_reconcile_s'])} | {sec(rs['all_reconciled_s'])} | "
                       f"{rs['rss_mib']:.1f} MiB | {rs['cpu_s']:.2f} s | {rs['requests']['read']}/{rs['requests']['write']}/{rs['requests']['watch']} | "
                       f"{c['scrape_ms']:.0f} ms |")
        out.append("")
        out.append("Restart requests by kind at the largest count: " +
                   ", ".join(f"`{k}` {n}" for k, n in cps[-1]["restart"]["requests_by"].items()))
        out.append("")
    return "\n".join(out) + "\n"


# Frames that say nothing about who holds the memory (the allocator, generic containers, serde,
# the async runtime) and unresolved addresses.
GENERIC_FRAMES = ("alloc::", "core::", "std::", "<alloc::", "<core::", "<std::", "hashbrown::", "<hashbrown::",
                  "serde", "<serde", "<&", "<T as ", "tokio::runtime", "<tokio::runtime", "futures_util",
                  "<futures_util", "__rust", "_rust", "malloc", "realloc", "calloc", "0x", "<unresolved")


def demangle(frame):
    """A legacy-mangled Rust symbol as heaptrack prints it, made readable (no hash)."""
    frame = re.sub(r"::h[0-9a-f]{16}$", "", frame.strip())
    for code, text in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ","), ("$u7b$", "{"),
                       ("$u7d$", "}"), ("$RF$", "&"), ("$BP$", "*"), ("$u27$", "'"), ("..", "::")):
        frame = frame.replace(code, text)
    return frame[1:] if frame.startswith("_<") else frame


def heap_entries(lines):
    """heaptrack_print's peak consumers: (bytes, calls, the frames of its largest backtrace)."""
    entries, cur, in_sub = [], None, False
    for ln in lines:
        m = re.match(r"^(\S+) peak memory consumed over (\d+) calls from", ln)
        if m:
            cur, in_sub = [m.group(1), m.group(2), []], False
            entries.append(cur)
            continue
        if cur is None:
            continue
        if re.match(r"^\S+ consumed over \d+ calls from:", ln):
            # the first (largest) sub-peak's backtrace names the holder; later ones are skipped
            in_sub = not cur[2]
            continue
        if not ln.strip():
            cur = None
            continue
        stripped = ln.strip()
        if stripped.startswith("in ") or stripped.startswith("at "):
            continue
        if (in_sub or not ln.startswith(" ")) and len(cur[2]) < 4:
            fn = demangle(stripped)
            if not fn.startswith(GENERIC_FRAMES):
                cur[2].append(fn)
    return entries


def heap_summary(directory, top=15, frames=3):
    """Markdown of heaptrack_print's peak memory consumers, one table per recording (the controller's
    first process and its restart): bytes at the heap peak, the calls, and the first frames that are
    not the allocator, a generic container or the runtime."""
    out = ["## Heap profile (heaptrack)", "",
           "The controller built with `--features system-alloc` (heaptrack hooks malloc) under `heaptrack`; "
           "`heaptrack_print --print-peaks` of each recording: who held the heap at its peak (first frames of "
           "the largest backtrace, without the allocator, generic containers, serde and the async runtime). "
           "*Peak heap* is what the program held; RSS (with heaptrack's own overhead) is larger.", ""]
    for path in sorted(glob.glob(os.path.join(directory, "*.txt"))):
        lines = open(path, errors="replace").read().splitlines()
        name = os.path.basename(path).split(".")[0]
        totals = [ln.strip() for ln in lines if ln.startswith(("peak heap memory consumption", "peak RSS",
                                                               "calls to allocation functions", "total runtime"))]
        out.append(f"### {name}")
        out.append("")
        out.extend(f"- {t}" for t in totals)
        out.append("")
        out.append("| peak bytes | calls | held by (innermost first) |")
        out.append("|---|---|---|")
        for size, calls, fns in heap_entries(lines)[:top]:
            shown = " ← ".join(f"`{f[:110]}`" for f in fns[:frames]).replace("|", "\\|")
            out.append(f"| {size} | {calls} | {shown or '?'} |")
        out.append("")
    return "\n".join(out) + "\n"


TRIGGER_NAMES = {"delete": "engine deleted", "stop": "`spec.engineState: stop`",
                 "annotate": "annotation `litmuschaos.io/abort: \"true\"`"}


def by_kind(by):
    return ", ".join(f"`{k}` {n}" for k, n in sorted(by.items(), key=lambda kv: -kv[1]))


def mass_abort(ab, ds):
    """The section "Mass abort" (issue 16 item 4)."""
    if not ab and not ds:
        return []
    out = ["## Mass abort", ""]
    if ab:
        out.append(f"{ab['n']} running engines (Job, Running pod, status Running; their experiments never finish), "
                   f"then all aborted at once, a third each by one trigger (README \"Abort and garbage collection\"), "
                   f"sent by {ab['workers']} threads in {ab['send_seconds']:.1f} s. *Zero residue*: from the first abort "
                   "request until no Job and no pod labelled with those engines' chaosUID exists (terminating ones "
                   "included), the deleted engines are gone (finalizer released) and the others show "
                   "`engineStatus: stopped` at `engineState: stop` without the annotation — from the driver's watches, "
                   "confirmed by a LIST. *Per engine*: its own abort request → its last Job/pod/engine event. "
                   f"Load average {ab['loadavg_before']} before, {ab['loadavg_after']} after.")
        if ab.get("floor"):
            out.append("")
            out.append("**Floor run (`BENCH_ABORT_FLOOR=1`): no controller.** The driver sent, right after each trigger, "
                       "only what any controller must send to end that abort (its Jobs deleted, its pods deleted by "
                       "label, the finalizer released or the final status written; bench/bench.py "
                       "`abort_floor_requests`): the time below is what the rest of the cluster needs on this machine.")
        out.append("")
        out.append("| N | triggers | zero residue after | per engine p50 | per engine p99 | per engine max | left over | controller requests (reads/writes) | reconciles |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        trig = ", ".join(f"{TRIGGER_NAMES[t]} {n}" for t, n in ab["triggers"].items())
        a = ab["per_engine"]["all"]
        left = ", ".join(f"{k} {v}" for k, v in ab["left_over"].items())
        out.append(f"| {ab['n']} | {trig} | **{sec(ab['zero_residue_s'])}** | {sec(a['p50'])} | {sec(a['p99'])} | "
                   f"{sec(a['max'])} | {left} | {ab['requests']['read']}/{ab['requests']['write']} | {ab['reconciles']:.0f} |")
        out.append("")
        out.append("| trigger | n | per engine p50 | p99 | max |")
        out.append("|---|---|---|---|---|")
        for t in TRIGGER_NAMES:
            x = ab["per_engine"].get(t)
            if x:
                out.append(f"| {TRIGGER_NAMES[t]} | {x['n']} | {sec(x['p50'])} | {sec(x['p99'])} | {sec(x['max'])} |")
        out.append("")
        out.append(f"Controller requests during the abort, by kind ({ab['n']} engines): {by_kind(ab['requests_by'])}.")
        out.append("")
        if ab.get("stages"):
            out.append("Where an engine's abort time goes (its own request → each stage, from the driver's watches): "
                       + "; ".join(f"{k} p50 {sec(v['p50'])}, p99 {sec(v['p99'])}" for k, v in ab["stages"].items()
                                   if v["n"]) + ".")
            out.append("")
        if ab.get("cpu_s"):
            cpu = ab["cpu_s"]
            out.append(f"CPU seconds used during the abort ({sec(ab['waited_s'])} wall, 2 cores), by process: "
                       + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
                       + f"; {sum(cpu.values()):.1f} in all.")
            out.append("")
    if ds:
        what = "running" if ds.get("running") else "completed"
        out.append(f"Then {ds['n']} {what} engines deleted at once (sent in {ds['send_seconds']:.1f} s) while a fresh "
                   f"engine is created every {ds['fresh_every']:.0f} s ({ds['fresh_n']} of them; "
                   f"{ds['fresh_during']} while deletions were still in progress): does a normal launch wait behind "
                   f"the deletions? Load average {ds['loadavg_before']} before, {ds['loadavg_after']} after.")
        out.append("")
        out.append("| deleted at once | all gone after | fresh engines | fresh engine → Job p50 | max | over 1 s | left over |")
        out.append("|---|---|---|---|---|---|---|")
        left = ", ".join(f"{k} {v}" for k, v in ds["left_over"].items())
        out.append(f"| {ds['n']} {what} | {sec(ds['all_gone_s'])} | {ds['fresh_n']} | {lat(ds['fresh_p50'])} | "
                   f"**{lat(ds['fresh_max'])}** | {ds['fresh_over_1s']} | {left} |")
        out.append("")
        out.append("Each fresh engine → Job, in creation order: " +
                   ", ".join(lat(x) for x in ds["fresh_engine_to_job"]) + ".")
        out.append("")
        out.append(f"Controller requests during the deletion, by kind: {by_kind(ds['requests_by'])}.")
        out.append("")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--machine", required=True, help="JSON file of machine facts")
    ap.add_argument("--command", required=True)
    ap.add_argument("--notes", action="append", default=[], help="Markdown file appended verbatim (repeatable)")
    ap.add_argument("--heaptrack", help="directory of heaptrack_print outputs (*.txt): a heap profile section")
    ap.add_argument("--write")
    ap.add_argument("--before", help="an earlier results JSON: its per-run requests become the before rows")
    a = ap.parse_args()
    r = json.load(open(a.results))
    machine = json.load(open(a.machine))
    before = json.load(open(a.before)).get("api_modes") if a.before else None
    text = render(r, machine, a.command, before)
    for path in a.notes:
        try:
            text += "\n" + open(path).read()
        except OSError:
            pass
    if a.heaptrack:
        text += "\n" + heap_summary(a.heaptrack)
    print(text)
    if a.write:
        open(a.write, "w").write(text)


if __name__ == "__main__":
    main()
