"""Ranking concurrency models for a project profile, from a report's measured evidence.

SCORING (printed by `scripts/advise --help`; keep the two in step)

A profile describes one "wave" of work: `concurrent_requests` (N) requests in flight at once,
each needing `compute_us` of CPU and `wait_ms` of waiting (I/O), on `cpus` CPUs. For every
model the report has runs of, the estimate is

    T_wave = T_wait + T_compute                                     (lower is better)
    T_wait    from the `io` run at the tasks count nearest N (at or above N preferred) and the
              wait nearest wait_ms, best over the model's other parameters (workers,
              concurrency): each model as well tuned as the report shows. With R = its
              makespan / ideal wait, measured at t tasks and a wait of w:
                R < 2: every task waited at once; the excess (makespan - w) is overhead per
                       task:      T_wait = wait_ms + (makespan - w) x N / t
                R >= 2: waits queued behind each other (waves of a pool); the excess grows
                       with the wait:  T_wait = wait_ms x (1 + (R - 1) x N / t)
    T_compute = N x compute_us / S  S = speedup over the baseline model in the `cpu` run at the
                                    task_us nearest compute_us, at the largest task count, best
                                    over workers.

Waiting and computing are assumed not to overlap (conservative, the same for every model).
Throughput = N / T_wave. The interval of T_wave comes from the intervals of R and S.

A fan-out profile (`remote_calls`, optionally `nodes` and `in_flight`: N remote calls over W
nodes, C in flight, each `compute_us` and `wait_ms` on its node) is scored from the `scatter`
runs instead: the configuration of tasks, nodes, in_flight, compute_us and wait_ms nearest the
profile's (by the sum of log ratios) that any model ran ok, the same for every model; each
model's best tasks_per_second there (over workers, payload) gives T = remote_calls /
tasks_per_second, its makespan_over_ideal cited. A run of the model there that failed excludes
it; a configuration away from the profile's is flagged, with the command for the exact run.

A `link` in the profile (as `cmbench run --link` takes it: "delay=5ms,jitter=1ms,rate=100mbit")
picks, for the workloads that call nodes (server, scatter), the runs on the nearest conditions
(the delay first, then the jitter, then the rate; no link is a delay of 0; a row's own `link`,
else the report's `context.link`). Runs on other conditions still count, and the evidence says
it used them, with the command for the run on the profile's link.

Constraints; a model that breaks one is ranked after every model that does not:
  - concurrency: an `io` run with at least N tasks alive at once ran ok. A failed or skipped
    run at N or more excludes the model with that run's error; no run at N or more leaves it
    "unproven" (ranked, flagged, and the run to make is printed).
  - memory (with `memory_budget_mb` and wait_ms > 0): bytes_per_unit of that io run x N must fit.
  - latency (with `latency_target_ms`): a `server` run must show the model serving
    `request_rate` with its `latency_percentile` (p99 by default) under the target, at the
    compute_us and wait_ms nearest the profile's:
      a fixed-rate run offered at or above the rate that kept up: its latency (from each
        request's due time) as measured; a run offered near the rate (within 2x) is preferred;
      a saturation search whose saturation_rps >= the rate: the p99 at the rate interpolated
        (log scale) between the p99 it measured at 50% and at 90% of saturation (below 50%: the
        p99 at 50%; past 90%: toward the search's p99 limit, which every passing rate met).
    A fixed rate that did not keep up, or a saturation below the rate, excludes the model; a run
    the load generator limited (generator_bound) is a lower bound of the server's and only
    leaves the model unproven (with the command for a run with more load). Every run cited is
    named. `pingpong` round trips (a lower bound) stand in only when no model has server runs.
  - correctness: a run of the model in any workload whose checksum differed from
    its workload's reference excludes it ("wrong result"); only ok runs are ever cited.
The baseline model is ranked too: on one CPU with nothing to wait for, it can be the answer.
Which workload stands for each part is an input, not a name the scripts know: `cpu` (compute),
`io` (wait), `server` (latency), `pingpong` (latency_bound) and `scatter` (fan_out) above are the
defaults of
scripts/profiles/evidence.json, which a profile's own "evidence" object overrides.
With `objective: latency` the measured latency at the rate ranks first, then the saturation
rate (higher first), and T_wave breaks ties, when it is a server's latency. When only pingpong's lower bounds stand in, they decide who meets the target
but not the order (a pool hands a pingpong peer off on one worker, a server request wakes a
thread in every model): T_wave ranks the models that meet it, and the bound breaks ties.

A model the report lacks evidence for is listed as not rankable, with the `cmbench run`
command that would measure it. "What would change the answer" re-runs the ranking with
compute, wait, concurrency and offered rate scaled by 1/100 to 100x and reports the nearest
change of the winner, the memory budget and latency target that would exclude it, a runner-up
whose interval overlaps the winner's (with the command for more repetitions), and every
extrapolation the estimate made (with the command that would measure it instead).
"""

import json
import math
import os

from . import link as L
from . import results as R
from . import style as S
from .report_io import ReportError

PROFILE_FIELDS = {
    "name": (str, None, "short name of the profile"),
    "description": (str, None, "one line saying what the project is"),
    "compute_us": ((int, float), 0.0, "CPU work per request, microseconds"),
    "wait_ms": ((int, float), 0.0, "waiting (I/O, remote calls) per request, milliseconds"),
    "concurrent_requests": ((int, float), 1, "requests in flight at once"),
    "memory_budget_mb": ((int, float), None, "memory for the requests in flight, MiB"),
    "latency_target_ms": ((int, float), None, "latency target for one request, milliseconds"),
    "latency_percentile": ((int, float), 99.0, "the percentile the latency target applies to"),
    "request_rate": ((int, float), None, "offered requests per second (server evidence)"),
    "cpus": ((int, float), None, "CPUs the project will run on (default: the report's)"),
    "objective": (str, "throughput", "throughput (rank by T_wave) or latency (by measured latency)"),
    "remote_calls": ((int, float), None, "fan-out: remote calls (tasks) to make; ranks by the fan_out "
                                         "workload's runs"),
    "nodes": ((int, float), None, "fan-out: nodes the calls are spread over"),
    "in_flight": ((int, float), None, "fan-out: the most calls in flight at once"),
    "link": ((str, dict), None, "network link conditions to the nodes, as `cmbench run --link` takes them "
                                "(\"delay=5ms,jitter=1ms,rate=100mbit\"); default: none"),
    "evidence": (dict, None, "which workload stands for each part: compute, wait, latency, "
                             "latency_bound, fan_out (default: scripts/profiles/evidence.json)"),
}
EVIDENCE_ROLES = ("compute", "wait", "latency", "latency_bound", "fan_out")
# The fan-out workload's parameters, each the profile field it is matched with, and its figures
# (README, "scatter"): the throughput scored and the makespan over ideal cited.
FAN_OUT_PARAMS = (("tasks", "remote_calls"), ("nodes", "nodes"), ("in_flight", "in_flight"),
                  ("compute_us", "compute_us"), ("wait_ms", "wait_ms"))
FAN_OUT_RATE = "tasks_per_second"
FAN_OUT_RATIO = "makespan_over_ideal"
EVIDENCE_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "profiles",
                             "evidence.json")


