"""A report's shape is validated once, at load: every wrong inner type (valid JSON) gives one
line naming the file, the JSON path and what was expected, exit status 2 and nothing written,
from scripts/plot, scripts/report and scripts/advise alike (issue 11, finding 9)."""

import glob
import json
import os
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)
from helpers import REPO, TempDir, fixture, load_json, run_script

from cmbench_scripts import report_io
from cmbench_scripts.report_io import ReportError


def _first(doc, test):
    return next(i for i, r in enumerate(doc["benchmarks"]) if test(r))


def _aggregate(doc):
    return _first(doc, lambda r: r["run_type"] == "aggregate")


def _with_latency(doc):
    return _first(doc, lambda r: r.get("latency"))


def _ok_repetitions_string():
    doc = load_json(fixture("full.json"))
    i = _aggregate(doc)
    doc["benchmarks"][i]["ok_repetitions"] = "3"
    return json.dumps(doc), "benchmarks[%d].ok_repetitions is the string \"3\", expected a whole number >= 0" % i


def _repetitions_string():
    doc = load_json(fixture("full.json"))
    i = _aggregate(doc)
    doc["benchmarks"][i]["repetitions"] = "3"
    return json.dumps(doc), "benchmarks[%d].repetitions is the string \"3\", expected a whole number >= 0" % i


def _percentile_not_a_number():
    doc = load_json(fixture("latency.json"))
    i = _with_latency(doc)
    doc["benchmarks"][i]["latency"]["percentiles"]["99"] = "fast"
    return (json.dumps(doc),
            "benchmarks[%d].latency.percentiles[\"99\"] is the string \"fast\", expected a number" % i)


def _by_workload_a_list():
    doc = load_json(fixture("full.json"))
    doc["context"]["floors"]["by_workload"] = [{"probes": [], "errors": []}]
    return json.dumps(doc), "context.floors.by_workload is an array, expected an object"


def _negative_tasks():
    doc = load_json(fixture("full.json"))
    doc["benchmarks"][0]["params"]["tasks"] = -1000
    return (json.dumps(doc),
            "benchmarks[0].params.tasks is -1000, expected a whole number >= 0 of at most 18 digits")


def _integer_of(digits):
    def make():
        doc = load_json(fixture("full.json"))
        doc["benchmarks"][0]["params"]["tasks"] = 123456789
        text = json.dumps(doc).replace('"tasks": 123456789', '"tasks": ' + "9" * digits, 1)
        return (text, "benchmarks[0].params.tasks is a %d-digit number, expected a whole number "
                      ">= 0 of at most 18 digits" % digits)
    return make


def _nested(depth):
    def make():
        text = json.dumps(load_json(fixture("full.json")))
        assert text.endswith("}")
        return (text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}",
                "arrays or objects nested too deeply to read, expected at most 32 levels of nested "
                "arrays and objects")
    return make


# Each case of the finding: (name, maker returning (JSON text, the one-line message's tail)).
FINDING_CASES = [
    ("ok_repetitions_string", _ok_repetitions_string),
    ("repetitions_string", _repetitions_string),
    ("percentile_not_a_number", _percentile_not_a_number),
    ("by_workload_a_list", _by_workload_a_list),
    ("negative_tasks", _negative_tasks),
    ("integer_4300_digits", _integer_of(4300)),
    ("integer_4301_digits", _integer_of(4301)),  # past Python's own int() limit
    ("array_nested_100000_deep", _nested(100000)),
]


def _script_args(script, report, out):
    if script == "plot":
        return [report, "--out", os.path.join(out, "charts")]
    if script == "report":
        return [report, "--out", os.path.join(out, "page.html")]
    return [report, "--profile", "cpu-batch", "--out", os.path.join(out, "advice.txt")]


