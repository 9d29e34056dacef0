"""Loading, validating and normalising cmbench reports; atomic writes.

A report is Google Benchmark's JSON plus cmbench's fields (README, "Report format"). Loading
checks, in order: the file exists and is readable, it is JSON, the top level is an object with a
`context` object and a `benchmarks` array, the report's format is one this code reads
(`context.cmbench_schema_version` 2; before it, `context.json_schema_version` said cmbench's
format: 1 is read with --facts, 0 is refused; a newer one is refused rather than misread; Google
Benchmark's tools need `json_schema_version` to stay 1, which it does from 2 on), there is at least
one row, and every row carries cmbench's `workload` and `model` (a plain Google Benchmark report
does not). Then one schema walk checks the shape of every field the scripts read (CONTEXT_SCHEMA,
FACTS_SCHEMA and ROW_SCHEMA below: types, non-negative whole numbers where counts are expected,
times and latencies >= 0, parameters of at most 18 digits, no number of more than 20 digits
(anywhere, named or not), nothing nested more than MAX_DEPTH deep), and that every row's model
and workload is one the facts describe; fields they do not name are left alone, so a newer
harness may add some. Any failure raises ReportError with a one-line message naming the file,
the JSON path (`benchmarks[3].params.tasks`) and what was expected; nothing past the loader
checks types again.

The facts (context.models, context.workloads) are everything the scripts know about a model or a
workload: its order, whether it is the baseline, its mechanism, a workload's figures of merit and
what they mean. The scripts hold no table of names; the facts come from the report:

  schema 2  the current format: the facts are in the context.
  schema 1  the format before them: it is read only with facts given separately (--facts FILE,
            the output of `cmbench list --json` of a build, which has the same shape), and says
            so in a note; without them it is refused with a one-line message saying how to read
            it or to run it again. Its rows' `mechanism` prose is ignored.
  schema 0  the first format: refused (run it again).

Every normalised row also gets `real_time_ms` and `cpu_time_ms` (time_unit applied),
`source` (the report's path) and `link`: the link conditions to the nodes it ran over (link.py),
its own `link` field, else, for a workload whose facts say `remote`, the report's `context.link`,
else None.
"""

import json
import math
import os
import tempfile

from . import OLDEST_SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSION
from . import link as L

TIME_UNIT_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
STATUSES = ("ok", "failed", "skipped")
RESOURCE_KEYS = (
    "wall_ns", "setup_ns", "user_cpu_ns", "sys_cpu_ns", "cpu_utilization", "peak_rss_bytes",
    "rss_before_bytes", "peak_processes", "voluntary_context_switches",
    "involuntary_context_switches", "minor_page_faults", "major_page_faults",
)


class ReportError(Exception):
    """A report (or another input) that cannot be used; the message is one line for stderr."""


class Report:
    """One loaded report: its context, normalised rows, and what the loader had to do."""

    def __init__(self, path, context, rows, schema_version, notes):
        self.path = path
        self.context = context
        self.rows = rows
        self.schema_version = schema_version  # cmbench's report format the file was written in
        self.notes = notes                    # e.g. "report format 1: the facts are ..."

    @property
    def num_cpus(self):
        n = self.context.get("num_cpus")
        return n if isinstance(n, int) and n > 0 else None

    @property
    def label(self):
        return os.path.basename(self.path)


def _short(text, limit=60):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- reading ---------------------------------------------------------------------------------

# Whole numbers in a report fit 64 bits (the harness writes int64 and uint64 at most): at most
# 20 digits. A longer one is kept as _LongNumber by the reader (Python's int() refuses more than
# 4,300 digits, and float() overflows far earlier), so validation can name where it is.
MAX_DIGITS = 20
# Parameters are the harness's int64 counts and sizes: at most 18 digits (under 10^18).
MAX_PARAM_DIGITS = 18
# A report nests at most 7 levels (context.floors.by_workload.W.probes[i].name); anything
# deeper is not a cmbench report, and deep enough would exhaust the reader's recursion.
MAX_DEPTH = 32


class _LongNumber:
    """A JSON whole number of more than MAX_DIGITS digits, as read (never a valid value)."""

    def __init__(self, text):
        self.digits = len(text.lstrip("-"))

    def __repr__(self):
        return "a %d-digit number" % self.digits


