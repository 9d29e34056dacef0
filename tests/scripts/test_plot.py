"""scripts/plot end to end: the charts a report supports, their files, and bad input."""

import json
import os
import unittest
import xml.etree.ElementTree as ET

from helpers import MALFORMED, TempDir, fixture, png_size, run_script
import synthetic as syn


def manifest(folder):
    with open(os.path.join(folder, "index.json"), encoding="utf-8") as f:
        return json.load(f)


class PlotFullReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.out = cls.tmp.join("charts")
        cls.proc = run_script("plot", fixture("full.json"), "--out", cls.out)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_succeeds_and_lists_what_it_wrote(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertEqual(self.proc.stderr, "")
        self.assertIn("charts (png, svg) written to", self.proc.stdout)

    def test_every_kind_of_chart_is_there(self):
        slugs = {c["slug"] for c in manifest(self.out)["charts"]}
        expected = {"overview", "cpu-vs-tasks", "cpu-vs-workers", "cpu-speedup", "cpu-cpu",
                    "io-vs-tasks", "io-vs-workers", "io-cpu", "spawn-vs-leaves",
                    "spawn-vs-workers", "spawn-cpu", "memory"}
        self.assertEqual(slugs, expected)
        self.assertNotIn("io-speedup", slugs)  # io's facts: a speedup says nothing about waiting

    def test_files_are_valid_png_and_svg(self):
        names = sorted(os.listdir(self.out))
        for chart in manifest(self.out)["charts"]:
            for f in chart["files"]:
                self.assertIn(f, names)
                path = os.path.join(self.out, f)
                with open(path, "rb") as fh:
                    data = fh.read()
                if f.endswith(".png"):
                    w, h = png_size(data)
                    self.assertGreater(w, 500, f)
                    self.assertGreater(h, 250, f)
                else:
                    root = ET.fromstring(data)
                    self.assertTrue(root.tag.endswith("svg"), f)
                    self.assertNotIn(b"<dc:date>", data)  # reproducible: no timestamp
        self.assertFalse([n for n in names if n.endswith(".tmp") or n.startswith(".")])

    def test_titles_and_captions_say_what_is_measured(self):
        charts = {c["slug"]: c for c in manifest(self.out)["charts"]}
        self.assertIn("cpu", charts["cpu-vs-workers"]["title"])
        # The workloads' figures, as their facts label them.
        self.assertIn("speedup over the baseline model", charts["cpu-vs-workers"]["title"])
        self.assertIn("makespan over the ideal wait", charts["io-vs-tasks"]["title"])
        self.assertIn("speedup", charts["cpu-speedup"]["caption"])
        self.assertIn("min-max of 3 repetitions", charts["cpu-vs-tasks"]["caption"])
        self.assertEqual(charts["cpu-vs-tasks"]["marked"], [])

    def test_manifest_carries_the_warnings(self):
        self.assertTrue(any("oversubscribed" in w for w in manifest(self.out)["warnings"]))


class PlotOtherReports(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()

    def tearDown(self):
        self.tmp.cleanup()

    def test_failed_and_skipped_runs_are_marked_not_dropped(self):
        out = self.tmp.join("failed")
        proc = run_script("plot", fixture("failed.json"), "--out", out, "--format", "png")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        charts = {c["slug"]: c for c in manifest(out)["charts"]}
        marked = charts["io-vs-tasks"]["marked"]
        by_model = {(m["model"], m["status"]) for m in marked}
        self.assertIn(("processes/spawn", "failed"), by_model)
        self.assertIn(("serial/baseline", "skipped"), by_model)
        self.assertIn(("coroutines/asio-mt", "failed"), by_model)  # one bad repetition of three
        self.assertTrue(any("pid_max" in m["error"] for m in marked))
        overview = charts["overview"]["marked"]
        self.assertIn("threads/tbb", {m["model"] for m in overview})
        self.assertTrue(charts["memory"]["marked"])
        self.assertFalse(any(f.endswith(".svg") for f in os.listdir(out)))

    def test_latency_report_gets_hdr_percentile_charts(self):
        out = self.tmp.join("latency")
        proc = run_script("plot", fixture("latency.json"), "--out", out, "--format", "svg")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        slugs = {c["slug"] for c in manifest(out)["charts"]}
        self.assertIn("pingpong-latency", slugs)
        self.assertIn("server-latency", slugs)
        self.assertIn("server-vs-rate", slugs)
        self.assertNotIn("server-vs-requests", slugs)  # requests moves with rate
        self.assertIn("pingpong-by-model", slugs)      # a single configuration: bars

    def test_v1_report_with_facts_and_merging_two_reports(self):
        out = self.tmp.join("merged")
        proc = run_script("plot", fixture("v1.json"), fixture("latency.json"), "--out", out)
        self.assertEqual(proc.returncode, 2)
        self.assertRegex(proc.stderr, r"^plot: error: \S*v1.json: report format 1 .* has no models' and "
                                      r"workloads' facts in its context: read it with --facts FILE.*\n$")
        self.assertFalse(os.path.exists(out))
        proc = run_script("plot", fixture("v1.json"), fixture("latency.json"), "--facts", fixture("facts.json"),
                          "--out", out, "--format", "png", "--dpi", "60")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        m = manifest(out)
        slugs = {c["slug"] for c in m["charts"]}
        self.assertTrue({"cpu-vs-workers", "cpu-speedup", "server-latency"} <= slugs)
        self.assertEqual(len(m["reports"]), 2)
        self.assertTrue(any("facts.json" in w for w in m["warnings"]))

    def test_workloads_filter_and_at(self):
        out = self.tmp.join("cpu-only")
        proc = run_script("plot", fixture("full.json"), "--out", out, "--format", "png", "--dpi", "50",
                          "--workloads", "cpu", "--at", "workers=4")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        charts = {c["slug"]: c for c in manifest(out)["charts"]}
        self.assertFalse([s for s in charts if s.startswith(("io", "spawn"))])
        self.assertIn("workers=4", charts["cpu-cpu"]["caption"])


class PlotBadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()

    def tearDown(self):
        self.tmp.cleanup()

    def assert_refused(self, proc, fragment, out):
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("plot: error: "), lines[0])
        self.assertIn(fragment, lines[0])
        self.assertFalse(os.path.exists(out), "the output folder was created")
        self.assertEqual(proc.stdout, "")

    def test_malformed_reports(self):
        for name, fragment in MALFORMED.items():
            with self.subTest(name=name):
                out = self.tmp.join("out-" + name)
                self.assert_refused(run_script("plot", fixture(name), "--out", out), fragment, out)

    def test_missing_file_even_alongside_a_good_one(self):
        out = self.tmp.join("out")
        proc = run_script("plot", fixture("full.json"), fixture("nope.json"), "--out", out)
        self.assert_refused(proc, "no such file", out)

    def test_bad_options(self):
        out = self.tmp.join("out")
        self.assert_refused(run_script("plot", fixture("full.json"), "--out", out, "--format", "gif"),
                            "--format", out)
        self.assert_refused(run_script("plot", fixture("full.json"), "--out", out, "--workloads", "ring"),
                            "ring not in the report", out)
        self.assert_refused(run_script("plot", fixture("full.json"), "--out", out, "--at", "workers"),
                            "NAME=VALUE", out)

    def test_output_path_that_is_a_file(self):
        path = self.tmp.join("a-file")
        with open(path, "w") as f:
            f.write("keep me")
        proc = run_script("plot", fixture("full.json"), "--out", path)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("not a folder", proc.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), "keep me")

    def test_help_explains_the_charts(self):
        proc = run_script("plot", "--help")
        self.assertEqual(proc.returncode, 0)
        for word in ("overview", "speedup", "latency", "memory", "--out", "atomically"):
            self.assertIn(word, proc.stdout)


