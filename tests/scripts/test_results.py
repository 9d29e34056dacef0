"""Points, intervals, speedups and the overview's configuration choice."""

import copy
import statistics
import unittest

import json

from helpers import TempDir, fixture, load_json  # (also puts scripts/ on sys.path)

from cmbench_scripts import report_io, results as R


def results_of(*names):
    return R.Results(report_io.load_reports([fixture(n) for n in names]))


class MedianInterval(unittest.TestCase):
    def test_small_samples_use_the_range_and_say_so(self):
        lo, hi, how = R.median_ci([3.0, 1.0, 2.0])
        self.assertEqual((lo, hi), (1.0, 3.0))
        self.assertIn("min-max of 3 repetitions", how)
        self.assertIn("75%", how)

    def test_order_statistic_interval_for_larger_samples(self):
        xs = list(range(1, 11))  # n = 10: the 95% interval is [x(2), x(9)]
        lo, hi, how = R.median_ci(xs)
        self.assertEqual((lo, hi), (2, 9))
        self.assertIn("95% CI", how)
        lo, hi, _ = R.median_ci(list(range(1, 21)))  # n = 20: [x(6), x(15)]
        self.assertEqual((lo, hi), (6, 15))

    def test_degenerate(self):
        self.assertIsNone(R.median_ci([]))
        self.assertEqual(R.median_ci([5.0])[:2], (5.0, 5.0))


class PointsFromTheFullReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.res = results_of("full.json")

    def test_one_point_per_run_from_the_median_row(self):
        self.assertEqual(len(self.res.points), 8 * (6 + 6 + 6))
        p = self.res.find("cpu", "threads/pool", {"tasks": 1000, "task_us": 200, "workers": 2})
        self.assertTrue(p.name.endswith("_median"))
        raw = next(r for r in load_json(fixture("full.json"))["benchmarks"] if r["name"] == p.name)
        self.assertEqual(p.real_ms, raw["real_time"])
        self.assertEqual(p.samples_ms, raw["samples"]["real_time"])
        self.assertEqual(p.real_ci, (min(p.samples_ms), max(p.samples_ms)))
        self.assertEqual(p.ok_repetitions, 3)

    def test_models_and_workloads_in_canonical_order(self):
        self.assertEqual(self.res.workloads(), ["cpu", "io", "spawn"])
        self.assertEqual(self.res.models()[0], "serial/baseline")
        self.assertEqual(self.res.models()[-1], "coroutines/asio-mt")

    def test_swept_parameters(self):
        self.assertEqual(self.res.swept_params("cpu"), ["tasks", "workers"])
        self.assertEqual(self.res.swept_params("io"), ["tasks", "workers"])
        self.assertEqual(self.res.swept_params("spawn"), ["leaves", "workers"])

    def test_speedup_matches_serial_at_the_same_params(self):
        p = self.res.find("cpu", "threads/tbb", {"tasks": 1000, "task_us": 200, "workers": 2})
        s, lo, hi, base = self.res.speedup(p)
        self.assertEqual(base.model, "serial/baseline")
        self.assertEqual(base.params["tasks"], 1000)
        self.assertAlmostEqual(s, base.real_ms / p.real_ms)
        self.assertLessEqual(lo, s)
        self.assertGreaterEqual(hi, s)
        self.assertGreater(s, 1.8)

    def test_headline_prefers_workers_equal_to_cpus_and_bigger_runs(self):
        self.assertEqual(self.res.headline_params("cpu"), {"tasks": 1000, "task_us": 200, "workers": 2})
        self.assertEqual(self.res.headline_params("cpu", {"workers": 4})["workers"], 4)
        self.assertEqual(self.res.headline_params("io")["tasks"], 5000)

    def test_figures_come_from_the_workloads_facts(self):
        p = self.res.find("io", "coroutines/asio", {"tasks": 1000, "wait_ms": 20, "workers": 32, "concurrency": 0})
        makespan = self.res.figures_for("io")[0]
        self.assertEqual((makespan.key, makespan.kind, makespan.lower_is_better), ("makespan_over_ideal", "ratio", True))
        ratio = makespan.value(p)
        self.assertEqual(ratio, p.metrics["makespan_over_ideal"])
        # The interval is the median's over the repetitions' own values of the metric.
        lo, hi = makespan.interval(p)
        self.assertEqual((lo, hi), (min(p.metric_samples["makespan_over_ideal"]),
                                    max(p.metric_samples["makespan_over_ideal"])))
        self.assertLessEqual(lo, ratio)
        self.assertGreaterEqual(hi, ratio)
        self.assertEqual(self.res.figures_for("spawn")[0].key, "ns_per_unit")
        speedup = self.res.figures_for("cpu")[0]
        self.assertEqual(speedup.key, "speedup")
        self.assertFalse(speedup.lower_is_better)
        self.assertEqual(speedup.relative_to_best(50.0, 100.0), 2.0)
        self.assertEqual(self.res.figures_for("nothing-of-the-sort"), [])

    def test_the_harness_speedup_metric_matches_the_scripts_own(self):
        p = self.res.find("cpu", "threads/tbb", {"tasks": 1000, "task_us": 200, "workers": 2})
        base = self.res.baseline_for("cpu", p.params)
        self.assertAlmostEqual(p.metrics["speedup"], base.real_ms / p.real_ms, places=4)