def load_evidence(path=EVIDENCE_FILE):
    """Which workload's runs stand for each part of a profile: {role: workload}. Raises
    ReportError."""
    if not os.path.isfile(path):
        raise ReportError("%s: no such evidence file" % path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError("%s: evidence file is not valid JSON (%s)" % (path, e))
    return check_evidence({k: v for k, v in doc.items() if k != "description"}
                          if isinstance(doc, dict) else doc, path, complete=True)


def check_evidence(doc, where, complete=False):
    if not isinstance(doc, dict):
        raise ReportError("%s: evidence is a JSON object of %s" % (where, ", ".join(EVIDENCE_ROLES)))
    unknown = [k for k in doc if k not in EVIDENCE_ROLES]
    missing = [k for k in EVIDENCE_ROLES if k not in doc] if complete else []
    if unknown or missing:
        raise ReportError("%s: evidence %s %s (expected: %s)" % (
            where, "has unknown" if unknown else "lacks", ", ".join(unknown or missing),
            ", ".join(EVIDENCE_ROLES)))
    for k, v in doc.items():
        if not isinstance(v, str) or not v:
            raise ReportError("%s: evidence.%s is %r, expected a workload's name" % (where, k, v))
    return dict(doc)


def load_profile(path):
    if not os.path.isfile(path):
        raise ReportError("%s: no such profile file" % path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError("%s: profile is not valid JSON (%s)" % (path, e))
    if not isinstance(doc, dict):
        raise ReportError("%s: a profile is a JSON object of %s" % (path, ", ".join(PROFILE_FIELDS)))
    return doc


def make_profile(doc, where="profile", evidence=None):
    """Validates and completes a profile dict; `evidence` ({role: workload}, load_evidence())
    is completed by the profile's own. Raises ReportError."""
    unknown = [k for k in doc if k not in PROFILE_FIELDS]
    if unknown:
        raise ReportError("%s: unknown field%s %s (known: %s)" % (
            where, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(PROFILE_FIELDS)))
    out = {}
    for key, (types, default, _) in PROFILE_FIELDS.items():
        v = doc.get(key, default)
        if types is dict:  # checked below, field by field
            out[key] = v
            continue
        if key == "link":
            try:
                out[key] = L.parse(v)
            except L.LinkError as e:
                raise ReportError("%s: link: %s" % (where, e))
            continue
        if v is not None and (not isinstance(v, types) or isinstance(v, bool)):
            raise ReportError("%s: %s is %r, expected a %s" % (
                where, key, v, "number" if types != str else "string"))
        if v is not None and types != str:
            if not math.isfinite(v) or v < 0:
                raise ReportError("%s: %s is %r, expected a number >= 0" % (where, key, v))
        out[key] = v
    if out["concurrent_requests"] < 1:
        raise ReportError("%s: concurrent_requests must be at least 1" % where)
    fan_out = [k for _, k in FAN_OUT_PARAMS[1:3] if out[k] is not None]
    if fan_out and out["remote_calls"] is None:
        raise ReportError("%s: %s describe a fan-out: give remote_calls too" % (where, " and ".join(fan_out)))
    for k in ("remote_calls",) + tuple(fan_out):
        if out[k] is not None and out[k] < 1:
            raise ReportError("%s: %s must be at least 1" % (where, k))
    if out["remote_calls"] is None and out["compute_us"] == 0 and out["wait_ms"] == 0:
        raise ReportError("%s: compute_us and wait_ms are both 0: nothing to estimate" % where)
    if not 0 < out["latency_percentile"] < 100:
        raise ReportError("%s: latency_percentile must be between 0 and 100" % where)
    if out["objective"] not in ("throughput", "latency"):
        raise ReportError("%s: objective must be throughput or latency" % where)
    if out["objective"] == "latency" and out["latency_target_ms"] is None:
        raise ReportError("%s: objective latency needs latency_target_ms" % where)
    out["concurrent_requests"] = int(round(out["concurrent_requests"]))
    out["name"] = out["name"] or "custom"
    own = check_evidence(out["evidence"], where) if out["evidence"] is not None else {}
    out["evidence"] = dict(evidence if evidence is not None else load_evidence(), **own)
    return out


def describe_profile(p, cpus):
    per = "remote call" if p["remote_calls"] is not None else "request"
    bits = ["compute %s + %s per %s" % (
                S.fmt_time_ns(p["compute_us"] * 1e3),
                "wait %s" % S.fmt_time_ns(p["wait_ms"] * 1e6) if p["wait_ms"] else "no wait", per)]
    if p["remote_calls"] is not None:
        bits.append("%s remote calls%s%s" % (
            S.fmt_int(p["remote_calls"]), " over %s nodes" % S.fmt_int(p["nodes"]) if p["nodes"] else "",
            ", %s in flight" % S.fmt_int(p["in_flight"]) if p["in_flight"] else ""))
    else:
        bits.append("%s in flight" % S.fmt_int(p["concurrent_requests"]))
    bits.append("link: %s" % L.describe(p["link"]))
    if p["memory_budget_mb"] is not None:
        bits.append("memory budget %s" % S.fmt_bytes(p["memory_budget_mb"] * (1 << 20)))
    if p["latency_target_ms"] is not None:
        bits.append("p%g latency target %s" % (p["latency_percentile"], S.fmt_time_ns(p["latency_target_ms"] * 1e6)))
    if p["request_rate"] is not None:
        bits.append("%s requests/s offered" % S.fmt_int(p["request_rate"]))
    bits.append("%s CPUs" % (cpus if cpus else "?"))
    bits.append("objective: %s" % p["objective"])
    return ", ".join(bits)


# --- evidence ------------------------------------------------------------------------------------

class Evidence:
    def __init__(self, kind, text, rows, value=None, lo=None, hi=None, extrapolated=None):
        self.kind = kind              # "wait", "compute", "memory", "latency", "concurrency"
        self.text = text              # one line, with the figures
        self.rows = rows              # names of the report rows used
        self.value = value
        self.lo = lo if lo is not None else value
        self.hi = hi if hi is not None else value
        self.extrapolated = extrapolated  # why the figure is not measured at the profile, or None

    def to_json(self):
        return {"kind": self.kind, "text": self.text, "rows": self.rows, "value": self.value,
                "interval": [self.lo, self.hi], "extrapolated": self.extrapolated}


class Need:
    """A run the report lacks: (workload, params, models)."""

    def __init__(self, workload, params, model, why, repetitions=None, link=None):
        self.workload, self.params, self.model, self.why = workload, params, model, why
        self.repetitions = repetitions
        self.link = link  # the link conditions to run it on (link.py), None: none


def _nearest(values, target, prefer_at_least=False):
    vals = sorted(set(v for v in values if v is not None))
    if not vals:
        return None
    if prefer_at_least:
        above = [v for v in vals if v >= target]
        if above:
            return above[0]
    return min(vals, key=lambda v: (abs(math.log((v + 1e-9) / (target + 1e-9))), -v))


def _far(a, b, factor=2.0):
    if a is None or b is None:  # nothing measured to be far from
        return False
    if a <= 0 or b <= 0:
        return a != b
    return max(a / b, b / a) > factor


class Assessment:
    def __init__(self, model):
        self.model = model
        self.evidence = []
        self.problems = []      # constraint broken: excludes
        self.unproven = []      # constraint not shown either way
        self.missing = []       # evidence the estimate needs and lacks
        self.needs = []
        self.t_wave = None
        self.t_lo = None
        self.t_hi = None
        self.latency_ns = None
        self.latency_is_bound = False  # the latency is a pingpong stand-in, not a server's
        self.saturation_rps = None     # the highest saturation a server search showed
        self.saturation_is_bound = False  # ... where the generator limited it: a lower bound
        self.memory_bytes = None

    @property
    def group(self):
        if self.missing:
            return 2
        if self.problems:
            return 1
        return 0

    def to_json(self):
        return {"model": self.model, "estimate_ms": self.t_wave,
                "estimate_interval_ms": [self.t_lo, self.t_hi],
                "latency_ns": self.latency_ns, "latency_is_lower_bound": self.latency_is_bound,
                "saturation_rps": self.saturation_rps, "saturation_is_lower_bound": self.saturation_is_bound,
                "memory_bytes": self.memory_bytes,
                "excluded_by": self.problems, "unproven": self.unproven,
                "missing": self.missing,
                "evidence": [e.to_json() for e in self.evidence]}


def _compute_evidence(res, model, profile, cpus, a):
    cpu = profile["evidence"]["compute"]
    pts = res.points_for(cpu)
    if not pts:
        a.missing.append("no %s runs in the report" % cpu)
        a.needs.append(Need(cpu, {"task_us": profile["compute_us"], "workers": cpus}, model, "speedup"))
        return None
    target = _nearest([p.params.get("task_us") for p in pts], profile["compute_us"])
    mine = [p for p in res.points_for(cpu, model) if p.params.get("task_us") == target]
    if not mine:
        a.missing.append("no %s run of %s" % (cpu, model))
        a.needs.append(Need(cpu, {"task_us": max(1, round(profile["compute_us"])), "workers": cpus}, model, "speedup"))
        return None
    ok = [(res.speedup(p), p) for p in mine if p.ok]
    ok = [(s, p) for s, p in ok if s is not None]
    if not ok:
        bad = next((p for p in mine if not p.ok), None)
        if bad is not None:
            err = bad.error or "no reason given"
            a.missing.append("%s run %s %s" % (cpu, bad.name, err if err.startswith(bad.status) else "%s: %s" % (bad.status, err)))
        else:
            baseline = res.facts.baseline
            a.missing.append("no %s %s run to compute a speedup against" % (baseline or "baseline", cpu))
            if baseline is not None:
                a.needs.append(Need(cpu, {"task_us": target}, baseline, "the 1x reference"))
        return None
    biggest = max(p.params.get("tasks", 0) for _, p in ok)
    ok = [(s, p) for s, p in ok if p.params.get("tasks", 0) == biggest]
    (s, lo, hi, base), p = max(ok, key=lambda sp: sp[0][0])
    extra = None
    if _far(target, profile["compute_us"]):
        extra = "measured at task_us=%s, the profile needs %s" % (S.fmt_int(target), S.fmt_int(profile["compute_us"]))
        a.needs.append(Need(cpu, {"task_us": max(1, round(profile["compute_us"])), "workers": cpus}, model,
                            "speedup at the profile's compute per request"))
    t = profile["concurrent_requests"] * profile["compute_us"] / 1000.0
    ev = Evidence("compute", "%s x %s / speedup %s (workers=%s) = %s" % (
        S.fmt_int(profile["concurrent_requests"]), S.fmt_time_ns(profile["compute_us"] * 1e3),
        S.fmt_ratio(s), p.params.get("workers", "?"), S.fmt_time_ns(t / s * 1e6)),
        list(dict.fromkeys([p.name, base.name])), value=t / s, lo=t / hi, hi=t / lo, extrapolated=extra)
    a.evidence.append(ev)
    return ev


def _io_points(res, io, model):
    """The model's runs of the wait workload with tasks to scale from (a run of 0 tasks measured
    nothing)."""
    return [p for p in res.points_for(io, model) if p.params.get("tasks", 0) > 0]


def _wait_evidence(res, model, profile, a):
    io = profile["evidence"]["wait"]
    n = profile["concurrent_requests"]
    all_io = [p for p in res.points if p.workload == io and p.params.get("tasks", 0) > 0]
    mine = _io_points(res, io, model)
    need_params = {"tasks": n, "wait_ms": max(0, round(profile["wait_ms"]))}
    if not all_io or not mine:
        a.missing.append("no %s run of %s" % (io, model))
        a.needs.append(Need(io, need_params, model, "waiting at the profile's concurrency"))
        return None
    # Concurrency: anything at >= n that failed or was skipped excludes the model.
    at_or_above = [p for p in mine if p.params["tasks"] >= n]
    ok_at_or_above = [p for p in at_or_above if p.ok]
    bad = sorted((p for p in at_or_above if not p.ok), key=lambda p: p.params["tasks"])
    if bad and not ok_at_or_above:
        p = bad[0]
        a.problems.append("%s tasks alive at once %s: %s (run %s)" % (
            S.fmt_int(p.params["tasks"]), p.status, p.error or "no reason given", p.name))
    for p in mine:
        if _wrong_result(p):
            continue  # reported once for every workload in assess()
        if p.status == "failed" and any(q.ok and q.params["tasks"] >= p.params["tasks"] for q in mine):
            a.unproven.append("flaky: %s failed (%s) though a larger run passed" % (p.name, p.error))
    ok = [p for p in mine if p.ok and p.metrics.get("makespan_over_ideal") is not None]
    if not ok:
        if not a.problems:
            worst = next((p for p in mine if not p.ok), None)
            a.missing.append("no io run of %s ran ok%s" % (model, (": %s" % worst.error) if worst else ""))
        return None
    tasks_target = _nearest([p.params["tasks"] for p in ok], n, prefer_at_least=True)
    cands = [p for p in ok if p.params["tasks"] == tasks_target]
    wait_target = _nearest([p.params.get("wait_ms", 0) for p in cands], profile["wait_ms"])
    cands = [p for p in cands if p.params.get("wait_ms", 0) == wait_target]
    p = min(cands, key=lambda q: q.metrics["makespan_over_ideal"])
    ratio = p.metrics["makespan_over_ideal"]
    iv = p.metric_ci("makespan_over_ideal") or (ratio, ratio)
    t_meas = p.params["tasks"]
    scale = n / t_meas
    w_meas = p.params.get("wait_ms", 0) or p.metrics.get("ideal_ms") or 0
    w = profile["wait_ms"]

    def t_wait(r):
        """Estimated makespan (ms) of N tasks waiting w ms, from a measured ratio r."""
        if ratio < 2:
            return w + (r - 1) * w_meas * scale
        return w * (1 + (r - 1) * scale)
    extra = []
    if tasks_target < n:
        a.unproven.append("concurrency: the largest io run that ran ok had %s tasks, the profile needs %s"
                          % (S.fmt_int(t_meas), S.fmt_int(n)))
        a.needs.append(Need(io, need_params, model, "%s tasks alive at once" % S.fmt_int(n)))
    if _far(t_meas, n):
        extra.append("scaled from %s tasks to %s" % (S.fmt_int(t_meas), S.fmt_int(n)))
    if _far(wait_target, profile["wait_ms"]) and profile["wait_ms"] > 0:
        extra.append("measured with wait_ms=%s, the profile waits %s ms" % (S.fmt_int(wait_target), S.fmt_count(profile["wait_ms"])))
        if not any(nd.workload == io for nd in a.needs):
            a.needs.append(Need(io, need_params, model, "the profile's wait"))
    knobs = ", ".join("%s=%s" % (k, S.fmt_int(v)) for k, v in p.params.items() if k not in ("tasks", "wait_ms"))
    if t_meas == n and w_meas == w:
        how = "as measured"
    elif ratio < 2:
        how = "all waited at once, so %s + overhead %s" % (S.fmt_time_ns(w * 1e6), S.fmt_time_ns((t_wait(ratio) - w) * 1e6))
    else:
        how = "waits queued in waves, so %s x %s" % (S.fmt_time_ns(w * 1e6), S.fmt_ratio(t_wait(ratio) / w))
    ev = Evidence("wait", "makespan/ideal %s at %s tasks, wait_ms=%s (%s) -> %s tasks: %s = %s" % (
        S.fmt_ratio(ratio), S.fmt_int(t_meas), S.fmt_int(w_meas), knobs or "as run", S.fmt_int(n), how,
        S.fmt_time_ns(t_wait(ratio) * 1e6)),
        [p.name], value=t_wait(ratio), lo=t_wait(iv[0]), hi=t_wait(iv[1]),
        extrapolated="; ".join(extra) or None)
    a.evidence.append(ev)
    return ev, p


def _memory_evidence(profile, io_point, a):
    b = io_point.metrics.get("bytes_per_unit")
    n = profile["concurrent_requests"]
    if b is None:
        a.unproven.append("memory: the io run has no bytes_per_unit (no memory sample caught a wait in flight: run more or longer tasks)")
        return None
    total = max(b, 0) * n
    a.memory_bytes = total
    budget = profile["memory_budget_mb"]
    verdict = ""
    if budget is not None:
        verdict = " of %s: %s" % (S.fmt_bytes(budget * (1 << 20)),
                                   "fits" if total <= budget * (1 << 20) else "DOES NOT FIT")
        if total > budget * (1 << 20):
            a.problems.append("memory: %s per request x %s = %s exceeds the budget of %s" % (
                S.fmt_bytes(b), S.fmt_int(n), S.fmt_bytes(total), S.fmt_bytes(budget * (1 << 20))))
    ev = Evidence("memory", "%s per waiting task x %s = %s%s" % (S.fmt_bytes(b), S.fmt_int(n), S.fmt_bytes(total), verdict),
                  [io_point.name], value=total)
    a.evidence.append(ev)
    return ev


def _on_link(points, profile, a, where):
    """The points on the link nearest the profile's (no link: the nearest to none). A model whose
    runs are all on other conditions is still scored from them, and the evidence says so
    (returned as the note for `extrapolated`), with the command for the run on the profile's
    link."""
    if not points:
        return points, None
    want = profile["link"]
    best = min(L.distance(p.link, want) for p in points)
    chosen = [p for p in points if L.distance(p.link, want) == best]
    got = chosen[0].link
    if L.same(got, want):
        return chosen, None
    return chosen, "%s measured on %s, the profile's link is %s" % (where, L.describe(got), L.describe(want))


def _nearest_work(res, workload, points, profile, keys=(("compute_us", "compute_us"), ("wait_ms", "wait_ms"))):
    """The points at the per-request work nearest the profile's: for each (param, profile field),
    the value nearest over every model's runs of the workload (so models are compared at one
    work), then this model's points at it."""
    everyone = res.points_for(workload)
    out = points
    for param, field in keys:
        if profile.get(field) is None or not any(param in p.params for p in everyone):
            continue
        target = _nearest([p.params.get(param) for p in everyone], profile[field])
        out = [p for p in out if p.params.get(param) == target]
    return out


def _interpolate_log(x, x0, y0, x1, y1):
    """y at x on the line through (x0, y0) and (x1, y1), the y on a log scale (a tail grows
    geometrically with the load)."""
    if x1 == x0 or y0 <= 0 or y1 <= 0:
        return max(y0, y1)
    t = (x - x0) / (x1 - x0)
    return math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))


