"""Loading, validating, normalising and upgrading reports; atomic writes."""

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
        self.assertEqual(report.schema_version, 1)
        self.assertEqual(report.notes, [])
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


class SchemaZeroUpgrade(unittest.TestCase):
    """v0 lacked variant, status, metrics, samples, ok_repetitions, latency,
    resources.peak_processes and resources.rss_before_bytes."""

    @classmethod
    def setUpClass(cls):
        cls.raw = load_json(fixture("v0.json"))
        cls.report = report_io.load_report(fixture("v0.json"))

    def test_fixture_really_is_v0(self):
        self.assertEqual(self.raw["context"]["json_schema_version"], 0)
        for row in self.raw["benchmarks"]:
            for missing in ("variant", "status", "metrics", "samples", "ok_repetitions"):
                self.assertNotIn(missing, row)
            if row["resources"]:
                self.assertNotIn("peak_processes", row["resources"])

    def test_upgrade_fills_the_new_fields(self):
        self.assertEqual(self.report.schema_version, 0)
        self.assertTrue(any("upgraded from json_schema_version 0" in n for n in self.report.notes))
        for row in self.report.rows:
            self.assertEqual(row["variant"], row["model"].split("/")[1])
            self.assertIn(row["status"], ("ok", "failed"))
            self.assertIsNone(row["resources"]["peak_processes"])
            self.assertIsNone(row["latency"])

    def test_status_comes_from_error_occurred(self):
        failed = [r for r in self.report.rows if r["status"] == "failed"]
        self.assertTrue(failed)
        for r in failed:
            self.assertTrue(r.get("error_occurred"))
            self.assertIn("shm_open", r["error"])

    def test_metrics_are_derived_where_the_unit_count_is_known(self):
        ok = [r for r in self.report.rows if r["status"] == "ok" and r["run_type"] == "iteration"]
        for r in ok:
            m = r["metrics"]
            self.assertEqual(m["units"], r["params"]["tasks"])
            self.assertAlmostEqual(m["ns_per_unit"], r["resources"]["wall_ns"] / r["params"]["tasks"])
            self.assertIn("tasks_per_second", m)
            self.assertNotIn("bytes_per_unit", m)  # no rss_before in v0: unknown, not invented

    def test_context_gets_defaults(self):
        self.assertEqual(self.report.context["warnings"], [])
        self.assertEqual(self.report.context["library_versions"], {})

    def test_missing_version_counts_as_zero(self):
        doc = copy.deepcopy(self.raw)
        del doc["context"]["json_schema_version"]
        self.assertEqual(report_io.parse_report(doc).schema_version, 0)


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

    def test_bad_schema_version_value(self):
        doc = self._one_row()
        doc["context"]["json_schema_version"] = "1"
        with self.assertRaisesRegex(ReportError, "json_schema_version"):
            report_io.parse_report(doc)

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
