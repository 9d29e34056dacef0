"""From report rows to measured points: one per (workload, model, params).

A point prefers the run's `median` aggregate row (the harness computed it over the ok
repetitions) and falls back to the median of its ok iteration rows when there is no aggregate
(a run with one repetition, or an older report). Only points whose status is `ok` have values;
failed and skipped points keep their status and error so charts can mark them.

Confidence intervals are for the median, distribution-free: with n >= 6 repetitions the
order-statistic interval that covers the median with at least 95% probability; with fewer the
range (min to max) of the repetitions, and the label says so (3 repetitions: a 75% interval).
"""

import copy
import math
import statistics

from . import link as L
from . import style


# --- facts ---------------------------------------------------------------------------------------

class Facts:
    """What the reports say every model and workload is (context.models, context.workloads):
    their order, the baseline, the mechanisms, the workloads' figures. The scripts know no model
    or workload by name: everything they decide about one, they read here. Several reports'
    facts are merged by name, a later report's replacing an earlier one's."""

    def __init__(self, reports):
        self.models, self.workloads = {}, {}
        for report in reports:
            for m in report.context.get("models") or []:
                self.models[m["name"]] = m
            for w in report.context.get("workloads") or []:
                self.workloads[w["name"]] = w
        self.model_names = sorted(self.models, key=self.model_key)
        self.styles = style.Styles([self.models[m] for m in self.model_names])

    def model_key(self, model):
        m = self.models.get(model)
        return (m["order"] if m else math.inf, model)

    def workload_key(self, workload):
        w = self.workloads.get(workload)
        return (w["order"] if w else math.inf, workload)

    def is_baseline(self, model):
        return bool(self.models.get(model, {}).get("baseline"))

    @property
    def baseline(self):
        """The baseline model's name (the 1x of speedups), or None."""
        return next((m for m in self.model_names if self.is_baseline(m)), None)

    def mechanism(self, model):
        return (self.models.get(model) or {}).get("mechanism") or {}

    def model_params(self, workload):
        """The workload's parameters that size the model (the baseline ignores them)."""
        return tuple((self.workloads.get(workload) or {}).get("model_params") or ())

    def figures(self, workload):
        """The workload's figures of merit, the headline first."""
        return [Figure(f) for f in (self.workloads.get(workload) or {}).get("figures") or []]

    def speedup(self, workload):
        return bool((self.workloads.get(workload) or {}).get("speedup"))

    def memory_per_unit(self, workload):
        return bool((self.workloads.get(workload) or {}).get("memory_per_unit"))

    def unit(self, workload):
        """What the workload's `units` count, singular: "task", "hop"."""
        return (self.workloads.get(workload) or {}).get("unit") or "unit"

    def style(self, model):
        return self.styles.of(model)

    def remote(self, workload):
        """Its coordinator calls nodes (a link between them can shape its figures)."""
        return bool((self.workloads.get(workload) or {}).get("remote"))

    def phases(self, workload):
        """The workload's phases, in order, as [(metric, label, kind or None)] (its `phases`
        fact; none: [])."""
        out = []
        for ph in (self.workloads.get(workload) or {}).get("phases") or []:
            if isinstance(ph, str):
                out.append((ph, ph.replace("_", " "), None))
            else:
                out.append((ph["metric"], ph.get("label") or ph["metric"].replace("_", " "), ph.get("kind")))
        return out


# --- a server's saturation search -------------------------------------------------------------
#
# The metrics of the `server` workload's rows (README, "server"; what a row carries, not which
# workload: any workload whose rows carry them reads the same). A row offered a fixed rate says
# what it offered, what it achieved and whether it kept up; a row that searched the saturation
# rate (parameter SEARCH_PARAM 0) says the rate and the p99 at shares of it.
SEARCH_PARAM = "rate"
SATURATION = "saturation_rps"
TAILS_AT_SHARE = ((0.5, "p99_at_50pct_ns"), (0.9, "p99_at_90pct_ns"))
OFFERED = "offered_rps"
KEPT_UP = "kept_up"
GENERATOR_BOUND = "generator_bound"
P99_LIMIT_PARAM = "p99_limit_ms"