def _parse_int(text):
    return _LongNumber(text) if len(text.lstrip("-")) > MAX_DIGITS else int(text)


def _read_json(path, what="report"):
    """The parsed JSON of a file. Raises ReportError with one line."""
    if not os.path.exists(path):
        raise ReportError("%s: no such file" % path)
    if os.path.isdir(path):
        raise ReportError("%s: is a folder, expected a %s JSON file" % (path, what))
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ReportError("%s: cannot read: %s" % (path, e.strerror or e))
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_parse_int)
    except UnicodeDecodeError:
        raise ReportError("%s: not a JSON file (not UTF-8 text)" % path)
    except json.JSONDecodeError as e:
        raise ReportError("%s: not valid JSON (line %d, column %d: %s); was the run interrupted?"
                          % (path, e.lineno, e.colno, e.msg))
    except RecursionError:
        raise ReportError("%s: arrays or objects nested too deeply to read, expected at most %d "
                          "levels of nested arrays and objects" % (path, MAX_DEPTH))
    except ValueError as e:  # anything else the reader refuses: one line, whatever it is
        raise ReportError("%s: not readable as JSON: %s" % (path, _short(e, 120)))


def load_report(path, facts=None):
    """Reads, validates and normalises one report. `facts`: load_facts()'s result, used only
    for a report that predates the facts in its context. Raises ReportError."""
    return parse_report(_read_json(path), path, facts)


def load_facts(path):
    """Reads and checks a facts file (`cmbench list --json`): {"models": [...], "workloads":
    [...]}, with the source path kept for notes. Raises ReportError."""
    doc = _read_json(path, "facts (cmbench list --json)")
    try:
        _check(FACTS_SCHEMA, doc, "")
        _walk_everything(doc)
        _check_unique_names(doc, "")
    except _Violation as v:
        raise ReportError("%s: %s %s, expected %s (a file from `cmbench list --json`)"
                          % (path, v.where or "top level", v.what, v.expected))
    return {"models": doc["models"], "workloads": doc["workloads"], "path": path}


def parse_report(doc, path="<report>", facts=None):
    """Validates and normalises an already parsed document. Raises ReportError."""
    version = validate_report(doc, path, facts)
    context = dict(doc["context"])
    notes = []
    if version < 2:
        context["models"], context["workloads"] = facts["models"], facts["workloads"]
        notes.append("report format %d: the models' and workloads' facts are %s's, not the "
                     "report's own" % (version, facts.get("path", "the given facts")))
    # A remote row without link conditions of its own ran on the run's (context.link), if any.
    remote = {w["name"] for w in context["workloads"] if w.get("remote")}
    run_link = L.parse(context.get("link"))
    normalised = [_normalise_row(row, path, run_link if row["workload"] in remote else None)
                  for row in doc["benchmarks"]]
    if not isinstance(context.get("warnings"), list):
        context["warnings"] = [] if context.get("warnings") is None else [context["warnings"]]
    return Report(path, context, normalised, version, notes)


def load_reports(paths, facts_path=None):
    """Loads every report first, so nothing is written unless all of them are usable. The facts
    of `facts_path` serve the reports that predate the facts in their context."""
    if not paths:
        raise ReportError("no report given")
    facts = load_facts(facts_path) if facts_path else None
    return [load_report(p, facts) for p in paths]


def _json_type(v):
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    return "number"


# --- validation: one schema walk at load ---------------------------------------------------------
#
# A spec is either a function value -> None (fits) or the text of what was expected, or one of
# the container classes below, which walk their contents. Object fields that are absent are
# fine (every field is optional unless the row checks say otherwise); fields a spec does not
# name are not checked (a newer harness may add some), except by the walk over everything that
# refuses over-long numbers and deep nesting.

class _Violation(Exception):
    """`where` (a JSON path) is `value` (or `what`, said otherwise), expected `expected`."""

    def __init__(self, where, value, expected, what=None):
        super().__init__(where)
        self.where, self.value, self.expected = where, value, expected
        self.what = what or "is %s" % _describe(value)


