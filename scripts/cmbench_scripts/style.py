"""How models look and how numbers read: one hue family per model family, a line style and a
marker per variant, and unit-aware number formatting shared by charts, the page and advice."""

import math

# One hue family per model family; within a family, darker for the variants further down the
# list, so a family reads as one colour and its variants stay apart.
FAMILY_COLOURS = {
    "serial": ["#404040"],
    "threads": ["#6baed6", "#2171b5", "#08306b"],          # blues
    "processes": ["#fd8d3c", "#d94801", "#7f2704"],        # oranges
    "coroutines": ["#41ab5d", "#006d2c", "#00441b"],       # greens
}
OTHER_COLOURS = ["#9e9ac8", "#6a51a3", "#3f007d", "#e7298a", "#980043"]
VARIANT_COLOUR_INDEX = {"baseline": 0, "spawn": 0, "pool": 1, "tbb": 2, "asio": 0, "asio-mt": 1}
# Line style per variant: spawn-per-task variants dotted, pools solid, work stealing dash-dot,
# one event loop solid, several loops dashed.
VARIANT_LINESTYLES = {"baseline": (0, (6, 2, 1, 2)), "spawn": ":", "pool": "-", "tbb": "-.",
                      "asio": "-", "asio-mt": "--"}
VARIANT_MARKERS = {"baseline": "*", "spawn": "^", "pool": "o", "tbb": "s", "asio": "D",
                   "asio-mt": "v"}
FAILED_COLOUR = "#c0392b"
SKIPPED_COLOUR = "#7f8c8d"


def model_style(model):
    """matplotlib keyword arguments for a model's line."""
    family, _, variant = model.partition("/")
    shades = FAMILY_COLOURS.get(family)
    if shades is None:
        colour = OTHER_COLOURS[sum(map(ord, family)) % len(OTHER_COLOURS)]
    else:
        index = VARIANT_COLOUR_INDEX.get(variant, sum(map(ord, variant)))
        colour = shades[index % len(shades)]
    return {
        "color": colour,
        "linestyle": VARIANT_LINESTYLES.get(variant, "-"),
        "marker": VARIANT_MARKERS.get(variant, "o"),
    }


def model_colour(model):
    return model_style(model)["color"]


# --- numbers -------------------------------------------------------------------------------------

TIME_UNITS = [(1e9, "s"), (1e6, "ms"), (1e3, "\u00b5s"), (1.0, "ns")]
BYTE_UNITS = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"), (1, "B")]
RATE_UNITS = [(1e9, "G/s"), (1e6, "M/s"), (1e3, "k/s"), (1.0, "/s")]


def _pick(units, value):
    for div, name in units:
        if abs(value) >= div:
            return div, name
    return units[-1]


def _sig(x, digits=3):
    if x == 0 or not math.isfinite(x):
        return "%g" % x
    mag = int(math.floor(math.log10(abs(x))))
    decimals = max(0, digits - 1 - mag)
    return "%.*f" % (decimals, x)


def fmt_time_ns(v):
    if v is None:
        return "n/a"
    div, name = _pick(TIME_UNITS, v)
    return "%s %s" % (_sig(v / div), name)


def fmt_bytes(v):
    if v is None:
        return "n/a"
    div, name = _pick(BYTE_UNITS, v)
    return "%s %s" % (_sig(v / div), name) if div > 1 else "%d B" % round(v)


def fmt_rate(v):
    if v is None:
        return "n/a"
    div, name = _pick(RATE_UNITS, v)
    return "%s%s" % (_sig(v / div), name)


def fmt_ratio(v):
    if v is None:
        return "n/a"
    if v >= 100 and math.isfinite(v):  # against a best of 0, a ratio is infinite
        return "%d\u00d7" % round(v)
    return "%s\u00d7" % _sig(v, 3 if v < 10 else 3)


def fmt_count(v):
    """1,234 / 10k / 1.5M: compact for axes and labels."""
    if v is None:
        return "n/a"
    v = float(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            q = v / div
            return ("%d%s" % (q, suffix)) if q == int(q) else "%s%s" % (_sig(q, 3), suffix)
    return "%d" % v if v == int(v) else _sig(v)


def fmt_int(v):
    return "{:,}".format(int(v)) if v is not None else "n/a"


def fmt_value(kind, v):
    return {"time_ns": fmt_time_ns, "bytes": fmt_bytes, "rate": fmt_rate,
            "ratio": fmt_ratio}.get(kind, lambda x: _sig(x) if x is not None else "n/a")(v)


def axis_scale(kind, values):
    """(divisor, unit label) so most values read between 1 and 1000 on an axis."""
    vals = sorted(abs(v) for v in values if v is not None and v > 0 and math.isfinite(v))
    if not vals:
        return 1.0, {"time_ns": "ns", "bytes": "B", "rate": "/s", "ratio": "\u00d7"}.get(kind, "")
    ref = vals[len(vals) // 2]
    if kind == "time_ns":
        return _pick(TIME_UNITS, ref)
    if kind == "bytes":
        return _pick(BYTE_UNITS, ref)
    if kind == "rate":
        div, name = _pick(RATE_UNITS, ref)
        return div, {"G/s": "billions per second", "M/s": "millions per second",
                     "k/s": "thousands per second", "/s": "per second"}[name]
    if kind == "ratio":
        return 1.0, "\u00d7"
    return 1.0, ""


PARAM_LABELS = {
    "tasks": "tasks",
    "task_us": "CPU work per task (\u00b5s)",
    "workers": "workers (threads / processes / event loops)",
    "concurrency": "concurrency (units alive at once, 0 = all)",
    "wait_ms": "wait per task (ms)",
    "leaves": "leaves of the spawn tree",
    "fanout": "children per unit",
    "rate": "offered rate (requests/s)",
    "requests": "requests",
    "messages": "messages",
    "compute_pct": "compute fraction (%)",
    "compute_fraction": "compute fraction (%)",
    "units": "units alive at once",
    "hops": "hops",
    "stages": "pipeline stages",
    "nodes": "nodes",
}


def param_label(name):
    return PARAM_LABELS.get(name, name.replace("_", " "))