if __name__ == "__main__":
    unittest.main()


class XAxes(unittest.TestCase):
    """The scale of a swept parameter's axis follows what the parameter is."""

    def axis(self, name, xs):
        from cmbench_scripts import charts
        ax = charts.MplFigure().subplots()
        charts._set_x_axis(ax, xs, name)
        return ax

    def test_a_percentage_is_linear(self):
        ax = self.axis("compute_pct", [0, 10, 25, 50, 75, 90, 100])
        self.assertEqual(ax.get_xscale(), "linear")
        self.assertLess(ax.get_xlim()[0], 0)

    def test_counts_from_zero_are_symlog_without_a_wide_pad_left_of_zero(self):
        ax = self.axis("concurrency", [0, 10, 1000])
        self.assertEqual(ax.get_xscale(), "symlog")
        self.assertGreater(ax.get_xlim()[0], -1)

    def test_workers_are_log2(self):
        ax = self.axis("workers", [1, 2, 4, 8, 16])
        self.assertEqual(ax.get_xscale(), "log")


class DistributedWorkloadCharts(unittest.TestCase):
    """The charts of a server's rate sweep and saturation search and of a workload's phases, from
    what the rows and the facts say (no workload named)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        rows = []
        for model, cap in (("threads/pool", 20000), ("coroutines/asio", 40000)):
            for rate in (1000, 4000, 16000, 64000):
                rows.append(syn.fixed_row(model, rate, min(rate, cap), 1e5 * (1 + rate / cap), kept_up=rate < cap,
                                          generator_bound=rate == 64000 and cap > 30000))
            rows.append(syn.search_row(model, cap * 0.95, 150e3, 600e3, generator_bound=cap > 30000))
        rows.append(syn.search_row("processes/spawn", 0, None, None))  # a finding: no rate passed
        for model, phases in (("threads/pool", (30, 12, 8)), ("coroutines/asio", (20, 15, 5))):
            rows.append(syn.row("mapreduce", model, {"tasks": 100, "nodes": 2, "workers": 2},
                                dict(zip(("phase_map_ms", "phase_shuffle_ms", "phase_reduce_ms"), phases),
                                     makespan_ms=float(sum(phases)))))
        path = cls.tmp.join("distributed.json")
        with open(path, "w") as f:
            json.dump(syn.report(rows, (syn.SERVER_FACTS, syn.MAPREDUCE_FACTS)), f)
        cls.out = cls.tmp.join("charts")
        cls.proc = run_script("plot", path, "--out", cls.out, "--format", "svg")
        cls.charts = {c["slug"]: c for c in manifest(cls.out)["charts"]} if cls.proc.returncode == 0 else {}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def svg(self, slug):
        with open(os.path.join(self.out, slug + ".svg"), encoding="utf-8") as f:
            return f.read()

    def test_the_rate_sweep_is_throughput_against_offered_and_tail_against_throughput(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        load = self.charts["server-load"]
        self.assertEqual(load["title"], "server: req/s against the rate offered, p99 against req/s achieved")
        self.assertIn("requests answered per second", load["caption"])  # the facts' labels
        self.assertIn("did not keep up", load["caption"])
        svg = self.svg("server-load")
        for text in ("req/s against the rate offered", "p99 against req/s achieved", "hollow: did not keep up",
                     "ringed: generator-bound", "threads/pool", "coroutines/asio"):
            self.assertTrue(text in svg, text)
        # The sweep against the rate leaves out the searches (rate 0), which say something else.
        self.assertIn("server-vs-rate", self.charts)
        self.assertNotIn("rate=0", self.charts["server-vs-rate"]["caption"])

    def test_the_searches_are_bars_of_the_saturation_with_the_tail_beside(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        chart = self.charts["server-saturation"]
        self.assertIn("50% and 90%", chart["title"])
        svg = self.svg("server-saturation")
        for text in ("p99 at 50% of saturation", "p99 at 90% of saturation", "p99 limit of the search",
                     "generator-bound: a lower bound", "38.0k/s", "0: no rate of the search passed"):
            self.assertTrue(text in svg, text)

    def test_runs_over_other_links_get_charts_of_their_own(self):
        tmp = TempDir()
        try:
            rows = [syn.scatter_row(m, tps, link=link, in_flight=c) for m, tps in (("threads/pool", 4000),
                                                                                  ("coroutines/asio", 9000))
                    for link in (None, {"delay_ms": 5}) for c in (16, 64)]
            path = tmp.join("links.json")
            with open(path, "w") as f:
                json.dump(syn.report(rows), f)
            proc = run_script("plot", path, "--out", tmp.join("charts"), "--format", "svg")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            charts = {c["slug"]: c for c in manifest(tmp.join("charts"))["charts"]}
            self.assertIn("scatter-vs-in_flight-link-none", charts)
            self.assertIn("scatter-vs-in_flight-link-delay5ms", charts)
            self.assertIn("(delay 5.00 ms)", charts["scatter-vs-in_flight-link-delay5ms"]["title"])
            self.assertNotIn("scatter-vs-in_flight", charts)
        finally:
            tmp.cleanup()

    def test_phases_are_stacked_in_the_facts_order_with_their_labels(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        chart = self.charts["mapreduce-phases"]
        self.assertEqual(chart["title"], "mapreduce: phase map ms + shuffle + reduce by model")
        svg = self.svg("mapreduce-phases")
        self.assertTrue("50.0 ms" in svg)  # threads/pool's total, the phases in milliseconds
        self.assertTrue("40.0 ms" in svg)
