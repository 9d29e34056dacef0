"""The charts, as matplotlib figures (Agg backend, no pyplot state). Nothing here writes files:
build_charts returns Chart objects that render to PNG or SVG bytes.

Conventions every chart follows:
  - one line per model; its colour, line style and marker come from the reports' facts
    (style.Styles: a hue per family, a shade and line style per model within it, a marker each;
    the baseline model grey with a star), so a model added later needs no change here;
  - the value is the median over ok repetitions; the band is its interval (results.median_ci);
  - failed runs are marked with a red-edged X and skipped runs with a hollow circle along the
    bottom of the panel at their x, and listed under the chart with their error;
  - log axes where the values span more than a factor of 30 (y) or 10 (x);
  - the legend sits outside the panels, on the right.
"""

import io
import math

import matplotlib

matplotlib.use("Agg")

from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure as MplFigure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib import ticker, transforms  # noqa: E402
import matplotlib.cm  # noqa: E402

from . import link as L  # noqa: E402
from . import results as R  # noqa: E402
from . import style as S  # noqa: E402

RC = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.titlesize": 11,
    "svg.hashsalt": "cmbench",
    "lines.linewidth": 1.7,
    "lines.markersize": 5,
}
matplotlib.rcParams.update(RC)

MAX_FACETS = 4
MAX_FOOTNOTES = 5
BAND_ALPHA = 0.16


class Chart:
    """One rendered-on-demand chart."""

    def __init__(self, slug, section, title, caption, figure, marked=None, workload=None):
        self.slug = slug              # file stem: "cpu-vs-workers"
        self.section = section        # "overview", "sweep", "speedup", "latency", "memory", "cpu"
        self.title = title
        self.caption = caption
        self.figure = figure
        self.marked = marked or []    # [(model, params label, status, error)] shown as markers
        self.workload = workload

    def render(self, fmt, dpi=110):
        buf = io.BytesIO()
        metadata = ({"Creator": None, "Date": None, "Format": None, "Type": None}
                    if fmt == "svg" else {"Software": None} if fmt == "png" else None)
        self.figure.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.15,
                            metadata=metadata, facecolor="white")
        return buf.getvalue()

    def manifest(self):
        return {"slug": self.slug, "section": self.section, "title": self.title,
                "caption": self.caption, "workload": self.workload,
                "marked": [{"model": m, "params": p, "status": s, "error": e}
                           for m, p, s, e in self.marked]}


# --- helpers -------------------------------------------------------------------------------------

def _short(text, limit):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _use_log(values, ratio=30.0):
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals or min(vals) <= 0:
        return False
    return max(vals) / min(vals) > ratio


def _set_x_axis(ax, xs, name, log_ratio=10.0):
    xs = sorted(set(xs))
    if not xs:
        return
    if name.endswith("_pct"):
        pass  # a share of 0-100: even steps read best
    elif len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= log_ratio:
        ax.set_xscale("log", base=2 if name == "workers" else 10)
    elif len(xs) > 2 and min(xs) == 0 and max(xs) >= 100:
        ax.set_xscale("symlog", linthresh=1)
    if len(xs) <= 12:
        ax.set_xticks(xs)
        ax.set_xticklabels([S.fmt_count(x) for x in xs])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
    if len(xs) == 1:
        ax.set_xlim(xs[0] * 0.5 if xs[0] else -1, xs[0] * 1.5 if xs[0] else 1)
    else:
        lo, hi = xs[0], xs[-1]
        if ax.get_xscale() == "log":
            ax.set_xlim(lo / 1.35, hi * 1.35)
        elif ax.get_xscale() == "symlog":
            ax.set_xlim(-0.6, hi * 1.35)  # a linear pad would be decades wide left of 0
        else:
            pad = (hi - lo) * 0.06
            ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(S.param_label(name))


class _UnitLogFormatter(ticker.LogFormatter):
    """matplotlib's log tick labelling (which ticks get a label), our text (12 ms, 4 KiB)."""

    def __init__(self, fn, **kw):
        super().__init__(**kw)
        self._fn = fn

    def _num_to_string(self, x, vmin, vmax):
        return self._fn(x)


def _value_text(kind, div=1.0):
    if kind in ("time_ns", "bytes", "rate"):
        return lambda v: S.fmt_value(kind, v * div)
    return lambda v: S.fmt_count(v * div) if v * div >= 1 else "%g" % (v * div)


def _log_formatter(kind, div=1.0):
    return _UnitLogFormatter(_value_text(kind, div), labelOnlyBase=False)


def _set_log_y(ax, kind, div=1.0):
    ax.set_yscale("log")
    fn = _value_text(kind, div)
    ax.yaxis.set_major_formatter(_UnitLogFormatter(fn, labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(_UnitLogFormatter(fn, labelOnlyBase=False, minor_thresholds=(1, 0.5)))


def _y_axis(kind, values):
    """(divisor, unit label) for a row of panels showing `values` of this kind."""
    return S.axis_scale(kind, values)


def _apply_y(ax, values, kind, div):
    """Log scale where the panel's values span more than 30x (10x when x is log already: sizes
    against sizes read best log-log), labelled in units; else linear from zero. Returns whether
    it went log."""
    if _use_log(values, 10.0 if ax.get_xscale() != "linear" else 30.0):
        _set_log_y(ax, kind, div)
        return True
    ax.set_ylim(bottom=0)
    return False


def _bytes_axis(axis):
    """Log axis of bytes with ticks at powers of 16 (16 B, 256 B, 4 KiB, 64 KiB, 1 MiB...)."""
    axis.set_major_locator(ticker.LogLocator(base=16))
    axis.set_minor_locator(ticker.NullLocator())
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_bytes(v)))


def _model_handles(results, models, baseline_note=None):
    handles = []
    for m in models:
        label = m
        if results.facts.is_baseline(m) and baseline_note:
            label = "%s (%s)" % (m, baseline_note)
        handles.append(Line2D([], [], label=label, markersize=6, **results.style(m)))
    return handles


def _status_handles(statuses, band_label=None):
    h = []
    if band_label:
        h.append(Patch(facecolor="#888888", alpha=0.3, label=band_label))
    if "failed" in statuses:
        h.append(Line2D([], [], linestyle="", marker="X", markersize=8, markerfacecolor="#bbbbbb",
                        markeredgecolor=S.FAILED_COLOUR, markeredgewidth=1.3,
                        label="failed (grey strip, at its x)"))
    if "skipped" in statuses:
        h.append(Line2D([], [], linestyle="", marker="o", markersize=7, markerfacecolor="white",
                        markeredgecolor=S.SKIPPED_COLOUR, markeredgewidth=1.5,
                        label="skipped (grey strip, at its x)"))
    return h


STRIP = 0.12  # the bottom share of a panel kept free of data for failed / skipped markers


def _mark_bad(ax, x, colour, status, slot):
    """A failed or skipped run (of a model drawn in `colour`) in the strip along the bottom of
    the panel, at its x; several at one x spread sideways (0, +9, -9, +18 ... points)."""
    dx = 9.0 * ((slot + 1) // 2) * (1 if slot % 2 else -1)
    trans = transforms.blended_transform_factory(ax.transData, ax.transAxes) + \
        transforms.ScaledTranslation(dx / 72.0, 0, ax.figure.dpi_scale_trans)
    y = STRIP / 2
    if status == "failed":
        ax.plot([x], [y], transform=trans, linestyle="", marker="X", markersize=9,
                markerfacecolor=colour, markeredgecolor=S.FAILED_COLOUR, markeredgewidth=1.3,
                clip_on=False, zorder=5)
    else:
        ax.plot([x], [y], transform=trans, linestyle="", marker="o", markersize=8,
                markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.6,
                clip_on=False, zorder=5)


def _make_strip(ax):
    """Extends the y range downwards so the bottom STRIP of the panel holds no data, and shades
    it: failed and skipped markers go there."""
    lo, hi = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if lo - 1e-12 * abs(lo) <= t <= hi]
    k = STRIP / (1 - STRIP)
    if ax.get_yscale() == "log":
        new_lo = lo / (hi / lo) ** k
    else:
        new_lo = lo - (hi - lo) * k
    ax.set_yticks(ticks)
    ax.set_ylim(new_lo, hi)
    ax.add_patch(Rectangle((0, 0), 1, STRIP, transform=ax.transAxes, facecolor="#f3f3f3",
                           edgecolor="none", zorder=0))
    ax.text(0.01, STRIP - 0.012, "not ok", transform=ax.transAxes, fontsize=6.5, color="#999999",
            va="top", ha="left")


