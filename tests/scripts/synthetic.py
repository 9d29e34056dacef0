"""Small synthetic reports for the advice's unit tests: a real fixture's context (its models'
facts) with the workload facts and rows a test spells out, one ok iteration row per run."""

import copy
import json

from helpers import fixture, load_json

# The distributed workloads' facts as the harness writes them (the metrics the scripts read).
SERVER_FACTS = {"name": "server", "description": "one node serves requests under open-loop load",
                "measures": "the saturation rate and latency", "order": 110, "unit": "connection",
                "figures": [{"metric": "achieved_rps", "label": "requests answered per second", "heading": "req/s",
                             "kind": "rate", "better": "higher"},
                            {"metric": "latency_p99_ns", "label": "latency from the due time, 99th percentile",
                             "heading": "p99", "kind": "time_ns", "better": "lower"}],
                "speedup": False, "memory_per_unit": False, "floor": None, "remote": True,
                "own_coordinator": "an open-loop load generator", "model_params": ["workers"], "params": []}
SCATTER_FACTS = {"name": "scatter", "description": "N remote calls over W nodes", "measures": "makespan",
                 "order": 100, "unit": "task",
                 "figures": [{"metric": "makespan_over_ideal", "label": "makespan over its ideal", "heading": "x ideal",
                              "kind": "ratio", "better": "lower"},
                             {"metric": "tasks_per_second", "label": "remote calls gathered per second",
                              "heading": "tasks/s", "kind": "rate", "better": "higher"}],
                 "speedup": False, "memory_per_unit": False, "floor": None, "remote": True,
                 "own_coordinator": None, "model_params": ["workers"], "params": []}
MAPREDUCE_FACTS = {"name": "mapreduce", "description": "map, shuffle, reduce over nodes", "measures": "phases",
                   "order": 120, "unit": "task",
                   "figures": [{"metric": "makespan_ms", "label": "makespan", "heading": "ms", "kind": "ratio",
                                "better": "lower"}],
                   "speedup": False, "memory_per_unit": False, "floor": None, "remote": True,
                   "own_coordinator": None, "model_params": ["workers"], "params": [],
                   "phases": ["phase_map_ms", {"metric": "phase_shuffle_ms", "label": "shuffle"},
                              {"metric": "phase_reduce_ms", "label": "reduce"}]}

SERVER_PARAMS = {"connections": 8, "compute_us": 20, "wait_ms": 0, "payload_bytes": 64, "duration_ms": 50,
                 "p99_limit_ms": 10, "tolerance_pct": 10, "generator_threads": 1, "nodes": 1, "workers": 2}


def report(rows, workloads=(SERVER_FACTS, SCATTER_FACTS)):
    """A report (the parsed JSON) of these rows, with latency.json's context and these workloads'
    facts added to it."""
    doc = load_json(fixture("latency.json"))
    ctx = copy.deepcopy(doc["context"])
    ctx["workloads"] = [w for w in ctx["workloads"] if w["name"] not in {x["name"] for x in workloads}]
    ctx["workloads"] += [copy.deepcopy(w) for w in workloads]
    return {"context": ctx, "benchmarks": rows}


def row(workload, model, params, metrics, p99_ns=None, link=None):
    """One ok iteration row; with p99_ns, a latency whose percentiles grow around it."""
    name = "%s/%s/%s" % (workload, model, "/".join("%s:%d" % kv for kv in params.items()))
    if link is not None:
        name += "/link:%s" % json.dumps(link, sort_keys=True).replace(" ", "")
    out = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1, "repetition_index": 0,
           "real_time": 100.0, "cpu_time": 50.0, "time_unit": "ms", "workload": workload, "model": model,
           "params": dict(params), "status": "ok", "error": None, "verified": True,
           "resources": {"wall_ns": 100_000_000}, "metrics": dict(metrics)}
    if p99_ns is not None:
        out["latency"] = {"unit": "ns", "count": 1000, "mean": p99_ns / 3,
                          "percentiles": {"50": p99_ns / 4, "90": p99_ns / 2, "99": p99_ns, "99.9": p99_ns * 2,
                                          "100": p99_ns * 4}}
        out["metrics"]["latency_p99_ns"] = p99_ns
    if link is not None:
        out["link"] = link
    return out


def search_row(model, saturation, p99_at_50, p99_at_90, generator_bound=False, **params):
    """A server row that searched the saturation rate (rate 0)."""
    metrics = {"saturation_rps": saturation, "achieved_rps": saturation, "offered_rps": 0.9 * saturation,
               "kept_up": 1.0 if saturation else 0.0, "generator_bound": 1.0 if generator_bound else 0.0,
               "generator_capacity_rps": 100_000.0}
    if p99_at_50 is not None:  # none: no rate passed, so no share of it was offered
        metrics.update(p99_at_50pct_ns=p99_at_50, p99_at_90pct_ns=p99_at_90)
    return row("server", model, dict(SERVER_PARAMS, rate=0, **params), metrics, p99_ns=p99_at_90 or 50e6)


def fixed_row(model, rate, achieved, p99_ns, kept_up=True, generator_bound=False, **params):
    """A server row offered one rate."""
    metrics = {"offered_rps": float(rate), "achieved_rps": float(achieved), "kept_up": 1.0 if kept_up else 0.0,
               "generator_bound": 1.0 if generator_bound else 0.0, "generator_capacity_rps": 100_000.0}
    return row("server", model, dict(SERVER_PARAMS, rate=rate, **params), metrics, p99_ns=p99_ns)


def scatter_row(model, tasks_per_second, link=None, **params):
    full = dict({"tasks": 1000, "in_flight": 64, "compute_us": 20, "wait_ms": 2, "payload_bytes": 64, "nodes": 2,
                 "workers": 2}, **params)
    ideal = full["tasks"] * full["wait_ms"] / full["in_flight"]
    makespan = full["tasks"] / tasks_per_second * 1e3
    return row("scatter", model, full, {"tasks_per_second": float(tasks_per_second), "ideal_ms": ideal,
                                        "makespan_over_ideal": makespan / ideal}, link=link)
