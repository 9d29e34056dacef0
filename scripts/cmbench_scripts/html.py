"""The self-contained HTML page: environment, warnings, the overview, every chart and the raw
table, in one file with inline CSS, inline SVG (or base64 PNG) charts and a small inline script
for sorting and filtering the table. It references nothing outside itself: no fonts, scripts,
styles or images from the network, so it reads the same offline and in an archive years later."""

import base64
import html
import re

from . import style as S
from .charts import overview_cells

CSS = """
:root { --fg:#1d2327; --muted:#5f6b73; --line:#dde3e8; --bg:#ffffff; --soft:#f6f8fa;
        --warn-bg:#fff4ce; --warn-line:#e0b100; --bad:#b03a2e; --bad-bg:#fbeae8; --ok:#1e7b34;
        --skip-bg:#eef0f2; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif;
       color:var(--fg); background:var(--bg); }
header { padding:18px 28px 10px; border-bottom:1px solid var(--line); background:var(--soft); }
header h1 { margin:0 0 4px; font-size:22px; }
header .meta { color:var(--muted); }
nav { padding:8px 28px; border-bottom:1px solid var(--line); position:sticky; top:0; background:#fff; z-index:2; }
nav a { margin-right:14px; color:#0b5cad; text-decoration:none; white-space:nowrap; }
nav a:hover { text-decoration:underline; }
main { padding:8px 28px 40px; max-width:1500px; }
h2 { margin:28px 0 8px; font-size:18px; border-bottom:1px solid var(--line); padding-bottom:4px; }
h3 { margin:20px 0 6px; font-size:15px; }
.warnings { border:1px solid var(--warn-line); background:var(--warn-bg); border-radius:6px; padding:8px 14px; margin:14px 0; }
.warnings h2 { border:0; margin:4px 0; font-size:16px; }
.warnings ul { margin:4px 0 6px; padding-left:20px; }
.nowarn { border:1px solid #b7dfc1; background:#eef9f0; border-radius:6px; padding:8px 14px; margin:14px 0; }
figure { margin:12px 0 26px; }
figure .chart { overflow-x:auto; }
figure svg, figure img { max-width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:13px; max-width:1100px; margin-top:4px; }
table { border-collapse:collapse; font-size:12.5px; }
th, td { border:1px solid var(--line); padding:3px 7px; text-align:left; vertical-align:top; }
th { background:var(--soft); position:sticky; top:38px; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.env td:first-child { font-weight:600; white-space:nowrap; }
table.env td { max-width:900px; word-break:break-word; }
tr.failed td { background:var(--bad-bg); }
tr.skipped td { background:var(--skip-bg); }
tr.rep td { color:#444; }
.status-failed { color:var(--bad); font-weight:600; }
.status-skipped { color:var(--muted); font-weight:600; }
.status-ok { color:var(--ok); }
.summary li { margin:2px 0; }
.tablebar { margin:8px 0; display:flex; gap:16px; align-items:center; flex-wrap:wrap; }
.tablebar input[type=search] { padding:4px 8px; width:320px; border:1px solid #b9c3cc; border-radius:4px; }
th.sortable { cursor:pointer; user-select:none; }
th.sortable::after { content:" \\2195"; color:#9aa5ad; }
th.sorted-asc::after { content:" \\25B2"; color:var(--fg); }
th.sorted-desc::after { content:" \\25BC"; color:var(--fg); }
.rawwrap { overflow-x:auto; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12px; }
footer { color:var(--muted); padding:14px 28px; border-top:1px solid var(--line); font-size:12px; }
"""

