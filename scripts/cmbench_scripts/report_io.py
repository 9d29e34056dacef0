"""Loading, validating and normalising cmbench reports; atomic writes.

A report is Google Benchmark's JSON plus cmbench's fields (see DESIGN.md section 3). Loading
checks, in order: the file exists and is readable, it is JSON, the top level is an object with a
`context` object and a `benchmarks` array, `context.json_schema_version` is one this code knows
(0 or 1; a newer one is refused rather than misread), there is at least one row, and every row
carries cmbench's `workload` and `model` (a plain Google Benchmark report does not). Any failure
raises ReportError with a one-line message naming the file and what is wrong.

Normalising gives every row the same shape whatever version wrote it:

  schema 1  the current format; optional fields that are absent are filled with None.
  schema 0  the first format (also assumed when `json_schema_version` is absent). It lacked
            `variant`, `status`, `error`, `metrics`, `samples`, `ok_repetitions`, `latency`,
            `resources.peak_processes` and `resources.rss_before_bytes`; failures were only
            Google Benchmark's `error_occurred`/`error_message`. The upgrade derives `variant`
            from `model`, `status`/`error` from `error_occurred`/`error_message`, `metrics` from
            `params` and `resources` where the workload's unit count is known (cpu, io, mixed:
            `tasks`; spawn: the tree's units; bytes_per_unit stays unknown without
            rss_before), and leaves the rest None. Aggregates get `samples` from their
            repetitions later (results.collect_points).

Every normalised row also gets `real_time_ms` and `cpu_time_ms` (time_unit applied) and
`source` (the report's path).
"""

import json
import math
import os
import tempfile

