"""Loading, validating and normalising reports, older ones with their facts given; atomic writes."""

import copy
import os
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)
from helpers import MALFORMED, TempDir, fixture, load_json

from cmbench_scripts import report_io
from cmbench_scripts.report_io import ReportError


class LoadGoodReports(unittest.TestCase):
    def test_full_report_loads_every_row(self):
        report = report_io.load_report(fixture("full.json"))
        raw = load_json(fixture("full.json"))
        self.assertEqual(len(report.rows), len(raw["benchmarks"]))
        self.assertEqual(report.schema_version, 2)
        self.assertEqual(report.notes, [])
        self.assertEqual([m["name"] for m in report.context["models"]],
                         [m["name"] for m in raw["context"]["models"]])
        self.assertEqual(report.num_cpus, 2)
        row = report.rows[0]
        self.assertEqual(row["real_time_ms"], raw["benchmarks"][0]["real_time"])
        self.assertEqual(row["variant"], "baseline")
        self.assertEqual(row["status"], "ok")
        self.assertIn("peak_processes", row["resources"])

    def test_time_units_are_converted_to_ms(self):
        doc = load_json(fixture("full.json"))
        doc["benchmarks"] = doc["benchmarks"][:1]
        row = doc["benchmarks"][0]
        row["real_time"] = row["real_time"] * 1e6
        row["time_unit"] = "ns"
        report = report_io.parse_report(doc)
        self.assertAlmostEqual(report.rows[0]["real_time_ms"], row["real_time"] / 1e6)

    def test_latency_is_normalised_to_ns_with_float_percentiles(self):
        report = report_io.load_report(fixture("latency.json"))
        lat = next(r["latency"] for r in report.rows if r["latency"])
        self.assertIn(99.0, lat["percentiles_ns"])
        self.assertIn(100.0, lat["percentiles_ns"])
        self.assertEqual(sorted(lat["percentiles_ns"]), list(lat["percentiles_ns"]))

    def test_failed_rows_keep_status_and_error(self):
        report = report_io.load_report(fixture("failed.json"))
        failed = [r for r in report.rows if r["status"] == "failed"]
        skipped = [r for r in report.rows if r["status"] == "skipped"]
        self.assertTrue(failed and skipped)
        self.assertTrue(all(r["error"] for r in failed + skipped))
        self.assertTrue(any("pid_max" in r["error"] for r in failed))
        self.assertTrue(any(r["resources"]["wall_ns"] is None for r in skipped))


class OlderReports(unittest.TestCase):
    """Version 1 predates the facts in the context: read only with the facts given (`cmbench
    list --json`), never by guessing from names; version 0 is refused."""

    def test_version_1_without_facts_is_refused_in_one_line_saying_how_to_read_it(self):
        with self.assertRaises(ReportError) as cm:
            report_io.load_report(fixture("v1.json"))
        message = str(cm.exception)
        self.assertIn("v1.json: report format 1 (json_schema_version 1, before cmbench_schema_version 2) "
                      "has no models' and workloads' facts", message)
        self.assertIn("--facts FILE", message)
        self.assertIn("cmbench list --json", message)
        self.assertNotIn("\n", message)

    def test_version_1_reads_with_the_facts_given_and_says_so(self):
        report = report_io.load_reports([fixture("v1.json")], fixture("facts.json"))[0]
        facts = load_json(fixture("facts.json"))
        self.assertEqual(report.schema_version, 1)
        self.assertEqual(report.context["models"], facts["models"])
        self.assertEqual(report.context["workloads"], facts["workloads"])
        self.assertTrue(any("facts.json" in n for n in report.notes))
        row = report.rows[0]
        self.assertNotIn("mechanism", row)  # version 1's prose: the facts say it now
        self.assertIsNone(row["units_at_once"])

    def test_a_newer_report_keeps_its_own_facts(self):
        facts = load_json(fixture("facts.json"))
        facts["models"][0]["description"] = "not the report's"
        tmp = TempDir()
        try:
            path = tmp.join("facts.json")
            with open(path, "w", encoding="utf-8") as f:
                import json
                json.dump(facts, f)
            report = report_io.load_reports([fixture("full.json")], path)[0]
        finally:
            tmp.cleanup()
        self.assertNotEqual(report.context["models"][0]["description"], "not the report's")
        self.assertEqual(report.notes, [])

    def test_facts_file_is_checked(self):
        tmp = TempDir()
        try:
            for doc, fragment in (({"models": []}, "has no `workloads`"),
                                  ({"models": [], "workloads": []}, "models is an empty array, expected at least one item"),
                                  ([1], "expected an object")):
                with self.subTest(fragment=fragment):
                    path = tmp.join("facts.json")
                    with open(path, "w", encoding="utf-8") as f:
                        import json
                        json.dump(doc, f)
                    with self.assertRaises(ReportError) as cm:
                        report_io.load_reports([fixture("v1.json")], path)
                    self.assertIn(fragment, str(cm.exception))
                    self.assertIn("cmbench list --json", str(cm.exception))
        finally:
            tmp.cleanup()

    def test_version_0_is_refused(self):
        with self.assertRaisesRegex(ReportError, "v0.json: report format 0 \\(json_schema_version 0\\) is cmbench's first"):
            report_io.load_reports([fixture("v0.json")], fixture("facts.json"))
        doc = load_json(fixture("v0.json"))
        del doc["context"]["json_schema_version"]  # absent counts as 0
        with self.assertRaisesRegex(ReportError, "report format 0"):
            report_io.parse_report(doc)


