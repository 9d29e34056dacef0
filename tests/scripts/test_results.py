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

    def test_figures(self):
        p = self.res.find("io", "coroutines/asio", {"tasks": 1000, "wait_ms": 20, "workers": 32, "concurrency": 0})
        self.assertAlmostEqual(R.REAL_TIME.value(p), p.real_ms * 1e6)
        ratio = R.MAKESPAN_OVER_IDEAL.value(p)
        lo, hi = R.MAKESPAN_OVER_IDEAL.interval(p)
        self.assertLessEqual(lo, ratio)
        self.assertGreaterEqual(hi, ratio)
        self.assertEqual(R.figures_for("spawn")[0].key, "ns_per_unit")
        self.assertFalse(R.THROUGHPUT.lower_is_better)
        self.assertEqual(R.THROUGHPUT.relative_to_best(50.0, 100.0), 2.0)


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
        self.assertIsNone(R.REAL_TIME.value(p))

    def test_one_bad_repetition_fails_the_run(self):
        p = self.io("coroutines/asio-mt", 10000)
        self.assertEqual(p.status, "failed")
        self.assertEqual((p.ok_repetitions, p.repetitions), (2, 3))
        self.assertIn("checksum", p.error)
        self.assertIsNone(R.REAL_TIME.value(p))

    def test_warnings_count_failures(self):
        text = " ".join(self.res.warnings())
        self.assertIn("failed", text)
        self.assertIn("wrong checksum", text)
        self.assertIn("uncommitted", text)

    def test_headline_is_where_most_models_ran_ok(self):
        self.assertEqual(self.res.headline_params("io")["tasks"], 1000)


class OlderAndPartialReports(unittest.TestCase):
    def test_v0_serial_only_at_one_worker_still_gives_speedups(self):
        res = results_of("v0.json")
        p = res.find("cpu", "threads/pool", {"tasks": 100, "task_us": 200, "workers": 2})
        s, _, _, base = res.speedup(p)
        self.assertEqual(base.params["workers"], 1)
        self.assertGreater(s, 1.5)
        failed = res.find("cpu", "processes/pool", {"tasks": 100, "task_us": 200, "workers": 2})
        self.assertEqual(failed.status, "failed")
        self.assertIn("upgraded", " ".join(res.warnings()))
        self.assertIn("debug build", " ".join(res.warnings()))

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


if __name__ == "__main__":
    unittest.main()