from . import SUPPORTED_SCHEMA_VERSION

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
        self.schema_version = schema_version  # the version the file was written with
        self.notes = notes                    # e.g. "upgraded from json_schema_version 0: ..."

    @property
    def num_cpus(self):
        n = self.context.get("num_cpus")
        return n if isinstance(n, int) and n > 0 else None

    @property
    def label(self):
        return os.path.basename(self.path)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(text, limit=60):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_report(path):
    """Reads, validates and normalises one report. Raises ReportError."""
    if not os.path.exists(path):
        raise ReportError("%s: no such file" % path)
    if os.path.isdir(path):
        raise ReportError("%s: is a folder, expected a report JSON file" % path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ReportError("%s: cannot read: %s" % (path, e.strerror or e))
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ReportError("%s: not a JSON file (not UTF-8 text)" % path)
    except json.JSONDecodeError as e:
        raise ReportError("%s: not valid JSON (line %d, column %d: %s); was the run interrupted?"
                          % (path, e.lineno, e.colno, e.msg))
    return parse_report(doc, path)


def parse_report(doc, path="<report>"):
    """Validates and normalises an already parsed document. Raises ReportError."""
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
    version = context.get("json_schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ReportError("%s: context.json_schema_version is %r, expected a whole number"
                          % (path, version))
    if version > SUPPORTED_SCHEMA_VERSION:
        raise ReportError("%s: json_schema_version %d is newer than these scripts support (%d); "
                          "update scripts/ to the cmbench version that wrote it"
                          % (path, version, SUPPORTED_SCHEMA_VERSION))
    rows = doc["benchmarks"]
    if not rows:
        raise ReportError("%s: no benchmarks in the report (did every workload get filtered out?)"
                          % path)
    notes = []
    normalised = []
    for index, row in enumerate(rows):
        normalised.append(_normalise_row(row, index, version, path))
    context = dict(context)
    if version < SUPPORTED_SCHEMA_VERSION:
        notes.append("upgraded from json_schema_version %d: variant, status and metrics derived; "
                     "peak processes, memory before the run and latency unknown" % version)
        for key, default in (("warnings", []), ("library_versions", {}), ("limits", {}),
                             ("affinity", None), ("preset", None)):
            context.setdefault(key, default)
    if not isinstance(context.get("warnings"), list):
        context["warnings"] = [] if context.get("warnings") is None else [str(context["warnings"])]
    return Report(path, context, normalised, version, notes)


def load_reports(paths):
    """Loads every report first, so nothing is written unless all of them are usable."""
    if not paths:
        raise ReportError("no report given")
    return [load_report(p) for p in paths]


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


def _normalise_row(row, index, version, path):
    where = "%s: benchmarks[%d]" % (path, index)
    if not isinstance(row, dict):
        raise ReportError("%s is a JSON %s, expected an object" % (where, _json_type(row)))
    name = row.get("name")
    if not isinstance(name, str) or not name:
        raise ReportError("%s has no `name`" % where)
    where = "%s (%s)" % (where, _short(name))
    for key in ("workload", "model"):
        if not isinstance(row.get(key), str) or not row.get(key):
            raise ReportError("%s has no `%s`: not a cmbench report (a plain Google Benchmark "
                              "report?)" % (where, key))
    out = dict(row)
    model = row["model"]
    if "/" not in model:
        raise ReportError("%s: model %r is not `family/variant`" % (where, model))
    family, variant = model.split("/", 1)
    out.setdefault("family", family)
    if out.get("variant") is None:
        out["variant"] = variant
    out.setdefault("run_name", name[: -len("_median")] if name.endswith("_median") else name)
    run_type = row.get("run_type", "iteration")
    if run_type not in ("iteration", "aggregate"):
        raise ReportError("%s: run_type %r is neither iteration nor aggregate" % (where, run_type))
    out["run_type"] = run_type
    params = row.get("params", {})
    if not isinstance(params, dict) or not all(_is_number(v) for v in params.values()):
        raise ReportError("%s: `params` must be an object of numbers" % where)
    out["params"] = {k: (int(v) if float(v).is_integer() else v) for k, v in params.items()}

    unit = row.get("time_unit", "ns")
    if unit not in TIME_UNIT_TO_MS:
        raise ReportError("%s: unknown time_unit %r" % (where, unit))
    scale = TIME_UNIT_TO_MS[unit]
    for key in ("real_time", "cpu_time"):
        value = row.get(key)
        if value is not None and not _is_number(value):
            raise ReportError("%s: `%s` is %r, expected a number" % (where, key, value))
        out[key + "_ms"] = value * scale if value is not None else None

    # Status: schema 1 says it; schema 0 only had Google Benchmark's error flag.
    status = row.get("status")
    if status is None:
        status = "failed" if row.get("error_occurred") else "ok"
    if status not in STATUSES:
        raise ReportError("%s: status %r is not one of %s" % (where, status, ", ".join(STATUSES)))
    out["status"] = status
    if out.get("error") is None and status != "ok":
        out["error"] = row.get("error_message") or "no reason given"
    out.setdefault("error", None)
    if out.get("verified") is None:
        out["verified"] = None if status != "ok" else (
            row.get("checksum") == row.get("expected_checksum")
            if row.get("checksum") and row.get("expected_checksum") else None)

    resources = row.get("resources")
    if resources is not None and not isinstance(resources, dict):
        raise ReportError("%s: `resources` must be an object" % where)
    resources = dict(resources or {})
    for key in RESOURCE_KEYS:
        v = resources.get(key)
        resources[key] = v if _is_number(v) else None
    out["resources"] = resources

    metrics = row.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise ReportError("%s: `metrics` must be an object" % where)
    if metrics is None and version < 1 and status == "ok":
        metrics = _derive_metrics(row["workload"], out["params"], resources, out["real_time_ms"])
    out["metrics"] = {k: v for k, v in (metrics or {}).items() if _is_number(v)}

    latency = row.get("latency")
    if latency is not None:
        if not isinstance(latency, dict) or not isinstance(latency.get("percentiles"), dict):
            raise ReportError("%s: `latency` must be an object with `percentiles`" % where)
        lscale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}.get(latency.get("unit", "ns"))
        if lscale is None:
            raise ReportError("%s: unknown latency unit %r" % (where, latency.get("unit")))
        pct = {}
        for k, v in latency["percentiles"].items():
            try:
                p = float(k)
            except ValueError:
                raise ReportError("%s: latency percentile key %r is not a number" % (where, k))
            if _is_number(v) and 0 < p <= 100:
                pct[p] = v * lscale
        out["latency"] = {"count": latency.get("count"),
                          "mean_ns": latency["mean"] * lscale if _is_number(latency.get("mean")) else None,
                          "percentiles_ns": dict(sorted(pct.items()))}
    else:
        out["latency"] = None

    samples = row.get("samples")
    if isinstance(samples, dict):
        out["samples_ms"] = {k: [v * scale for v in vals if _is_number(v)]
                             for k, vals in samples.items() if isinstance(vals, list)}
    else:
        out["samples_ms"] = None
    out.setdefault("ok_repetitions", None)
    return out


def tree_units(leaves, fanout):
    """Units of a skynet tree: every level from the leaves up to the root."""
    units, level = 0, int(leaves)
    while level >= 1:
        units += level
        if level == 1 or fanout < 2:
            break
        level //= fanout
    return units


def _derive_metrics(workload, params, resources, real_time_ms):
    """Schema 0 had no metrics: derive the generic ones where the unit count is known."""
    if workload in ("cpu", "io", "mixed") and "tasks" in params:
        units = params["tasks"]
    elif workload == "spawn" and "leaves" in params and "fanout" in params:
        units = tree_units(params["leaves"], params["fanout"])
    else:
        return {}
    wall_ns = resources.get("wall_ns") or (real_time_ms * 1e6 if real_time_ms else None)
    if not units or not wall_ns:
        return {}
    m = {"units": units, "ns_per_unit": wall_ns / units, "units_per_second": units / (wall_ns * 1e-9)}
    if resources.get("peak_rss_bytes") is not None and resources.get("rss_before_bytes") is not None:
        m["bytes_per_unit"] = (resources["peak_rss_bytes"] - resources["rss_before_bytes"]) / units
    if workload == "cpu":
        m["tasks_per_second"] = m["units_per_second"]
    if workload == "io" and params.get("wait_ms"):
        m["ideal_ms"] = float(params["wait_ms"])
        m["makespan_over_ideal"] = wall_ns * 1e-6 / params["wait_ms"]
    return m


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