class RejectBadReports(unittest.TestCase):
    def test_each_malformed_fixture_gives_a_clear_one_line_error(self):
        for name, fragment in MALFORMED.items():
            with self.subTest(name=name):
                with self.assertRaises(ReportError) as cm:
                    report_io.load_report(fixture(name))
                message = str(cm.exception)
                self.assertIn(fragment, message)
                self.assertIn(name, message)
                self.assertNotIn("\n", message)

    def test_missing_file_and_folder(self):
        with self.assertRaisesRegex(ReportError, "no such file"):
            report_io.load_report(fixture("does-not-exist.json"))
        with self.assertRaisesRegex(ReportError, "is a folder"):
            report_io.load_report(helpers.FIXTURES)

    def test_not_utf8(self):
        tmp = TempDir()
        try:
            path = tmp.join("bin.json")
            with open(path, "wb") as f:
                f.write(b"\xff\xfe\x00garbage")
            with self.assertRaisesRegex(ReportError, "not a JSON file"):
                report_io.load_report(path)
        finally:
            tmp.cleanup()

    def _one_row(self):
        doc = load_json(fixture("full.json"))
        doc["benchmarks"] = doc["benchmarks"][:1]
        return doc

    def test_bad_row_fields(self):
        cases = [
            (lambda r: r.update(status="weird"),
             'benchmarks[0].status is the string "weird", expected one of ok, failed, skipped'),
            (lambda r: r.update(params={"tasks": "many"}), "params"),
            (lambda r: r.update(time_unit="fortnights"), "time_unit is the string \"fortnights\""),
            (lambda r: r.update(real_time="fast"), "real_time"),
            (lambda r: r.update(model="threads"), "model is the string \"threads\", expected `family/variant`"),
            (lambda r: r.pop("workload"), "no `workload`"),
            (lambda r: r.update(latency={"unit": "ns"}), "latency"),
            (lambda r: r.update(run_type="mean"), "run_type"),
        ]
        for mutate, fragment in cases:
            with self.subTest(fragment=fragment):
                doc = self._one_row()
                mutate(doc["benchmarks"][0])
                with self.assertRaises(ReportError) as cm:
                    report_io.parse_report(doc, "x.json")
                self.assertIn(fragment, str(cm.exception))
                self.assertIn("benchmarks[0]", str(cm.exception))

    def test_rows_must_be_of_models_and_workloads_the_facts_describe(self):
        for key, value, fragment in (("model", "gpus/cuda", "benchmarks[0].model is the string \"gpus/cuda\", "
                                      "expected one of the models in context.models"),
                                     ("workload", "nbody", "benchmarks[0].workload is the string \"nbody\", "
                                      "expected one of the workloads in context.workloads")):
            with self.subTest(key=key):
                doc = self._one_row()
                doc["benchmarks"][0][key] = value
                with self.assertRaises(ReportError) as cm:
                    report_io.parse_report(doc, "x.json")
                self.assertIn(fragment, str(cm.exception))

    def test_bad_facts(self):
        cases = [
            (lambda c: c.pop("models"), "context has no `models`"),
            (lambda c: c["models"][1].pop("baseline"), "context.models[1] has no `baseline`"),
            (lambda c: c["models"][1].update(order="first"), "context.models[1].order is the string"),
            (lambda c: c["models"][1]["mechanism"].update(unit=3), "context.models[1].mechanism.unit is 3"),
            (lambda c: c["models"].append(dict(c["models"][0])), "context.models[8].name is the string"),
            (lambda c: c["workloads"][0].update(figures=[]), "context.workloads[0].figures is an empty array"),
            (lambda c: c["workloads"][0]["figures"][0].update(better="bigger"),
             "context.workloads[0].figures[0].better is the string \"bigger\", expected one of lower, higher"),
            (lambda c: c["workloads"][0]["figures"][0].update(kind="furlongs"),
             "context.workloads[0].figures[0].kind"),
            (lambda c: c["workloads"][0].update(model_params="workers"), "context.workloads[0].model_params"),
        ]
        for mutate, fragment in cases:
            with self.subTest(fragment=fragment):
                doc = self._one_row()
                mutate(doc["context"])
                with self.assertRaises(ReportError) as cm:
                    report_io.parse_report(doc, "x.json")
                self.assertIn(fragment, str(cm.exception))

    def test_bad_schema_version_value(self):
        doc = self._one_row()
        doc["context"]["cmbench_schema_version"] = "2"
        with self.assertRaisesRegex(ReportError, "context.cmbench_schema_version is the string"):
            report_io.parse_report(doc)

    def test_google_benchmark_schema_stays_1(self):
        # compare.py refuses any json_schema_version but 1: cmbench's own format has its own key.
        raw = load_json(fixture("full.json"))["context"]
        self.assertEqual((raw["json_schema_version"], raw["cmbench_schema_version"]), (1, 2))

    def test_load_reports_needs_all_to_be_valid(self):
        with self.assertRaises(ReportError):
            report_io.load_reports([fixture("full.json"), fixture("malformed_truncated.json")])
        with self.assertRaises(ReportError):
            report_io.load_reports([])