def _legend(fig, handles, title=None):
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title=title,
               borderaxespad=0.3, handlelength=3.2)


def _footnotes(fig, marked, y=0.0):
    if not marked:
        return
    lines = []
    seen = set()
    for model, where, status, error in marked:
        key = (model, status, error)
        if key in seen:
            continue
        seen.add(key)
        reason = (error or "no reason given").strip()
        if reason.lower().startswith(status + ":"):
            reason = reason[len(status) + 1:].strip()
        lines.append("%s %s %s at %s: %s" % ("\u2716" if status == "failed" else "\u25cb", model,
                                            status, where, _short(reason, 95)))
    more = len(lines) - MAX_FOOTNOTES
    lines = lines[:MAX_FOOTNOTES]
    if more > 0:
        lines.append("... and %d more (see the raw table)" % more)
    fig.text(0.01, y, "\n".join(lines), ha="left", va="top", fontsize=7.5, color="#7b241c",
             linespacing=1.35)


def _facets(results, workload, others, max_facets=MAX_FACETS):
    """Distinct combinations of `others` among the workload's points, at most max_facets,
    chosen evenly from the sorted list; returns (facets, total)."""
    combos = sorted({tuple(p.params.get(k) for k in others) for p in results.points_for(workload)
                     if not any(results.ignored_by_baseline(workload, p.model, k) for k in others)}
                    or {tuple(p.params.get(k) for k in others) for p in results.points_for(workload)},
                    key=lambda t: tuple((v is None, v or 0) for v in t))
    total = len(combos)
    if total > max_facets:
        idx = sorted({round(i * (total - 1) / (max_facets - 1)) for i in range(max_facets)})
        combos = [combos[i] for i in idx]
    return [dict(zip(others, c)) for c in combos], total


def _matches(results, point, facet):
    for k, v in facet.items():
        if results.ignored_by_baseline(point.workload, point.model, k):
            continue
        if point.params.get(k) != v:
            return False
    return True


def _facet_title(facet):
    if not facet:
        return ""
    return ", ".join("%s=%s" % (k, S.fmt_count(v)) for k, v in facet.items())


def _fixed_params(results, workload, swept):
    names = [n for n in results.param_names(workload) if n not in swept]
    if not names:
        return ""
    vals = []
    for n in names:
        v = results.param_values(workload, n)
        vals.append("%s=%s" % (n, S.fmt_count(v[0]) if len(v) == 1 else "/".join(map(S.fmt_count, v))))
    return "fixed: " + ", ".join(vals)


def _ci_method(points):
    methods = sorted({p.ci_method for p in points if p.ok and p.ci_method})
    if not methods:
        return None
    return "; ".join(methods)


def _band_label(points):
    m = _ci_method(points)
    if not m:
        return None
    if m.startswith("min-max"):
        return "band: min-max of the repetitions"
    if m.startswith("one repetition"):
        return None
    return "band: 95% CI of the median"


def _where(point, names):
    return point.params_label(names) or point.params_label()


# --- per-workload sweeps -----------------------------------------------------------------------

def sweep_chart(results, workload, param):
    """The workload's figures (rows) against one swept parameter, one panel per combination of
    the other swept parameters (columns)."""
    swept, dependent = results.chart_params(workload)
    others = [s for s in swept if s != param]
    figures = [f for f in results.figures_for(workload)
               if any(f.value(p) is not None for p in results.points_for(workload))]
    if not figures:
        return None
    facets, total = _facets(results, workload, others)
    models = results.models(workload)
    ncols, nrows = len(facets), len(figures)
    fig = MplFigure(figsize=((3.9 if ncols > 1 else 5.6) * ncols + 0.6, 3.0 * nrows + 0.9))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    marked = []
    statuses = set()
    all_points = results.points_for(workload)
    for r, figure in enumerate(figures):
        row_values = [figure.value(p) for p in all_points]
        row_values += [iv for p in all_points for iv in (figure.interval(p) or ())]
        div, unit = _y_axis(figure.kind, row_values)
        for c, facet in enumerate(facets):
            ax = axes[r][c]
            xs_all = []
            bad_slots = {}
            plotted_values = []
            for model in models:
                pts = sorted((p for p in results.points_for(workload, model) if _matches(results, p, facet)),
                             key=lambda p: p.params.get(param, 0))
                if not pts:
                    continue
                style = results.style(model)
                if results.ignored_by_baseline(workload, model, param):
                    base = results.baseline_for(workload, dict(pts[0].params, **facet))
                    v = figure.value(base) if base else None
                    if v is not None:
                        ax.axhline(v / div, color=style["color"], linestyle=style["linestyle"],
                                   linewidth=1.3, zorder=1)
                        plotted_values.append(v / div)
                    elif base is not None and r == 0:
                        marked.append((model, _where(base, others + [param]) or "all", base.status, base.error))
                    continue
                xs, ys, lo, hi = [], [], [], []
                for p in pts:
                    x = p.params.get(param)
                    if x is None:
                        continue
                    xs_all.append(x)
                    v = figure.value(p)
                    if v is None:
                        xs.append(x)
                        ys.append(math.nan)
                        lo.append(math.nan)
                        hi.append(math.nan)
                        if p.status != "ok":
                            slot = bad_slots.get(x, 0)
                            bad_slots[x] = slot + 1
                            _mark_bad(ax, x, style["color"], p.status, slot)
                            statuses.add(p.status)
                            if r == 0:
                                marked.append((model, _where(p, others + [param]), p.status, p.error))
                        continue
                    iv = figure.interval(p) or (v, v)
                    xs.append(x)
                    ys.append(v / div)
                    lo.append(iv[0] / div)
                    hi.append(iv[1] / div)
                    plotted_values.extend([v / div, iv[0] / div, iv[1] / div])
                ax.plot(xs, ys, label=model, markersize=5, zorder=3, **style)
                ax.fill_between(xs, lo, hi, color=style["color"], alpha=BAND_ALPHA, linewidth=0, zorder=2)
            _set_x_axis(ax, xs_all, param)
            log = _apply_y(ax, plotted_values, figure.kind, div)
            if bad_slots:
                _make_strip(ax)
            if c == 0:
                first_log = log
            if c == 0 or log != first_log:
                if log:
                    ax.set_ylabel("%s (log)" % figure.short)
                else:
                    ax.set_ylabel("%s (%s)" % (figure.short, unit) if unit else figure.short)
            if r == 0 and facet:
                ax.set_title(_facet_title(facet))
            if r < nrows - 1:
                ax.set_xlabel("")
    labels = " and ".join(f.label for f in figures)
    title = "%s: %s vs %s" % (workload, labels, S.param_label(param))
    sub = [s for s in (_fixed_params(results, workload, swept + list(dependent)),
                       "; ".join("%s moves with %s" % (d, k) for d, k in dependent.items()),
                       "median of the ok repetitions" + (
                           "; showing %d of %d combinations of %s" % (len(facets), total, ", ".join(others))
                           if total > len(facets) else "")) if s]
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), " \u00b7 ".join(sub), ha="left", va="top",
             fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / fig.get_figheight()))
    band = _band_label(all_points)
    base_note = "ignores %s" % param if param in results.facts.model_params(workload) else None
    _legend(fig, _model_handles(results, models, base_note) + _status_handles(statuses, band))
    _footnotes(fig, marked, y=-0.01)
    lower = "; ".join("%s: %s is better" % (f.short, "lower" if f.lower_is_better else "higher")
                      for f in figures)
    caption = ("%s. One line per model (median of the ok repetitions; %s). %s." %
               (title, (_ci_method(all_points) or "no interval").replace("min-max", "bands: min-max"),
                lower[0].upper() + lower[1:]))
    if marked:
        caption += " %d failed or skipped run%s marked." % (len(marked), "" if len(marked) == 1 else "s")
    return Chart("%s-vs-%s" % (workload, param), "sweep", title, caption, fig, marked, workload)


