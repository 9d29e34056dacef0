"""End to end for `--link`: a quick `cmbench run --link` of scatter (one model, one repetition,
about 3 s) whose report the scripts read as the harness wrote it: each row's link conditions and
the context's are the ones given (as link.py reads them), and scripts/report draws its page."""

import os
import subprocess
import unittest

import helpers  # noqa: F401  (puts scripts/ on sys.path)
from helpers import TempDir, cmbench_path, load_json, run_script

from cmbench_scripts import link as L
from cmbench_scripts import report_io

GIVEN = "delay=2ms,jitter=1ms,rate=100mbit"
EXPECTED = {"delay_ns": 2e6, "jitter_ns": 1e6, "rate_bps": 1e8}


class LinkEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        exe = cmbench_path()
        if not os.access(exe, os.X_OK):
            raise RuntimeError("no cmbench at %s: build it, or set CMBENCH_EXE" % exe)
        cls.report = cls.tmp.join("report.json")
        cls.cmbench = subprocess.run(
            [exe, "run", "--preset", "quick", "--workloads", "scatter", "--models", "coroutines/asio",
             "--repetitions", "1", "--floors", "off", "--link", GIVEN, "--out", cls.report],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, cwd=cls.tmp.path,
            env=dict(os.environ, TMPDIR=cls.tmp.path))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.assertEqual(self.cmbench.returncode, 0, "cmbench run --link failed:\n%s" % self.cmbench.stderr[-4000:])

    def test_rows_and_context_carry_the_link_as_given(self):
        raw = load_json(self.report)
        self.assertEqual(L.parse(raw["context"]["link"]), EXPECTED)
        report = report_io.load_report(self.report)
        self.assertTrue(report.rows)
        for row in report.rows:
            self.assertEqual(row["link"], EXPECTED, row["name"])
        self.assertEqual(L.flag(report.rows[0]["link"]), "delay=2ms,jitter=1ms,rate=100mbit")

    def test_the_page_is_drawn(self):
        page = self.tmp.join("page.html")
        proc = run_script("report", self.report, "--out", page)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(page, encoding="utf-8") as f:
            self.assertIn(GIVEN, f.read())  # the environment table shows context.link


if __name__ == "__main__":
    unittest.main()