def is_search(point):
    """The row searched a saturation rate (rather than offering one rate)."""
    if SATURATION in point.metrics:
        return True
    return not point.ok and point.params.get(SEARCH_PARAM) == 0 and P99_LIMIT_PARAM in point.params


def is_fixed_rate(point):
    """The row offered one rate and says what it achieved."""
    return not is_search(point) and (OFFERED in point.metrics or (
        not point.ok and (point.params.get(SEARCH_PARAM) or 0) > 0 and P99_LIMIT_PARAM in point.params))


def generator_bound(point):
    """The load generator, not the server, limited the rate: a rate of the row is a lower bound
    of the server's."""
    return bool(point.metrics.get(GENERATOR_BOUND))


# --- statistics ------------------------------------------------------------------------------

def median_ci(samples, level=0.95):
    """(lo, hi, description) for the median of `samples`, or None without samples."""
    xs = sorted(x for x in samples if x is not None and math.isfinite(x))
    n = len(xs)
    if n == 0:
        return None
    if n == 1:
        return (xs[0], xs[0], "one repetition: no interval")
    if n < 6:
        cover = 1 - 2 * 0.5 ** n
        return (xs[0], xs[-1], "min-max of %d repetitions (a %d%% interval for the median)"
                % (n, round(cover * 100)))
    # Largest k with P(B < k) <= (1-level)/2, B ~ Binomial(n, 1/2): [x_(k), x_(n-k+1)], 1-based.
    alpha = (1 - level) / 2
    k, cum = 0, 0.0
    while True:
        p = math.comb(n, k) * 0.5 ** n
        if cum + p > alpha:
            break
        cum += p
        k += 1
    k = max(k, 1)
    return (xs[k - 1], xs[n - k], "%d%% CI of the median over %d repetitions"
            % (round(level * 100), n))


# --- figures of merit --------------------------------------------------------------------------

class Figure:
    """A figure of merit as a workload's facts declare it: a metric of the rows, what it is
    (label), its summary heading, its kind ("time_ns", "bytes", "rate", "ratio": how it is
    scaled and printed) and whether lower or higher is better."""

    def __init__(self, fact):
        self.key = fact["metric"]
        self.label = fact["label"]
        self.short = fact.get("heading") or fact["label"]
        self.kind = fact["kind"]
        self.lower_is_better = fact["better"] == "lower"

    def value(self, point):
        if point.status != "ok":
            return None
        v = point.metrics.get(self.key)
        return v if v is not None and math.isfinite(v) else None

    def interval(self, point):
        """(lo, hi) of the median over the repetitions' own values of the metric, or None."""
        if self.value(point) is None:
            return None
        return point.metric_ci(self.key)

    def better(self, a, b):
        return a < b if self.lower_is_better else a > b

    def relative_to_best(self, value, best):
        """How many times worse than the best (1 = the best)."""
        if self.lower_is_better:
            return value / best if best > 0 else math.inf
        return best / value if value > 0 else math.inf


# --- points --------------------------------------------------------------------------------------