def _percentile(p, q):
    """(the percentile used, its value in ns) of the point's latency at q or the next above."""
    pcts = p.latency["percentiles_ns"] if p.latency else {}
    if not pcts:
        return None, None
    use_q = q if q in pcts else min((k for k in pcts if k >= q), default=max(pcts))
    return use_q, pcts[use_q]


class _Served:
    """What one server run says about a model at the profile's rate: its latency there (or None)
    and why, the saturation it showed, or the reason it cannot serve that rate."""

    def __init__(self, point, latency=None, q=None, text="", extra=None, fails=None, saturation=None,
                 bound=False, direct=False, rate_gap=1.0):
        self.point, self.latency, self.q, self.text, self.extra = point, latency, q, text, extra
        self.fails, self.saturation, self.bound, self.direct = fails, saturation, bound, direct
        self.rate_gap = rate_gap  # how far (x) from the profile's rate the latency was measured


def _read_fixed(p, rate, q):
    """A row offered one rate: its latency counts when it kept up at or above the profile's rate."""
    offered = p.metrics.get(R.OFFERED, p.params.get(R.SEARCH_PARAM))
    achieved = p.metrics.get("achieved_rps")
    bound = R.generator_bound(p)
    note = " (generator-bound: the generator, not the server, limited the rate, a lower bound of the server's)" \
        if bound else ""
    if rate is not None and offered < rate:
        return None  # says nothing about a higher rate
    if not p.metrics.get(R.KEPT_UP):
        why = "offered %s requests/s, achieved %s and did not keep up (rate or p99 limit missed) (run %s)%s" % (
            S.fmt_int(offered), S.fmt_int(achieved or 0), p.name, note)
        return _Served(p, fails=None if bound else why, bound=bound, text=why)
    use_q, v = _percentile(p, q)
    if v is None:
        return None
    gap = offered / rate if rate else 1.0
    text = "p%g %s at an offered %s requests/s, kept up (achieved %s)%s" % (
        use_q, S.fmt_time_ns(v), S.fmt_int(offered), S.fmt_int(achieved or offered), note)
    extra = None
    if rate is None:
        extra = "no request_rate in the profile: the lightest load measured"
    elif _far(offered, rate, 1.5):
        extra = "measured at %s requests/s, the profile offers %s" % (S.fmt_int(offered), S.fmt_int(rate))
    return _Served(p, v, use_q, text, extra, bound=bound, direct=True, rate_gap=gap)