class FindingNineThroughTheScripts(unittest.TestCase):
    """Each case, through each script as a user runs it: exit 2, one line, nothing written."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.cases = {}
        for name, make in FINDING_CASES:
            text, tail = make()
            path = cls.tmp.join(name + ".json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            cls.cases[name] = (path, tail)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _check(self, script):
        for name, (path, tail) in self.cases.items():
            with self.subTest(case=name):
                out = self.tmp.join("out-%s-%s" % (script, name))
                os.mkdir(out)
                proc = run_script(script, *_script_args(script, path, out))
                self.assertEqual(proc.returncode, 2, proc.stderr)
                lines = proc.stderr.splitlines()
                self.assertEqual(len(lines), 1, proc.stderr)
                self.assertEqual(lines[0], "%s: error: %s: %s" % (script, path, tail))
                self.assertNotIn("Traceback", proc.stderr)
                self.assertEqual(proc.stdout, "")
                self.assertEqual(os.listdir(out), [], "%s wrote something" % script)

    def test_plot(self):
        self._check("plot")

    def test_report(self):
        self._check("report")

    def test_advise(self):
        self._check("advise")


class ShapeViolations(unittest.TestCase):
    """The loader's messages: the JSON path, what is there and what was expected."""

    def _one_row(self, base="full.json", pick=0):
        doc = load_json(fixture(base))
        doc["benchmarks"] = [doc["benchmarks"][pick]]
        return doc

    def _message(self, doc):
        with self.assertRaises(ReportError) as cm:
            report_io.parse_report(doc, "x.json")
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        self.assertTrue(message.startswith("x.json: "), message)
        return message

    def test_each_finding_case_in_process(self):
        for name, make in FINDING_CASES:
            with self.subTest(case=name):
                text, tail = make()
                tmp = TempDir()
                try:
                    path = tmp.join("case.json")
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text)
                    with self.assertRaises(ReportError) as cm:
                        report_io.load_report(path)
                    self.assertEqual(str(cm.exception), "%s: %s" % (path, tail))
                finally:
                    tmp.cleanup()

    def test_row_fields(self):
        agg = _aggregate(load_json(fixture("full.json")))
        lat = _with_latency(load_json(fixture("latency.json")))
        deep = [1]
        for _ in range(report_io.MAX_DEPTH):
            deep = [deep]
        cases = [
            ("full.json", 0, lambda r: r.update(repetition_index=-1),
             "benchmarks[0].repetition_index is -1, expected a whole number >= 0"),
            ("full.json", 0, lambda r: r.update(real_time=float("nan")),
             "benchmarks[0].real_time is nan, expected a finite number"),
            ("full.json", 0, lambda r: r.update(cpu_time=True),
             "benchmarks[0].cpu_time is true, expected a number"),
            ("full.json", 0, lambda r: r.update(real_time=-1),
             "benchmarks[0].real_time is -1, expected a number >= 0"),
            ("full.json", 0, lambda r: r.update(real_time=1e300),
             "benchmarks[0].real_time is 1e+300, expected a number of at most 20 digits"),
            ("full.json", 0, lambda r: r["metrics"].update(units=10 ** 20),
             "benchmarks[0].metrics.units is a 21-digit number, expected a number of at most 20 digits"),
            ("latency.json", lat, lambda r: r["latency"]["percentiles"].update({"99": -5}),
             "benchmarks[0].latency.percentiles[\"99\"] is -5, expected a number >= 0"),
            ("full.json", 0, lambda r: r["params"].update(tasks=10 ** 18),
             "benchmarks[0].params.tasks is 1000000000000000000, expected a whole number >= 0 of at most 18 digits"),
            ("full.json", 0, lambda r: r["params"].update(tasks=2.5),
             "benchmarks[0].params.tasks is 2.5, expected a whole number >= 0"),
            ("full.json", 0, lambda r: r.update(params=[1, 2]),
             "benchmarks[0].params is an array, expected an object"),
            ("full.json", 0, lambda r: r["resources"].update(wall_ns="1 s"),
             "benchmarks[0].resources.wall_ns is the string \"1 s\", expected a number"),
            ("full.json", 0, lambda r: r["resources"].update(extra=[1]),
             "benchmarks[0].resources.extra is an array, expected a number or a string"),
            ("full.json", 0, lambda r: r["metrics"].update(ns_per_unit="fast"),
             "benchmarks[0].metrics.ns_per_unit is the string \"fast\", expected a number"),
            ("full.json", agg, lambda r: r["samples"].update(real_time=[1.0, "x"]),
             "benchmarks[0].samples.real_time[1] is the string \"x\", expected a number"),
            ("full.json", agg, lambda r: r.update(samples=[1.0]),
             "benchmarks[0].samples is an array, expected an object"),
            ("full.json", 0, lambda r: r.update(verified="yes"),
             "benchmarks[0].verified is the string \"yes\", expected true or false"),
            ("full.json", 0, lambda r: r.update(error=404),
             "benchmarks[0].error is 404, expected a string"),
            ("latency.json", lat, lambda r: r["latency"]["percentiles"].update(p99=1),
             "benchmarks[0].latency.percentiles has the key \"p99\", expected percentiles"),
            ("latency.json", lat, lambda r: r["latency"]["percentiles"].update({"150": 1}),
             "benchmarks[0].latency.percentiles has the key \"150\", expected percentiles"),
            ("latency.json", lat, lambda r: r["latency"].update(histogram=[[1, 2]]),
             "benchmarks[0].latency.histogram[0] is an array, expected an array of 3 items, not 2"),
            ("latency.json", lat, lambda r: r["latency"].update(unit="fortnights"),
             "benchmarks[0].latency.unit is the string \"fortnights\", expected one of ns, us, ms, s"),
            ("full.json", 0, lambda r: r.update(unknown_new_field=deep),
             "is an array, expected at most %d levels of nested arrays and objects"
             % report_io.MAX_DEPTH),
            ("full.json", 0, lambda r: r.update(unknown_new_field=[10 ** 25]),
             "benchmarks[0].unknown_new_field[0] is a 26-digit number, expected a number of at most 20 digits"),
        ]
        for base, pick, mutate, fragment in cases:
            with self.subTest(fragment=fragment):
                doc = self._one_row(base, pick)
                mutate(doc["benchmarks"][0])
                self.assertIn(fragment, self._message(doc))

    def test_context_fields(self):
        cases = [
            (lambda c: c.update(num_cpus="2"), "context.num_cpus is the string \"2\", expected a whole number >= 0"),
            (lambda c: c.update(floors=[]), "context.floors is an empty array, expected an object"),
            (lambda c: c["floors"].update(by_workload={"pingpong": []}),
             "context.floors.by_workload.pingpong is an empty array, expected an object"),
            (lambda c: c["floors"].update(probes={"name": "x"}),
             "context.floors.probes is an object, expected an array"),
            (lambda c: c["floors"]["probes"][0].update(ns_per_op="cheap"),
             "context.floors.probes[0].ns_per_op is the string \"cheap\", expected a number"),
            (lambda c: c["floors"].update(errors="none"), "context.floors.errors is the string \"none\", expected an array"),
            (lambda c: c.update(cpu_before={"busy_cpus": "many"}),
             "context.cpu_before.busy_cpus is the string \"many\", expected a number"),
            (lambda c: c.update(warnings=[1]), "context.warnings is an array, expected an array of strings"),
            (lambda c: c.update(preset=3), "context.preset is 3, expected a string"),
            (lambda c: c.update(git_dirty="no"), "context.git_dirty is the string \"no\", expected true or false"),
            (lambda c: c.update(library_versions={"tbb": 2021}),
             "context.library_versions.tbb is 2021, expected a string"),
        ]
        for mutate, message in cases:
            with self.subTest(message=message):
                doc = self._one_row()
                mutate(doc["context"])
                self.assertEqual(self._message(doc), "x.json: " + message)

    def test_null_and_absent_optional_fields_are_fine(self):
        doc = self._one_row("full.json", _aggregate(load_json(fixture("full.json"))))
        row = doc["benchmarks"][0]
        for key in ("ok_repetitions", "repetitions", "metrics", "resources", "samples", "latency",
                    "error", "family", "variant", "run_name", "status"):
            row[key] = None
        doc["context"]["floors"] = None
        doc["context"]["num_cpus"] = None
        report = report_io.parse_report(doc, "x.json")
        self.assertEqual(report.rows[0]["family"], "serial")
        self.assertEqual(report.rows[0]["metrics"], {})

    def test_metrics_are_floats_and_a_latency_without_percentiles_is_none(self):
        doc = self._one_row("latency.json", _with_latency(load_json(fixture("latency.json"))))
        row = doc["benchmarks"][0]
        row["metrics"]["units"] = 10 ** 19  # past int64: numpy could not draw it as a whole number
        row["latency"]["percentiles"] = {}
        out = report_io.parse_report(doc, "x.json").rows[0]
        self.assertEqual(out["metrics"]["units"], 1e19)
        self.assertIsInstance(out["metrics"]["units"], float)
        self.assertIsNone(out["latency"])

    def test_fields_a_newer_harness_adds_are_left_alone(self):
        doc = self._one_row()
        doc["context"]["partial"] = True
        doc["context"]["journal"] = {"path": "x.journal", "trials": [1, 2]}
        doc["benchmarks"][0]["resources"]["limit_reached"] = "RLIMIT_NPROC"
        doc["benchmarks"][0]["new_field"] = [{"a": "b"}]
        report = report_io.parse_report(doc, "x.json")
        self.assertEqual(report.rows[0]["resources"]["limit_reached"], "RLIMIT_NPROC")

    def test_the_reference_reports_load_with_the_facts_of_this_build(self):
        # They predate the facts in the context (report format 1): refused alone, in one
        # line saying how to read them; read with `cmbench list --json`'s facts.
        paths = sorted(glob.glob(os.path.join(REPO, "results", "reference", "*.json")))
        self.assertTrue(paths)
        tmp = helpers.TempDir()
        try:
            facts = helpers.cmbench_facts(tmp.path)
            if facts is None:
                self.skipTest("CMBENCH_EXE not set: run through ctest")
            for path in paths:
                with self.subTest(report=os.path.basename(path)):
                    context = load_json(path)["context"]
                    version = context.get("cmbench_schema_version", context["json_schema_version"])
                    if version < 2:
                        with self.assertRaisesRegex(ReportError, "--facts FILE"):
                            report_io.load_report(path)
                    report = report_io.load_reports([path], facts)[0]
                    self.assertTrue(report.rows)
        finally:
            tmp.cleanup()