class Point:
    """One (workload, model, params) run, with values only when its status is ok."""

    def __init__(self, **kw):
        self.workload = kw["workload"]
        self.model = kw["model"]
        self.family = kw["family"]
        self.variant = kw["variant"]
        self.params = kw["params"]
        self.status = kw["status"]
        self.error = kw["error"]
        self.verified = kw["verified"]
        self.name = kw["name"]                # the row to cite (the median aggregate if any)
        self.row_names = kw["row_names"]      # every row it was made from
        self.real_ms = kw["real_ms"]          # median over ok repetitions (None if none)
        self.cpu_ms = kw["cpu_ms"]
        self.samples_ms = kw["samples_ms"]    # real_time of each ok repetition
        self.repetitions = kw["repetitions"]
        self.ok_repetitions = kw["ok_repetitions"]
        self.resources = kw["resources"]
        self.metrics = kw["metrics"]
        self.latency = kw["latency"]
        self.metric_samples = kw.get("metric_samples") or {}  # metric -> each ok repetition's value
        self.units_at_once = kw.get("units_at_once")  # the most units alive at once (None: unknown)
        self.source = kw["source"]
        self.link = kw.get("link")            # link conditions to the nodes (link.py), or None
        ci = median_ci(self.samples_ms or [])
        self.real_ci = ci[:2] if ci and self.real_ms is not None else None
        self.ci_method = ci[2] if ci else None

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def units(self):
        u = self.metrics.get("units")
        return u if u else None

    def metric_ci(self, name):
        """(lo, hi) of the median of a metric over the ok repetitions' own values, or None."""
        ci = median_ci(self.metric_samples.get(name) or [])
        return ci[:2] if ci and len(self.metric_samples[name]) > 1 else None

    def params_label(self, names=None):
        names = self.params.keys() if names is None else names
        return ", ".join("%s=%s" % (k, _fmt_int(self.params[k])) for k in names if k in self.params)

    def __repr__(self):
        return "Point(%s %s)" % (self.name, self.status)


def _fmt_int(v):
    return "{:,}".format(v) if isinstance(v, int) else str(v)


def _frozen(params):
    return tuple(sorted(params.items()))


def _median_of_dicts(dicts):
    """Per-key median of numeric values (None where no row has the key)."""
    keys = []
    for d in dicts:
        for k in d:
            if k not in keys:
                keys.append(k)
    out = {}
    for k in keys:
        vals = [d[k] for d in dicts if isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool)]
        out[k] = statistics.median(vals) if vals else None
    return out


def _median_latency(latencies):
    latencies = [l for l in latencies if l]
    if not latencies:
        return None
    pcts = sorted({p for l in latencies for p in l["percentiles_ns"]})
    return {"count": latencies[0].get("count"),
            "mean_ns": statistics.median([l["mean_ns"] for l in latencies if l["mean_ns"] is not None] or [0]) or None,
            "percentiles_ns": {p: statistics.median([l["percentiles_ns"][p] for l in latencies
                                                     if p in l["percentiles_ns"]]) for p in pcts}}


def _is_median_row(row):
    return row["run_type"] == "aggregate" and (
        row.get("aggregate_name") == "median" or
        (row.get("aggregate_name") is None and row["name"].endswith("_median")))