def _read_search(p, rate, q):
    """A row that searched the saturation rate: at the profile's rate, if it is below saturation,
    the p99 between the ones measured at shares of it (log-interpolated; past the last share,
    toward the search's p99 limit, which every passing rate met)."""
    sat = p.metrics[R.SATURATION]
    bound = R.generator_bound(p)
    sat_text = "%s%s requests/s" % ("at least " if bound else "", S.fmt_int(sat))
    bound_note = " (generator-bound: the generator, not the server, limited the search, so %s is a lower bound " \
                 "of the server's saturation)" % S.fmt_int(sat) if bound else ""
    if rate is not None and sat < rate:
        why = "saturates at %s, below the %s requests/s of the profile (run %s)%s" % (
            sat_text if sat > 0 else "less than the search's first rate (no rate passed)", S.fmt_int(rate), p.name,
            bound_note)
        # A generator-bound search proves only that much: the server may well serve more.
        return _Served(p, fails=None if bound else why, saturation=sat, bound=bound, text=why)
    tails = [(share * sat, p.metrics[m]) for share, m in R.TAILS_AT_SHARE if p.metrics.get(m)]
    limit = p.params.get(R.P99_LIMIT_PARAM)
    x = rate if rate is not None else (tails[0][0] if tails else sat)
    extra = None if rate is not None else "no request_rate in the profile: the lightest load measured"
    if q != 99 or not tails:
        # Only the shown step's (at the last share) whole distribution: an upper bound below it.
        use_q, v = _percentile(p, q)
        if v is None:
            return None
        share = R.TAILS_AT_SHARE[-1][0]
        text = "p%g %s at %s%% of the saturation (%s), at or above the profile's rate" % (
            use_q, S.fmt_time_ns(v), S.fmt_count(share * 100), sat_text)
        if x > share * sat:
            extra = "the profile's rate is past %s%% of the saturation: only the p99 limit bounds its tail" % (
                S.fmt_count(share * 100))
        return _Served(p, v, use_q, text + bound_note, extra, saturation=sat, bound=bound)
    if x <= tails[0][0]:
        v = tails[0][1]
        how = "the p99 at %s requests/s (%.0f%% of the saturation), at or above the profile's rate" % (
            S.fmt_int(tails[0][0]), 100 * tails[0][0] / sat)
    elif x <= tails[-1][0]:
        (x0, y0), (x1, y1) = next(((a, b) for a, b in zip(tails, tails[1:]) if a[0] <= x <= b[0]))
        v = _interpolate_log(x, x0, y0, x1, y1)
        how = "interpolated between the p99 at %.0f%% (%s) and at %.0f%% of the saturation (%s)" % (
            100 * x0 / sat, S.fmt_time_ns(y0), 100 * x1 / sat, S.fmt_time_ns(y1))
    else:
        x0, y0 = tails[-1]
        top = max(y0, (limit or 0) * 1e6)
        v = _interpolate_log(x, x0, y0, sat, top)
        how = "interpolated between the p99 at %.0f%% of the saturation (%s) and the search's p99 limit at " \
              "saturation (%s)" % (100 * x0 / sat, S.fmt_time_ns(y0), S.fmt_time_ns(top))
        extra = "past %.0f%% of the saturation, toward the p99 limit: not measured" % (100 * x0 / sat)
    text = "p99 %s at %s requests/s: saturation %s; %s%s" % (
        S.fmt_time_ns(v), S.fmt_int(x), sat_text, how, bound_note)
    return _Served(p, v, 99.0, text, extra, saturation=sat, bound=bound)