def _rows(doc, test=lambda r: True):
    return [r for r in doc["benchmarks"] if test(r)]


def _every(key, value):
    def mutate(doc):
        for r in doc["benchmarks"]:
            r[key] = value
    return mutate


def _every_metric(name, value):
    def mutate(doc):
        for r in doc["benchmarks"]:
            if name in (r.get("metrics") or {}):
                r["metrics"][name] = value
    return mutate


def _io_tasks_zero(doc):
    for r in _rows(doc, lambda r: r["workload"] == "io"):
        r["params"]["tasks"] = 0


def _all_times_zero(doc):
    for r in doc["benchmarks"]:
        r["real_time"] = 0.0
        if r.get("samples"):
            r["samples"]["real_time"] = [0.0 for _ in r["samples"]["real_time"]]


def _one_workload_name(doc):
    """cpu, io and spawn runs (different parameters) under one name, a spawn run failed."""
    for r in doc["benchmarks"]:
        if r["workload"] == "spawn" and r["model"] == "threads/pool":
            r.update(status="failed", error="boom")
        r["workload"] = "x"
    doc["context"]["workloads"].append(dict(doc["context"]["workloads"][0], name="x"))


# Well-typed values no cmbench run writes, that once crashed a chart or the advice.
EXTREMES = [
    ("every time zero", _all_times_zero),                          # a ratio to a best of 0
    ("every time per unit zero", _every_metric("ns_per_unit", 0.0)),
    ("a negative ratio", _every_metric("makespan_over_ideal", -1.0)),  # an interval below 0
    ("medians outside their repetitions' range", _every("real_time", 2.5)),
    ("no parameters", _every("params", {})),
    ("io runs of 0 tasks", _io_tasks_zero),
    ("one workload name for runs of different parameters", _one_workload_name),
]