def point_from_rows(rows, source):
    aggs = [r for r in rows if _is_median_row(r)]
    iters = sorted((r for r in rows if r["run_type"] == "iteration"),
                   key=lambda r: r.get("repetition_index") or 0)
    if not aggs and not iters:
        return None  # only mean/stddev/cv aggregates: nothing to read
    first = (aggs or iters)[0]
    ok_iters = [r for r in iters if r["status"] == "ok"]
    if aggs:
        agg = aggs[-1]
        status, error, name = agg["status"], agg["error"], agg["name"]
        samples = (agg["samples_ms"] or {}).get("real_time") or [r["real_time_ms"] for r in ok_iters]
        ok_reps = agg.get("ok_repetitions")
        if ok_reps is None:
            ok_reps = len(ok_iters) if iters else (agg.get("repetitions") if status == "ok" else 0)
        reps = agg.get("repetitions") or len(iters) or 1
        has_values = ok_reps > 0 or status == "ok"
        real_ms = agg["real_time_ms"] if has_values else None
        cpu_ms = agg["cpu_time_ms"] if has_values else None
        resources = agg["resources"] if has_values else {}
        metrics = agg["metrics"] if has_values else {}
        if has_values and not metrics and ok_iters:
            metrics = _median_of_dicts([r["metrics"] for r in ok_iters])
        latency = agg["latency"] if has_values else None
        if has_values and latency is None and ok_iters:
            latency = _median_latency([r["latency"] for r in ok_iters])
        verified = agg["verified"]
        if verified is None and iters:
            verified = all(r["verified"] for r in ok_iters) and len(ok_iters) == len(iters)
    else:
        statuses = {r["status"] for r in iters}
        status = "ok" if statuses == {"ok"} else "skipped" if statuses == {"skipped"} else "failed"
        bad = [r for r in iters if r["status"] != "ok"]
        error = None
        if bad:
            error = bad[0]["error"]
            if ok_iters and len(iters) > 1:
                error = "repetition %s: %s" % (bad[0].get("repetition_index", "?"), error)
        name = first["run_name"] if len(iters) > 1 else first["name"]
        samples = [r["real_time_ms"] for r in ok_iters]
        reps, ok_reps = len(iters), len(ok_iters)
        real_ms = statistics.median(samples) if samples else None
        cpu_vals = [r["cpu_time_ms"] for r in ok_iters if r["cpu_time_ms"] is not None]
        cpu_ms = statistics.median(cpu_vals) if cpu_vals else None
        resources = _median_of_dicts([r["resources"] for r in ok_iters]) if ok_iters else {}
        metrics = _median_of_dicts([r["metrics"] for r in ok_iters]) if ok_iters else {}
        metrics = {k: v for k, v in metrics.items() if v is not None}
        latency = _median_latency([r["latency"] for r in ok_iters])
        verified = bool(ok_iters) and all(r["verified"] is not False for r in ok_iters) and not bad
    if status == "ok" and verified is False:
        status, error = "failed", error or "checksum differs from the workload's reference (verified: false)"
    samples = [s for s in (samples or []) if s is not None]
    metric_samples = {}
    for r in ok_iters:
        for k, v in r["metrics"].items():
            metric_samples.setdefault(k, []).append(v)
    return Point(workload=first["workload"], model=first["model"], family=first["family"],
                 variant=first["variant"], params=dict(first["params"]), status=status,
                 error=error, verified=verified, name=name,
                 row_names=[r["name"] for r in rows], real_ms=real_ms, cpu_ms=cpu_ms,
                 samples_ms=samples, repetitions=reps, ok_repetitions=ok_reps,
                 resources=resources or {}, metrics=metrics or {}, latency=latency,
                 metric_samples=metric_samples, units_at_once=first.get("units_at_once"),
                 source=source, link=first.get("link"))