def _describe(v):
    if isinstance(v, _LongNumber):
        return repr(v)
    if isinstance(v, str):
        return "the string %s" % _short(json.dumps(v, ensure_ascii=False), 40)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        try:
            text = str(abs(v))
        except ValueError:  # more digits than Python converts (4,300)
            return "a number of over 4,300 digits"
        return str(v) if len(text) <= MAX_DIGITS else "a %d-digit number" % len(text)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "an array" if v else "an empty array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _key_path(where, key):
    if key.isidentifier():
        return "%s.%s" % (where, key) if where else key
    return "%s[%s]" % (where, json.dumps(key, ensure_ascii=False))


def _check(spec, value, where):
    if callable(spec):
        expected = spec(value)
        if expected:
            raise _Violation(where, value, expected)
    else:
        spec.check(value, where)


def _string(v):
    return None if isinstance(v, str) else "a string"


def _nonempty_string(v):
    return None if isinstance(v, str) and v else "a non-empty string"


def _boolean(v):
    return None if isinstance(v, bool) else "true or false"


def _integer(v):
    """A whole number (an order key: may be negative)."""
    if _too_long(v):
        return "a whole number of at most %d digits" % MAX_DIGITS
    return None if isinstance(v, int) and not isinstance(v, bool) else "a whole number"


def _too_long(v):
    return isinstance(v, _LongNumber) or (isinstance(v, int) and not isinstance(v, bool)
                                          and abs(v) >= 10 ** MAX_DIGITS)


def _number(v):
    """A finite number under 10^20 in size (20 digits before the point): no figure of cmbench's
    comes near, and charts and arithmetic on larger ones overflow."""
    if _too_long(v):
        return "a number of at most %d digits" % MAX_DIGITS
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, float) and not math.isfinite(v):
        return "a finite number"
    if isinstance(v, float) and abs(v) >= 10.0 ** MAX_DIGITS:
        return "a number of at most %d digits" % MAX_DIGITS
    return None


def _duration(v):
    """A time (or a latency): a number >= 0."""
    return _number(v) or (None if v >= 0 else "a number >= 0")


def _count(v):
    """A whole number >= 0 (repetitions, indexes, CPUs)."""
    if _too_long(v):
        return "a whole number >= 0 of at most %d digits" % MAX_DIGITS
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        return "a whole number >= 0"
    return None


def _param(v):
    """A parameter: a whole number >= 0 of at most 18 digits (1000.0 counts as 1000)."""
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 10 ** MAX_PARAM_DIGITS:
        return "a whole number >= 0 of at most %d digits" % MAX_PARAM_DIGITS
    return None


def _one_of(*choices):
    def check(v):
        return None if isinstance(v, str) and v in choices else "one of %s" % ", ".join(choices)
    return check


def _either(*specs, expected):
    """Any of the scalar specs; `expected` names them all."""
    def check(v):
        return None if any(spec(v) is None for spec in specs) else expected
    return check


def _percentile_key(k):
    try:
        p = float(k)
    except ValueError:
        p = math.nan
    return None if 0 < p <= 100 else "percentiles (above 0, at most 100) as keys"


def _strings(v):
    """Warnings: an array of strings (a lone string is taken as one)."""
    if isinstance(v, str) or (isinstance(v, list) and all(isinstance(w, str) for w in v)):
        return None
    return "an array of strings"


class _Nullable:
    """null, or what `spec` says."""

    def __init__(self, spec):
        self.spec = spec

    def check(self, v, where):
        if v is not None:
            _check(self.spec, v, where)


_opt = _Nullable


class _Array:
    def __init__(self, item, length=None, nonempty=False):
        self.item, self.length, self.nonempty = item, length, nonempty

    def check(self, v, where):
        if not isinstance(v, list):
            raise _Violation(where, v, "an array" if self.length is None
                             else "an array of %d items" % self.length)
        if self.length is not None and len(v) != self.length:
            raise _Violation(where, v, "an array of %d items, not %d" % (self.length, len(v)))
        if self.nonempty and not v:
            raise _Violation(where, v, "at least one item")
        for i, x in enumerate(v):
            _check(self.item, x, "%s[%d]" % (where, i))


