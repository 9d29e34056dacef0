"""End to end, the seam between the C++ harness and the Python scripts: `cmbench run` writes a
report, and scripts/plot, scripts/report and scripts/advise read it as the harness wrote it (not a
golden fixture) and cite its runs. A change on either side of the seam that the other cannot read
fails here."""

import json
import os
import re
import subprocess
import unittest

from helpers import TempDir, cmbench_path, load_json, png_size, run_script

WORKLOADS = ["cpu", "io", "ring"]
MODELS = ["serial/baseline", "threads/pool", "coroutines/asio"]
RUN = {}


def setUpModule():
    """One quick run with floors, and each script on its report, in one temporary directory
    (TMPDIR too, so the trials' own directories land in it and are checked for)."""
    tmp = TempDir()
    RUN["tmp"] = tmp
    exe = cmbench_path()
    if not os.access(exe, os.X_OK):
        raise RuntimeError("no cmbench at %s: build it, or set CMBENCH_EXE" % exe)
    report = tmp.join("report.json")
    env = dict(os.environ, TMPDIR=tmp.path)
    RUN["report"] = report
    # 3 workloads x 3 models x 2 repetitions, the floors before and after at their shortest sample:
    # about 10 s on an idle 2-CPU machine.
    RUN["cmbench"] = subprocess.run(
        [exe, "run", "--preset", "quick", "--workloads", ",".join(WORKLOADS), "--models", ",".join(MODELS),
         "--repetitions", "2", "--floors", "on", "--floor-time", "0.005", "--timeout", "60", "--out", report],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, cwd=tmp.path, env=env)
    if RUN["cmbench"].returncode != 0 or not os.path.exists(report):
        return  # test_the_harness_wrote_a_complete_report says why; the scripts have nothing to read
    RUN["charts"] = tmp.join("charts")
    RUN["page"] = tmp.join("page.html")
    RUN["advice"] = tmp.join("advice.txt")
    RUN["advice_json"] = tmp.join("advice.json")
    RUN["plot"] = run_script("plot", report, "--out", RUN["charts"])
    RUN["report_page"] = run_script("report", report, "--out", RUN["page"])
    # The seam is under test, not the verdict: a budget no run can exceed keeps every model ranked
    # on a sanitizer build too, whose shadow memory swells each unit past the profile's 512 MiB.
    budget = ("--memory-budget-mb", "1048576")
    RUN["advise"] = run_script("advise", report, "--profile", "slow-calls", *budget, "--out", RUN["advice"])
    RUN["advise_json"] = run_script("advise", report, "--profile", "slow-calls", *budget, "--json", "--out",
                                    RUN["advice_json"])