def single_config_chart(results, workload):
    """A workload run at one configuration only: the figures as bars, one per model."""
    figures = [f for f in results.figures_for(workload)
               if any(f.value(p) is not None for p in results.points_for(workload))]
    models = results.models(workload)
    if not figures or not models:
        return None
    fig = MplFigure(figsize=(4.6 * len(figures) + 1.5, 0.36 * len(models) + 1.6))
    axes = fig.subplots(1, len(figures), squeeze=False)[0]
    marked = []
    for ax, figure in zip(axes, figures):
        vals = []
        for i, model in enumerate(models):
            p = results.points_for(workload, model)[0]
            v = figure.value(p)
            y = len(models) - 1 - i
            if v is None:
                ax.text(0, y, "  " + p.status, va="center", fontsize=8,
                        color=S.FAILED_COLOUR if p.status == "failed" else S.SKIPPED_COLOUR,
                        transform=transforms.blended_transform_factory(ax.transAxes, ax.transData))
                if p.status != "ok" and ax is axes[0]:
                    marked.append((model, p.params_label(), p.status, p.error))
                continue
            vals.append(v)
            iv = figure.interval(p)
            ax.barh(y, v, color=results.colour(model), height=0.65,
                    # A median outside its repetitions' range (an edited report) draws no whisker.
                    xerr=[[max(0, v - iv[0])], [max(0, iv[1] - v)]] if iv else None,
                    error_kw={"elinewidth": 0.9, "capsize": 2})
            # The label starts past the whisker, so the interval never strikes through it.
            ax.text(max(v, iv[1]) if iv else v, y, " " + S.fmt_value(figure.kind, v), va="center", fontsize=7.5)
        ax.set_yticks(range(len(models)))
        ax.set_yticklabels(list(reversed(models)))
        if _use_log(vals, 30):
            ax.set_xscale("log")
        ax.set_xlabel("%s (%s)" % (figure.short, "lower is better" if figure.lower_is_better else "higher is better"))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _, k=figure.kind: S.fmt_value(k, v)))
        ax.grid(axis="y", visible=False)
        ax.margins(x=0.25)
    params = results.points_for(workload)[0].params_label()
    title = "%s: %s by model" % (workload, " and ".join(f.label for f in figures))
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), "at %s; median of the ok repetitions, whiskers: its interval" % params,
             ha="left", va="top", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / fig.get_figheight()))
    _footnotes(fig, marked, y=-0.01)
    return Chart("%s-by-model" % workload, "sweep", title, title + " at " + params + ".", fig, marked, workload)


# --- speedup and efficiency ----------------------------------------------------------------------

def speedup_chart(results, workload):
    swept, _ = results.chart_params(workload)
    baseline = results.facts.baseline
    if "workers" not in swept or not results.facts.speedup(workload) or baseline is None:
        return None
    if not any(results.speedup(p) for p in results.points_for(workload)):
        return None
    others = [s for s in swept if s != "workers"]
    facets, total = _facets(results, workload, others)
    models = [m for m in results.models(workload) if not results.facts.is_baseline(m)]
    base_style = results.style(baseline)
    cpus = results.num_cpus
    fig = MplFigure(figsize=(3.9 * len(facets) + 0.6, 6.0 + 0.9))
    axes = fig.subplots(2, len(facets), squeeze=False)
    marked, statuses = [], set()
    workers_all = results.param_values(workload, "workers")
    for c, facet in enumerate(facets):
        ax_s, ax_e = axes[0][c], axes[1][c]
        top = [cpus or 1, max(workers_all)]
        bad_slots = {}
        s_all = []
        for model in models:
            style = results.style(model)
            pts = sorted((p for p in results.points_for(workload, model) if _matches(results, p, facet)),
                         key=lambda p: p.params["workers"])
            xs, s, slo, shi, e, elo, ehi = [], [], [], [], [], [], []
            for p in pts:
                w = p.params["workers"]
                sp = results.speedup(p)
                xs.append(w)
                if sp is None:
                    for lst in (s, slo, shi, e, elo, ehi):
                        lst.append(math.nan)
                    if p.status != "ok":
                        slot = bad_slots.get(w, 0)
                        bad_slots[w] = slot + 1
                        _mark_bad(ax_s, w, style["color"], p.status, slot)
                        _mark_bad(ax_e, w, style["color"], p.status, slot)
                        statuses.add(p.status)
                        marked.append((model, _where(p, swept), p.status, p.error))
                    continue
                s_all.append(sp[0])
                s.append(sp[0]); slo.append(sp[1]); shi.append(sp[2])
                e.append(sp[0] / w); elo.append(sp[1] / w); ehi.append(sp[2] / w)
                top.append(sp[2])
            ax_s.plot(xs, s, zorder=3, **style)
            ax_s.fill_between(xs, slo, shi, color=style["color"], alpha=BAND_ALPHA, linewidth=0)
            ax_e.plot(xs, e, zorder=3, **style)
            ax_e.fill_between(xs, elo, ehi, color=style["color"], alpha=BAND_ALPHA, linewidth=0)
        wmin, wmax = min(workers_all), max(workers_all)
        ideal_x = [wmin * (wmax / wmin) ** (i / 40.0) for i in range(41)] if wmin > 0 else [wmin, wmax]
        ax_s.plot(ideal_x, ideal_x, color="#999999", linestyle="--", linewidth=1.1, zorder=1)
        ax_s.axhline(1.0, color=base_style["color"], linewidth=1.0, linestyle=base_style["linestyle"], zorder=1)
        ax_e.axhline(1.0, color="#999999", linestyle="--", linewidth=1.1, zorder=1)
        if cpus:
            for ax in (ax_s, ax_e):
                ax.axvline(cpus, color="#bbbbbb", linestyle=":", linewidth=1.0, zorder=0)
            ax_s.axhline(cpus, color="#bbbbbb", linestyle=":", linewidth=1.0, zorder=0)
            ax_s.text(wmin, cpus, "%d CPUs " % cpus, va="bottom", ha="left", fontsize=7, color="#777777")
        _set_x_axis(ax_s, workers_all, "workers", log_ratio=4)
        _set_x_axis(ax_e, workers_all, "workers", log_ratio=4)
        ax_s.set_xlabel("")
        finite = [t for t in top if math.isfinite(t)]
        if len(s_all) and max(s_all) < 0.5:
            # Every model far below serial: a linear axis would flatten them all onto zero.
            ax_s.set_yscale("log")
            ax_e.set_yscale("log")
            ax_e.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
        else:
            ax_s.set_ylim(0, max(finite) * 1.12)
            ax_e.set_ylim(0, 1.15)
            ax_e.yaxis.set_major_formatter(ticker.PercentFormatter(1.0))
        if bad_slots:
            _make_strip(ax_s)
            _make_strip(ax_e)
        if facet:
            ax_s.set_title(_facet_title(facet))
        if c == 0:
            ax_s.set_ylabel("speedup over %s (\u00d7)" % baseline)
            ax_e.set_ylabel("parallel efficiency (speedup / workers)")
    title = "%s: speedup and parallel efficiency vs workers" % workload
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    sub = "speedup = %s's median wall time at the same parameters / the model's" % baseline + (
        "; showing %d of %d combinations" % (len(facets), total) if total > len(facets) else "")
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), sub, ha="left", va="top", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / fig.get_figheight()))
    handles = _model_handles(results, models)
    handles.append(Line2D([], [], color="#999999", linestyle="--", label="ideal (speedup = workers; 100%)"))
    handles.append(Line2D([], [], color=base_style["color"], linestyle=base_style["linestyle"],
                          label="%s (1\u00d7)" % baseline))
    if cpus:
        handles.append(Line2D([], [], color="#bbbbbb", linestyle=":", label="%d CPUs: the hardware limit" % cpus))
    _legend(fig, handles + _status_handles(statuses, _band_label(results.points_for(workload))))
    _footnotes(fig, marked, y=-0.01)
    caption = ("%s. Speedup = %s's median wall time at the same parameters (it ignores "
               "workers) divided by the model's; efficiency = speedup / workers. Dashed: "
               "ideal; dotted: the %s CPUs of this machine, beyond which workers are "
               "oversubscribed." % (title, baseline, cpus or "?"))
    return Chart("%s-speedup" % workload, "speedup", title, caption, fig, marked, workload)


# --- latency ------------------------------------------------------------------------------------

def _hdr_x(p):
    """HDR-style position: p50 -> 0.3, p90 -> 1, p99 -> 2, p99.9 -> 3 ... (nines)."""
    return -math.log10(1 - p / 100.0)