class _Object:
    """Named fields with their specs; `values` checks every other field's value, `keys` every
    field's name; the `required` fields must be present."""

    def __init__(self, fields=None, values=None, keys=None, required=()):
        self.fields, self.values, self.keys, self.required = fields or {}, values, keys, required

    def check(self, v, where):
        if not isinstance(v, dict):
            raise _Violation(where, v, "an object")
        for key in self.required:
            if key not in v:
                raise _Violation(where, v, "an object with `%s`" % key, what="has no `%s`" % key)
        for key, x in v.items():
            inner = _key_path(where, key)
            if self.keys is not None:
                expected = self.keys(key)
                if expected:
                    raise _Violation(where, None, expected, what="has the key %s"
                                     % _short(json.dumps(key, ensure_ascii=False), 40))
            spec = self.fields.get(key, self.values)
            if spec is not None:
                _check(spec, x, inner)


_NUM = _opt(_number)
_TIME = _opt(_duration)
_STR = _opt(_string)
_COUNT = _opt(_count)
_BOOL = _opt(_boolean)

_PROBE = _Object(dict({k: _STR for k in ("name", "what", "per")},
                      **{k: _NUM for k in ("before_ns", "after_ns", "ns_per_op", "before_p50_ns",
                                           "after_p50_ns", "p50_ns")}))
_FLOORS_BLOCK = {"measured": _STR, "probes": _opt(_Array(_PROBE)),
                 "errors": _opt(_Array(_string))}

# The facts: what a model or a workload is (README, "Report format"). Everything the scripts
# decide about a model or a workload, they read here.
FIGURE_KINDS = ("time_ns", "bytes", "rate", "ratio")
_FIGURE = _Object({"metric": _nonempty_string, "label": _nonempty_string, "heading": _STR,
                   "kind": _one_of(*FIGURE_KINDS), "better": _one_of("lower", "higher")},
                  required=("metric", "label", "kind", "better"))


def _phase(v):
    """One of a workload's phases (its `phases` fact): a metric's name, or an object naming the
    metric with, optionally, its label and kind."""
    if isinstance(v, str) and v:
        return None
    if isinstance(v, dict) and isinstance(v.get("metric"), str) and v["metric"] \
            and all(isinstance(v.get(k), str) for k in ("label", "kind") if v.get(k) is not None):
        return None
    return "a metric's name or an object with `metric` (and optionally `label`, `kind`)"


_MODEL_FACTS = _Object({
    "name": _nonempty_string, "family": _nonempty_string, "variant": _nonempty_string,
    "description": _STR, "order": _integer, "baseline": _boolean,
    "mechanism": _Object(values=_string), "waits": _STR, "round_trip_floor": _STR,
}, required=("name", "family", "variant", "order", "baseline", "mechanism"))
_WORKLOAD_FACTS = _Object({
    "name": _nonempty_string, "description": _STR, "measures": _STR, "order": _integer,
    "unit": _nonempty_string, "figures": _Array(_FIGURE, nonempty=True), "speedup": _boolean,
    "memory_per_unit": _boolean, "floor": _STR, "model_params": _Array(_nonempty_string),
    "params": _opt(_Array(_Object({"name": _nonempty_string, "help": _STR}))),
    "remote": _BOOL, "phases": _opt(_Array(_phase)),
}, required=("name", "order", "unit", "figures", "speedup", "memory_per_unit", "model_params"))
FACTS_SCHEMA = _Object({"models": _Array(_MODEL_FACTS, nonempty=True),
                        "workloads": _Array(_WORKLOAD_FACTS, nonempty=True)},
                       required=("models", "workloads"))

CONTEXT_SCHEMA = _Object({
    "json_schema_version": _count, "cmbench_schema_version": _count,
    "num_cpus": _COUNT, "online_cpus": _COUNT, "mhz_per_cpu": _NUM,
    "repetitions": _COUNT, "warmup": _COUNT, "timeout_seconds": _NUM,
    "steal_share_during": _NUM, "cpu_scaling_enabled": _BOOL, "git_dirty": _BOOL,
    **{k: _STR for k in ("date", "host_name", "executable", "library_build_type", "build_type",
                         "cmbench_version", "cpu_model", "governor", "kernel", "compiler",
                         "compiler_flags", "git_sha", "command_line", "preset")},
    "warnings": _opt(_strings),
    "load_avg": _opt(_Array(_number)), "load_avg_after": _opt(_Array(_number)),
    "affinity": _opt(_Array(_count)),
    "caches": _opt(_Array(_Object({"type": _STR, "level": _COUNT, "size": _COUNT,
                                   "num_sharing": _COUNT}))),
    "cpu_before": _opt(_Object({"window_s": _NUM, "online_cpus": _COUNT, "busy_cpus": _NUM,
                                "steal_cpus": _NUM})),
    "library_versions": _opt(_Object(values=_STR)),
    "limits": _opt(_Object(values=_opt(_either(_number, _string,
                                               expected="a number or a string")))),
    "floors": _opt(_Object(dict(_FLOORS_BLOCK,
                                by_workload=_opt(_Object(values=_Object(_FLOORS_BLOCK)))))),
})