def _server_latency(res, model, profile, a, server):
    """The latency at the profile's rate from the model's server runs (fixed rates and saturation
    searches): the ones that show it, best over the other parameters; a model whose runs show it
    cannot serve the rate is excluded. Returns False when the model has no server runs at all."""
    q = float(profile["latency_percentile"])
    rate = profile["request_rate"]
    pts = _nearest_work(res, server, res.points_for(server, model), profile)
    if not pts:
        return False
    pts, link_note = _on_link(pts, profile, a, "the server runs were")
    reads, bad = [], []
    for p in pts:
        if not p.ok:
            bad.append(p)
            continue
        r = _read_search(p, rate, q) if R.is_search(p) else _read_fixed(p, rate, q) if R.is_fixed_rate(p) else None
        if r is not None:
            reads.append(r)
    sats = [r for r in reads if r.saturation is not None]
    if sats:
        top = max(sats, key=lambda r: (r.saturation, not r.bound))
        a.saturation_rps, a.saturation_is_bound = top.saturation, top.bound
    served = [r for r in reads if r.latency is not None]
    # A run offered near the rate that kept up is the measurement itself; then a search's
    # interpolation; then a fixed rate further away.
    near = [r for r in served if r.direct and r.rate_gap <= 2]
    pool = near or [r for r in served if not r.direct] or served
    if not pool:
        fails = [r for r in reads if r.fails]
        bounds = [r for r in reads if r.bound and r.latency is None]
        if fails and not bounds:
            a.problems.append("latency: %s" % fails[0].fails)
            a.evidence.append(Evidence("latency", fails[0].text, [fails[0].point.name]))
        elif bounds:
            a.unproven.append("latency: %s" % bounds[0].text)
            a.missing.append("no server run shows %s serving %s requests/s: the generator limited the runs"
                             % (model, S.fmt_int(rate or 0)))
            a.needs.append(Need(server, dict(_server_need(profile), generator_threads=2), model,
                                "more load than one generator thread offers", link=profile["link"]))
        elif bad:
            a.problems.append("latency: %s %s: %s" % (bad[0].name, bad[0].status, bad[0].error))
        else:
            a.missing.append("no server run of %s at or above %s requests/s" % (model, S.fmt_int(rate or 0)))
            a.needs.append(Need(server, _server_need(profile), model, "latency at p%g" % q, link=profile["link"]))
        return True
    best = min(pool, key=lambda r: r.latency)
    a.latency_ns = best.latency
    a.latency_is_bound = False
    # A run that could not serve a rate the one cited shows served: noise, or a marginal model.
    shown_at = best.point.metrics.get(R.OFFERED) if best.direct else best.saturation
    for r in reads:
        if r.fails and (R.is_search(r.point) or r.point.metrics.get(R.OFFERED, 0) <= shown_at):
            a.unproven.append("contradicted: %s" % r.fails)
    extra = "; ".join(e for e in (best.extra, link_note) if e) or None
    if extra and not any(n.workload == server for n in a.needs):
        a.needs.append(Need(server, _server_need(profile), model, "latency at the profile's rate and link",
                            link=profile["link"]))
    verdict = ""
    if profile["latency_target_ms"] is not None:
        target = profile["latency_target_ms"] * 1e6
        verdict = "; target %s: %s" % (S.fmt_time_ns(target), "meets" if best.latency <= target else "MISSES")
        if best.latency > target:
            a.problems.append("latency: p%g %s misses the target of %s (%s)" % (
                best.q, S.fmt_time_ns(best.latency), S.fmt_time_ns(target), best.point.name))
    a.evidence.append(Evidence("latency", best.text + verdict, [best.point.name], value=best.latency, extrapolated=extra))
    return True


def _server_need(profile):
    """The server run that measures the profile: at its rate (a fixed rate), else a search."""
    params = {"rate": int(round(profile["request_rate"])) if profile["request_rate"] else 0}
    if profile["compute_us"]:
        params["compute_us"] = max(0, int(round(profile["compute_us"])))
    if profile["wait_ms"]:
        params["wait_ms"] = max(0, int(round(profile["wait_ms"])))
    return params