def latency_chart(results, workload):
    pts = [p for p in results.points_for(workload) if p.latency or p.status != "ok"]
    if not any(p.latency for p in pts):
        return None
    swept, dependent = results.chart_params(workload)
    facets, total = _facets(results, workload, swept)
    models = [m for m in results.models(workload)
              if any(p.latency for p in results.points_for(workload, m))]
    pcts = sorted({q for p in pts if p.latency for q in p.latency["percentiles_ns"]})
    finite = [q for q in pcts if q < 100]
    max_x = (_hdr_x(max(finite)) if finite else 0) + 1
    xpos = {q: (_hdr_x(q) if q < 100 else max_x) for q in pcts}
    div = 1.0
    ncols = min(len(facets), 2)
    nrows = math.ceil(len(facets) / ncols)
    fig = MplFigure(figsize=(4.8 * ncols + 0.6, 3.4 * nrows + 0.9))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    marked, statuses = [], set()
    for i, facet in enumerate(facets):
        ax = axes[i // ncols][i % ncols]
        slot = 0
        for model in results.models(workload):
            for p in results.points_for(workload, model):
                if not _matches(results, p, facet):
                    continue
                if p.status != "ok":
                    _mark_bad(ax, xpos[pcts[0]] if pcts else 0, results.colour(model), p.status, slot)
                    slot += 1
                    statuses.add(p.status)
                    marked.append((model, _where(p, swept), p.status, p.error))
                    continue
                if not p.latency:
                    continue
                qs = sorted(p.latency["percentiles_ns"])
                ax.plot([xpos[q] for q in qs], [p.latency["percentiles_ns"][q] / div for q in qs],
                        zorder=3, **results.style(model))
        _set_log_y(ax, "time_ns")
        ax.set_xticks([xpos[q] for q in pcts])
        ax.set_xticklabels(["max" if q >= 100 else ("p%g" % q) for q in pcts])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.set_xlim(min(xpos.values()) - 0.2, max(xpos.values()) + 0.2)
        if slot:
            _make_strip(ax)
        ax.set_xlabel("percentile (HDR axis: each step is one more nine)")
        if i % ncols == 0:
            ax.set_ylabel("latency (log)")
        if facet:
            ax.set_title(_facet_title(facet))
    for j in range(len(facets), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    title = "%s: latency percentiles per model" % workload
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    sub = _fixed_params(results, workload, swept + list(dependent)) or ""
    sub += ("; " if sub else "") + "median over the ok repetitions of each percentile"
    if total > len(facets):
        sub += "; showing %d of %d configurations" % (len(facets), total)
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), sub, ha="left", va="top", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / fig.get_figheight()))
    _legend(fig, _model_handles(results, models) + _status_handles(statuses))
    _footnotes(fig, marked, y=-0.01)
    caption = ("%s, p50 to p99.99 and the maximum, on an HDR-style axis where each step to the "
               "right adds a nine; lower is better." % title)
    return Chart("%s-latency" % workload, "latency", title, caption, fig, marked, workload)


# --- a server under load: throughput and tail against the offered rate ------------------------

def _figure_of_kind(results, workload, kind):
    """The workload's first figure of merit of this kind ("rate", "time_ns"), or None."""
    return next((f for f in results.figures_for(workload) if f.kind == kind), None)


def _log_if_wide(ax, axis, values, kind, ratio=10.0):
    """A log axis (labelled in units) where the values span more than `ratio`."""
    if not _use_log(values, ratio):
        return False
    fn = _value_text(kind)
    getattr(ax, "set_%sscale" % axis)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(_UnitLogFormatter(fn, labelOnlyBase=False))
    target.set_minor_formatter(_UnitLogFormatter(fn, labelOnlyBase=False, minor_thresholds=(1, 0.5)))
    return True


def load_chart(results, workload):
    """Rows offered fixed rates (R.is_fixed_rate): the workload's rate figure against the rate
    offered (with the line where achieved = offered), and its time figure (a tail) against the
    rate achieved; one line per model, one row of panels per combination of the other swept
    parameters. Runs that did not keep up are hollow; runs the load generator limited are ringed."""
    rate_fig, time_fig = _figure_of_kind(results, workload, "rate"), _figure_of_kind(results, workload, "time_ns")
    pts = [p for p in results.points_for(workload) if R.is_fixed_rate(p)]
    if rate_fig is None or time_fig is None or not any(rate_fig.value(p) is not None for p in pts):
        return None
    swept, dependent = results.chart_params(workload)
    lines = [n for n in swept if results.forms_lines(workload, n)]
    if not lines:
        return None
    param = lines[0]
    others = [n for n in swept if n != param]
    facets, total = _facets(results, workload, others, max_facets=3)
    models = results.models(workload)
    fig = MplFigure(figsize=(11.0, 3.5 * len(facets) + 1.0))
    axes = fig.subplots(len(facets), 2, squeeze=False)
    marked, statuses = [], set()
    hollow = ringed = False

    def offered(p):
        return p.metrics.get(R.OFFERED, p.params.get(param))
    for r, facet in enumerate(facets):
        ax_a, ax_t = axes[r]
        xs_all, ys_all, ach_all, tail_all = [], [], [], []
        bad_slots = {}
        for model in models:
            style = results.style(model)
            mine = sorted((p for p in pts if p.model == model and _matches(results, p, facet)), key=offered)
            line = []
            for p in mine:
                x = offered(p)
                if x is not None:
                    xs_all.append(x)
                ach, tail = rate_fig.value(p), time_fig.value(p)
                if ach is None:
                    if p.status != "ok" and x is not None:
                        slot = bad_slots.get(x, 0)
                        bad_slots[x] = slot + 1
                        _mark_bad(ax_a, x, style["color"], p.status, slot)
                        statuses.add(p.status)
                        marked.append((model, _where(p, swept), p.status, p.error))
                    continue
                line.append((x, ach, tail, p))
            if not line:
                continue
            ax_a.plot([l[0] for l in line], [l[1] for l in line], zorder=3, **style)
            with_tail = [l for l in line if l[2] is not None]
            ax_t.plot([l[1] for l in with_tail], [l[2] for l in with_tail], zorder=3, **style)
            ys_all.extend(l[1] for l in line)
            ach_all.extend(l[1] for l in with_tail)
            tail_all.extend(l[2] for l in with_tail)
            for x, ach, tail, p in line:
                if not p.metrics.get(R.KEPT_UP, 1):
                    hollow = True
                    for ax, xy in ((ax_a, (x, ach)), (ax_t, (ach, tail))):
                        if xy[1] is not None:
                            ax.plot([xy[0]], [xy[1]], linestyle="", marker=style["marker"], markersize=6,
                                    markerfacecolor="white", markeredgecolor=style["color"], zorder=4)
                if R.generator_bound(p):
                    ringed = True
                    for ax, xy in ((ax_a, (x, ach)), (ax_t, (ach, tail))):
                        if xy[1] is not None:
                            ax.plot([xy[0]], [xy[1]], linestyle="", marker="o", markersize=13,
                                    markerfacecolor="none", markeredgecolor="#888888", zorder=2)
        both = [v for v in xs_all + ys_all if v]
        if both:
            lo, hi = min(both), max(both)
            ax_a.plot([lo, hi], [lo, hi], color="#999999", linestyle="--", linewidth=1.1, zorder=1)
        _log_if_wide(ax_a, "x", xs_all, "rate")
        if ax_a.get_xscale() == "log":
            _log_if_wide(ax_a, "y", ys_all, "rate", ratio=1.0)
        else:
            ax_a.set_ylim(bottom=0)
            ax_a.set_xlim(left=0)
        ax_a.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_rate(v) if v > 0 else "0")) \
            if ax_a.get_xscale() == "linear" else None
        ax_a.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_rate(v) if v > 0 else "0")) \
            if ax_a.get_yscale() == "linear" else None
        if bad_slots:
            _make_strip(ax_a)
        _log_if_wide(ax_t, "x", ach_all, "rate")
        if ax_t.get_xscale() == "linear":
            ax_t.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_rate(v) if v > 0 else "0"))
        if not _log_if_wide(ax_t, "y", tail_all, "time_ns"):
            ax_t.set_ylim(bottom=0)
            ax_t.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_time_ns(v) if v > 0 else "0"))
        ax_a.set_xlabel(S.param_label(param))
        ax_a.set_ylabel("%s (higher is better)" % rate_fig.short)
        ax_t.set_xlabel("%s achieved" % rate_fig.short)
        ax_t.set_ylabel("%s (lower is better)" % time_fig.short)
        if r == 0:
            ax_a.set_title("%s against the rate offered%s" % (rate_fig.short, (": " + _facet_title(facet)) if facet else ""),
                           loc="left")
            ax_t.set_title("%s against %s achieved" % (time_fig.short, rate_fig.short), loc="left")
        elif facet:
            ax_a.set_title(_facet_title(facet), loc="left")
    title = "%s: %s against the rate offered, %s against %s achieved" % (
        workload, rate_fig.short, time_fig.short, rate_fig.short)
    sub = [s for s in (_fixed_params(results, workload, swept + list(dependent)),
                       "median of the ok repetitions; rows that searched instead of offering one rate are "
                       "left out" + ("; showing %d of %d combinations of %s" % (len(facets), total, ", ".join(others))
                                     if total > len(facets) else "")) if s]
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), " \u00b7 ".join(sub), ha="left", va="top", fontsize=8,
             color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    handles = _model_handles(results, models)
    handles.append(Line2D([], [], color="#999999", linestyle="--", label="achieved = offered"))
    if hollow:
        handles.append(Line2D([], [], linestyle="", marker="o", markerfacecolor="white", markeredgecolor="#555555",
                              label="hollow: did not keep up"))
    if ringed:
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=11, markerfacecolor="none",
                              markeredgecolor="#888888", label="ringed: generator-bound (a lower bound)"))
    _legend(fig, handles + _status_handles(statuses))
    _footnotes(fig, marked, y=-0.01)
    caption = ("%s. Left: %s against the rate offered, the dashed line where every request offered was "
               "answered; right: %s against %s achieved, one line per model in order of the rate offered. "
               "Hollow markers: the run did not keep up (it missed the rate or its p99 limit); ringed: the "
               "load generator, not the server, limited the rate, so the rate is a lower bound of the "
               "server's." % (title, rate_fig.label, time_fig.label, rate_fig.short))
    return Chart("%s-load" % workload, "sweep", title, caption, fig, marked, workload)