# Resource fields that are labels (strings); every other named one is a number.
RESOURCE_LABELS = ("memory_measured",)
RESOURCE_NUMBERS = RESOURCE_KEYS + (
    "peak_pss_bytes", "pss_before_bytes", "processes_before", "threads_before",
    "memory_bytes_at_measurement", "processes_at_measurement", "threads_at_measurement",
    "memory_sample_cost_ns", "memory_samples", "sampler_cpu_ns")

ROW_SCHEMA = _Object({
    "name": _nonempty_string, "workload": _nonempty_string, "model": _nonempty_string,
    "run_name": _STR, "family": _STR, "variant": _STR,
    "round_trip_floor": _STR, "aggregate_name": _STR, "aggregate_unit": _STR,
    "run_type": _one_of("iteration", "aggregate"),
    "time_unit": _one_of(*TIME_UNIT_TO_MS),
    "status": _opt(_one_of(*STATUSES)),
    "error": _STR, "error_message": _STR, "error_occurred": _BOOL,
    "verified": _BOOL, "checksum": _STR, "expected_checksum": _STR,
    **{k: _COUNT for k in ("repetitions", "repetition_index", "ok_repetitions", "threads",
                           "iterations", "family_index", "per_family_instance_index")},
    "real_time": _TIME, "cpu_time": _TIME,
    "params": _Object(values=_param),
    "units_at_once": _opt(_count),
    "resources": _opt(_Object(dict({k: _NUM for k in RESOURCE_NUMBERS},
                                   **{k: _STR for k in RESOURCE_LABELS}),
                              values=_opt(_either(_number, _string,
                                                  expected="a number or a string")))),
    "metrics": _opt(_Object(values=_NUM)),
    "latency": _opt(_Object({
        "unit": _one_of(*TIME_UNIT_TO_MS), "count": _COUNT,
        "mean": _TIME, "min": _TIME, "max": _TIME,
        "percentiles": _Object(values=_TIME, keys=_percentile_key),
        "histogram": _opt(_Array(_Array(_duration, length=3))),
        "histogram_format": _STR,
    })),
    "samples": _opt(_Object(values=_opt(_Array(_TIME)))),
})


def _walk_everything(doc):
    """Every value, named or not: no number longer than MAX_DIGITS, no nesting past MAX_DEPTH.
    Iterative, so a deep document cannot exhaust the recursion limit here."""
    stack = [(doc, "", 0)]
    while stack:
        v, where, depth = stack.pop()
        if _too_long(v):
            raise _Violation(where, v, "a number of at most %d digits" % MAX_DIGITS)
        if isinstance(v, (list, dict)):
            if depth >= MAX_DEPTH:
                raise _Violation(where, v, "at most %d levels of nested arrays and objects"
                                 % MAX_DEPTH)
            items = enumerate(v) if isinstance(v, list) else v.items()
            for k, x in items:
                if isinstance(x, (list, dict, int, _LongNumber)):
                    inner = "%s[%d]" % (where, k) if isinstance(v, list) else _key_path(where, k)
                    stack.append((x, inner, depth + 1))


def _check_unique_names(facts, where):
    for kind in ("models", "workloads"):
        seen = set()
        for i, entry in enumerate(facts[kind]):
            if entry["name"] in seen:
                raise _Violation("%s%s[%d].name" % (where + "." if where else "", kind, i), entry["name"],
                                 "each name once")
            seen.add(entry["name"])