def _latency_evidence(res, model, profile, a):
    q = float(profile["latency_percentile"])
    server_workload, bound_workload = profile["evidence"]["latency"], profile["evidence"]["latency_bound"]
    any_server = any(p.workload == server_workload for p in res.points)
    if any_server:
        if _server_latency(res, model, profile, a, server_workload):
            return
        # The build that wrote the report has the server workload: its runs are the evidence.
        a.missing.append("no server run of %s" % model)
        a.needs.append(Need(server_workload, _server_need(profile), model, "latency at p%g" % q, link=profile["link"]))
        return
    # No server runs at all: pingpong's round trips stand in as lower bounds (comparable only
    # with each other). The baseline's "round trip" is a function call, not a hand-off between two
    # units running at once: no evidence of how it would serve concurrent requests.
    baseline = res.facts.is_baseline(model)
    ping = [p for p in res.points_for(bound_workload, model) if p.ok and p.latency and not baseline]
    if not ping:
        if baseline:
            a.missing.append("no latency measurement of %s: it serves one request at a time" % model)
            return
        a.missing.append("no latency measurement of %s" % model)
        a.needs.append(Need(bound_workload, {}, model, "a lower bound on latency (%s round trips)" % bound_workload))
        return
    a.latency_is_bound = True
    p = min(ping, key=lambda x: x.latency["percentiles_ns"].get(q, math.inf))
    use_q, v = _percentile(p, q)
    a.latency_ns = v
    verdict = ""
    if profile["latency_target_ms"] is not None:
        target = profile["latency_target_ms"] * 1e6
        verdict = "; target %s: %s" % (S.fmt_time_ns(target), "meets" if v <= target else "MISSES")
        if v > target:
            a.problems.append("latency: p%g %s misses the target of %s (%s)" % (
                use_q, S.fmt_time_ns(v), S.fmt_time_ns(target), p.name))
    a.evidence.append(Evidence("latency", "p%g %s, %s round trip%s" % (use_q, S.fmt_time_ns(v), bound_workload, verdict),
                               [p.name], value=v,
                               extrapolated="%s is a lower bound on a request's latency" % bound_workload))


def _fan_out_evidence(res, model, profile, a):
    """The time for the profile's remote calls from the `fan_out` workload's runs (scatter) at the
    parameters nearest the profile's, on the nearest link: remote_calls / tasks per second, the
    best over the parameters the profile leaves open (workers, payload)."""
    wl = profile["evidence"]["fan_out"]
    want = {k: profile[f] for k, f in FAN_OUT_PARAMS if profile.get(f) is not None}
    need = {k: int(round(v)) for k, v in want.items()}
    everyone = [p for p in res.points_for(wl) if p.ok and p.metrics.get(FAN_OUT_RATE)]
    mine_all = res.points_for(wl, model)
    if not everyone or not mine_all:
        a.missing.append("no %s run of %s" % (wl, model))
        a.needs.append(Need(wl, need, model, "remote calls at the profile's fan-out", link=profile["link"]))
        return None

    def distance(params):
        return sum(abs(math.log((params.get(k, 0) + 1.0) / (v + 1.0))) for k, v in want.items())
    # One configuration for every model (the nearest any model ran ok), so they are compared alike.
    target = min(({k: p.params.get(k) for k in want} for p in everyone),
                 key=lambda c: (distance(c), sorted(c.items())))
    mine = [p for p in mine_all if all(p.params.get(k) == v for k, v in target.items())]
    mine, link_note = _on_link(mine, profile, a, "the %s runs were" % wl)
    where = ", ".join("%s=%s" % (k, S.fmt_int(v)) for k, v in target.items())
    if not mine:
        a.missing.append("no %s run of %s at %s" % (wl, model, where))
        a.needs.append(Need(wl, dict(need) if distance(target) else dict(target), model,
                            "remote calls at the profile's fan-out", link=profile["link"]))
        return None
    ok = [p for p in mine if p.ok and p.metrics.get(FAN_OUT_RATE)]
    if not ok:
        p = mine[0]
        a.problems.append("%s at %s %s: %s (run %s)" % (wl, where, p.status, p.error or "no reason given", p.name))
        return None
    p = max(ok, key=lambda q: q.metrics[FAN_OUT_RATE])
    tps = p.metrics[FAN_OUT_RATE]
    iv = p.metric_ci(FAN_OUT_RATE) or (tps, tps)
    calls = profile["remote_calls"]
    t_ms = calls / tps * 1e3
    extra = []
    far = [k for k, v in want.items() if _far(target.get(k), v, 1.5) or (target.get(k) == 0) != (v == 0)]
    if far:
        extra.append("measured at %s, the profile has %s" % (
            ", ".join("%s=%s" % (k, S.fmt_int(target[k])) for k in far),
            ", ".join("%s=%s" % (k, S.fmt_int(want[k])) for k in far)))
    if link_note:
        extra.append(link_note)
    if extra:
        a.needs.append(Need(wl, need, model, "remote calls at the profile's fan-out", link=profile["link"]))
    knobs = ", ".join("%s=%s" % (k, S.fmt_int(v)) for k, v in p.params.items() if k not in want)
    ratio = p.metrics.get(FAN_OUT_RATIO)
    ev = Evidence("fan-out", "%s tasks/s at %s (%s)%s -> %s remote calls: %s" % (
        S.fmt_count(tps), where, knobs or "as run",
        ", makespan/ideal %s" % S.fmt_ratio(ratio) if ratio is not None else "",
        S.fmt_int(calls), S.fmt_time_ns(t_ms * 1e6)),
        [p.name], value=t_ms, lo=calls / iv[1] * 1e3, hi=calls / iv[0] * 1e3,
        extrapolated="; ".join(extra) or None)
    a.evidence.append(ev)
    return ev


def _wrong_result(point):
    return point.status == "failed" and point.verified is False and bool(point.error) \
        and "checksum" in point.error


def assess(res, profile, cpus):
    models = res.models()  # the baseline included: "no concurrency" can be the answer
    out = []
    for model in models:
        a = Assessment(model)
        for p in res.points:
            if p.model == model and _wrong_result(p):
                a.problems.append("wrong result: %s: %s" % (p.name, p.error))
        t, lo, hi = 0.0, 0.0, 0.0
        if profile["remote_calls"] is not None:
            # A fan-out: its compute and wait are the nodes', measured by the fan-out runs alone.
            ev = _fan_out_evidence(res, model, profile, a)
            if ev is not None:
                t, lo, hi = ev.value, ev.lo, ev.hi
        elif profile["wait_ms"] > 0:
            # Waiting requests are units alive at once: concurrency, wait and memory from io.
            got = _wait_evidence(res, model, profile, a)
            if got is not None:
                ev, io_point = got
                t += ev.value
                lo += ev.lo
                hi += ev.hi
                _memory_evidence(profile, io_point, a)
        if profile["compute_us"] > 0 and profile["remote_calls"] is None:
            ev = _compute_evidence(res, model, profile, cpus, a)
            if ev is not None:
                t += ev.value
                lo += ev.lo
                hi += ev.hi
        if profile["latency_target_ms"] is not None or profile["objective"] == "latency":
            _latency_evidence(res, model, profile, a)
        if not a.missing:
            a.t_wave, a.t_lo, a.t_hi = t, lo, hi
        if profile["objective"] == "latency" and (a.latency_ns is not None or a.problems) and a.missing:
            # Latency decides; the estimate only breaks ties, so its gaps do not unrank.
            a.unproven.extend("no tie-break estimate: %s" % m for m in a.missing)
            a.missing = []
        out.append(a)

    def key(a):
        if profile["objective"] == "latency" and not a.latency_is_bound:
            # The measured tail at the rate, then the saturation (the headroom above the rate).
            primary = a.latency_ns if a.latency_ns is not None else math.inf
            return (a.group, primary, -(a.saturation_rps or 0), a.t_wave if a.t_wave is not None else math.inf,
                    res.facts.model_key(a.model))
        elif profile["objective"] == "latency":
            # Only pingpong's lower bounds: they decide whether a model can meet the target (a
            # model whose bound misses it is already ranked after), not the order of those that
            # can. Pools hand a pingpong peer off on one worker and spawn models wake a thread
            # per hop, while a server wakes something for every request in every model. The
            # estimate orders them; the bound breaks ties.
            primary = a.t_wave if a.t_wave is not None else math.inf
            return (a.group, primary, a.latency_ns if a.latency_ns is not None else math.inf,
                    res.facts.model_key(a.model))
        else:
            primary = a.t_wave if a.t_wave is not None else math.inf
        return (a.group, primary, a.t_wave if a.t_wave is not None else math.inf, res.facts.model_key(a.model))
    out.sort(key=key)
    return out