SCRIPT = r"""
(function () {
  var table = document.getElementById('raw');
  if (!table) return;
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function key(cell, numeric) {
    var v = cell.getAttribute('data-v');
    if (v === null) v = cell.textContent;
    if (numeric) { var n = parseFloat(v); return isNaN(n) ? -Infinity : n; }
    return v.toLowerCase();
  }
  Array.prototype.forEach.call(heads, function (th, index) {
    th.classList.add('sortable');
    th.addEventListener('click', function () {
      var numeric = th.getAttribute('data-type') === 'num';
      var asc = !th.classList.contains('sorted-asc');
      Array.prototype.forEach.call(heads, function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  var filter = document.getElementById('rawfilter');
  var reps = document.getElementById('rawreps');
  function apply() {
    var q = filter.value.toLowerCase();
    var showReps = reps.checked;
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      var ok = (showReps || !r.classList.contains('rep')) && (!q || r.textContent.toLowerCase().indexOf(q) >= 0);
      r.style.display = ok ? '' : 'none';
      if (ok) shown++;
    });
    document.getElementById('rawcount').textContent = shown + ' rows shown';
  }
  filter.addEventListener('input', apply);
  reps.addEventListener('change', apply);
  apply();
  table.setAttribute('data-ready', 'yes');
})();
"""

ENV_ORDER = [
    ("date", "date"), ("host_name", "host"), ("cpu_model", "CPU"), ("num_cpus", "CPUs"),
    ("mhz_per_cpu", "MHz per CPU"), ("affinity", "affinity (CPU ids)"), ("governor", "governor"),
    ("cpu_scaling_enabled", "CPU frequency scaling"), ("load_avg", "load average before"),
    ("load_avg_after", "load average after"),
    ("cpu_before", "other work just before the run"), ("steal_share_during", "CPU time stolen by the hypervisor during the trials"),
    ("kernel", "kernel"), ("compiler", "compiler"), ("compiler_flags", "compiler flags"),
    ("build_type", "build type"), ("library_build_type", "benchmark library build"),
    ("library_versions", "library versions"), ("cmbench_version", "cmbench version"),
    ("git_sha", "git SHA"), ("git_dirty", "uncommitted changes"),
    ("json_schema_version", "Google Benchmark JSON schema version"),
    ("cmbench_schema_version", "cmbench report format"), ("preset", "preset"),
    ("repetitions", "repetitions"), ("warmup", "warm-up runs"),
    ("timeout_seconds", "timeout (s)"), ("limits", "system limits"),
    ("floors", "primitive floors (this run)"),
    ("command_line", "command line"), ("executable", "executable"), ("caches", "caches"),
]


def esc(v):
    return html.escape(str(v), quote=True)


