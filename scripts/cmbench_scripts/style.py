"""How models look and how numbers read: every model's colour, line style and marker derived
from the reports' facts (no table of model names), and unit-aware number formatting shared by
charts, the page and advice."""

import math

# A hue family per model family, in the order the families first appear among the models; each
# a ramp from light to dark, so a family reads as one colour and its variants stay apart.
FAMILY_RAMPS = [
    ["#6baed6", "#3182bd", "#08519c", "#08306b"],  # blues
    ["#fd8d3c", "#e6550d", "#a63603", "#7f2704"],  # oranges
    ["#74c476", "#31a354", "#006d2c", "#00441b"],  # greens
    ["#9e9ac8", "#756bb1", "#54278f", "#3f007d"],  # purples
    ["#f768a1", "#dd3497", "#ae017e", "#7a0177"],  # pinks
    ["#dfc27d", "#bf812d", "#8c510a", "#543005"],  # browns
    ["#66c2a4", "#41ae76", "#238b45", "#005824"],  # teals
]
# Line styles by a model's place within its family, markers by its place among all models:
# together with the colour, no two of the models of a report set look alike.
LINESTYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "d", "H", "8"]
# The baseline model (its fact says which): grey, a star, dash-dot-dot; drawn as a reference.
BASELINE_STYLE = {"color": "#404040", "linestyle": (0, (6, 2, 1, 2)), "marker": "*"}
BASELINE_SHADES = ["#404040", "#7f7f7f", "#a6a6a6"]
FAILED_COLOUR = "#c0392b"
SKIPPED_COLOUR = "#7f8c8d"


def _shade(ramp, index, count):
    """The index-th of `count` shades spread over a ramp (darker further down the family)."""
    if count <= 1:
        return ramp[len(ramp) // 2]
    return ramp[round(index * (len(ramp) - 1) / (count - 1)) % len(ramp)]


class Styles:
    """matplotlib keyword arguments (color, linestyle, marker) for every model of a list of
    model facts in their order. Deterministic: the same facts give the same styles in every
    chart. Distinct: no two models share all three (guaranteed for any number of models: a
    clash of the derived style moves the later model to the next unused marker and style)."""

    def __init__(self, models):
        self._styles = {}
        families = []
        members = {}
        for m in models:
            if m.get("baseline"):
                continue
            if m["family"] not in families:
                families.append(m["family"])
            members.setdefault(m["family"], []).append(m["name"])
        used = set()
        others = 0
        baselines = 0
        for m in models:
            if m.get("baseline"):
                style = dict(BASELINE_STYLE, color=BASELINE_SHADES[baselines % len(BASELINE_SHADES)])
                baselines += 1
            else:
                f = families.index(m["family"])
                siblings = members[m["family"]]
                v = siblings.index(m["name"])
                ramp = FAMILY_RAMPS[f % len(FAMILY_RAMPS)]
                style = {"color": _shade(ramp, v, len(siblings)),
                         "linestyle": LINESTYLES[v % len(LINESTYLES)],
                         "marker": MARKERS[others % len(MARKERS)]}
                others += 1
            step = 0
            while _key(style) in used:  # only past len(MARKERS) models of like colour
                step += 1
                style = dict(style, marker=MARKERS[(MARKERS.index(style["marker"]) + 1) % len(MARKERS)])
                if step % len(MARKERS) == 0:
                    style["linestyle"] = LINESTYLES[(step // len(MARKERS)) % len(LINESTYLES)]
                if step > len(MARKERS) * len(LINESTYLES):
                    style["color"] = _darker(style["color"], step)
            used.add(_key(style))
            self._styles[m["name"]] = style

    def of(self, model):
        """The model's style; one the facts do not describe (never in a valid report) is grey."""
        return dict(self._styles.get(model) or {"color": "#999999", "linestyle": "-", "marker": "."})

    def __len__(self):
        return len(self._styles)


def _key(style):
    return (style["color"], str(style["linestyle"]), style["marker"])


def _darker(colour, step):
    """`colour` a little darker for each step (only when every marker and line style is taken)."""
    f = 0.85 ** (step // (len(MARKERS) * len(LINESTYLES)))
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#%02x%02x%02x" % tuple(int(c * f) for c in rgb)


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
