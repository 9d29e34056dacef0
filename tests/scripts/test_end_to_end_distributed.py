"""End to end for the distributed workloads: a quick `cmbench run` of `server` (a saturation
search and two fixed rates) and `scatter`, whose report scripts/plot, scripts/report and
scripts/advise read as the harness wrote it: the load and saturation charts are drawn, the page
holds them, and the latency-server and fan-out profiles cite the server and scatter rows."""

import json
import os
import subprocess
import unittest

from helpers import PROFILES, TempDir, cmbench_path, load_json, run_script

MODELS = ["serial/baseline", "threads/pool", "coroutines/asio"]
RUN = {}


def setUpModule():
    """One quick run (3 models x (a search + 2 rates + a scatter), one repetition: about 10 s on
    an idle 2-CPU machine), and each script on its report."""
    tmp = TempDir()
    RUN["tmp"] = tmp
    exe = cmbench_path()
    if not os.access(exe, os.X_OK):
        raise RuntimeError("no cmbench at %s: build it, or set CMBENCH_EXE" % exe)
    report = tmp.join("report.json")
    RUN["report"] = report
    RUN["cmbench"] = subprocess.run(
        [exe, "run", "--preset", "quick", "--workloads", "server,scatter", "--models", ",".join(MODELS),
         "--param", "server.rate=0,1000,4000", "--repetitions", "1", "--floors", "off", "--timeout", "60",
         "--out", report],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, cwd=tmp.path,
        env=dict(os.environ, TMPDIR=tmp.path))
    if RUN["cmbench"].returncode != 0 or not os.path.exists(report):
        return
    RUN["charts"] = tmp.join("charts")
    RUN["page"] = tmp.join("page.html")
    RUN["plot"] = run_script("plot", report, "--out", RUN["charts"], "--format", "svg")
    RUN["report_page"] = run_script("report", report, "--out", RUN["page"])
    # The seam is under test, not the verdict: a rate every model serves on a busy machine.
    RUN["latency"] = run_script("advise", report, "--profile", os.path.join(PROFILES, "latency-server.json"),
                                "--request-rate", "200", "--json")
    RUN["fan_out"] = run_script("advise", report, "--profile", "fan-out", "--json")


def tearDownModule():
    RUN["tmp"].cleanup()


class DistributedEndToEnd(unittest.TestCase):
    def setUp(self):
        proc = RUN["cmbench"]
        if "plot" not in RUN:
            self.fail("cmbench run failed (exit %d), so no script could run:\n%s\n%s"
                      % (proc.returncode, proc.stdout, proc.stderr[-4000:]))
        self.report = load_json(RUN["report"])
        self.names = {row["name"] for row in self.report["benchmarks"]}

    def script_ok(self, name):
        proc = RUN[name]
        self.assertEqual(proc.returncode, 0, "%s could not use what cmbench wrote:\n%s" % (name, proc.stderr))

    def test_the_charts_show_the_load_the_saturation_and_scatter(self):
        self.script_ok("plot")
        charts = {c["slug"]: c for c in load_json(os.path.join(RUN["charts"], "index.json"))["charts"]}
        for slug in ("server-load", "server-saturation", "server-vs-rate", "scatter-by-model"):
            self.assertIn(slug, charts)
        with open(os.path.join(RUN["charts"], "server-saturation.svg"), encoding="utf-8") as f:
            svg = f.read()
        for model in MODELS:
            self.assertTrue(model in svg, "server-saturation.svg does not name " + model)

    def test_the_page_holds_them(self):
        self.script_ok("report_page")
        with open(RUN["page"], encoding="utf-8") as f:
            page = f.read()
        for slug in ("server-load", "server-saturation"):
            self.assertTrue('id="chart-%s"' % slug in page, slug)

    def test_the_latency_profile_cites_server_runs(self):
        proc = RUN["latency"]
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        advice = json.loads(proc.stdout)
        cited = [row for place in advice["ranking"] for e in place["evidence"] if e["kind"] == "latency"
                 for row in e["rows"]]
        self.assertTrue(cited, proc.stdout)
        for row in cited:
            self.assertTrue(row.startswith("server/"), row)
            self.assertIn(row, self.names)
        self.assertTrue(any(p["saturation_rps"] for p in advice["ranking"]), "no saturation read")

    def test_the_fan_out_profile_cites_scatter_runs(self):
        proc = RUN["fan_out"]
        self.assertEqual(proc.returncode, 0, proc.stderr)
        advice = json.loads(proc.stdout)
        self.assertEqual({p["model"] for p in advice["ranking"]}, set(MODELS))
        for place in advice["ranking"]:
            if place["status"] != "ranked":
                continue
            rows = [row for e in place["evidence"] if e["kind"] == "fan-out" for row in e["rows"]]
            self.assertEqual(len(rows), 1, place)
            self.assertTrue(rows[0].startswith("scatter/") and rows[0] in self.names, rows)


if __name__ == "__main__":
    unittest.main()