def validate_report(doc, path="<report>", facts=None):
    """Checks the shape of a parsed report; returns its format (cmbench_schema_version, or for
    an older report the json_schema_version it said its format in). `facts`: for a report of
    format 1, which has none in its context (load_facts()). Raises ReportError with one line:
    the file, the JSON path, what it is and what was expected."""
    if not isinstance(doc, dict):
        raise ReportError("%s: top level is a JSON %s, expected an object with `context` and "
                          "`benchmarks` (not a cmbench report)" % (path, _json_type(doc)))
    if "benchmarks" not in doc:
        raise ReportError("%s: no `benchmarks` array (not a cmbench report)" % path)
    if not isinstance(doc["benchmarks"], list):
        raise ReportError("%s: `benchmarks` is a JSON %s, expected an array"
                          % (path, _json_type(doc["benchmarks"])))
    context = doc.get("context")
    if not isinstance(context, dict):
        raise ReportError("%s: no `context` object (not a cmbench report)" % path)
    key = "cmbench_schema_version" if "cmbench_schema_version" in context else "json_schema_version"
    version = context.get(key, 0)
    if _count(version):
        raise ReportError("%s: context.%s is %s, expected a whole number" % (path, key, _describe(version)))
    if version > SUPPORTED_SCHEMA_VERSION:
        raise ReportError("%s: %s %d is newer than these scripts support (%d); "
                          "update scripts/ to the cmbench version that wrote it"
                          % (path, key, version, SUPPORTED_SCHEMA_VERSION))
    rows = doc["benchmarks"]
    if not rows:
        raise ReportError("%s: no benchmarks in the report (did every workload get filtered out?)"
                          % path)
    for index, row in enumerate(rows):  # a plain Google Benchmark report says so, whatever its version
        _require_cmbench_row(row, index, path)
    if version < OLDEST_SCHEMA_VERSION:
        raise ReportError("%s: report format %d (%s %d) is cmbench's first, no longer read: run it "
                          "again with this cmbench" % (path, version, key, version))
    if version < 2 and facts is None:
        raise ReportError("%s: report format %d (%s %d, before cmbench_schema_version 2) has no "
                          "models' and workloads' facts in its context: read it with --facts FILE, "
                          "FILE from `build/release/harness/cmbench list --json > FILE`, or run it "
                          "again with this cmbench" % (path, version, key, version))
    try:
        _check(CONTEXT_SCHEMA, context, "context")
        _check_link(context, "context")
        if version >= 2:
            _check(FACTS_SCHEMA, context, "context")
            _check_unique_names(context, "context")
            facts = context
        for index, row in enumerate(rows):
            _validate_row(row, index, path)
        _check_described(rows, facts, "context" if version >= 2 else "the facts")
        _walk_everything(doc)  # after the named fields, whose messages say more
    except _Violation as v:
        raise ReportError("%s: %s %s, expected %s" % (path, v.where, v.what, v.expected))
    return version


def _check_described(rows, facts, where):
    """Every row's model and workload is one the facts describe: nothing is guessed from a name."""
    for kind, key in (("models", "model"), ("workloads", "workload")):
        names = {entry["name"] for entry in facts[kind]}
        for index, row in enumerate(rows):
            if row[key] not in names:
                raise _Violation("benchmarks[%d].%s" % (index, key), row[key],
                                 "one of the %s in %s.%s" % (kind, where, kind))


def _require_cmbench_row(row, index, path):
    """A row that is no cmbench run (no name, workload or model): ReportError with one line."""
    where = "benchmarks[%d]" % index
    if not isinstance(row, dict):
        raise ReportError("%s: %s is %s, expected an object (one run)" % (path, where, _describe(row)))
    name = row.get("name")
    if not isinstance(name, str) or not name:
        raise ReportError("%s: %s has no `name`" % (path, where))
    for key in ("workload", "model"):
        if not isinstance(row.get(key), str) or not row.get(key):
            raise ReportError("%s: %s (%s) has no `%s`: not a cmbench report (a plain Google "
                              "Benchmark report?)" % (path, where, _short(name), key))


def _validate_row(row, index, path):
    where = "benchmarks[%d]" % index
    _require_cmbench_row(row, index, path)
    _check(ROW_SCHEMA, row, where)
    if "/" not in row["model"]:
        raise _Violation(where + ".model", row["model"], "`family/variant`, such as threads/pool")
    latency = row.get("latency")
    if latency is not None and "percentiles" not in latency:
        raise _Violation(where + ".latency", latency, "an object with `percentiles`")
    _check_link(row, where)