def _winner(ranked):
    return ranked[0].model if ranked and ranked[0].group == 0 else None


def what_would_change(res, profile, cpus, ranked):
    out = []
    scored = [a for a in ranked if a.group == 0]
    if not scored:
        return out
    top = scored[0]
    # With only pingpong's bounds for latency, the estimate orders the models as for throughput.
    by_estimate = profile["objective"] == "throughput" or top.latency_is_bound
    if len(scored) > 1:
        second = scored[1]
        if by_estimate and second.t_lo is not None and top.t_hi is not None \
                and second.t_lo <= top.t_hi:
            for e in top.evidence + second.evidence:
                pt = res.find_by_name(e.rows[0]) if e.rows else None
                if pt is not None and e.kind in ("compute", "wait"):
                    top.needs.append(Need(pt.workload, {k: v for k, v in pt.params.items()},
                                          top.model if e in top.evidence else second.model,
                                          "more repetitions to separate %s and %s" % (top.model, second.model),
                                          repetitions=10))
            out.append("%s and %s are within measurement noise (estimates %s-%s vs %s-%s): more "
                       "repetitions could swap them." % (
                           top.model, second.model, S.fmt_time_ns(top.t_lo * 1e6), S.fmt_time_ns(top.t_hi * 1e6),
                           S.fmt_time_ns(second.t_lo * 1e6), S.fmt_time_ns(second.t_hi * 1e6)))
        elif by_estimate and second.t_wave and top.t_wave:
            out.append("%s leads %s by %s on the estimate." % (top.model, second.model,
                                                             S.fmt_ratio(second.t_wave / top.t_wave)))
        elif profile["objective"] == "latency" and top.latency_ns and second.latency_ns:
            ratio = second.latency_ns / top.latency_ns
            out.append("%s leads %s by %s on p%g latency (%s vs %s)%s." % (
                top.model, second.model, S.fmt_ratio(ratio), profile["latency_percentile"],
                S.fmt_time_ns(top.latency_ns), S.fmt_time_ns(second.latency_ns),
                ": within the usual run-to-run spread of tail latency, rerun with more repetitions"
                if ratio < 1.1 else ""))
            if ratio < 1.1:
                for a in (top, second):
                    for e in a.evidence:
                        pt = res.find_by_name(e.rows[0]) if e.kind == "latency" and e.rows else None
                        if pt is not None:
                            top.needs.append(Need(pt.workload, dict(pt.params), a.model,
                                                  "more repetitions to separate %s and %s" % (top.model, second.model),
                                                  repetitions=10))
    factors = [2, 5, 10, 100]
    labels = {"compute_us": ("compute per request", lambda v: S.fmt_time_ns(v * 1e3)),
              "wait_ms": ("wait per request", lambda v: S.fmt_time_ns(v * 1e6)),
              "concurrent_requests": ("requests in flight", S.fmt_int),
              "request_rate": ("offered rate", lambda v: "%s requests/s" % S.fmt_int(v)),
              "remote_calls": ("remote calls", S.fmt_int),
              "in_flight": ("calls in flight", S.fmt_int)}
    for field, (label, fmt) in labels.items():
        base = profile[field]
        if not base or (field == "concurrent_requests" and profile["remote_calls"] is not None):
            continue
        for direction in (1, -1):
            for f in factors:
                changed = dict(profile)
                changed[field] = base * f if direction > 0 else base / f
                if field in ("concurrent_requests", "remote_calls", "in_flight"):
                    changed[field] = max(1, int(round(changed[field])))
                    if changed[field] == base:
                        continue
                try:
                    reranked = assess(res, changed, cpus)
                except ReportError:
                    continue
                new = _winner(reranked)
                if new != top.model:
                    # Why: the leader is excluded there (memory, latency), or only overtaken.
                    old_top = next((a for a in reranked if a.model == top.model), None)
                    why = (" (every model excluded or unscored)" if not new else
                           " (%s is excluded there: %s)" % (top.model, "; ".join(old_top.problems))
                           if old_top is not None and old_top.problems else "")
                    out.append("with %s at %s (%s%g), %s would rank first%s." % (
                        label, fmt(changed[field]),
                        "x" if direction > 0 else "/", f,
                        new if new else "no model", why))
                    break
    if top.memory_bytes:
        nxt = next((a for a in scored[1:] if a.memory_bytes is not None and a.memory_bytes < top.memory_bytes), None)
        out.append("a memory budget below %s would exclude %s%s." % (
            S.fmt_bytes(top.memory_bytes), top.model, "; %s would then lead" % nxt.model if nxt else ""))
    if profile["latency_target_ms"] is not None and top.latency_ns is not None:
        out.append("a p%g target below %s would exclude %s." % (profile["latency_percentile"],
                                                               S.fmt_time_ns(top.latency_ns), top.model))
    if profile["request_rate"] and top.saturation_rps:
        out.append("a request rate above %s requests/s (%s's %ssaturation) would exclude it%s." % (
            S.fmt_int(top.saturation_rps), top.model, "measured, generator-bound " if top.saturation_is_bound else "",
            ", unless a run with more load shows more" if top.saturation_is_bound else ""))
    for e in top.evidence:
        if e.extrapolated:
            out.append("%s's %s figure is extrapolated (%s): measuring it could change the answer."
                       % (top.model, e.kind, e.extrapolated))
    for u in top.unproven:
        out.append("%s: %s." % (top.model, u))
    return out


TRIAL_TIMEOUT_S = 120  # cmbench run's default --timeout


def commands(ranked, res, cmbench, preset, profile):
    """Exact `cmbench run` commands for the runs the assessment found missing, merged per
    workload and parameter set. A model whose own estimate says its wait trial would outlast
    cmbench's trial timeout is left out (and said so): the run would only be stopped. Where the
    workload's figure is a speedup, the baseline model runs too (the 1x)."""
    wait_workload = profile["evidence"]["wait"]
    baseline = res.facts.baseline
    merged = {}
    for a in ranked:
        for need in a.needs:
            key = (need.workload, tuple(sorted(need.params.items())), need.repetitions, L.flag(need.link))
            entry = merged.setdefault(key, {"models": [], "why": [], "left_out": []})
            wait = next((e for e in a.evidence if e.kind == "wait"), None)
            if need.workload == wait_workload and wait is not None and wait.value and wait.value / 1e3 > TRIAL_TIMEOUT_S:
                note = "%s (estimated %s per trial, past the %d s trial timeout)" % (
                    need.model, S.fmt_time_ns(wait.value * 1e6), TRIAL_TIMEOUT_S)
                if note not in entry["left_out"]:
                    entry["left_out"].append(note)
                continue
            with_baseline = baseline is not None and res.facts.speedup(need.workload)
            for m in ([need.model] + ([baseline] if with_baseline else [])):
                if m not in entry["models"]:
                    entry["models"].append(m)
            if need.why not in entry["why"]:
                entry["why"].append(need.why)
    out = []
    for (workload, params, reps, link), entry in sorted(merged.items(),
                                                        key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0, kv[0][3] or "")):
        if entry["left_out"]:
            entry["why"].append("left out: " + ", ".join(entry["left_out"]))
        if not entry["models"]:
            continue
        models = sorted(entry["models"], key=res.facts.model_key)
        parts = [cmbench, "run", "--models", ",".join(models), "--workloads", workload]
        for k, v in params:
            if v is None:
                continue
            parts += ["--param", "%s=%s" % (k, int(v) if float(v).is_integer() else v)]
        slug = "-".join([workload] + ["%s%s" % (k, int(v)) for k, v in params if v is not None])
        if link and res.facts.remote(workload):
            parts += ["--link", link]
            slug += "-link-" + link.replace("=", "").replace(",", "-")
        parts += ["--preset", preset]
        if reps:
            parts += ["--repetitions", str(reps)]
            slug += "-reps%d" % reps
        parts += ["--out", "results/advice-%s.json" % slug]
        out.append({"command": " ".join(parts), "why": "; ".join(entry["why"])})
    return out