def saturation_chart(results, workload):
    """Rows that searched the saturation rate (R.is_search): the rate per model as bars (hatched
    where the load generator limited it: a lower bound) and, beside it, the p99 the search
    measured at shares of it, with the p99 limit a passing rate had to meet."""
    pts = [p for p in results.points_for(workload) if R.is_search(p)]
    if not any(p.ok and R.SATURATION in p.metrics for p in pts):
        return None
    rate_fig, time_fig = _figure_of_kind(results, workload, "rate"), _figure_of_kind(results, workload, "time_ns")
    combos = {}
    for p in pts:
        combos.setdefault(tuple(sorted(p.params.items())), []).append(p)
    # One configuration: the one most models searched ok at, then the largest.
    chosen = max(combos.values(), key=lambda ps: (sum(1 for p in ps if p.ok and R.SATURATION in p.metrics),
                                                  sum(math.log1p(abs(v)) for v in ps[0].params.values())))
    by_model = {p.model: p for p in chosen}
    models = [m for m in results.models(workload) if m in by_model]
    n = len(models)
    fig = MplFigure(figsize=(12.5, 0.4 * n + 2.0))
    ax_s, ax_t = fig.subplots(1, 2)
    marked, sats, tails = [], [], []
    share_markers = ["o", "D", "s", "^"]
    limit = chosen[0].params.get(R.P99_LIMIT_PARAM)
    any_bound = False
    for i, model in enumerate(models):
        p = by_model[model]
        y = n - 1 - i
        colour = results.colour(model)
        sat = p.metrics.get(R.SATURATION) if p.ok else None
        if sat == 0:  # a finding, not a failure: not even the search's first rate passed
            ax_s.text(0.01, y, " 0: no rate of the search passed", va="center", fontsize=7.3, color="#555555",
                      transform=transforms.blended_transform_factory(ax_s.transAxes, ax_s.transData))
            continue
        if sat is None:
            for ax in (ax_s, ax_t):
                ax.text(0.01, y, " %s: %s" % (p.status, _short(_reason(p), 60)), va="center", fontsize=7.3,
                        color=S.FAILED_COLOUR if p.status == "failed" else S.SKIPPED_COLOUR,
                        transform=transforms.blended_transform_factory(ax.transAxes, ax.transData))
            marked.append((model, p.params_label(), p.status, p.error))
            continue
        bound = R.generator_bound(p)
        any_bound = any_bound or bound
        sats.append(sat)
        ax_s.barh(y, sat, color=colour, height=0.62, hatch="////" if bound else None,
                  edgecolor="white" if bound else None, linewidth=0)
        ax_s.text(sat, y, " %s%s" % ("\u2265 " if bound else "", S.fmt_rate(sat)) +
                  (" (generator-bound)" if bound else ""), va="center", fontsize=7.3)
        vals = []
        for k, (share, metric) in enumerate(R.TAILS_AT_SHARE):
            v = p.metrics.get(metric)
            if v:
                vals.append(v)
                ax_t.plot([v], [y], linestyle="", marker=share_markers[k % len(share_markers)], markersize=7,
                          markerfacecolor=colour if k else "white", markeredgecolor=colour, zorder=4)
        if len(vals) > 1:
            ax_t.plot([min(vals), max(vals)], [y, y], color=colour, linewidth=1.2, zorder=3)
        tails.extend(vals)
    for ax in (ax_s, ax_t):
        ax.set_yticks(range(n))
        ax.set_yticklabels(list(reversed(models)))
        ax.grid(axis="y", visible=False)
        ax.set_ylim(-0.6, n - 0.4)
    if sats:
        if _use_log(sats, 30):
            ax_s.set_xscale("log")
            ax_s.set_xlim(min(sats) / 2, max(sats) * 8)
        else:
            ax_s.set_xlim(0, max(sats) * 1.45)
    ax_s.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_rate(v) if v > 0 else "0"))
    short = rate_fig.short if rate_fig else "rate"
    ax_s.set_xlabel("saturation rate, %s (higher is better)" % short)
    ax_s.set_title("the highest rate served within its tolerance and p99 limit", loc="left")
    shares = " and ".join("%s%%" % S.fmt_count(share * 100) for share, _ in R.TAILS_AT_SHARE)
    if limit:
        ax_t.axvline(limit * 1e6, color=S.FAILED_COLOUR, linestyle=":", linewidth=1.1, zorder=1)
        tails.append(limit * 1e6)
    if tails:
        _log_if_wide(ax_t, "x", tails, "time_ns", ratio=5.0)
        if ax_t.get_xscale() == "linear":
            ax_t.set_xlim(0, max(tails) * 1.15)
            ax_t.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_time_ns(v) if v > 0 else "0"))
    tail_label = time_fig.short if time_fig else "p99"
    ax_t.set_xlabel("%s at %s of the saturation rate (lower is better)" % (tail_label, shares))
    ax_t.set_title("the tail below saturation", loc="left")
    title = "%s: saturation rate per model, and the tail at %s of it" % (workload, shares)
    label = ", ".join("%s=%s" % (k, S.fmt_count(v)) for k, v in sorted(chosen[0].params.items()))
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), "at %s; median of the ok repetitions" % label,
             ha="left", va="top", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    handles = [Line2D([], [], linestyle="", marker=share_markers[k % len(share_markers)], markersize=7,
                      markerfacecolor="white" if k == 0 else "#777777", markeredgecolor="#555555",
                      label="%s at %s%% of saturation" % (tail_label, S.fmt_count(share * 100)))
               for k, (share, _) in enumerate(R.TAILS_AT_SHARE)]
    if limit:
        handles.append(Line2D([], [], color=S.FAILED_COLOUR, linestyle=":", label="%s limit of the search" % tail_label))
    if any_bound:
        handles.append(Patch(facecolor="#999999", hatch="////", edgecolor="white",
                             label="generator-bound: a lower bound"))
    _legend(fig, handles)
    _footnotes(fig, marked, y=-0.01)
    caption = ("%s, at %s. The saturation rate is the highest offered rate the model served within the "
               "tolerance with its %s under the limit (dotted); beside it, the %s measured at %s of that rate. A "
               "hatched bar is a lower bound: the load generator, not the server, limited the rate." % (
                   title, label, tail_label, tail_label, shares))
    return Chart("%s-saturation" % workload, "sweep", title, caption, fig, marked, workload)