def tearDownModule():
    RUN["tmp"].cleanup()


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class EndToEnd(unittest.TestCase):
    def setUp(self):
        proc = RUN["cmbench"]
        if "plot" not in RUN:
            self.fail("cmbench run failed (exit %d), so no script could run:\n%s\n%s"
                      % (proc.returncode, proc.stdout, proc.stderr[-4000:]))
        self.report = load_json(RUN["report"])
        self.medians = [row for row in self.report["benchmarks"] if row["run_type"] == "aggregate"]

    def script_ok(self, name):
        proc = RUN[name]
        self.assertEqual(proc.returncode, 0, "%s could not use what cmbench wrote:\n%s" % (name, proc.stderr))

    def test_the_harness_wrote_a_complete_report(self):
        context = self.report["context"]
        self.assertFalse(context["partial"])
        self.assertEqual(context["trials_finished"], context["trials_planned"])
        self.assertTrue(context["floors"]["probes"], "the floors were asked for")
        ran = {(row["workload"], row["model"]) for row in self.medians}
        self.assertEqual(ran, {(w, m) for w in WORKLOADS for m in MODELS})
        for row in self.medians:
            self.assertEqual(row["status"], "ok", row["name"])
            self.assertTrue(row["name"].endswith("_median"), row["name"])
        # The summary table is the aggregate rows: every model's line shows its median wall time
        # as the summary formats milliseconds (4 significant figures at most).
        summary = RUN["cmbench"].stdout
        for row in self.medians:
            lines = [l for l in summary.splitlines() if l.startswith(row["model"] + " ")]
            self.assertTrue(lines, row["model"])
            ms = row["real_time"]
            shown = "%.0f" % ms if ms >= 100 else "%.2f" % ms if ms >= 1 else "%.4f" % ms
            self.assertTrue(any(shown in l for l in lines), (row["name"], shown, lines))
        self.assertIn("report: " + RUN["report"], summary)
        # Nothing left behind: no journal or lock beside the report, no temporary file, no trial directory.
        left = sorted(os.listdir(RUN["tmp"].path))
        self.assertFalse([n for n in left if n.endswith((".journal", ".lock")) or ".tmp." in n
                          or "cmbench-trial-" in n],
                         left)

    def test_the_charts_cite_the_report_and_each_workload(self):
        self.script_ok("plot")
        index = load_json(os.path.join(RUN["charts"], "index.json"))
        self.assertEqual([os.path.abspath(p) for p in index["reports"]], [os.path.abspath(RUN["report"])])
        self.assertEqual(set(index["formats"]), {"png", "svg"})
        for chart in index["charts"]:
            self.assertEqual(sorted(f.rsplit(".", 1)[1] for f in chart["files"]), ["png", "svg"], chart["slug"])
            for name in chart["files"]:
                with open(os.path.join(RUN["charts"], name), "rb") as f:
                    data = f.read()
                if name.endswith(".png"):
                    self.assertIsNotNone(png_size(data), name)
                else:
                    self.assertIn(b"<svg", data[:4000], name)
        for workload in WORKLOADS:
            charts = [c for c in index["charts"] if c["workload"] == workload]
            self.assertTrue(charts, "no chart of " + workload)
            # Each names the configuration it shows: every parameter of the workload's runs.
            params = next(row["params"] for row in self.medians if row["workload"] == workload)
            for chart in charts:
                for name in params:
                    self.assertRegex(chart["caption"], r"\b%s=" % re.escape(name), chart["slug"])
            # Its by-model chart labels every model of the report (matplotlib keeps each label's
            # text in the SVG beside the glyphs it draws).
            by_model = read(os.path.join(RUN["charts"], workload + "-by-model.svg"))
            for model in MODELS:
                self.assertTrue(model in by_model, "%s-by-model.svg does not name %s" % (workload, model))

    def test_the_page_cites_every_run(self):
        self.script_ok("report_page")
        page = read(RUN["page"])
        self.assertTrue(page.startswith("<!DOCTYPE html>"), page[:200])
        # (assertTrue, not assertIn: a failure names what is missing, not the whole page)
        for row in self.medians:
            self.assertTrue(row["name"] in page, "the page does not cite " + row["name"])
        # The page draws the same charts the plot made, each with its own anchor.
        for chart in load_json(os.path.join(RUN["charts"], "index.json"))["charts"]:
            self.assertTrue('id="chart-%s"' % chart["slug"] in page, "the page lacks chart " + chart["slug"])

    def test_the_advice_ranks_the_models_run_and_cites_their_rows(self):
        self.script_ok("advise")
        self.script_ok("advise_json")
        names = {row["name"] for row in self.report["benchmarks"]}
        advice = load_json(RUN["advice_json"])
        self.assertEqual({place["model"] for place in advice["ranking"]}, set(MODELS))
        text = read(RUN["advice"])
        cited = set()
        for place in advice["ranking"]:
            self.assertIn(place["model"], text)
            for evidence in place["evidence"]:
                for row in evidence["rows"]:
                    self.assertIn(row, names, "advice cites a run the report does not have")
                    self.assertTrue(row in text, "the advice's text does not cite " + row)
                    cited.add(row)
        # Its figures come from both workloads it scores with.
        self.assertTrue(any(n.startswith("cpu/") for n in cited), cited)
        self.assertTrue(any(n.startswith("io/") for n in cited), cited)


if __name__ == "__main__":
    unittest.main()