def _env_value(key, value):
    if value is None or value == "" or value == [] or value == {}:
        return '<span style="color:#999">not recorded</span>'
    if key == "floors" and isinstance(value, dict):
        # Each probe's floor, and its before/after medians: drift across the run shows here.
        parts = []
        for p in value.get("probes") or []:
            if not isinstance(p, dict):
                continue
            ns = p.get("ns_per_op")
            text = "%s %s per %s" % (p.get("name", "?"), S.fmt_time_ns(ns) if isinstance(ns, (int, float)) else "not measured",
                                     p.get("per", "op"))
            if isinstance(p.get("p50_ns"), (int, float)):
                text += ", median %s" % S.fmt_time_ns(p["p50_ns"])
            b, a = p.get("before_ns"), p.get("after_ns")
            if isinstance(b, (int, float)) and isinstance(a, (int, float)):
                text += " (before %s, after %s)" % (S.fmt_time_ns(b), S.fmt_time_ns(a))
            parts.append(esc(text))
        def _t(v):
            return S.fmt_time_ns(v) if isinstance(v, (int, float)) else "?"

        for workload, block in sorted((value.get("by_workload") or {}).items()):
            # The round trips again, measured just before and just after that workload's trials.
            probes = block.get("probes") if isinstance(block, dict) else None
            trips = ["%s median %s (before %s, after %s)" % (p.get("name", "?"), _t(p["p50_ns"]), _t(p.get("before_p50_ns")),
                                                            _t(p.get("after_p50_ns")))
                     for p in probes or [] if isinstance(p, dict) and isinstance(p.get("p50_ns"), (int, float))]
            if trips:
                parts.append("<b>%s</b> %s" % (esc("around the %s trials:" % workload), esc("; ".join(trips))))
        for e in value.get("errors") or []:
            parts.append('<span style="color:#b00">%s</span>' % esc(e))
        return "<br>".join(parts) or '<span style="color:#999">not recorded</span>'
    if key == "cpu_before" and isinstance(value, dict):
        return esc("%.2f of %s CPUs busy, %.2f CPUs stolen, over %.1f s" % (
            value.get("busy_cpus") or 0, value.get("online_cpus", "?"), value.get("steal_cpus") or 0,
            value.get("window_s") or 0))
    if key == "steal_share_during" and isinstance(value, (int, float)):
        return esc("%.1f%%" % (100 * value))
    if key == "caches" and isinstance(value, list):
        parts = []
        for c in value:
            if isinstance(c, dict):
                parts.append("L%s %s %s%s" % (c.get("level", "?"), str(c.get("type", "")).lower(),
                                              S.fmt_bytes(c.get("size")) if isinstance(c.get("size"), (int, float)) else "?",
                                              " (shared by %s)" % c["num_sharing"] if c.get("num_sharing", 1) not in (None, 1) else ""))
        return esc("; ".join(parts))
    if isinstance(value, dict):
        return esc(", ".join("%s %s" % (k, v) for k, v in value.items()))
    if isinstance(value, list):
        return esc(", ".join(str(v) for v in value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "command_line":
        return "<code>%s</code>" % esc(value)
    return esc(value)


def environment_table(reports):
    keys = [k for k, _ in ENV_ORDER]
    extra = []
    for r in reports:
        for k in r.context:
            # The facts have a section of their own (Models).
            if k not in keys and k not in extra and k not in ("warnings", "models", "workloads"):
                extra.append(k)
    labels = dict(ENV_ORDER)
    rows = []
    multi = len(reports) > 1
    head = ""
    if multi:
        head = "<thead><tr><th></th>%s</tr></thead>" % "".join("<th>%s</th>" % esc(r.label) for r in reports)
    for k in keys + extra:
        if not any(k in r.context for r in reports):
            continue
        cells = "".join("<td>%s</td>" % _env_value(k, r.context.get(k)) for r in reports)
        rows.append("<tr><td>%s</td>%s</tr>" % (esc(labels.get(k, k)), cells))
    files = "".join("<td><code>%s</code>%s</td>" % (esc(r.path), " (schema %d, read with the facts given)"
                                                    % r.schema_version if r.schema_version < 2 else "")
                    for r in reports)
    rows.insert(0, "<tr><td>report file</td>%s</tr>" % files)
    return '<table class="env">%s<tbody>%s</tbody></table>' % (head, "".join(rows))


_ID = re.compile(r'id="([^"]+)"')


def inline_svg(data, prefix):
    """matplotlib's SVG, made fit to sit inside HTML: no XML prolog or DOCTYPE, no namespace
    URLs (HTML parses inline SVG without them), and ids prefixed per chart so two charts'
    clip paths and markers can never collide."""
    text = data.decode("utf-8")
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    ids = set(_ID.findall(text))
    for i in sorted(ids, key=len, reverse=True):
        new = "%s-%s" % (prefix, i)
        text = text.replace('id="%s"' % i, 'id="%s"' % new)
        text = text.replace("#%s)" % i, "#%s)" % new)
        text = text.replace('href="#%s"' % i, 'href="#%s"' % new)
    text = re.sub(r'<svg\b', '<svg role="img"', text, count=1)
    return text.strip()


def chart_html(chart, embed, index):
    if embed == "png":
        data = base64.b64encode(chart.render("png", dpi=100)).decode("ascii")
        body = '<img alt="%s" src="data:image/png;base64,%s">' % (esc(chart.title), data)
    else:
        body = inline_svg(chart.render("svg"), "c%d" % index)
    return ('<figure id="chart-%s"><div class="chart" aria-label="%s">%s</div><figcaption>%s</figcaption></figure>'
            % (esc(chart.slug), esc(chart.title), body, esc(chart.caption)))


def overview_summary(res, at=None):
    items = []
    for workload, figure, params, cells in overview_cells(res, at):
        ranked = sorted(((c[2], m, c[1]) for m, c in cells.items() if c[2] is not None))
        if not ranked:
            items.append("<li><b>%s</b>: no model ran ok</li>" % esc(workload))
            continue
        bits = ["<b>%s</b> (%s)" % (esc(ranked[0][1]), esc(S.fmt_value(figure.kind, ranked[0][2])))]
        for ratio, m, v in ranked[1:3]:
            bits.append("%s %s" % (esc(m), esc(S.fmt_ratio(ratio))))
        bad = ["%s %s" % (esc(m), c[0]) for m, c in cells.items() if c[0] in ("failed", "skipped")]
        items.append("<li><b>%s</b> (%s at %s): best %s%s</li>" % (
            esc(workload), esc(figure.short), esc(", ".join("%s=%s" % (k, S.fmt_count(v)) for k, v in params.items())),
            ", then ".join(bits), "; " + ", ".join(bad) if bad else ""))
    return '<ul class="summary">%s</ul>' % "".join(items)


def failures_table(res):
    bad = [p for p in res.points if p.status != "ok"]
    if not bad:
        return "<p>Every run finished ok and matched its workload's reference checksum.</p>"
    rows = []
    for p in bad:
        rows.append('<tr class="%s"><td><code>%s</code></td><td class="status-%s">%s</td><td>%s/%s</td><td>%s</td></tr>' % (
            esc(p.status), esc(p.name), esc(p.status), esc(p.status),
            p.ok_repetitions if p.ok_repetitions is not None else "?",
            p.repetitions if p.repetitions is not None else "?", esc(p.error or "no reason given")))
    return ("<table><thead><tr><th>run</th><th>status</th><th>ok repetitions</th><th>error</th></tr>"
            "</thead><tbody>%s</tbody></table>" % "".join(rows))


def models_table(res):
    """Each model that ran: what it is and its mechanism, field by field (the reports' facts)."""
    facts = res.facts
    models = res.models()
    fields = []
    for m in models:
        for k in facts.mechanism(m):
            if k not in fields:
                fields.append(k)
    rows = []
    for m in models:
        fact = facts.models.get(m) or {}
        mech = facts.mechanism(m)
        note = " <em>(the baseline: the 1\u00d7 of speedups)</em>" if facts.is_baseline(m) else ""
        cells = ['<td><code>%s</code>%s<br>%s</td>' % (esc(m), note, esc(fact.get("description") or ""))]
        cells += ["<td>%s</td>" % esc(mech.get(k) or "") for k in fields]
        rows.append("<tr>%s</tr>" % "".join(cells))
    head = "".join("<th>%s</th>" % esc(n) for n in ["model"] + fields)
    return ('<div class="rawwrap"><table class="models"><thead><tr>%s</tr></thead><tbody>%s</tbody>'
            '</table></div>' % (head, "".join(rows)))


def _num_cell(value, text=None):
    if value is None:
        return '<td class="num" data-v="">\u2013</td>'
    return '<td class="num" data-v="%r">%s</td>' % (float(value), esc(text if text is not None else value))


RAW_COLUMNS = [
    ("run", "str"), ("type", "str"), ("status", "str"), ("verified", "str"),
    ("real time", "num"), ("CPU time", "num"), ("CPUs busy", "num"), ("peak RSS", "num"),
    ("memory / unit", "num"), ("time / unit", "num"), ("p99 latency", "num"),
    ("vol. ctx sw.", "num"), ("invol. ctx sw.", "num"), ("peak procs", "num"),
    ("error", "str"),
]


def raw_table(reports):
    rows = []
    for report in reports:
        for r in report.rows:
            agg = r["run_type"] == "aggregate"
            cls = [r["status"]] if r["status"] != "ok" else []
            if not agg:
                cls.append("rep")
            res, met = r["resources"], r["metrics"]
            kind = ("%s" % r.get("aggregate_name", "aggregate")) if agg else "rep %s" % r.get("repetition_index", "")
            verified = r.get("verified")
            lat = r.get("latency")
            p99 = lat["percentiles_ns"].get(99.0) if lat else None
            has = r["status"] == "ok" or (agg and res.get("wall_ns") is not None)
            real = r.get("real_time_ms") if has else None
            cpu = r.get("cpu_time_ms") if has else None
            cells = [
                '<td><code>%s</code></td>' % esc(r["name"]),
                '<td>%s</td>' % esc(kind),
                '<td class="status-%s">%s</td>' % (esc(r["status"]), esc(r["status"])),
                '<td>%s</td>' % ("yes" if verified else "no" if verified is False else "\u2013"),
                _num_cell(real, S.fmt_time_ns(real * 1e6) if real is not None else None),
                _num_cell(cpu, S.fmt_time_ns(cpu * 1e6) if cpu is not None else None),
                _num_cell(res.get("cpu_utilization"), "%.2f" % res["cpu_utilization"] if res.get("cpu_utilization") is not None else None),
                _num_cell(res.get("peak_rss_bytes"), S.fmt_bytes(res.get("peak_rss_bytes")) if res.get("peak_rss_bytes") is not None else None),
                _num_cell(met.get("bytes_per_unit"), S.fmt_bytes(met["bytes_per_unit"]) if met.get("bytes_per_unit") is not None else None),
                _num_cell(met.get("ns_per_unit"), S.fmt_time_ns(met["ns_per_unit"]) if met.get("ns_per_unit") is not None else None),
                _num_cell(p99, S.fmt_time_ns(p99) if p99 is not None else None),
                _num_cell(res.get("voluntary_context_switches"), S.fmt_int(res["voluntary_context_switches"]) if res.get("voluntary_context_switches") is not None else None),
                _num_cell(res.get("involuntary_context_switches"), S.fmt_int(res["involuntary_context_switches"]) if res.get("involuntary_context_switches") is not None else None),
                _num_cell(res.get("peak_processes"), S.fmt_int(res["peak_processes"]) if res.get("peak_processes") is not None else None),
                '<td>%s</td>' % esc(r.get("error") or ""),
            ]
            rows.append('<tr class="%s">%s</tr>' % (" ".join(cls), "".join(cells)))
    head = "".join('<th data-type="%s">%s</th>' % (t, esc(n)) for n, t in RAW_COLUMNS)
    return ('<div class="tablebar"><input type="search" id="rawfilter" placeholder="filter rows, e.g. io/coroutines or failed" aria-label="filter rows">'
            '<label><input type="checkbox" id="rawreps"> show every repetition (not only the medians)</label>'
            '<span id="rawcount"></span></div>'
            '<div class="rawwrap"><table id="raw"><thead><tr>%s</tr></thead><tbody>%s</tbody></table></div>'
            '<p style="color:#5f6b73">Click a column heading to sort. Times are medians over the ok '
            'repetitions on aggregate rows; failed and skipped rows are shaded.</p>' % (head, "".join(rows)))


def render_page(res, charts, title=None, embed="svg", at=None, generated_by="scripts/report"):
    reports = res.reports
    ctx = res.context
    title = title or "cmbench report: %s" % (ctx.get("host_name") or reports[0].label)
    meta_bits = [ctx.get("host_name"), ctx.get("cpu_model"),
                 "%s CPUs" % ctx["num_cpus"] if ctx.get("num_cpus") else None,
                 ctx.get("date"), "preset %s" % ctx["preset"] if ctx.get("preset") else None,
                 "%s build" % (ctx.get("build_type") or ctx.get("library_build_type"))
                 if (ctx.get("build_type") or ctx.get("library_build_type")) else None,
                 "git %s%s" % (ctx["git_sha"], " (dirty)" if ctx.get("git_dirty") else "") if ctx.get("git_sha") else None]
    meta = " \u00b7 ".join(esc(b) for b in meta_bits if b)
    n_runs = len(res.points)
    n_bad = sum(1 for p in res.points if p.status != "ok")
    meta += "<br>%d runs (%d not ok) of %s on %s from %s" % (
        n_runs, n_bad, esc(", ".join(res.workloads())), esc(", ".join(res.models())),
        esc(", ".join(r.path for r in reports)))

    warnings = res.warnings()
    if warnings:
        warn_html = ('<section class="warnings" id="warnings"><h2>Warnings (%d)</h2><ul>%s</ul></section>'
                     % (len(warnings), "".join("<li>%s</li>" % esc(w) for w in warnings)))
    else:
        warn_html = '<section class="nowarn" id="warnings">No warnings: release build, no failed runs.</section>'

    overview = [c for c in charts if c.section == "overview"]
    by_workload = {}
    for i, c in enumerate(charts):
        if c.workload and c.section != "overview":
            by_workload.setdefault(c.workload, []).append((i, c))
    memory = [(i, c) for i, c in enumerate(charts) if c.section == "memory"]

    nav = ['<a href="#warnings">warnings</a>', '<a href="#overview">overview</a>',
           '<a href="#failures">failed &amp; skipped</a>']
    nav += ['<a href="#w-%s">%s</a>' % (esc(w), esc(w)) for w in by_workload]
    if memory:
        nav.append('<a href="#memory-section">memory</a>')
    nav += ['<a href="#models">models</a>', '<a href="#environment">environment</a>',
            '<a href="#rawsection">raw table</a>']

    parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<meta name="generator" content="cmbench %s">' % esc(generated_by),
             "<title>%s</title><style>%s</style></head><body>" % (esc(title), CSS),
             "<header><h1>%s</h1><div class=\"meta\">%s</div></header>" % (esc(title), meta),
             "<nav>%s</nav><main>" % "".join(nav),
             warn_html,
             '<section id="overview"><h2>Overview</h2>']
    parts.append(overview_summary(res, at))
    for c in overview:
        parts.append(chart_html(c, embed, charts.index(c)))
    parts.append("</section>")
    parts.append('<section id="failures"><h2>Failed and skipped runs</h2>%s</section>' % failures_table(res))
    for workload, items in by_workload.items():
        pts = res.points_for(workload)
        parts.append('<section id="w-%s"><h2>%s</h2>' % (esc(workload), esc(workload)))
        parts.append("<p>%d runs; swept: %s.</p>" % (len(pts), esc(", ".join(res.swept_params(workload)) or "nothing")))
        for i, c in items:
            parts.append(chart_html(c, embed, i))
        parts.append("</section>")
    if memory:
        parts.append('<section id="memory-section"><h2>Memory</h2>')
        for i, c in memory:
            parts.append(chart_html(c, embed, i))
        parts.append("</section>")
    parts.append('<section id="models"><h2>Models</h2><p>How each model runs a unit, a channel, a lock, '
                 'a wait (from the reports\' facts; <code>cmbench list</code> prints the same).</p>%s</section>'
                 % models_table(res))
    parts.append('<section id="environment"><h2>Environment</h2>%s</section>' % environment_table(reports))
    parts.append('<section id="rawsection"><h2>Raw table</h2>%s</section>' % raw_table(reports))
    parts.append("</main><footer>Generated by %s from %s. Self-contained: no network access is "
                 "needed to read this page.</footer>" % (esc(generated_by), esc(", ".join(r.path for r in reports))))
    parts.append("<script>%s</script></body></html>\n" % SCRIPT)
    return "\n".join(parts)