# --- phases -------------------------------------------------------------------------------------

_TIME_SUFFIX_NS = (("_ns", 1.0), ("_us", 1e3), ("_ms", 1e6), ("_s", 1e9))


def _phase_scale(metric, kind):
    """(multiplier to the kind's unit, kind) for a phase metric: its fact's kind, else the unit
    its name ends with (phase_map_ms: milliseconds, drawn as time)."""
    if kind:
        return 1.0, kind
    for suffix, mult in _TIME_SUFFIX_NS:
        if metric.endswith(suffix):
            return mult, "time_ns"
    return 1.0, None


def headline_points(results, workload, at=None):
    """The overview's configuration of a workload (or `at`) and each model's run there, as
    (params, [(model, point)]); (None, []) when the workload has no such configuration."""
    params = results.headline_params(workload, at)
    if params is None:
        return None, []
    pts = [(m, results.find(workload, m, params)) for m in results.models(workload)]
    return params, [(m, p) for m, p in pts if p is not None]


def phases_chart(results, workload, at=None):
    """A workload with phases (its `phases` fact): each model's phases as stacked bars, in the
    fact's order, at the overview's configuration."""
    phases = results.facts.phases(workload)
    if not phases:
        return None
    params, pts = headline_points(results, workload, at)
    if params is None:
        return None
    if not any(p.ok and any(p.metrics.get(ph[0]) is not None for ph in phases) for _, p in pts):
        return None
    scales = [_phase_scale(metric, kind) for metric, _, kind in phases]
    kinds = {k for _, k in scales}
    kind = kinds.pop() if len(kinds) == 1 else None
    cmap = matplotlib.colormaps["tab10"] if hasattr(matplotlib, "colormaps") else matplotlib.cm.get_cmap("tab10")
    colours = [cmap(i % 10) for i in range(len(phases))]
    n = len(pts)
    fig = MplFigure(figsize=(10.5, 0.4 * n + 1.9))
    ax = fig.add_subplot(1, 1, 1)
    marked, totals = [], []
    for i, (model, p) in enumerate(pts):
        y = n - 1 - i
        if not p.ok:
            ax.text(0.01, y, " %s: %s" % (p.status, _short(_reason(p), 70)), va="center", fontsize=7.3,
                    color=S.FAILED_COLOUR if p.status == "failed" else S.SKIPPED_COLOUR,
                    transform=transforms.blended_transform_factory(ax.transAxes, ax.transData))
            marked.append((model, p.params_label(), p.status, p.error))
            continue
        left = 0.0
        for k, ((metric, _, _), (mult, _)) in enumerate(zip(phases, scales)):
            v = p.metrics.get(metric)
            if v is None:
                continue
            ax.barh(y, v * mult, left=left, color=colours[k], height=0.62, edgecolor="white", linewidth=0.6)
            left += v * mult
        totals.append(left)
        ax.text(left, y, " " + S.fmt_value(kind, left), va="center", fontsize=7.3)
    ax.set_yticks(range(n))
    ax.set_yticklabels([m for m, _ in reversed(pts)])
    ax.grid(axis="y", visible=False)
    ax.set_ylim(-0.6, n - 0.4)
    if totals:
        ax.set_xlim(0, max(totals) * 1.25)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_value(kind, v) if v > 0 else "0"))
    ax.set_xlabel("time in each phase, stacked (lower is better)" if kind == "time_ns" else "each phase, stacked")
    label = ", ".join("%s=%s" % (k, S.fmt_count(v)) for k, v in params.items())
    title = "%s: %s by model" % (workload, " + ".join(lbl for _, lbl, _ in phases))
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), "at %s (the overview's configuration); median of the ok "
             "repetitions" % label, ha="left", va="top", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    _legend(fig, [Patch(facecolor=colours[k], label=lbl) for k, (_, lbl, _) in enumerate(phases)], title="phase")
    _footnotes(fig, marked, y=-0.01)
    caption = "%s at %s: each model's phases stacked in the workload's order, the total at the end." % (title, label)
    return Chart("%s-phases" % workload, "sweep", title, caption, fig, marked, workload)


# --- memory and the largest count -------------------------------------------------------------

def _reason(point):
    """The error without a repeated status word ("skipped: skipped: ...")."""
    err = (point.error or "no reason given").strip()
    for word in ("skipped:", "failed:"):
        if err.lower().startswith(word):
            err = err[len(word):].strip()
    return err


def alive_of(point):
    """The most units the run had alive at once: from its row (units_at_once, whatever the
    outcome), else, for an older report's ok run, the units counted alive when it was measured."""
    if point.units_at_once:
        return point.units_at_once
    alive = point.metrics.get("units_alive") if point.ok else None
    return alive or None


def memory_chart(results):
    workloads = [w for w in results.workloads() if results.facts.memory_per_unit(w) and
                 any(p.metrics.get("bytes_per_unit") is not None or p.status != "ok"
                     for p in results.points_for(w))]
    workloads = [w for w in workloads if any(p.metrics.get("bytes_per_unit") is not None
                                             for p in results.points_for(w))]
    if not workloads:
        return None
    rows = [(w, results.models(w)) for w in workloads]
    height = sum(0.34 * len(ms) + 1.0 for _, ms in rows) + 0.6
    fig = MplFigure(figsize=(12.5, height))
    axes = fig.subplots(len(rows), 2, squeeze=False,
                        gridspec_kw={"height_ratios": [len(ms) + 2 for _, ms in rows]})
    marked = []
    for r, (workload, models) in enumerate(rows):
        ax_m, ax_n = axes[r]
        n = len(models)
        noun = "units alive at once"
        mem_vals, count_vals = [], []
        row_bad = False
        for i, model in enumerate(models):
            y = n - 1 - i
            pts = results.points_for(workload, model)
            ok = [p for p in pts if p.ok and alive_of(p)]
            colour = results.colour(model)
            best = max(ok, key=alive_of) if ok else None
            if best is not None and best.metrics.get("bytes_per_unit") is not None:
                b = best.metrics["bytes_per_unit"]
                shown = max(b, 1.0)
                mem_vals.append(shown)
                ax_m.barh(y, shown, color=colour, height=0.62)
                alive = best.metrics.get("units_alive")
                ax_m.text(shown, y, " %s at %s %s%s" % (
                    S.fmt_bytes(b), S.fmt_count(alive_of(best)), noun,
                    " (%s counted)" % S.fmt_count(alive) if alive and alive != alive_of(best) else ""),
                          va="center", fontsize=7.3)
            elif best is not None:
                ax_m.text(0.01, y, " not measured", va="center", fontsize=7.3, color="#777777",
                          transform=transforms.blended_transform_factory(ax_m.transAxes, ax_m.transData))
            largest = alive_of(best) if best else None
            beyond = sorted((p for p in pts if p.status != "ok" and alive_of(p) and
                             (largest is None or alive_of(p) > largest)), key=alive_of)
            if largest:
                count_vals.append(largest)
                ax_n.barh(y, largest, color=colour, height=0.62)
            if largest:
                ax_n.text(largest, y, " %s" % S.fmt_int(largest), va="center", fontsize=7.3,
                          color="#222222")
            if beyond:
                first_bad = beyond[0]
                bad_x = alive_of(first_bad)
                count_vals.append(bad_x)
                ax_n.plot([bad_x], [y], linestyle="", marker="X" if first_bad.status == "failed" else "o",
                          markersize=8, markerfacecolor=colour if first_bad.status == "failed" else "white",
                          markeredgecolor=S.FAILED_COLOUR if first_bad.status == "failed" else colour,
                          markeredgewidth=1.4, zorder=4)
                ax_n.annotate("%s at %s: %s" % (first_bad.status, S.fmt_count(bad_x),
                                                _short(_reason(first_bad), 46)),
                              (bad_x, y), xytext=(8, 0), textcoords="offset points", va="center",
                              fontsize=7.3, color=S.FAILED_COLOUR if first_bad.status == "failed" else "#5d6d7e")
                marked.append((model, first_bad.params_label(), first_bad.status, first_bad.error))
                row_bad = True
            elif not largest:
                ax_n.text(0.01, y, " no run ran ok", va="center", fontsize=7.3, color="#777777",
                          transform=transforms.blended_transform_factory(ax_n.transAxes, ax_n.transData))
        for ax in (ax_m, ax_n):
            ax.set_yticks(range(n))
            ax.set_yticklabels(list(reversed(models)))
            ax.grid(axis="y", visible=False)
            ax.set_xscale("log")
            ax.set_ylim(-0.6, n - 0.4)
        if mem_vals:
            ax_m.set_xlim(min(mem_vals) / 3, max(mem_vals) * 60)
        _bytes_axis(ax_m.xaxis)
        if count_vals:
            ax_n.set_xlim(min(count_vals) / 3, max(count_vals) * (400 if row_bad else 30))
        ax_n.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: S.fmt_count(v)))
        ax_m.set_title("%s: memory per unit alive (all processes)" % workload,
                       loc="left")
        ax_n.set_title("%s: largest count that ran ok (%s)" % (workload, noun), loc="left")
        ax_m.set_xlabel("bytes per unit, log (lower is better)")
        ax_n.set_xlabel("%s, log (higher is better)" % noun)
    title = "Memory per unit and the largest count each model reached"
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    handles = []
    if any(m[2] == "failed" for m in marked):
        handles.append(Line2D([], [], linestyle="", marker="X", markersize=8, markerfacecolor="#bbbbbb",
                              markeredgecolor=S.FAILED_COLOUR, markeredgewidth=1.3,
                              label="first larger count that failed"))
    if any(m[2] == "skipped" for m in marked):
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=7, markerfacecolor="white",
                              markeredgecolor=S.SKIPPED_COLOUR, markeredgewidth=1.5,
                              label="first larger count skipped"))
    if handles:
        _legend(fig, handles)
    caption = ("%s. Memory per unit is (the memory of every process of the trial at one sample - "
               "memory before the run) / the units alive at that sample (every unit, where the workload "
               "signals they are all alive; the waits in flight, or the OS threads added where more, "
               "where it counts waits; otherwise the OS threads the run added, so 'not measured' where "
               "a model adds none), at the largest "
               "count the model ran; the right panels show that count and, where a larger one "
               "failed or was skipped, where and why." % title)
    return Chart("memory", "memory", title, caption, fig, marked)