class WellTypedExtremesDoNotCrash(unittest.TestCase):
    """Past the loader, a valid report draws, renders and advises without a traceback."""

    @classmethod
    def setUpClass(cls):
        from cmbench_scripts import advice
        cls.base = load_json(fixture("full.json"))
        keep = ("serial/baseline", "threads/pool", "coroutines/asio")
        # cpu and spawn swept (line charts), io at one configuration (bars with whiskers).
        cls.base["benchmarks"] = [r for r in cls.base["benchmarks"] if r["model"] in keep and (
            r["workload"] != "io" or (r["params"]["tasks"] == 1000 and r["params"]["workers"] == 4))]
        cls.profiles = [advice.make_profile(advice.load_profile(
            os.path.join(helpers.PROFILES, name + ".json")), name) for name in ("cpu-batch", "slow-calls")]

    def test_each_extreme(self):
        import copy
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from cmbench_scripts import advice, charts, html, results
        for name, mutate in EXTREMES:
            with self.subTest(extreme=name):
                doc = copy.deepcopy(self.base)
                mutate(doc)
                res = results.Results([report_io.parse_report(doc, "x.json")])
                try:
                    built = charts.build_charts(res)
                    self.assertIn("<html", html.render_page(res, built).lower())
                    for profile in self.profiles:
                        result = advice.advise(res, profile)
                        advice.to_text(result, res)
                        json.dumps(advice.to_json(result))
                finally:
                    plt.close("all")


if __name__ == "__main__":
    unittest.main()