class Results:
    """Every point of one or more reports (a later report's run replaces an earlier one's)."""

    def __init__(self, reports):
        self.reports = reports
        self.facts = Facts(reports)
        self.notes = []
        by_key = {}
        replaced = {}
        for report in reports:
            groups = {}
            for row in report.rows:
                # The same parameters over another link are another run.
                key = (row["workload"], row["model"], _frozen(row["params"]), L.key(row.get("link")))
                groups.setdefault(key, []).append(row)
            for key, rows in groups.items():
                point = point_from_rows(rows, report.path)
                if point is None:
                    continue
                if key in by_key:
                    pair = (by_key[key].source, report.path)
                    replaced[pair] = replaced.get(pair, 0) + 1
                by_key[key] = point
            self.notes.extend("%s: %s" % (report.path, n) for n in report.notes)
        for (old, new), count in replaced.items():
            self.notes.append("%d run%s of %s replaced by the same run%s in %s" % (
                count, "" if count == 1 else "s", old, "" if count == 1 else "s", new))
        self.points = sorted(by_key.values(), key=lambda p: (self.facts.workload_key(p.workload),
                                                             self.facts.model_key(p.model),
                                                             _frozen(p.params)))
        self._index = by_key
        cpus = [r.num_cpus for r in reports if r.num_cpus]
        self.num_cpus = min(cpus) if cpus else None

    @property
    def context(self):
        return self.reports[0].context

    def warnings(self):
        """The reports' own warnings plus what these scripts notice; each once."""
        out = []
        for r in self.reports:
            prefix = "%s: " % r.label if len(self.reports) > 1 else ""
            for w in r.context.get("warnings") or []:
                out.append(prefix + str(w))
            ctx = r.context
            build = str(ctx.get("build_type") or ctx.get("library_build_type") or "").lower()
            if build == "debug" and not any("debug" in str(w).lower() for w in ctx.get("warnings") or []):
                out.append(prefix + "debug build: timings are not representative")
            if ctx.get("cpu_scaling_enabled"):
                out.append(prefix + "CPU frequency scaling was enabled: timings may vary")
            if ctx.get("git_dirty"):
                out.append(prefix + "built from a working tree with uncommitted changes (git_dirty)")
        bad = [p for p in self.points if p.status != "ok"]
        failed = sum(1 for p in bad if p.status == "failed")
        skipped = sum(1 for p in bad if p.status == "skipped")
        if failed or skipped:
            out.append("%d run%s failed and %d %s skipped (marked in the charts; reasons in the "
                       "table)" % (failed, "" if failed == 1 else "s", skipped,
                                   "was" if skipped == 1 else "were"))
        unverified = [p for p in self.points if p.status == "failed" and p.verified is False
                      and p.error and "checksum" in p.error]
        if unverified:
            out.append("%d run%s produced a wrong checksum" % (len(unverified),
                                                              "" if len(unverified) == 1 else "s"))
        few = sorted({p.repetitions for p in self.points if p.ok and p.repetitions and p.repetitions < 3})
        if few:
            out.append("only %s repetition(s) per run in places: intervals are wide or absent"
                       % "/".join(map(str, few)))
        for n in self.notes:
            out.append(n)
        seen, unique = set(), []
        for w in out:
            if w not in seen:
                seen.add(w)
                unique.append(w)
        return unique

    def subset(self, keep):
        """These results with only the points `keep(point)` accepts (a view: the facts, reports
        and notes are shared)."""
        out = copy.copy(self)
        out.points = [p for p in self.points if keep(p)]
        out._index = {k: p for k, p in self._index.items() if keep(p)}
        return out

    def find_by_name(self, name):
        """The point a row name (the median aggregate's or an iteration's) belongs to."""
        for p in self.points:
            if p.name == name or name in p.row_names:
                return p
        return None

    def workloads(self):
        return sorted({p.workload for p in self.points}, key=self.facts.workload_key)

    def models(self, workload=None):
        return sorted({p.model for p in self.points if workload is None or p.workload == workload},
                      key=self.facts.model_key)

    def style(self, model):
        """matplotlib keyword arguments for the model's lines: colour, line style, marker."""
        return self.facts.style(model)

    def colour(self, model):
        return self.facts.style(model)["color"]

    def figures_for(self, workload):
        return self.facts.figures(workload)

    def points_for(self, workload, model=None):
        return [p for p in self.points if p.workload == workload and (model is None or p.model == model)]

    def param_names(self, workload):
        names = []
        for p in self.points_for(workload):
            for k in p.params:
                if k not in names:
                    names.append(k)
        return names

    def swept_params(self, workload):
        """Parameters whose value differs between the workload's points, in parameter order."""
        pts = self.points_for(workload)
        out = []
        for name in self.param_names(workload):
            values = {p.params.get(name) for p in pts}
            if len(values) > 1:
                out.append(name)
        return out

    def forms_lines(self, workload, name):
        """Whether some model has two or more values of `name` with every other parameter fixed."""
        seen = {}
        for p in self.points_for(workload):
            rest = (p.model, _frozen({k: v for k, v in p.params.items() if k != name}))
            seen.setdefault(rest, set()).add(p.params.get(name))
        return any(len(values) > 1 for values in seen.values())

    def chart_params(self, workload):
        """(independent swept parameters, {dependent: the parameter it moves with}).

        A swept parameter that changes one-to-one with an earlier one (requests = 2 x rate) is
        not a dimension of its own: charting against it would repeat the other chart."""
        swept = self.swept_params(workload)
        pts = self.points_for(workload)
        independent, dependent = [], {}
        for name in swept:
            driver = None
            for other in independent:
                fwd, back = {}, {}
                one_to_one = True
                for p in pts:
                    a, b = p.params.get(other), p.params.get(name)
                    if fwd.setdefault(a, b) != b or back.setdefault(b, a) != a:
                        one_to_one = False
                        break
                if one_to_one:
                    driver = other
                    break
            if driver is None:
                independent.append(name)
            else:
                dependent[name] = driver
        return independent, dependent

    def param_values(self, workload, name):
        return sorted({p.params[name] for p in self.points_for(workload) if name in p.params})

    def find(self, workload, model, params):
        """The point at exactly these params; for the baseline, matched ignoring the parameters
        that size a model."""
        p = self._index.get((workload, model, _frozen(params), L.key(None)))
        if p is None:  # on a link: the run over the nearest one
            p = next((q for q in sorted(self.points_for(workload, model), key=lambda q: L.distance(q.link, None))
                      if q.params == params), None)
        if p is not None or not self.facts.is_baseline(model):
            return p
        return self.baseline_for(workload, params)

    def ignored_by_baseline(self, workload, model, name):
        """Whether `model` is the baseline and ignores parameter `name` of the workload."""
        return self.facts.is_baseline(model) and name in self.facts.model_params(workload)

    def baseline_for(self, workload, params):
        """The baseline model's point at the same params but those it ignores (workers)."""
        baseline = self.facts.baseline
        if baseline is None:
            return None
        exact = self._index.get((workload, baseline, _frozen(params), L.key(None)))
        if exact is not None:
            return exact
        ignores = self.facts.model_params(workload)
        want = {k: v for k, v in params.items() if k not in ignores}
        candidates = [p for p in self.points_for(workload, baseline)
                      if {k: v for k, v in p.params.items() if k not in ignores} == want]
        if not candidates:
            return None
        candidates.sort(key=lambda p: (not p.ok, p.params.get("workers", 0)))
        return candidates[0]

    def speedup(self, point):
        """(speedup, lo, hi, baseline point) against the baseline model, or None."""
        if not point.ok or not point.real_ms:
            return None
        base = self.baseline_for(point.workload, point.params)
        if base is None or not base.ok or not base.real_ms:
            return None
        s = base.real_ms / point.real_ms
        b_lo, b_hi = base.real_ci or (base.real_ms, base.real_ms)
        m_lo, m_hi = point.real_ci or (point.real_ms, point.real_ms)
        return (s, b_lo / m_hi if m_hi else s, b_hi / m_lo if m_lo else s, base)

    def combos(self, workload):
        """Distinct parameter combinations of the workload, sorted."""
        seen = {}
        for p in self.points_for(workload):
            seen.setdefault(_frozen(p.params), p.params)
        return [seen[k] for k in sorted(seen)]

    def headline_params(self, workload, at=None):
        """The configuration the overview compares models on.

        The combination where the most models ran ok; ties go to workers equal to the CPU count,
        then to a combination the first report ran (given several, the first is the main run, say
        the default suite, and the others sweeps around it), then to the larger values of the
        other parameters (the biggest run they all completed). `at` ({name: value}) restricts the
        candidates to matching combinations."""
        at = at or {}
        combos = [c for c in self.combos(workload)
                  if all(c.get(k) == v for k, v in at.items() if k in c)]
        if not combos:
            return None
        models = self.models(workload)
        cpus = self.num_cpus
        first_report = {_frozen(row["params"]) for row in self.reports[0].rows
                        if row.get("workload") == workload} if self.reports else set()

        def key(c):
            ok = sum(1 for m in models if (self.find(workload, m, c) or _NOT_OK).ok)
            workers_match = 1 if cpus and c.get("workers") == cpus else 0
            in_first = 1 if _frozen(c) in first_report else 0
            size = sum(math.log1p(abs(v)) for k, v in c.items() if k != "workers")
            return (ok, workers_match, in_first, size, c.get("workers", 0))
        return max(combos, key=key)


class _NotOk:
    ok = False


_NOT_OK = _NotOk()