# --- CPU time split and context switches --------------------------------------------------------

def cpu_chart(results, workload, at=None):
    params, pts = headline_points(results, workload, at)
    if params is None:
        return None
    if not any(p.ok and p.resources.get("user_cpu_ns") is not None for _, p in pts):
        return None
    per_unit = all(p.units for _, p in pts if p.ok)
    fig = MplFigure(figsize=(12.5, 0.36 * len(pts) + 1.9))
    ax_c, ax_s = fig.subplots(1, 2)
    n = len(pts)
    cpu_vals, cs_vals = [], []
    marked = []
    for i, (model, p) in enumerate(pts):
        y = n - 1 - i
        colour = results.colour(model)
        if not p.ok:
            for ax in (ax_c, ax_s):
                ax.text(0.01, y, " %s: %s" % (p.status, _short(_reason(p), 60)), va="center",
                        fontsize=7.3, color=S.FAILED_COLOUR if p.status == "failed" else S.SKIPPED_COLOUR,
                        transform=transforms.blended_transform_factory(ax.transAxes, ax.transData))
            marked.append((model, p.params_label(), p.status, p.error))
            continue
        res = p.resources
        div = p.units if per_unit else 1
        user = (res.get("user_cpu_ns") or 0) / div
        system = (res.get("sys_cpu_ns") or 0) / div
        ax_c.barh(y, user, color=colour, height=0.62)
        ax_c.barh(y, system, left=user, color=colour, alpha=0.45, hatch="////", edgecolor="white",
                  height=0.62, linewidth=0)
        util = res.get("cpu_utilization")
        ax_c.text(user + system, y, " %s%s" % (S.fmt_time_ns(user + system),
                                              ", %.2f CPUs busy" % util if util is not None else ""),
                  va="center", fontsize=7.3)
        cpu_vals.append(user + system)
        vol = (res.get("voluntary_context_switches") or 0) / div
        invol = (res.get("involuntary_context_switches") or 0) / div
        ax_s.barh(y, vol, color=colour, height=0.62)
        ax_s.barh(y, invol, left=vol, color=colour, alpha=0.45, hatch="////", edgecolor="white",
                  height=0.62, linewidth=0)
        ax_s.text(vol + invol, y, " %s" % ("%.3g" % (vol + invol)), va="center", fontsize=7.3)
        cs_vals.append(vol + invol)
    unit_word = results.facts.unit(workload) if per_unit else "run"
    for ax in (ax_c, ax_s):
        ax.set_yticks(range(n))
        ax.set_yticklabels([m for m, _ in reversed(pts)])
        ax.grid(axis="y", visible=False)
        ax.set_ylim(-0.6, n - 0.4)
    cpu_div, cpu_unit = S.axis_scale("time_ns", cpu_vals)
    ax_c.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: "%g" % (v / cpu_div)))
    ax_c.set_xlabel("CPU time per %s (%s): user solid, system hatched" % (unit_word, cpu_unit) if per_unit
                    else "CPU time per run (%s): user solid, system hatched" % cpu_unit)
    ax_s.set_xlabel("context switches per %s: voluntary solid, involuntary hatched" % unit_word)
    if cpu_vals:
        ax_c.set_xlim(0, max(cpu_vals) * 1.45)
    if cs_vals:
        ax_s.set_xlim(0, max(max(cs_vals), 1e-9) * 1.3)
    ax_c.set_title("CPU time (user + system)", loc="left")
    ax_s.set_title("context switches", loc="left")
    label = ", ".join("%s=%s" % (k, S.fmt_count(v)) for k, v in params.items())
    title = "%s: CPU time and context switches per %s" % (workload, unit_word)
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 1 - 0.42 / fig.get_figheight(), "at %s (the overview's configuration); medians over the ok repetitions" % label,
             ha="left", va="top", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    handles = [Patch(facecolor="#777777", label="user / voluntary"),
               Patch(facecolor="#777777", alpha=0.45, hatch="////", edgecolor="white",
                     label="system / involuntary")]
    _legend(fig, handles)
    caption = ("%s at %s. User and system CPU time of every process of the trial, and voluntary "
               "(blocking) and involuntary (preempted) context switches%s." % (
                   title, label, ", divided by the %ss of the run" % unit_word if per_unit else ""))
    return Chart("%s-cpu" % workload, "cpu", title, caption, fig, marked, workload)


# --- overview heatmap ----------------------------------------------------------------------------

def overview_cells(results, at=None):
    """[(workload, figure, params, {model: (status, value, ratio, point)})] for the heatmap."""
    rows = []
    for workload in results.workloads():
        figures = results.figures_for(workload)
        if not figures:
            continue
        figure = next((f for f in figures if any(f.value(p) is not None for p in results.points_for(workload))),
                      figures[0])
        params = results.headline_params(workload, at)
        if params is None:
            continue
        cells = {}
        for model in results.models():
            p = results.find(workload, model, params)
            if p is None:
                cells[model] = ("not run", None, None, None)
                continue
            v = figure.value(p)
            cells[model] = ((p.status if p.status != "ok" else "no value") if v is None else "ok", v, None, p)
        values = [c[1] for c in cells.values() if c[1] is not None]
        if values:
            best = min(values) if figure.lower_is_better else max(values)
            for m, (st, v, _, p) in cells.items():
                if v is not None:
                    cells[m] = (st, v, figure.relative_to_best(v, best), p)
        rows.append((workload, figure, params, cells))
    return rows


def _bad_elsewhere(results, workload, model, params):
    """'failed at tasks=100k' when the model failed or was skipped at another configuration."""
    bad = [p for p in results.points_for(workload, model) if p.status != "ok" and p.params != params]
    if not bad:
        return ""
    swept, _ = results.chart_params(workload)
    first = min(bad, key=lambda p: tuple(p.params.get(k, 0) for k in swept))
    where = ", ".join("%s=%s" % (k, S.fmt_count(first.params.get(k))) for k in swept
                      if first.params.get(k) != params.get(k)) or first.params_label()
    more = " +%d" % (len(bad) - 1) if len(bad) > 1 else ""
    return "%s at %s%s" % (first.status, _short(where, 22), more)