def _check_link(holder, where):
    """The link conditions a row (or the context) carries, if any, are readable (link.py)."""
    if holder.get("link") is None:
        return
    try:
        L.parse(holder["link"])
    except L.LinkError as e:
        raise _Violation(where + ".link", holder["link"], "link conditions (%s)" % e)


# --- normalising (the shape is valid by now) ------------------------------------------------------

def _normalise_row(row, path, run_link=None):
    out = dict(row)
    out["link"] = L.parse(row["link"]) if row.get("link") is not None else run_link
    name, model = row["name"], row["model"]
    family, variant = model.split("/", 1)
    if out.get("family") is None:
        out["family"] = family
    if out.get("variant") is None:
        out["variant"] = variant
    if out.get("run_name") is None:
        out["run_name"] = name[: -len("_median")] if name.endswith("_median") else name
    out["run_type"] = row.get("run_type", "iteration")
    out["params"] = {k: int(v) for k, v in row.get("params", {}).items()}

    scale = TIME_UNIT_TO_MS[row.get("time_unit", "ns")]
    for key in ("real_time", "cpu_time"):
        value = row.get(key)
        out[key + "_ms"] = value * scale if value is not None else None

    # Status: cmbench says it; Google Benchmark's error flag where it does not.
    status = row.get("status")
    if status is None:
        status = "failed" if row.get("error_occurred") else "ok"
    out["status"] = status
    if out.get("error") is None and status != "ok":
        out["error"] = row.get("error_message") or "no reason given"
    out.setdefault("error", None)
    if out.get("verified") is None:
        out["verified"] = None if status != "ok" else (
            row.get("checksum") == row.get("expected_checksum")
            if row.get("checksum") and row.get("expected_checksum") else None)

    resources = dict(row.get("resources") or {})
    for key in RESOURCE_KEYS:
        resources.setdefault(key, None)
    out["resources"] = resources

    metrics = row.get("metrics")
    # As floats (the harness's are doubles): numpy would hold a whole number past 2^63 as an
    # object, which matplotlib cannot draw.
    out["metrics"] = {k: float(v) for k, v in (metrics or {}).items() if v is not None}

    latency = row.get("latency")
    if latency is not None and latency["percentiles"]:  # none: nothing to read from it
        lscale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[latency.get("unit", "ns")]
        pct = {float(k): v * lscale for k, v in latency["percentiles"].items() if v is not None}
        out["latency"] = {"count": latency.get("count"),
                          "mean_ns": latency["mean"] * lscale if latency.get("mean") is not None else None,
                          "percentiles_ns": dict(sorted(pct.items()))}
    else:
        out["latency"] = None

    samples = row.get("samples")
    if samples is not None:
        out["samples_ms"] = {k: [v * scale for v in vals if v is not None]
                             for k, vals in samples.items() if vals is not None}
    else:
        out["samples_ms"] = None
    out.setdefault("ok_repetitions", None)
    out.setdefault("units_at_once", None)  # not in version 1
    out.pop("mechanism", None)  # version 1's prose: the facts say it now
    return out



# --- writing ---------------------------------------------------------------------------------

def atomic_write_bytes(path, data):
    """Writes `data` to `path` through a temporary file in the same folder and a rename, so a
    reader sees the old file or the whole new one, never a half-written one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output_file(path):
    """Fails early (before any work) when an output file cannot be written where asked."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ReportError("%s: is a folder, expected a file name for the output" % path)
    if not os.path.isdir(folder):
        raise ReportError("%s: folder %s does not exist" % (path, folder))
    if not os.access(folder, os.W_OK):
        raise ReportError("%s: folder %s is not writable" % (path, folder))


def check_output_folder(path):
    """The output folder may exist (then it must be a writable folder) or be creatable."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ReportError("%s: exists and is not a folder" % path)
    parent = os.path.dirname(os.path.abspath(path))
    probe = path if os.path.isdir(path) else parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK):
        raise ReportError("%s: cannot create or write (no write permission on %s)" % (path, probe))