class SeveralReports(unittest.TestCase):
    """A main report and sweeps around it, as results/reference/ holds them."""

    def setUp(self):
        self.tmp = TempDir()
        self.full = load_json(fixture("full.json"))

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, keep):
        report = copy.deepcopy(self.full)
        report["benchmarks"] = [r for r in report["benchmarks"] if keep(r)]
        path = self.tmp.join(name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f)
        return path

    def test_headline_prefers_a_combination_of_the_first_report(self):
        cpu = lambda r: r["workload"] == "cpu"  # noqa: E731
        main = self.write("main.json", lambda r: cpu(r) and r["params"]["tasks"] == 100)
        sweep = self.write("sweep.json", lambda r: cpu(r) and r["params"]["tasks"] == 1000)
        res = R.Results(report_io.load_reports([main, sweep]))
        self.assertEqual(res.headline_params("cpu"), {"tasks": 100, "task_us": 200, "workers": 2})
        # Alone, the bigger run wins the tie.
        res = R.Results(report_io.load_reports([sweep, main]))
        self.assertEqual(res.headline_params("cpu")["tasks"], 1000)

    def test_a_parameter_that_never_varies_alone_draws_no_lines(self):
        # (100 tasks, 1 and 2 workers) and (1000 tasks, 4 workers): workers varies with tasks
        # fixed; tasks never varies with workers fixed, so a chart against tasks has no line.
        path = self.write("odd.json", lambda r: r["workload"] == "cpu" and
                          (r["params"]["tasks"], r["params"]["workers"]) in ((100, 2), (1000, 4), (100, 1)))
        res = R.Results(report_io.load_reports([path]))
        self.assertEqual(res.chart_params("cpu")[0], ["tasks", "workers"])
        self.assertTrue(res.forms_lines("cpu", "workers"))   # 1 and 2 at 100 tasks
        self.assertFalse(res.forms_lines("cpu", "tasks"))    # 100 and 1000 never at the same workers
        from cmbench_scripts import charts
        slugs = {c.slug for c in charts.build_charts(res)}
        self.assertIn("cpu-vs-workers", slugs)
        self.assertNotIn("cpu-vs-tasks", slugs)