class AtomicWrites(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()

    def tearDown(self):
        self.tmp.cleanup()

    def test_write_replaces_and_leaves_no_temporary(self):
        path = self.tmp.join("out.txt")
        report_io.atomic_write_text(path, "one")
        report_io.atomic_write_text(path, "two")
        with open(path) as f:
            self.assertEqual(f.read(), "two")
        self.assertEqual(os.listdir(self.tmp.path), ["out.txt"])

    def test_a_failed_write_keeps_the_old_file(self):
        path = self.tmp.join("out.txt")
        report_io.atomic_write_text(path, "old")
        with self.assertRaises(TypeError):
            report_io.atomic_write_bytes(path, object())
        with open(path) as f:
            self.assertEqual(f.read(), "old")
        self.assertEqual(os.listdir(self.tmp.path), ["out.txt"])

    def test_output_checks(self):
        with self.assertRaisesRegex(ReportError, "does not exist"):
            report_io.check_output_file(self.tmp.join("no", "such", "page.html"))
        with self.assertRaisesRegex(ReportError, "is a folder"):
            report_io.check_output_file(self.tmp.path)
        afile = self.tmp.join("file")
        report_io.atomic_write_text(afile, "x")
        with self.assertRaisesRegex(ReportError, "not a folder"):
            report_io.check_output_folder(afile)
        report_io.check_output_folder(self.tmp.join("new", "deeper"))  # creatable: fine
        self.assertFalse(os.path.exists(self.tmp.join("new")))


if __name__ == "__main__":
    unittest.main()