def advise(res, profile, cmbench="build/release/harness/cmbench", preset=None):
    cpus = int(profile["cpus"]) if profile["cpus"] else res.num_cpus
    ranked = assess(res, profile, cpus)
    preset = preset or res.context.get("preset") or "default"
    return {
        "profile": profile,
        "cpus": cpus,
        "reports": [r.path for r in res.reports],
        "ranking": ranked,
        "changes": what_would_change(res, profile, cpus, ranked),
        "commands": commands(ranked, res, cmbench, preset, profile),
    }


def to_json(result):
    return {
        "profile": result["profile"],
        "cpus": result["cpus"],
        "reports": result["reports"],
        "scoring": "T_wave = wait_ms x makespan/ideal (io) + requests x compute_us / speedup (cpu)",
        "ranking": [dict(a.to_json(), rank=i + 1, status=("ranked" if a.group == 0 else "excluded" if a.group == 1 else "not rankable"))
                    for i, a in enumerate(result["ranking"])],
        "what_would_change": result["changes"],
        "commands": result["commands"],
    }


def to_text(result, res):
    p = result["profile"]
    ctx = res.context
    lines = []
    title = "cmbench advice for profile %r" % p["name"]
    if p.get("description"):
        title += ": %s" % p["description"]
    lines.append(title)
    lines.append("profile: %s" % describe_profile(p, result["cpus"]))
    lines.append("report:  %s (%s, %s CPUs, %s build, %s)" % (
        ", ".join(result["reports"]), ctx.get("host_name", "?"), ctx.get("num_cpus", "?"),
        ctx.get("build_type") or ctx.get("library_build_type") or "?", ctx.get("date", "?")))
    warnings = res.warnings()
    for w in warnings:
        if "debug" in w or "scaling" in w:
            lines.append("warning: %s" % w)
    lines.append("")
    n = p["concurrent_requests"]
    fan_out = p["remote_calls"] is not None
    if fan_out:
        n = p["remote_calls"]
    wave = "for the %s remote calls" % S.fmt_int(n) if fan_out else "per wave"
    bound_only = any(a.latency_is_bound for a in result["ranking"])
    if p["objective"] == "latency" and fan_out:
        lines.append("Ranking by measured p%g latency (lower is better); the estimated time for %s remote "
                     "calls breaks ties:" % (p["latency_percentile"], S.fmt_int(n)))
    elif fan_out:
        lines.append("Ranking by the estimated time for %s remote calls (lower is better):" % S.fmt_int(n))
        lines.append("  T = remote calls / tasks per second of the %s run nearest the profile's calls, nodes, "
                     "calls in flight and work" % p["evidence"]["fan_out"])
    elif p["objective"] == "latency" and bound_only:
        lines.append("No server runs: pingpong round trips stand in as lower bounds on a request's p%g "
                     "latency. They decide who can meet the target, not the order: ranking those by the "
                     "estimated time for a wave of %s requests (lower is better), the bound breaking ties:"
                     % (p["latency_percentile"], S.fmt_int(n)))
    elif p["objective"] == "latency":
        lines.append("Ranking by measured p%g latency at the offered rate (lower is better), then by the "
                     "saturation rate (higher is better); the estimated time for a wave of %s requests "
                     "breaks ties:" % (p["latency_percentile"], S.fmt_int(n)))
    else:
        lines.append("Ranking by the estimated time for one wave of %s requests (lower is better):"
                     % S.fmt_int(n))
        lines.append("  T_wave = wait x makespan/ideal (io runs) + requests x compute / speedup (cpu runs)")
    lines.append("")
    ranked = result["ranking"]
    best = next((a for a in ranked if a.group == 0 and a.t_wave), None)
    rank = 0
    for a in ranked:
        if a.group == 2:
            continue
        rank += 1
        head = "%2d. %-20s" % (rank, a.model)
        figures = []
        if a.t_wave is not None:
            rel = (" %s" % ("best" if a is best else S.fmt_ratio(a.t_wave / best.t_wave))) if best and best.t_wave else ""
            figures.append("est. %s %s (%s-%s), %s %s/s%s" % (
                S.fmt_time_ns(a.t_wave * 1e6), wave,
                S.fmt_time_ns(a.t_lo * 1e6), S.fmt_time_ns(a.t_hi * 1e6),
                S.fmt_count(round(n / (a.t_wave / 1000.0))) if a.t_wave > 0 else "n/a",
                "calls" if fan_out else "requests", rel))
        if a.latency_ns is not None:
            figures.append("p%g %s measured" % (p["latency_percentile"], S.fmt_time_ns(a.latency_ns)))
        if a.saturation_rps is not None:
            figures.append("saturation %s%s requests/s%s" % (
                "at least " if a.saturation_is_bound else "", S.fmt_int(a.saturation_rps),
                " (generator-bound: a lower bound)" if a.saturation_is_bound else ""))
        head += " " + ", ".join(figures)
        lines.append(head)
        if a.group == 1:
            lines.append("       EXCLUDED: %s" % a.problems[0])
        for e in a.evidence:
            lines.append("       %-8s %s" % (e.kind, e.text))
            lines.append("                from %s" % ", ".join(e.rows))
            if e.extrapolated:
                lines.append("                ! extrapolated: %s" % e.extrapolated)
        for pr in a.problems[1:]:
            lines.append("       also excluded: %s" % pr)
        for u in a.unproven:
            lines.append("       ! unproven: %s" % u)
    unrankable = [a for a in ranked if a.group == 2]
    if unrankable:
        lines.append("")
        lines.append("Not rankable (the report lacks the evidence):")
        for a in unrankable:
            lines.append("  - %-20s %s" % (a.model, "; ".join(a.missing)))
            for pr in a.problems:
                lines.append("    %-20s excluded anyway: %s" % ("", pr))
    lines.append("")
    lines.append("What would change the answer:")
    if result["changes"]:
        for c in result["changes"]:
            lines.append("  - %s" % c)
    else:
        lines.append("  - nothing the report can tell: no model could be ranked.")
    if result["commands"]:
        lines.append("")
        lines.append("Runs the report lacks (execute, then advise again with both reports):")
        for c in result["commands"]:
            lines.append("  # %s" % c["why"])
            lines.append("  %s" % c["command"])
    return "\n".join(lines) + "\n"
