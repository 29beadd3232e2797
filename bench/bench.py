#!/usr/bin/env python3
"""chaos-conductor benchmark driver (standard library only; run by scripts/bench).

Talks to the benchmark's private cluster directly over HTTPS (token from its kubeconfig), runs the
release controller as a child process, plays litmus-go for every experiment pod (writes the
ChaosResult, then annotates the pod `e2e.test/outcome=succeed` so kwok terminates it), and measures:

  * engine created -> experiment Job created (client-side: the engine POST is sent -> the Job's ADDED
    event arrives on our own Job watch), steady rate and burst;
  * experiment container terminated (pod watch) -> status.experiments[0].verdict set (engine watch);
  * API requests per single-experiment run, from the controller's own HTTP client log
    (kube_client's debug span per request: method + URL), cross-checked with apiserver_request_total;
  * controller RSS / CPU at several engine counts, and a restart at each: spawn -> /readyz 200
    ("caches synced") -> first reconcile -> every engine reconciled once.

Every timestamp is taken on this host with time.time(); all processes share the machine (2 cores),
so the watch-side timestamps include our own scheduling delay (the numbers are upper bounds).
"""
import argparse
import calendar
import concurrent.futures as cf
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

GROUP = "/apis/litmuschaos.io/v1alpha1"
# src/api/engine.rs FINALIZER (the chart's admission policy adds it on create)
FINALIZER = "chaosengine.litmuschaos.io/finalizer"
FINAL_VERDICTS = {"Pass", "Fail", "Error", "Stopped"}
# src/api/engine.rs ABORT_ANNOTATION (README "Abort and garbage collection": one of three triggers)
ABORT_ANNOTATION = "litmuschaos.io/abort"