def overview_chart(results, at=None):
    rows = overview_cells(results, at)
    models = results.models()
    if not rows or not models:
        return None
    ratios = [c[2] for _, _, _, cells in rows for c in cells.values() if c[2] is not None]
    vmax = max(10.0, min(max(ratios) if ratios else 10.0, 1000.0))
    norm = LogNorm(vmin=1.0, vmax=vmax)
    cmap = matplotlib.colormaps["RdYlGn_r"] if hasattr(matplotlib, "colormaps") else matplotlib.cm.get_cmap("RdYlGn_r")
    fig = MplFigure(figsize=(1.05 * len(models) + 3.6, 0.78 * len(rows) + 1.65))
    ax = fig.add_axes([0.0, 0.0, 1.0, 1.0])
    marked = []
    n = len(rows)
    for r, (workload, figure, params, cells) in enumerate(rows):
        y = n - 1 - r
        for c, model in enumerate(models):
            status, v, ratio, p = cells.get(model, ("not run", None, None, None))
            if ratio is not None:
                face = cmap(norm(min(max(ratio, 1.0), vmax)))
                ax.add_patch(Rectangle((c, y), 1, 1, facecolor=face, edgecolor="white", linewidth=2))
                lum = 0.299 * face[0] + 0.587 * face[1] + 0.114 * face[2]
                colour = "white" if lum < 0.5 else "#111111"
                big = "best" if ratio <= 1.0000001 else S.fmt_ratio(ratio)
                ax.text(c + 0.5, y + 0.62, big, ha="center", va="center", fontsize=9.5,
                        fontweight="bold", color=colour)
                ax.text(c + 0.5, y + 0.36, S.fmt_value(figure.kind, v), ha="center", va="center",
                        fontsize=7, color=colour)
                elsewhere = _bad_elsewhere(results, workload, model, params)
                if elsewhere:
                    ax.text(c + 0.5, y + 0.13, elsewhere, ha="center", va="center", fontsize=6.3,
                            color=colour, style="italic")
            else:
                face = {"failed": "#f2d7d5", "skipped": "#e5e8e8"}.get(status, "#ffffff")
                hatch = "///" if status == "failed" else None
                ax.add_patch(Rectangle((c, y), 1, 1, facecolor=face, edgecolor="white", linewidth=2))
                if hatch:
                    ax.add_patch(Rectangle((c + 0.04, y + 0.04), 0.92, 0.92, facecolor="none",
                                           edgecolor="#e6b0aa", hatch=hatch, linewidth=0))
                text = {"failed": "failed", "skipped": "skipped", "not run": "not run",
                        "no value": "no value"}.get(status, status)
                ax.text(c + 0.5, y + 0.5, text, ha="center", va="center", fontsize=8.5,
                        fontweight="bold" if status in ("failed", "skipped") else "normal",
                        color={"failed": S.FAILED_COLOUR, "skipped": "#5d6d7e"}.get(status, "#999999"))
                if status in ("failed", "skipped") and p is not None:
                    marked.append((model, "%s %s" % (workload, p.params_label()), status, p.error))
    ax.set_xlim(0, len(models))
    ax.set_ylim(0, n)
    ax.set_xticks([c + 0.5 for c in range(len(models))])
    ax.set_xticklabels([m.replace("/", "\n") for m in models], fontsize=8.5)
    ax.xaxis.tick_top()
    ax.set_yticks([n - 1 - r + 0.5 for r in range(n)])
    ax.set_yticklabels(["%s: %s\n%s" % (w, f.short, ", ".join("%s=%s" % (k, S.fmt_count(v)) for k, v in prm.items()))
                        for w, f, prm, _ in rows], fontsize=8.5)
    ax.tick_params(length=0)
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    # Size the axes: fixed cell size, room for labels.
    w_in, h_in = fig.get_figwidth(), fig.get_figheight()
    left = 3.2 / w_in
    ax.set_position([left, 0.55 / h_in, 1.05 * len(models) / w_in, 0.78 * n / h_in])
    cax = fig.add_axes([left + 1.05 * len(models) / w_in + 0.15 / w_in, 0.55 / h_in, 0.14 / w_in, 0.78 * n / h_in])
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, cax=cax)
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= vmax]
    cb.set_ticks(ticks)
    cb.set_ticklabels(["%g\u00d7" % t for t in ticks])
    cb.ax.minorticks_off()
    cb.set_label("\u00d7 the best (log)", fontsize=8)
    title = "Overview: each model's headline figure relative to the best on that workload"
    fig.text(0.01, 1 - 0.12 / h_in, title, ha="left", va="top", fontsize=11, fontweight="bold")
    fig.text(0.01, 1 - 0.42 / h_in, "1\u00d7 = the best model for the row; lower is better in every cell. "
             "Rows compare models at one configuration: the one most models ran ok; "
             "italics: the model failed or was skipped at another configuration.",
             ha="left", va="top", fontsize=8, color="#555555")
    caption = ("%s. Each row is a workload at the configuration where the most models ran ok "
               "(shown under its name); each cell is the model's figure divided by the best "
               "model's (best = 1\u00d7) with the absolute value below. Failed, skipped and not-run "
               "cells are marked." % title)
    return Chart("overview", "overview", title, caption, fig, marked)


# --- everything --------------------------------------------------------------------------------

def _workload_charts(results, workload, at):
    """The charts of one workload's points."""
    out = []

    def add(chart):
        if chart is not None:
            out.append(chart)
    # Rows that searched a saturation rate say something else than rows offered one rate: the
    # sweeps show the fixed rates (or, with none, the searches), the saturation chart the rest.
    searched = [p for p in results.points_for(workload) if R.is_search(p)]
    mixed = searched and len(searched) < len(results.points_for(workload))
    view = results.subset(lambda p: not R.is_search(p)) if mixed else results
    swept, _ = view.chart_params(workload)
    # A line needs two values of the parameter with the others fixed: a value that changes
    # only together with another swept one (memory's hold_ms, 500 only at a million units, in
    # a different report) would make a chart of single points.
    lines = [param for param in swept if view.forms_lines(workload, param)]
    if swept:
        for param in lines or swept:
            add(sweep_chart(view, workload, param))
    elif not searched or mixed:
        add(single_config_chart(view, workload))
    add(load_chart(view, workload))
    add(saturation_chart(results, workload))
    add(phases_chart(results, workload, at))
    add(speedup_chart(results, workload))
    add(latency_chart(results, workload))
    add(cpu_chart(results, workload, at))
    return out


def _on_link(chart, link):
    """A chart of the runs on one link's conditions, of several: it says which, in its slug,
    title, caption and figure."""
    flag = L.flag(link)
    chart.slug += "-link-" + (flag.replace("=", "").replace(",", "-").replace(".", "_") if flag else "none")
    chart.title += " (%s)" % L.describe(link)
    chart.caption += " Runs on the link: %s." % L.describe(link)
    chart.figure.text(0.99, 1 - 0.12 / chart.figure.get_figheight(), "link: %s" % L.describe(link),
                      ha="right", va="top", fontsize=8.5, color="#7b241c")
    return chart


def build_charts(results, at=None, workloads=None):
    """Every chart the results support, overview first."""
    charts = []
    selected = [w for w in results.workloads() if workloads is None or w in workloads]
    overview = overview_chart(results, at)
    if overview is not None:
        charts.append(overview)
    for workload in selected:
        # The same runs over different link conditions are not points of one line: a set of
        # charts per link.
        links = {}
        for p in results.points_for(workload):
            links.setdefault(L.key(p.link), p.link)
        if len(links) < 2:
            charts.extend(_workload_charts(results, workload, at))
            continue
        for key in sorted(links):
            view = results.subset(lambda p, key=key: p.workload != workload or L.key(p.link) == key)
            charts.extend(_on_link(c, links[key]) for c in _workload_charts(view, workload, at))
    mem = memory_chart(_Subset(results, selected)) if selected else None
    if mem is not None:
        charts.append(mem)
    return charts


class _Subset:
    """Results restricted to some workloads (for the memory chart)."""

    def __init__(self, results, workloads):
        self._r = results
        self._w = workloads

    def workloads(self):
        return [w for w in self._r.workloads() if w in self._w]

    def __getattr__(self, name):
        return getattr(self._r, name)