class FailedAndSkipped(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.res = results_of("failed.json")

    def io(self, model, tasks):
        return self.res.find("io", model, {"tasks": tasks, "wait_ms": 100, "workers": 32, "concurrency": 0})

    def test_statuses_and_errors(self):
        self.assertEqual(self.io("processes/spawn", 100000).status, "failed")
        self.assertIn("pid_max", self.io("processes/spawn", 100000).error)
        self.assertEqual(self.io("serial/baseline", 100000).status, "skipped")
        self.assertEqual(self.io("coroutines/asio", 100000).status, "ok")

    def test_values_only_for_ok_points(self):
        p = self.io("threads/pool", 100000)
        self.assertIsNone(self.res.figures_for("io")[0].value(p))

    def test_one_bad_repetition_fails_the_run(self):
        p = self.io("coroutines/asio-mt", 10000)
        self.assertEqual(p.status, "failed")
        self.assertEqual((p.ok_repetitions, p.repetitions), (2, 3))
        self.assertIn("checksum", p.error)
        self.assertIsNone(self.res.figures_for("io")[0].value(p))

    def test_warnings_count_failures(self):
        text = " ".join(self.res.warnings())
        self.assertIn("failed", text)
        self.assertIn("wrong checksum", text)
        self.assertIn("uncommitted", text)

    def test_headline_is_where_most_models_ran_ok(self):
        self.assertEqual(self.res.headline_params("io")["tasks"], 1000)


class OlderAndPartialReports(unittest.TestCase):
    def test_v1_with_the_facts_given_still_gives_speedups(self):
        res = R.Results(report_io.load_reports([fixture("v1.json")], fixture("facts.json")))
        p = res.find("cpu", "threads/pool", {"tasks": 1000, "task_us": 200, "workers": 2})
        self.assertNotIn("speedup", p.metrics)  # version 1 had no such metric
        s, _, _, base = res.speedup(p)
        self.assertEqual(base.model, res.facts.baseline)
        self.assertGreater(s, 1.5)
        self.assertIn("facts.json", " ".join(res.warnings()))

    def test_iteration_rows_alone_make_points(self):
        doc = load_json(fixture("full.json"))
        doc["benchmarks"] = [r for r in doc["benchmarks"] if r["run_type"] == "iteration"]
        res = R.Results([report_io.parse_report(doc, "iters.json")])
        self.assertEqual(len(res.points), 144)
        p = res.find("cpu", "threads/pool", {"tasks": 1000, "task_us": 200, "workers": 2})
        reps = [r["real_time"] for r in doc["benchmarks"] if r["run_name"] == p.name]
        self.assertEqual(p.real_ms, statistics.median(reps))
        self.assertEqual(len(p.samples_ms), 3)
        self.assertIn("units", p.metrics)

    def test_a_later_report_replaces_an_earlier_run(self):
        doc = load_json(fixture("full.json"))
        later = copy.deepcopy(doc)
        for row in later["benchmarks"]:
            row["real_time"] = row["real_time"] * 2
            if row.get("samples"):
                row["samples"]["real_time"] = [v * 2 for v in row["samples"]["real_time"]]
        res = R.Results([report_io.parse_report(doc, "a.json"), report_io.parse_report(later, "b.json")])
        self.assertEqual(len(res.points), 144)
        self.assertTrue(all(p.source == "b.json" for p in res.points))
        self.assertIn("144 runs of a.json replaced by the same runs in b.json", res.notes)

    def test_parameters_that_move_together_are_one_dimension(self):
        res = results_of("latency.json")
        independent, dependent = res.chart_params("server")
        self.assertEqual(independent, ["rate"])
        self.assertEqual(dependent, {"requests": "rate"})


def with_new_models(doc, names, like="threads/pool", order=40, family=None):
    """`doc` with models the scripts have never heard of: their facts in the context and, for
    each, every run of `like` again under its name, a little slower each."""
    template = next(m for m in doc["context"]["models"] if m["name"] == like)
    rows = [r for r in doc["benchmarks"] if r["model"] == like]
    for i, name in enumerate(names):
        fam, variant = name.split("/")
        doc["context"]["models"].append(dict(template, name=name, family=fam, variant=variant,
                                             order=order + i, description="a model new to the scripts",
                                             mechanism={"summary": "%s's own way" % name}))
        for r in rows:
            r = copy.deepcopy(r)
            r.update(model=name, family=fam, variant=variant,
                     name=r["name"].replace(like, name), run_name=r["run_name"].replace(like, name))
            r["real_time"] = r["real_time"] * (1.1 + 0.1 * i)
            if r.get("samples"):
                r["samples"]["real_time"] = [v * (1.1 + 0.1 * i) for v in r["samples"]["real_time"]]
            doc["benchmarks"].append(r)
    return doc


class ModelsTheScriptsHaveNeverHeardOf(unittest.TestCase):
    """A ninth and a tenth model, known only from the report's facts: ordered by their keys,
    styled apart from every other model, drawn in the charts and ranked by the advice."""

    NEW = ("fibers/green", "fibers/stackful")

    @classmethod
    def setUpClass(cls):
        doc = with_new_models(load_json(fixture("full.json")), cls.NEW)
        cls.res = R.Results([report_io.parse_report(doc, "new-models.json")])

    def test_they_sort_by_their_order_keys(self):
        models = self.res.models()
        self.assertEqual(len(models), 10)
        self.assertEqual(models.index("fibers/green"), 8)  # order 40: after the eight (0..31)
        self.assertEqual(models[-1], "fibers/stackful")

    def test_every_model_gets_a_distinct_style(self):
        styles = {m: self.res.style(m) for m in self.res.models()}
        looks = {(s["color"], str(s["linestyle"]), s["marker"]) for s in styles.values()}
        self.assertEqual(len(looks), 10)
        # A new family gets a hue of its own; the baseline, the grey star its fact asks for.
        self.assertNotIn(styles["fibers/green"]["color"],
                         {s["color"] for m, s in styles.items() if not m.startswith("fibers/")})
        self.assertEqual(styles[self.res.facts.baseline]["marker"], "*")
        # Stable: the same facts give the same styles.
        again = R.Results(self.res.reports)
        self.assertEqual({m: again.style(m) for m in again.models()}, styles)

    def test_styles_stay_distinct_for_many_models(self):
        from cmbench_scripts import style
        for families in (1, 3, 9):
            models = [{"name": "serial/baseline", "family": "serial", "baseline": True}] + [
                {"name": "f%d/v%d" % (i % families, i), "family": "f%d" % (i % families)} for i in range(30)]
            styles = style.Styles(models)
            looks = {style._key(styles.of(m["name"])) for m in models}
            self.assertEqual(len(looks), len(models), "%d families" % families)

    def test_they_appear_in_the_charts_and_the_advice(self):
        from cmbench_scripts import advice, charts
        import matplotlib.pyplot as plt
        try:
            built = charts.build_charts(self.res)
            legends = set()
            for chart in built:
                for legend in chart.figure.legends:
                    legends.update(t.get_text() for t in legend.get_texts())
                for ax in chart.figure.axes:
                    legends.update(t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels())
            for name in self.NEW:
                self.assertTrue(any(name in text or name.replace("/", "\n") in text for text in legends), name)
        finally:
            plt.close("all")
        profile = advice.make_profile({"compute_us": 200, "wait_ms": 20, "concurrent_requests": 1000})
        ranked = [a.model for a in advice.advise(self.res, profile)["ranking"]]
        for name in self.NEW:
            self.assertIn(name, ranked)


if __name__ == "__main__":
    unittest.main()