def log(msg):
    print(f"bench [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- client
class Kube:
    """Minimal Kubernetes REST client: one keep-alive HTTPS connection per thread."""

    def __init__(self, kubeconfig):
        text = open(kubeconfig).read()
        self.server = re.search(r'server:\s*"?([^",}\s]+)', text).group(1)
        ca = re.search(r'certificate-authority:\s*"?([^",}\s]+)', text).group(1)
        self.token = re.search(r'token:\s*"?([^",}\s]+)', text).group(1)
        u = urllib.parse.urlparse(self.server)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.local = threading.local()

    def _conn(self, fresh=False, timeout=60):
        if fresh:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        return c

    def req(self, method, path, body=None, ctype="application/json", raw=False):
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = ctype
        for attempt in range(3):
            c = self._conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                payload = r.read()
                if raw:
                    return r.status, payload.decode()
                return r.status, (json.loads(payload) if payload else None)
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def watch(self, path, params, on_event, on_list=None):
        """LIST then WATCH forever (re-listing on 410); on_event(type, obj, t) on this thread."""
        rv = None
        while True:
            try:
                if rv is None:
                    st, lst = self.req("GET", f"{path}?{params}")
                    if st != 200:
                        raise RuntimeError(f"list {path}: {st} {lst}")
                    rv = lst["metadata"]["resourceVersion"]
                    t = time.time()
                    for item in lst["items"]:
                        on_event("LISTED", item, t)
                c = self._conn(fresh=True, timeout=None)
                c.request("GET", f"{path}?{params}&watch=1&allowWatchBookmarks=true&timeoutSeconds=600"
                          f"&resourceVersion={rv}", headers={"Authorization": f"Bearer {self.token}"})
                r = c.getresponse()
                if r.status != 200:
                    r.read()
                    rv = None
                    continue
                while True:
                    line = r.readline()
                    if not line:
                        break
                    t = time.time()
                    ev = json.loads(line)
                    obj = ev.get("object", {})
                    if ev["type"] == "ERROR":
                        rv = None
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if ev["type"] != "BOOKMARK":
                        on_event(ev["type"], obj, t)
                c.close()
            except Exception as e:  # noqa: BLE001 — a watch must survive anything
                log(f"watch {path}: {e!r}; restarting")
                rv = None
                time.sleep(0.5)


def log_time(ts):
    """Seconds since the epoch of a log timestamp such as 2026-11-27T00:05:15.776966Z."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z", ts)
    if not m:
        return None
    return calendar.timegm(tuple(int(x) for x in m.groups()[:6])) + float(m.group(7) or 0)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ------------------------------------------------------------------------------------------ tracker
class Tracker:
    """What the watches saw, keyed by engine uid (dict writes are atomic under the GIL)."""

    def __init__(self):
        self.created = {}      # uid -> dict(name, phase, finish, t_send, t_resp)
        self.job_added = {}    # uid -> t (client time of the Job's ADDED event)
        self.pod_running = {}  # uid -> t
        self.pod_term = {}     # uid -> t (experiment container terminated / pod Succeeded)
        self.verdict = {}      # uid -> (t, verdict)
        self.exp_running = {}  # uid -> t (status.experiments[0].status == Running)
        self.completed = {}    # uid -> t (engineStatus completed)
        self.result_final = {} # uid -> t (our final ChaosResult write returned)
        self.played = set()    # pod uids handed to the fake experiment
        self.fake_errors = 0
        # the mass abort (phase_abort): what is left of each engine, and when it went
        self.jobs_live = {}    # uid -> set of Job names present (terminating ones included)
        self.pods_live = {}    # uid -> set of pod names present (terminating ones included)
        self.residue_gone = {} # uid -> t (the last of its Jobs and pods DELETED)
        self.engine_gone = {}  # uid -> t (engine DELETED: finalizer released)
        self.stopped = {}      # uid -> t (engineStatus stopped, engineState stop, no abort annotation)
        self.job_gone = {}     # uid -> t (a Job of it DELETED; the last one wins)
        self.pod_gone = {}     # uid -> t (a pod of it DELETED; the last one wins)
        self.abort_sent = {}   # uid -> t (its abort request returned)


class Bench:
    def __init__(self, args):
        self.a = args
        self.k = Kube(args.kubeconfig)
        self.ns = args.namespace
        self.tr = Tracker()
        self.fake_pool = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="fake")
        self.run_for = 0.0          # seconds the fake experiment "runs" before its verdict
        self.awaited_first = False  # write a Running/Awaited result at start (as litmus-go does)
        self.proc = None
        self.proc_log = None
        self.results = {"phases": {}, "checkpoints": [], "api": {}}

    # --------------------------------------------------------------------------------- watches
    def track_live(self, live, gone, typ, obj, uid, t):
        """Jobs and pods of each engine that still exist, when one of a kind last went (`gone`),
        and when the last of both went."""
        name = obj["metadata"]["name"]
        names = live.setdefault(uid, set())
        if typ == "DELETED":
            names.discard(name)
            gone[uid] = t
            if not self.tr.jobs_live.get(uid) and not self.tr.pods_live.get(uid):
                self.tr.residue_gone[uid] = t
        else:
            names.add(name)
            self.tr.residue_gone.pop(uid, None)

    def on_job(self, typ, job, t):
        uid = (job["metadata"].get("labels") or {}).get("chaosUID")
        if not uid:
            return
        self.track_live(self.tr.jobs_live, self.tr.job_gone, typ, job, uid, t)
        if typ == "ADDED":
            self.tr.job_added.setdefault(uid, t)

    def on_pod(self, typ, pod, t):
        md = pod["metadata"]
        labels = md.get("labels") or {}
        uid = labels.get("chaosUID")
        job = labels.get("job-name")
        if uid:
            self.track_live(self.tr.pods_live, self.tr.pod_gone, typ, pod, uid, t)
        if not uid or not job or typ == "DELETED":
            return
        st = pod.get("status") or {}
        phase = st.get("phase")
        main = next((c for c in st.get("containerStatuses") or [] if c.get("name") == job), None)
        if phase in ("Succeeded", "Failed") or (main and (main.get("state") or {}).get("terminated")):
            if typ != "LISTED":
                self.tr.pod_term.setdefault(uid, t)
            return
        if phase == "Running" and md.get("deletionTimestamp") is None:
            if typ != "LISTED":
                self.tr.pod_running.setdefault(uid, t)
            if labels.get("bench-finish") == "never" or md["uid"] in self.tr.played:
                return
            if (md.get("annotations") or {}).get("e2e.test/outcome"):
                return
            self.tr.played.add(md["uid"])
            self.fake_pool.submit(self.play, pod)

    def on_engine(self, typ, eng, t):
        if typ == "LISTED":
            return
        uid = eng["metadata"]["uid"]
        if typ == "DELETED":
            self.tr.engine_gone.setdefault(uid, t)
            return
        st = eng.get("status") or {}
        # an abort by stop or annotation ends here (src/engine/plan/abort.rs: `engineStatus:
        # stopped`; the annotation is consumed and the engine rests at `engineState: stop`)
        if (st.get("engineStatus") == "stopped" and (eng.get("spec") or {}).get("engineState") == "stop"
                and ABORT_ANNOTATION not in (eng["metadata"].get("annotations") or {})):
            self.tr.stopped.setdefault(uid, t)
        exps = st.get("experiments") or []
        if exps:
            e0 = exps[0]
            if e0.get("verdict") in FINAL_VERDICTS:
                self.tr.verdict.setdefault(uid, (t, e0.get("verdict")))
            if e0.get("status") == "Running":
                self.tr.exp_running.setdefault(uid, t)
        if st.get("engineStatus") == "completed":
            self.tr.completed.setdefault(uid, t)

    def start_watches(self, ns=None):
        ns = ns or self.ns
        for path, params, fn in (
            (f"/apis/batch/v1/namespaces/{ns}/jobs", "labelSelector=chaosUID", self.on_job),
            (f"/api/v1/namespaces/{ns}/pods", "labelSelector=chaosUID", self.on_pod),
            (f"{GROUP}/namespaces/{ns}/chaosengines", "limit=0", self.on_engine),
        ):
            threading.Thread(target=self.k.watch, args=(path, params, fn), daemon=True).start()

    # ------------------------------------------------------------------------------ CRD modes
    CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/chaosengines.litmuschaos.io"

    def served_status_subresource(self):
        st, r = self.k.req("GET", GROUP)
        return st == 200 and any(x.get("name") == "chaosengines/status" for x in r.get("resources", []))

    def set_crd_mode(self, mode):
        """`subresource`: our CRD (crds/, status subresource). `litmus`: Litmus's shape, as
        tests/support/crd_swap.rs installs it (no subresources, spec and status keep unknown fields), so
        the controller writes the status on the main resource (src/controller/run.rs,
        detect_status_mode). The original is kept and put back by `set_crd_mode("subresource")`."""
        st, cur = self.k.req("GET", self.CRD_PATH)
        if st != 200:
            raise RuntimeError(f"read the ChaosEngine CRD: {st} {cur}")
        if mode == "litmus":
            if getattr(self, "our_crd", None) is None:
                self.our_crd = json.loads(json.dumps(cur))
            free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            for v in cur["spec"]["versions"]:
                v.pop("subresources", None)
                v.pop("additionalPrinterColumns", None)
                props = v["schema"]["openAPIV3Schema"].setdefault("properties", {})
                props["spec"], props["status"] = dict(free), dict(free)
            body, want = cur, False
        else:
            if getattr(self, "our_crd", None) is None:
                return
            body, want = json.loads(json.dumps(self.our_crd)), True
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        st, r = self.k.req("PUT", self.CRD_PATH, body)
        if st != 200:
            raise RuntimeError(f"replace the ChaosEngine CRD: {st} {r}")
        deadline = time.time() + 60
        while self.served_status_subresource() != want:
            if time.time() > deadline:
                raise RuntimeError(f"discovery still shows the old ChaosEngine CRD ({mode})")
            time.sleep(0.2)
        log(f"ChaosEngine CRD: {mode} mode")

    # ------------------------------------------------------------------------- fake litmus-go
    def result_body(self, engine, exp, uid, job, phase, verdict):
        passed = 1 if verdict == "Pass" else 0
        return {
            "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosResult",
            "metadata": {"name": f"{engine}-{exp}", "namespace": self.ns,
                         "labels": {"chaosUID": uid, "job-name": job, "name": exp}},
            "spec": {"engine": engine, "experiment": exp},
            "status": {"experimentStatus": {"phase": phase, "verdict": verdict,
                                            "probeSuccessPercentage": "100" if passed else "Awaited"},
                       "history": {"passedRuns": passed, "failedRuns": 0, "stoppedRuns": 0}},
        }

    def put_result(self, body):
        base = f"{GROUP}/namespaces/{self.ns}/chaosresults"
        st, r = self.k.req("POST", base, body)
        if st == 409:
            name = body["metadata"]["name"]
            st, cur = self.k.req("GET", f"{base}/{name}")
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            st, r = self.k.req("PUT", f"{base}/{name}", body)
        if st not in (200, 201):
            raise RuntimeError(f"ChaosResult write: {st} {r}")

    def play(self, pod):
        try:
            job = pod["metadata"]["labels"]["job-name"]
            c = next(c for c in pod["spec"]["containers"] if c["name"] == job)
            env = {e["name"]: e.get("value", "") for e in c.get("env") or []}
            engine, exp, uid = env["CHAOSENGINE"], env["EXPERIMENT_NAME"], env["CHAOS_UID"]
            if self.awaited_first:
                self.put_result(self.result_body(engine, exp, uid, job, "Running", "Awaited"))
            if self.run_for:
                time.sleep(self.run_for)
            self.put_result(self.result_body(engine, exp, uid, job, "Completed", "Pass"))
            self.tr.result_final.setdefault(uid, time.time())
            st, r = self.k.req("PATCH", f"/api/v1/namespaces/{self.ns}/pods/{pod['metadata']['name']}",
                               {"metadata": {"annotations": {"e2e.test/outcome": "succeed"}}},
                               ctype="application/merge-patch+json")
            if st != 200:
                raise RuntimeError(f"pod annotate: {st} {r}")
        except Exception as e:  # noqa: BLE001
            self.tr.fake_errors += 1
            log(f"fake experiment failed: {e!r}")

    # ------------------------------------------------------------------------------- objects
    def setup_namespace(self, ns=None):
        k, ns = self.k, ns or self.ns
        st, _ = k.req("GET", f"/api/v1/namespaces/{ns}")
        if st == 200:
            log(f"deleting the old namespace {ns}")
            k.req("DELETE", f"/api/v1/namespaces/{ns}")
            while k.req("GET", f"/api/v1/namespaces/{ns}")[0] == 200:
                time.sleep(0.5)
        k.req("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        k.req("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "bench-sa"}})
        exp = {
            "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosExperiment",
            "metadata": {"name": "pod-delete", "labels": {"name": "pod-delete"}},
            "spec": {"definition": {
                "scope": "Namespaced", "image": "litmuschaos/go-runner:3.x", "imagePullPolicy": "Always",
                "command": ["/bin/bash"], "args": ["-c", "./experiments -name pod-delete"],
                "labels": {"name": "pod-delete", "app.kubernetes.io/part-of": "litmus",
                           "app.kubernetes.io/component": "experiment-job"},
                "env": [{"name": "TOTAL_CHAOS_DURATION", "value": "15"},
                        {"name": "CHAOS_INTERVAL", "value": "5"}, {"name": "FORCE", "value": "true"}]}},
        }
        st, r = k.req("POST", f"{GROUP}/namespaces/{ns}/chaosexperiments", exp)
        if st != 201:
            raise RuntimeError(f"ChaosExperiment: {st} {r}")

    def engine_body(self, name, phase, finish):
        return {
            "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosEngine",
            "metadata": {"name": name, "labels": {"context": "bench", "bench-phase": phase,
                                                  "bench-finish": finish}},
            "spec": {"engineState": "active", "chaosServiceAccount": "bench-sa",
                     "jobCleanUpPolicy": "retain",
                     "appinfo": {"appns": "default", "applabel": "app=nginx", "appkind": "deployment"},
                     "experiments": [{"name": "pod-delete", "spec": {"components": {"env": [
                         {"name": "TOTAL_CHAOS_DURATION", "value": "30"}]}}}]},
        }

    def create_engine(self, name, phase, finish):
        body = self.engine_body(name, phase, finish)
        t_send = time.time()
        st, r = self.k.req("POST", f"{GROUP}/namespaces/{self.ns}/chaosengines", body)
        t_resp = time.time()
        if st != 201:
            raise RuntimeError(f"engine {name}: {st} {r}")
        uid = r["metadata"]["uid"]
        self.tr.created[uid] = dict(name=name, phase=phase, finish=finish, t_send=t_send, t_resp=t_resp)
        return uid

    def create_many(self, phase, n, rate=None, never_every=10, workers=16, backlog=None):
        """Creates n engines at `rate`/s (None: as fast as `workers` threads go); every
        `never_every`-th one never finishes (its experiment pod keeps running)."""
        t0 = time.time()

        def one(i):
            if rate and not backlog:
                delay = t0 + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            finish = "never" if never_every and i % never_every == never_every - 1 else "pass"
            return self.create_engine(f"{phase}-{i:05d}", phase, finish)

        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            if backlog:
                # bounded backlog: never more than `backlog` engines created but not settled
                futs = []
                for i in range(n):
                    while self.unsettled() >= backlog:
                        time.sleep(0.05)
                    futs.append(pool.submit(one, i))
                    time.sleep(1.0 / rate if rate else 0)
                uids = [f.result() for f in futs]
            else:
                uids = list(pool.map(one, range(n)))
        t1 = time.time()
        log(f"{phase}: created {n} engines in {t1 - t0:.1f}s ({n / max(t1 - t0, 1e-9):.0f}/s)")
        return uids, t0, t1

    def settled(self, uid):
        c = self.tr.created.get(uid)
        if c is None:
            return False
        if c["finish"] == "never":
            return uid in self.tr.exp_running
        return uid in self.tr.completed

    def unsettled(self):
        return sum(1 for u in list(self.tr.created) if not self.settled(u))

    def wait_settled(self, uids, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            left = [u for u in uids if not self.settled(u)]
            if not left:
                return True
            time.sleep(0.2)
        log(f"WARNING: {len(left)} engines not settled after {timeout}s")
        return False

    # ---------------------------------------------------------------------------- controller
    def metrics(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.a.metrics_port, timeout=30)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, val = line.rpartition(" ")
            try:
                out[name] = float(val)
            except ValueError:
                pass
        return out

    def readyz(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.a.metrics_port, timeout=2)
            c.request("GET", "/readyz")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    def start_controller(self, tag, ns=None):
        logpath = os.path.join(self.a.workdir, f"controller-{tag}.log")
        self.proc_log = logpath
        env = dict(os.environ, KUBECONFIG=self.a.kubeconfig,
                   # kube_client's per-request debug span (method + URL): the request count
                   RUST_LOG="info,kube_client::client::builder=debug")
        cmd = [self.a.controller, "run", "--watch-namespace", ns or self.ns, "--metrics-addr",
               f"127.0.0.1:{self.a.metrics_port}", "--concurrency", str(self.a.concurrency),
               "--log-format", "json"]
        if self.a.heaptrack:
            # heaptrack (LD_PRELOAD) records every allocation of the process; its own shell script
            # is the child, the controller its descendant (see controller_pid)
            cmd = ["heaptrack", "-o", os.path.join(self.a.heaptrack, f"heaptrack-{tag}")] + cmd
        t0 = time.time()
        self.proc = subprocess.Popen(cmd, env=env, stdout=open(logpath, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return t0

    def controller_pid(self):
        """The controller's pid: the child itself, or under heaptrack the descendant running it."""
        if not self.a.heaptrack:
            return self.proc.pid
        want = os.path.realpath(self.a.controller)
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == want:
                    return pid
                for t in os.listdir(f"/proc/{pid}/task"):
                    todo += [int(c) for c in open(f"/proc/{pid}/task/{t}/children").read().split()]
            except OSError:
                continue
        return self.proc.pid

    def stop_controller(self):
        if self.proc and self.proc.poll() is None:
            if self.a.heaptrack:
                # the controller itself, so that heaptrack's script writes its data and exits
                os.kill(self.controller_pid(), signal.SIGTERM)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @staticmethod
    def cpu_seconds(pid):
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_by_process(self):
        """CPU seconds used so far by each part on this machine: the cluster's components (pid
        files of scripts/cluster), the controller and this driver."""
        out = {"driver": self.cpu_seconds(os.getpid())}
        if self.proc:
            out["controller"] = self.cpu_seconds(self.controller_pid())
        pids = os.path.join(os.environ.get("CLUSTER_RUN_DIR", ""), "pids")
        for name in sorted(os.listdir(pids)) if os.path.isdir(pids) else []:
            try:
                out[name] = self.cpu_seconds(int(open(os.path.join(pids, name)).read().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        return out

    def proc_stats(self):
        pid = self.controller_pid()
        status = open(f"/proc/{pid}/status").read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
        hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        return dict(rss_mib=rss, hwm_mib=hwm, cpu_s=self.cpu_seconds(pid), threads=threads)

    def log_offset(self):
        return os.path.getsize(self.proc_log)

    def requests_between(self, start, end=None, window=None):
        """The controller's HTTP requests logged between two offsets of its log; with `window`
        (t0, t1), only those whose log timestamp lies in it."""
        with open(self.proc_log, "rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(end - start)
        reqs = []
        for line in data.splitlines():
            if b'"requesting"' not in line:
                continue
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if window is not None:
                t = log_time(j.get("timestamp", ""))
                if t is None or not window[0] <= t <= window[1]:
                    continue
            span = j.get("span") or {}
            method, url = span.get("http.method"), span.get("http.url")
            if method and url:
                reqs.append((method, url))
        return reqs

    @staticmethod
    def classify(method, url):
        u = urllib.parse.urlparse(url)
        q = urllib.parse.parse_qs(u.query)
        parts = [p for p in u.path.split("/") if p]
        # /api/v1/namespaces/ns/<res>[/name[/sub]] or /apis/g/v/namespaces/ns/<res>[/name[/sub]]
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if rest and rest[0] == "namespaces" and len(rest) >= 3:
            rest = rest[2:]
        res = "/".join([rest[0]] + rest[2:3]) if rest else (parts[-1] if parts else "?")
        named = len(rest) >= 2
        if method == "GET":
            if q.get("watch", ["0"])[0] in ("1", "true"):
                kind = "watch"
            else:
                kind = "get" if named else "list"
        else:
            kind = method.lower()
        return res, kind

    def summarize_requests(self, reqs):
        by = {}
        tot = {"read": 0, "write": 0, "watch": 0}
        for m, u in reqs:
            res, kind = self.classify(m, u)
            key = f"{kind} {res}"
            by[key] = by.get(key, 0) + 1
            if kind == "watch":
                tot["watch"] += 1
            elif res.endswith("subjectaccessreviews"):
                # the author re-check (src/controller/author.rs): a question, nothing is stored
                tot["review"] = tot.get("review", 0) + 1
            elif kind in ("get", "list"):
                tot["read"] += 1
            else:
                tot["write"] += 1
        return tot, dict(sorted(by.items()))

    def apiserver_requests(self):
        st, text = self.k.req("GET", "/metrics", raw=True)
        out = {}
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = (labels.get("verb"), labels.get("group", ""), labels.get("resource"),
                   labels.get("subresource", ""))
            out[key] = out.get(key, 0) + float(line.rsplit(" ", 1)[1])
        return out

    @staticmethod
    def api_delta(before, after):
        d = {}
        for k, v in after.items():
            n = v - before.get(k, 0)
            if n > 0:
                d[k] = n
        return d

    def wait_ready(self, t0, timeout=120):
        """spawn -> /readyz 200 (polled every 20 ms), then -> first reconcile (/metrics every 100 ms,
        only after /readyz: no reconcile can finish before the caches synced, and each scrape costs
        the controller CPU)."""
        ready = first = None
        deadline = time.time() + timeout
        last_m = 0
        while time.time() < deadline and (ready is None or first is None):
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited ({self.proc.returncode}); see {self.proc_log}")
            now = time.time()
            if ready is None and self.readyz():
                ready = time.time() - t0
            if ready is not None and first is None and now - last_m >= 0.1:
                last_m = now
                if self.metrics().get("chaos_conductor_reconciles_total", 0) > 0:
                    first = time.time() - t0
            time.sleep(0.02)
        return ready, first

    def synced_log_time(self, t0):
        """Seconds from spawn to the 'caches synced' log line (its own timestamp)."""
        for line in open(self.proc_log, "rb"):
            if b"caches synced" in line:
                ts = json.loads(line).get("timestamp", "")
                m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", ts)
                if m:
                    base = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) - time.timezone
                    return base + float(m.group(2) or 0) - t0
        return None

    # -------------------------------------------------------------------------------- phases
    def phase_api_cost(self, runs, run_for, prefix="api"):
        """Single-experiment engines one after the other; the controller's requests per run."""
        self.run_for, self.awaited_first = run_for, True
        per_run, uids = [], []
        for i in range(runs):
            off0 = self.log_offset()
            api0 = self.apiserver_requests()
            uid = self.create_engine(f"{prefix}-{i:02d}", "api", "pass")
            uids.append(uid)
            self.wait_settled([uid], 60 + run_for * 2)
            # running window: from the controller writing Running + 1 s to our final result write
            # quiet tail: wait until the controller's log has been silent for 2 s
            last, t_last = self.log_offset(), time.time()
            while time.time() - t_last < 2.0:
                time.sleep(0.2)
                cur = self.log_offset()
                if cur != last:
                    last, t_last = cur, time.time()
            reqs = self.requests_between(off0, last)
            api1 = self.apiserver_requests()
            tot, by = self.summarize_requests(reqs)
            c = self.tr.created[uid]
            run_len = self.tr.completed[uid] - c["t_send"]
            # while the experiment runs: from Running seen + 1 s to the experiment's verdict write
            running = None
            t_run, t_fin = self.tr.exp_running.get(uid), self.tr.result_final.get(uid)
            if t_run and t_fin and t_fin > t_run + 1:
                w = (t_run + 1, t_fin)
                n = len(self.requests_between(off0, last, window=w))
                running = dict(seconds=w[1] - w[0], requests=n)
            per_run.append(dict(totals=tot, by=by, run_seconds=run_len, while_running=running,
                                apiserver_delta={"|".join(k): v for k, v in self.api_delta(api0, api1).items()}))
            log(f"api-cost run {i}: {tot} in {run_len:.1f}s: {by}")
        self.run_for, self.awaited_first = 0.0, False
        return dict(runs=per_run, run_for=run_for, uids=uids)

    def phase_api_modes(self, modes, runs, run_for):
        """phase_api_cost in each CRD mode. `subresource` runs on the main controller; another mode
        swaps the ChaosEngine CRD, runs a controller of its own on a namespace of its own (so its
        engines count nowhere else), then puts our CRD back and restarts the main controller."""
        main_ns = self.ns
        self.results["api_modes"] = {}
        for mode in modes:
            # `<crd>+policy`: the same with the chart's MutatingAdmissionPolicy in effect (--policy)
            crd, _, extra = mode.partition("+")
            policy = extra == "policy"
            tag = mode.replace("+", "-")
            if crd == "subresource":
                if policy:
                    self.apply_policy(main_ns)
                try:
                    res = self.phase_api_cost(runs, run_for, prefix=f"api-{tag}")
                finally:
                    if policy:
                        self.delete_policy()
            else:
                self.stop_controller()
                ns = f"{main_ns}-{tag}"
                try:
                    self.set_crd_mode(crd)
                    self.setup_namespace(ns)
                    self.start_watches(ns)
                    self.ns = ns
                    if policy:
                        self.apply_policy(ns)
                    self.wait_ready_only(self.start_controller(f"api-{tag}", ns))
                    res = self.phase_api_cost(runs, run_for)
                finally:
                    self.stop_controller()
                    if policy:
                        self.delete_policy()
                    self.ns = main_ns
                    self.set_crd_mode("subresource")
                self.wait_ready_only(self.start_controller(f"main-after-{tag}"))
            res["policy"] = policy
            uids = res.pop("uids")
            if mode != "subresource":
                for uid in uids:  # in a namespace of their own: no later phase's engine count
                    self.tr.created.pop(uid, None)
            self.results["api_modes"][mode] = res
        self.results["api"] = self.results["api_modes"].get(modes[0], {})

    # --------------------------------------------------------------------- admission policy
    ADMISSION = "/apis/admissionregistration.k8s.io/v1"

    def apply_policy(self, ns):
        """Creates the chart's MutatingAdmissionPolicy and its binding (--policy: JSON rendered by
        scripts/bench from charts/chaos-conductor with helm template) and waits until a server-side
        dry run of an engine in `ns` comes back with our finalizer (a new policy takes effect a
        moment after it is created)."""
        # kubectl prints one JSON document per object, one after the other (or a List)
        text, objs, dec, i = open(self.a.policy).read(), [], json.JSONDecoder(), 0
        while i < len(text):
            if text[i].isspace():
                i += 1
                continue
            o, i = dec.raw_decode(text, i)
            objs.extend(o.get("items", [o]) if o.get("kind") == "List" else [o])
        self.policy_objs = []
        for o in objs:
            if o.get("kind") not in ("MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"):
                continue
            plural = o["kind"].lower()
            plural = plural[:-1] + "ies" if plural.endswith("y") else plural + "s"
            path = f"{self.ADMISSION}/{plural}"
            st, r = self.k.req("POST", path, o)
            if st not in (200, 201, 409):
                raise RuntimeError(f"create {o['kind']}: {st} {r}")
            self.policy_objs.append(f"{path}/{o['metadata']['name']}")
        if not self.policy_objs:
            raise RuntimeError(f"no MutatingAdmissionPolicy in {self.a.policy}")
        body = self.engine_body("policy-probe", "api", "pass")
        deadline = time.time() + 60
        while time.time() < deadline:
            st, r = self.k.req("POST", f"{GROUP}/namespaces/{ns}/chaosengines?dryRun=All", body)
            if st == 201 and FINALIZER in (r["metadata"].get("finalizers") or []):
                log(f"admission policy in effect in {ns}")
                return
            time.sleep(0.5)
        raise RuntimeError("the chart's MutatingAdmissionPolicy did not take effect in 60 s")

    def delete_policy(self):
        for path in reversed(getattr(self, "policy_objs", [])):
            self.k.req("DELETE", path)
        self.policy_objs = []

    def latency_stats(self, uids):
        tr = self.tr
        to_job = [tr.job_added[u] - tr.created[u]["t_send"] for u in uids if u in tr.job_added]
        to_verdict = [tr.verdict[u][0] - tr.pod_term[u] for u in uids
                      if u in tr.verdict and u in tr.pod_term and tr.created[u]["finish"] == "pass"]
        create_rtt = [tr.created[u]["t_resp"] - tr.created[u]["t_send"] for u in uids]
        verdicts = {}
        for u in uids:
            if u in tr.verdict:
                verdicts[tr.verdict[u][1]] = verdicts.get(tr.verdict[u][1], 0) + 1

        def s(v):
            return dict(n=len(v), p50=pct(v, 50), p95=pct(v, 95), p99=pct(v, 99), p999=pct(v, 99.9),
                        max=max(v) if v else None)
        return dict(engine_to_job=s(to_job), term_to_verdict=s(to_verdict), create_rtt=s(create_rtt),
                    verdicts=verdicts)

    def checkpoint(self, label, idle_window):
        """Idle cost at the current engine count, then a controller restart."""
        n_eng = len(self.tr.created)
        n_running = sum(1 for c in self.tr.created.values() if c["finish"] == "never")
        # let the last status writes / events land
        time.sleep(2)
        # /metrics scrapes are outside the CPU window: a scrape recomputes the exporter gauges from
        # the caches and costs the controller ~0.2 ms per engine (measured below as scrape_ms)
        m0, api0 = self.metrics(), self.apiserver_requests()
        s0, off0, t0 = self.proc_stats(), self.log_offset(), time.time()
        time.sleep(idle_window)
        s1, off1, t1 = self.proc_stats(), self.log_offset(), time.time()
        m1, api1 = self.metrics(), self.apiserver_requests()
        reqs = self.requests_between(off0, off1)
        tot, by = self.summarize_requests(reqs)
        lit = {"|".join(k): v for k, v in self.api_delta(api0, api1).items() if k[1] == "litmuschaos.io" and k[0] != "WATCH"}
        idle = dict(seconds=t1 - t0, cpu_pct=100 * (s1["cpu_s"] - s0["cpu_s"]) / (t1 - t0),
                    reconciles=m1.get("chaos_conductor_reconciles_total", 0) - m0.get("chaos_conductor_reconciles_total", 0),
                    requests=tot, requests_by=by, apiserver_litmus_non_watch=lit)
        before = dict(s1, cpu_total_s=s1["cpu_s"])
        # scrape cost (the exporter gauges are recomputed from the caches on every scrape)
        ts = time.time()
        self.metrics()
        scrape_ms = (time.time() - ts) * 1000
        log(f"checkpoint {label}: {n_eng} engines, RSS {s1['rss_mib']:.1f} MiB (peak {s1['hwm_mib']:.1f}), "
            f"idle CPU {idle['cpu_pct']:.2f}%, idle requests {tot}")
        # restart
        self.stop_controller()
        t_spawn = self.start_controller(f"restart-{label}")
        ready, first = self.wait_ready(t_spawn)
        synced_log = self.synced_log_time(t_spawn)
        # every engine reconciled once: without scraping /metrics (a scrape at 5,000 engines costs
        # the controller ~1 s of CPU), the end of the start-up burst is when the process has used
        # no CPU for 1 s; one scrape afterwards confirms reconciles_total >= engines.
        all_done = None
        deadline = time.time() + 300
        last_cpu, quiet_since = self.proc_stats()["cpu_s"], None
        while time.time() < deadline:
            time.sleep(0.1)
            cpu = self.proc_stats()["cpu_s"]
            now = time.time()
            if cpu != last_cpu:
                last_cpu, quiet_since = cpu, None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= 1.0:
                all_done = quiet_since - t_spawn
                break
        s_quiet = self.proc_stats()
        m = self.metrics()
        reconciled = m.get("chaos_conductor_reconciles_total", 0)
        if reconciled < n_eng:
            log(f"WARNING: only {reconciled:.0f} of {n_eng} engines reconciled when the CPU went quiet")
            all_done = None
        time.sleep(3)
        s2 = self.proc_stats()
        off_end = self.log_offset()
        rtot, rby = self.summarize_requests(self.requests_between(0, off_end))
        restart = dict(readyz_s=ready, synced_log_s=synced_log, first_reconcile_s=first,
                       all_reconciled_s=all_done, cpu_s=s_quiet["cpu_s"], reconciles=reconciled, rss_mib=s2["rss_mib"],
                       hwm_mib=s2["hwm_mib"], requests=rtot, requests_by=rby)
        log(f"restart {label}: readyz {ready}, synced(log) {synced_log}, first reconcile {first}, "
            f"all reconciled {all_done}, RSS {s2['rss_mib']:.1f} MiB, requests {rtot}")
        self.results["checkpoints"].append(dict(label=label, engines=n_eng, running=n_running,
                                                completed=n_eng - n_running, before=before, idle=idle,
                                                scrape_ms=scrape_ms, restart=restart))

    # ------------------------------------------------------------------------------ mass abort
    TRIGGERS = ("delete", "stop", "annotate")

    def abort_request(self, name, trigger):
        """One abort by one of the three triggers (README "Abort and garbage collection")."""
        path = f"{GROUP}/namespaces/{self.ns}/chaosengines/{name}"
        if trigger == "delete":
            st, r = self.k.req("DELETE", path)
        else:
            body = ({"spec": {"engineState": "stop"}} if trigger == "stop"
                    else {"metadata": {"annotations": {ABORT_ANNOTATION: "true"}}})
            st, r = self.k.req("PATCH", path, body, ctype="application/merge-patch+json")
        if st not in (200, 202):
            raise RuntimeError(f"{trigger} {name}: {st} {r}")

    def abort_done(self, uid, trigger):
        """When the engine's abort was complete: no Job or pod of it left (terminating ones
        included) and the engine gone (delete) or in its final aborted status; None if not yet."""
        tr = self.tr
        if tr.jobs_live.get(uid) or tr.pods_live.get(uid):
            return None
        end = tr.engine_gone.get(uid) if trigger == "delete" else tr.stopped.get(uid)
        if end is None:
            return None
        return max(end, tr.residue_gone.get(uid, end))

    def live_residue(self, uids):
        """Listed, not watched: Jobs and pods labelled with one of `uids`' chaosUID, engines of
        them, and how many of those engines are not yet in their final status (delete: gone)."""
        want = set(uids)
        n = {}
        for kind, path in (("jobs", f"/apis/batch/v1/namespaces/{self.ns}/jobs?labelSelector=chaosUID"),
                           ("pods", f"/api/v1/namespaces/{self.ns}/pods?labelSelector=chaosUID")):
            st, r = self.k.req("GET", path)
            if st != 200:
                raise RuntimeError(f"list {kind}: {st}")
            n[kind] = sum(1 for o in r["items"] if o["metadata"]["labels"].get("chaosUID") in want)
        st, r = self.k.req("GET", f"{GROUP}/namespaces/{self.ns}/chaosengines")
        if st != 200:
            raise RuntimeError(f"list engines: {st}")
        unfinished = 0
        for e in r["items"]:
            if e["metadata"]["uid"] not in want:
                continue
            if e["metadata"].get("deletionTimestamp"):
                unfinished += 1
                continue
            st_ = e.get("status") or {}
            if (st_.get("engineStatus") != "stopped" or e["spec"].get("engineState") != "stop"
                    or ABORT_ANNOTATION in (e["metadata"].get("annotations") or {})):
                unfinished += 1
        n["engines unfinished"] = unfinished
        return n

    def apiserver_profile(self, tag, seconds):
        """kube-apiserver's CPU profile (Go pprof) over the next `seconds`, into
        <workdir>/apiserver-<tag>.pprof for scripts/bench to summarise with `go tool pprof`."""
        out = os.path.join(self.a.workdir, f"apiserver-{tag}.pprof")
        c = self.k._conn(fresh=True, timeout=seconds + 60)
        try:
            c.request("GET", f"/debug/pprof/profile?seconds={seconds}",
                      headers={"Authorization": f"Bearer {self.k.token}"})
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                log(f"apiserver profile: {r.status} {body[:200]!r}")
                return
            with open(out, "wb") as f:
                f.write(body)
            log(f"apiserver profile ({seconds} s) in {out}")
        except (http.client.HTTPException, OSError) as e:
            log(f"apiserver profile failed: {e!r}")
        finally:
            c.close()

    def abort_floor_requests(self, uid, trigger):
        """--abort-floor: what any controller has to send to end one abort, and nothing else: its
        Jobs deleted (the garbage collector takes their pods), its other pods deleted by label (a
        collection), and the engine's end written: the finalizer released (delete), or the final
        status (stop; the annotation also consumed and `engineState: stop`). No `Aborting` status,
        no Event, no live check: so the time to zero residue this gives is a lower bound on this
        machine for the cluster's share (API server, garbage collector, kwok)."""
        name, ns = self.tr.created[uid]["name"], self.ns
        for job in sorted(self.tr.jobs_live.get(uid, ())):
            st, r = self.k.req("DELETE", f"/apis/batch/v1/namespaces/{ns}/jobs/{job}",
                               {"propagationPolicy": "Background"})
            if st not in (200, 202, 404):
                raise RuntimeError(f"floor: delete job {job}: {st} {r}")
        st, r = self.k.req("DELETE", f"/api/v1/namespaces/{ns}/pods?labelSelector=chaosUID%3D{uid}")
        if st != 200:
            raise RuntimeError(f"floor: delete pods of {name}: {st} {r}")
        path = f"{GROUP}/namespaces/{ns}/chaosengines/{name}"
        merge = "application/merge-patch+json"
        if trigger == "delete":
            writes = [(path, {"metadata": {"finalizers": None}})]
        else:
            writes = [(f"{path}/status", {"status": {"engineStatus": "stopped"}})]
            if trigger == "annotate":
                writes.append((path, {"spec": {"engineState": "stop"},
                                      "metadata": {"annotations": {ABORT_ANNOTATION: None}}}))
        for p, body in writes:
            st, r = self.k.req("PATCH", p, body, ctype=merge)
            if st not in (200, 404):
                raise RuntimeError(f"floor: patch {p}: {st} {r}")

    def phase_abort(self, n, workers=32, timeout=600):
        """N running engines, then all aborted at once with mixed triggers (thirds: delete,
        engineState stop, the abort annotation), sent as fast as `workers` threads go; measured
        from the first abort request to zero residue."""
        load0 = open("/proc/loadavg").read().split()[:3]
        uids, _, _ = self.create_many("abort", n, never_every=1, workers=16)
        deadline = time.time() + 600
        while time.time() < deadline:
            left = [u for u in uids if u not in self.tr.job_added or u not in self.tr.pod_running
                    or u not in self.tr.exp_running]
            if not left:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{len(left)} of {n} abort engines not running after 600 s")
        time.sleep(2)  # the Running status writes land
        log(f"abort: {n} engines running (Job, Running pod, status Running); aborting them all")
        trig = {u: self.TRIGGERS[i % 3] for i, u in enumerate(uids)}
        sent = {}
        floor = self.a.abort_floor
        if floor:
            # the floor: no controller; the driver itself sends each engine's trigger and then the
            # least any controller must send for it (abort_floor_requests), all at once
            self.stop_controller()
        m0 = self.metrics()
        off0 = self.log_offset()
        cpu0 = self.cpu_by_process()
        t0 = time.time()

        def one(u):
            self.abort_request(self.tr.created[u]["name"], trig[u])
            sent[u] = self.tr.abort_sent[u] = time.time()
            if floor:
                self.abort_floor_requests(u, trig[u])

        prof = None
        if self.a.pprof_seconds:
            prof = threading.Thread(target=self.apiserver_profile, args=("abort", self.a.pprof_seconds),
                                    daemon=True)
            prof.start()

        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, uids))
        t_sent = time.time()
        log(f"abort: {n} abort requests sent in {t_sent - t0:.1f}s")
        done = {}
        deadline = t0 + timeout
        while time.time() < deadline:
            for u in uids:
                if u not in done:
                    d = self.abort_done(u, trig[u])
                    if d is not None:
                        done[u] = d
            if len(done) == n:
                residue = self.live_residue(uids)  # the watches' word, checked by a LIST
                if not any(residue.values()):
                    break
                log(f"abort: watches say done, the LIST still shows {residue}")
            time.sleep(0.2)
        t_end = time.time()
        cpu1 = self.cpu_by_process()
        if prof:
            prof.join(timeout=self.a.pprof_seconds + 60)  # its file, before scripts/bench reads it
        residue = self.live_residue(uids)
        m1 = self.metrics()
        reqs = self.requests_between(off0, self.log_offset())
        tot, by = self.summarize_requests(reqs)
        zero = max(done.values()) - t0 if len(done) == n and not any(residue.values()) else None
        per = {}
        for name in ("all",) + self.TRIGGERS:
            v = [done[u] - sent[u] for u in uids if u in done and (name == "all" or trig[u] == name)]
            per[name] = dict(n=len(v), p50=pct(v, 50), p99=pct(v, 99), max=max(v) if v else None)
        # where an engine's abort time goes: its request -> its Job gone, its pod gone, its end
        # (the final status or the engine gone), from the driver's watches
        tr = self.tr
        ends = {u: (tr.engine_gone if trig[u] == "delete" else tr.stopped).get(u) for u in uids}
        stages = {}
        for name, at in (("Job gone", tr.job_gone), ("pod gone", tr.pod_gone), ("final status or engine gone", ends)):
            v = [at[u] - sent[u] for u in uids if at.get(u) and u in sent]
            stages[name] = dict(n=len(v), p50=pct(v, 50), p99=pct(v, 99))
        res = dict(n=n, floor=floor, triggers={t: sum(1 for u in uids if trig[u] == t) for t in self.TRIGGERS}, stages=stages,
                   send_seconds=t_sent - t0, zero_residue_s=zero, waited_s=t_end - t0, per_engine=per,
                   left_over=residue, requests=tot, requests_by=by, workers=workers,
                   cpu_s={k: round(cpu1[k] - cpu0.get(k, 0), 2) for k in cpu1 if k in cpu0},
                   reconciles=m1.get("chaos_conductor_reconciles_total", 0) - m0.get("chaos_conductor_reconciles_total", 0),
                   loadavg_before=" ".join(load0), loadavg_after=" ".join(open("/proc/loadavg").read().split()[:3]))
        log(f"abort: zero residue after {zero if zero is None else round(zero, 2)} s; per engine {per['all']}; "
            f"requests {tot}: {by}; left over {residue}")
        self.results["abort"] = res

    def phase_delete_starvation(self, n, fresh_n=20, fresh_every=1.0, workers=32, timeout=900):
        """N running engines deleted at once; meanwhile a fresh engine every `fresh_every` s,
        each measured engine -> Job (is a normal launch starved behind the deletions?)."""
        load0 = open("/proc/loadavg").read().split()[:3]
        # running (their experiments never finish): each deletion has a Job and a pod to sweep
        uids, _, _ = self.create_many("del", n, never_every=1, workers=16, rate=40.0, backlog=400)
        deadline = time.time() + 900
        while time.time() < deadline:
            left = [u for u in uids if u not in self.tr.pod_running or u not in self.tr.exp_running]
            if not left:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{len(left)} of {n} engines to delete not running after 900 s")
        time.sleep(2)
        log(f"delete: {n} engines running; deleting them all, a fresh engine every {fresh_every:.1f}s")
        off0 = self.log_offset()
        fresh = []
        stop = threading.Event()

        def fresh_loop():
            for i in range(fresh_n):
                t_next = t0 + i * fresh_every
                while time.time() < t_next and not stop.is_set():
                    time.sleep(0.01)
                fresh.append(self.create_engine(f"fresh-{i:03d}", "fresh", "never"))

        t0 = time.time()
        th = threading.Thread(target=fresh_loop, daemon=True)
        th.start()
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda u: self.abort_request(self.tr.created[u]["name"], "delete"), uids))
        t_sent = time.time()
        log(f"delete: {n} DELETEs sent in {t_sent - t0:.1f}s")
        th.join()
        gone_at = None
        deadline = t0 + timeout
        while time.time() < deadline:
            if all(u in self.tr.engine_gone for u in uids):
                gone_at = max(self.tr.engine_gone[u] for u in uids) - t0
                break
            time.sleep(0.2)
        w_end = time.time() + 5
        while time.time() < w_end and not all(u in self.tr.job_added for u in fresh):
            time.sleep(0.1)
        residue = self.live_residue(uids)
        lat = [self.tr.job_added[u] - self.tr.created[u]["t_send"] if u in self.tr.job_added else None
               for u in fresh]
        got = [x for x in lat if x is not None]
        tot, by = self.summarize_requests(self.requests_between(off0, self.log_offset()))
        res = dict(n=n, running=True, send_seconds=t_sent - t0, all_gone_s=gone_at,
                   left_over=residue, fresh_n=len(fresh), fresh_every=fresh_every,
                   fresh_engine_to_job=lat, fresh_p50=pct(got, 50), fresh_max=max(got) if got else None,
                   fresh_over_1s=sum(1 for x in lat if x is None or x > 1.0),
                   fresh_during=sum(1 for u in fresh if gone_at is None
                                    or self.tr.created[u]["t_send"] - t0 <= gone_at),
                   requests=tot, requests_by=by,
                   loadavg_before=" ".join(load0), loadavg_after=" ".join(open("/proc/loadavg").read().split()[:3]))
        log(f"delete: all {n} gone after {gone_at} s; fresh engine -> Job {['%.3f' % x if x else None for x in lat]}; "
            f"left over {residue}")
        self.results["delete_starvation"] = res

    def phases_abort(self):
        if self.a.abort_n:
            self.phase_abort(self.a.abort_n)
            self.save_results()  # a long run stopped during the next part keeps this one
        if self.a.delete_n:
            self.phase_delete_starvation(self.a.delete_n)

    def save_results(self):
        with open(self.a.out, "w") as f:
            json.dump(self.results, f, indent=1, default=str)

    # ---------------------------------------------------------------------------------- main
    def run(self):
        a = self.a
        quick = a.quick
        self.setup_namespace()
        self.start_watches()
        t = self.start_controller("main")
        ready, _ = self.wait_ready_only(t)
        log(f"controller up, /readyz after {ready:.2f}s")
        self.results["concurrency"] = a.concurrency

        # 1. API cost of single-experiment runs (sequential, nothing else going on), each CRD mode
        modes = a.crd_modes.split(",")
        if a.policy:
            modes += [f"{m}+policy" for m in modes if "+" not in m]
        if a.requests_only:
            self.phase_api_modes(modes, runs=a.runs or 2, run_for=10.0)
            self.stop_controller()
            return
        if a.memory_only:
            self.phase_memory()
            self.save_samples()
            self.stop_controller()
            return
        if a.abort_only:
            self.phases_abort()
            self.stop_controller()
            return
        if a.steady_only:
            # issue 16 item 2: the steady scenario and the burst, nothing before or after; with
            # --steady-policy as a default install (the chart's MutatingAdmissionPolicy adds the
            # finalizer and records the author, whom the controller re-checks before each start)
            self.results["steady_policy"] = a.steady_policy
            if a.steady_policy:
                self.apply_policy(self.ns)
            try:
                self.phase_steady(self.steady_count())
                self.phase_burst(500)
            finally:
                if a.steady_policy:
                    self.delete_policy()
            self.results["fake_errors"] = self.tr.fake_errors
            self.stop_controller()
            return
        self.phase_api_modes(modes, runs=a.runs or (1 if quick else 3), run_for=10.0 if quick else 30.0)

        # 2. steady rate (--steady-seconds at --rate; quick: 100 engines), checkpoint at ~100 engines
        self.phase_steady(100 if quick else self.steady_count(), checkpoint_at=100)

        # 3. burst
        self.phase_burst(100 if quick else 500)
        self.checkpoint(f"~{len(self.tr.created)}", a.idle_window)

        # 4. fill up to the target and a last checkpoint
        if not quick and a.target > len(self.tr.created):
            n = a.target - len(self.tr.created)
            uf, ft0, ft1 = self.create_many("fill", n, rate=a.fill_rate, workers=16, backlog=a.backlog)
            self.wait_settled(uf, 900)
            settled_at = time.time()
            self.results["phases"]["fill"] = dict(n=n, create_seconds=ft1 - ft0,
                                                  settle_seconds=settled_at - ft0,
                                                  **self.latency_stats(uf))
            self.checkpoint(f"{len(self.tr.created)}", a.idle_window)
        self.results["fake_errors"] = self.tr.fake_errors
        self.save_samples()
        # 5. the mass abort and the mass deletion, on top of what is there
        if not quick:
            self.phases_abort()
        self.stop_controller()

    def steady_count(self):
        """Engines of the steady scenario: --rate for --steady-seconds (1,200 at 20/s for 60 s)."""
        return max(1, round(self.a.rate * self.a.steady_seconds))

    def phase_steady(self, n, checkpoint_at=None):
        """n engines created at --rate (every 10th never finishes), then waited for until settled.
        With `checkpoint_at` (full and quick mode: 100) the series stops after that many for a
        checkpoint (idle window, restart) and then goes on at the same rate with the rest."""
        a = self.a
        first = min(n, checkpoint_at) if checkpoint_at else n
        u1, t0, t1 = self.create_many("steady", first, rate=a.rate)
        create_s = t1 - t0
        uids = list(u1)
        if checkpoint_at:
            self.wait_settled(u1, 120)
            self.checkpoint(f"~{first}", a.idle_window)
        if n > first:
            # the second part continues the steady series (same rate, engines first..n-1)
            u2, t2, t3 = self.create_many_offset("steady", first, n - first, a.rate)
            uids += u2
            create_s += t3 - t2
        self.wait_settled(uids, 300)
        # seconds: the schedule's length (n / rate); create_seconds: what creating them took
        # (without the checkpoint's pause), so a creation rate that fell behind shows
        self.results["phases"]["steady"] = dict(n=len(uids), rate=a.rate, seconds=n / a.rate,
                                                create_seconds=create_s, **self.latency_stats(uids))

    def phase_burst(self, n):
        """n engines created at once (32 threads, as fast as they go), waited for until settled."""
        ub, bt0, bt1 = self.create_many("burst", n, rate=None, workers=32)
        self.wait_settled(ub, 600)
        self.results["phases"]["burst"] = dict(n=len(ub), create_seconds=bt1 - bt0,
                                               **self.latency_stats(ub))

    def phase_memory(self):
        """Footprint only: filled to 1,000 engines and then to the target (the fill's backlog-limited
        pace), a checkpoint (RSS, idle cost, restart) at each."""
        for target in sorted({min(1000, self.a.target), self.a.target}):
            n = target - len(self.tr.created)
            if n <= 0:
                continue
            u, _, _ = self.create_many(f"mem{target}", n, rate=self.a.fill_rate, workers=16, backlog=self.a.backlog)
            self.wait_settled(u, 900)
            self.checkpoint(f"{len(self.tr.created)}", self.a.idle_window)

    def save_samples(self):
        """300 objects of each cached kind, for bench/memprobe (heap cost per object)."""
        d = os.path.join(self.a.workdir, "samples")
        os.makedirs(d, exist_ok=True)
        ns = self.ns
        for name, path in (("engines", f"{GROUP}/namespaces/{ns}/chaosengines?limit=300"),
                           ("jobs", f"/apis/batch/v1/namespaces/{ns}/jobs?labelSelector=chaosUID&limit=300"),
                           ("pods", f"/api/v1/namespaces/{ns}/pods?labelSelector=chaosUID&limit=300"),
                           ("results", f"{GROUP}/namespaces/{ns}/chaosresults?limit=300")):
            st, r = self.k.req("GET", path)
            if st == 200:
                with open(os.path.join(d, f"{name}.json"), "w") as f:
                    json.dump(r, f)

    def wait_ready_only(self, t0, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited ({self.proc.returncode}); see {self.proc_log}")
            if self.readyz():
                return time.time() - t0, None
            time.sleep(0.02)
        raise RuntimeError("controller not ready")

    def create_many_offset(self, phase, start, n, rate):
        t0 = time.time()

        def one(i):
            delay = t0 + (i - start) / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            finish = "never" if i % 10 == 9 else "pass"
            return self.create_engine(f"{phase}-{i:05d}", phase, finish)

        with cf.ThreadPoolExecutor(max_workers=16) as pool:
            uids = list(pool.map(one, range(start, start + n)))
        log(f"{phase}: created {n} more engines in {time.time() - t0:.1f}s")
        return uids, t0, time.time()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--controller", required=True)
    p.add_argument("--namespace", default="bench")
    p.add_argument("--workdir", required=True)
    p.add_argument("--metrics-port", type=int, default=29180)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--requests-only", action="store_true",
                   help="only the requests per single-experiment run (10 s runs), in each CRD mode")
    p.add_argument("--memory-only", action="store_true",
                   help="only the footprint: filled to 1,000 engines and to --target, a checkpoint at each")
    p.add_argument("--steady-only", action="store_true",
                   help="only the steady scenario (--rate for --steady-seconds) and a burst of 500")
    p.add_argument("--steady-policy", action="store_true",
                   help="--steady-only with the chart's MutatingAdmissionPolicy (--policy) in effect")
    p.add_argument("--steady-seconds", type=float, default=60.0,
                   help="length of the steady scenario at --rate (full and --steady-only; quick: 100 engines)")
    p.add_argument("--heaptrack", help="run the controller under heaptrack, its recordings into this directory "
                   "(needs a controller built with --features system-alloc)")
    p.add_argument("--abort-only", action="store_true",
                   help="only the mass abort (--abort-n engines) and the mass deletion (--delete-n)")
    p.add_argument("--abort-n", type=int, default=1000, help="running engines aborted at once")
    p.add_argument("--abort-floor", action="store_true",
                   help="the mass abort without the controller: the driver sends the least any controller "
                        "must (Job and pod deletes, the engine's end) right after each trigger")
    p.add_argument("--pprof-seconds", type=int, default=0,
                   help="record kube-apiserver's CPU profile for this long from the first abort request "
                        "(the cluster must serve /debug/pprof: scripts/bench BENCH_PPROF=1)")
    p.add_argument("--delete-n", type=int, default=5000,
                   help="running engines deleted at once while fresh engines launch (0: skip)")
    p.add_argument("--crd-modes", default="subresource,litmus",
                   help="comma-separated: subresource (our CRD), litmus (Litmus's CRD, no status subresource)")
    p.add_argument("--policy", help="JSON of the chart's admission policy objects (helm template): adds the "
                   "modes subresource+policy and litmus+policy (the MutatingAdmissionPolicy in effect)")
    p.add_argument("--runs", type=int, default=0, help="single-experiment runs per CRD mode (0: by mode)")
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--target", type=int, default=5000)
    p.add_argument("--fill-rate", type=float, default=40.0)
    p.add_argument("--backlog", type=int, default=400)
    p.add_argument("--idle-window", type=float, default=30.0)
    p.add_argument("--out", required=True, help="results JSON")
    a = p.parse_args()
    if a.quick:
        a.idle_window = min(a.idle_window, 10.0)
    for old in os.listdir(a.workdir):  # logs of an earlier run would mix into the breakdown
        if old.startswith("controller-") and old.endswith(".log"):
            os.remove(os.path.join(a.workdir, old))
    b = Bench(a)
    t0 = time.time()
    try:
        b.run()
    finally:
        b.stop_controller()
        b.results["wall_seconds"] = time.time() - t0
        b.results["quick"] = a.quick
        b.results["requests_only"] = a.requests_only
        b.results["memory_only"] = a.memory_only
        b.results["abort_only"] = a.abort_only
        b.results["steady_only"] = a.steady_only
        with open(a.out, "w") as f:
            json.dump(b.results, f, indent=1, default=str)
        tr = b.tr
        raw = {u: dict(c, job_added=tr.job_added.get(u), pod_running=tr.pod_running.get(u),
                       pod_term=tr.pod_term.get(u), verdict=(tr.verdict.get(u) or (None,))[0],
                       exp_running=tr.exp_running.get(u), completed=tr.completed.get(u),
                       result_final=tr.result_final.get(u), abort_sent=tr.abort_sent.get(u),
                       job_gone=tr.job_gone.get(u), pod_gone=tr.pod_gone.get(u),
                       stopped=tr.stopped.get(u), engine_gone=tr.engine_gone.get(u))
               for u, c in list(tr.created.items())}
        with open(a.out.replace(".json", "-engines.json"), "w") as f:
            json.dump(raw, f)
        log(f"results in {a.out}")


if __name__ == "__main__":
    main()
