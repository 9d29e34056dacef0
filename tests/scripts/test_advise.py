"""scripts/advise: rankings for the shipped profiles, cited evidence, missing-run commands,
and bad profiles."""

import json
import os
import re
import unittest

from helpers import MALFORMED, PROFILES, TempDir, fixture, load_json, run_script

from cmbench_scripts import advice, report_io, results as R
from cmbench_scripts.report_io import ReportError

COMMAND = re.compile(r"^  build/release/harness/cmbench run --models [a-z/,-]+ --workloads [a-z]+"
                     r"( --param [a-z_]+=\d+)+ --preset (quick|default|full)( --repetitions \d+)?"
                     r" --out results/[\w.-]+\.json$", re.M)


def advise_json(*args):
    proc = run_script("advise", *args, "--json")
    return proc, (json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None)


def row_names(*fixtures):
    names = set()
    for f in fixtures:
        names.update(r["name"] for r in load_json(fixture(f))["benchmarks"])
    return names


class ShippedProfiles(unittest.TestCase):
    def test_profiles_are_valid(self):
        names = sorted(n for n in os.listdir(PROFILES) if n != "evidence.json")
        self.assertEqual(names, ["cpu-batch.json", "latency-server.json", "slow-calls.json"])
        for name in names:
            with self.subTest(name=name):
                advice.make_profile(advice.load_profile(os.path.join(PROFILES, name)), name)

    def test_which_workload_stands_for_what_is_an_input(self):
        # scripts/profiles/evidence.json names the workloads, not the scripts; a profile's own
        # "evidence" overrides it, and a bad one is refused in one line.
        evidence = advice.load_evidence()
        self.assertEqual(sorted(evidence), sorted(advice.EVIDENCE_ROLES))
        profile = advice.make_profile({"compute_us": 10, "evidence": {"compute": "mixed"}})
        self.assertEqual(profile["evidence"], dict(evidence, compute="mixed"))
        for bad, fragment in (({"gpu": "x"}, "has unknown gpu"), ({"wait": 3}, "evidence.wait is 3")):
            with self.subTest(fragment=fragment):
                with self.assertRaisesRegex(ReportError, fragment):
                    advice.make_profile({"compute_us": 10, "evidence": bad})
        # A compute workload the report lacks: the advice asks for its runs by that name.
        res = R.Results(report_io.load_reports([fixture("full.json")]))
        result = advice.advise(res, advice.make_profile({"compute_us": 10, "evidence": {"compute": "mixed"}}))
        self.assertTrue(any("--workloads mixed" in c["command"] for c in result["commands"]))

    def test_cpu_batch_prefers_a_parallel_cpu_model(self):
        proc, out = advise_json(fixture("full.json"), "--profile", "cpu-batch")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ranking = out["ranking"]
        top = ranking[0]
        self.assertEqual(top["status"], "ranked")
        self.assertIn(top["model"], ("threads/tbb", "threads/pool", "coroutines/asio-mt"))
        last_two = {r["model"] for r in ranking[-3:]}
        self.assertIn("serial/baseline", last_two)
        self.assertIn("coroutines/asio", last_two)  # one event loop: one CPU
        estimates = [r["estimate_ms"] for r in ranking]
        self.assertEqual(estimates, sorted(estimates))

    def test_slow_calls_prefers_coroutines_and_excludes_fork_per_call(self):
        proc, out = advise_json(fixture("full.json"), "--profile", "slow-calls")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ranking = {r["model"]: r for r in out["ranking"]}
        self.assertTrue(out["ranking"][0]["model"].startswith("coroutines/"))
        spawn = ranking["processes/spawn"]
        self.assertEqual(spawn["status"], "excluded")
        self.assertIn("exceeds the budget", spawn["excluded_by"][0])
        pool = ranking["threads/pool"]["estimate_ms"]
        self.assertGreater(pool, 50 * out["ranking"][0]["estimate_ms"])  # waits queue in waves

    def test_latency_server_ranks_by_measured_latency(self):
        proc, out = advise_json(fixture("latency.json"), "--profile", "latency-server")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ranked = [r for r in out["ranking"] if r["status"] == "ranked"]
        latencies = [r["latency_ns"] for r in ranked]
        self.assertEqual(latencies, sorted(latencies))
        self.assertEqual(ranked[0]["model"], "coroutines/asio-mt")
        excluded = {r["model"] for r in out["ranking"] if r["status"] == "excluded"}
        self.assertEqual(excluded, {"threads/spawn", "processes/spawn"})
        # pingpong is only a lower bound: it never ranks serial/baseline against server runs
        serial = next(r for r in out["ranking"] if r["model"] == "serial/baseline")
        self.assertEqual(serial["status"], "not rankable")


    def test_pingpong_bounds_gate_the_target_but_the_estimate_orders(self):
        # No server runs: pingpong's round trips are only lower bounds. A pool's peer runs next on
        # the same worker, so ordering by them would rank pools first for a reason no server has.
        tmp = TempDir()
        try:
            doc = load_json(fixture("latency.json"))
            doc["benchmarks"] = [r for r in doc["benchmarks"] if r["workload"] == "pingpong"]
            pingpong_only = tmp.join("pingpong.json")
            with open(pingpong_only, "w") as f:
                json.dump(doc, f)
            proc, out = advise_json(fixture("full.json"), pingpong_only, "--profile", "latency-server")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            ranked = [r for r in out["ranking"] if r["status"] == "ranked"]
            self.assertGreater(len(ranked), 2)
            self.assertTrue(all(r["latency_is_lower_bound"] for r in ranked))
            estimates = [r["estimate_ms"] for r in ranked]
            self.assertEqual(estimates, sorted(estimates))
            latencies = [r["latency_ns"] for r in ranked]
            self.assertNotEqual(latencies, sorted(latencies))  # the fixture's bounds order them otherwise
            text = run_script("advise", fixture("full.json"), pingpong_only, "--profile", "latency-server")
            self.assertIn("No server runs: pingpong round trips stand in as lower bounds", text.stdout)
        finally:
            tmp.cleanup()


class EvidenceIsCited(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = run_script("advise", fixture("failed.json"), "--profile",
                              os.path.join(PROFILES, "slow-calls.json"))

    def test_text_cites_existing_runs_with_figures(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        cited = re.findall(r"^\s+from (.+)$", self.proc.stdout, re.M)
        self.assertTrue(cited)
        names = row_names("failed.json")
        for line in cited:
            for name in line.split(", "):
                self.assertIn(name, names)
        self.assertIn("makespan/ideal", self.proc.stdout)
        self.assertIn("speedup", self.proc.stdout)

    def test_failures_exclude_with_the_reason(self):
        out = self.proc.stdout
        self.assertRegex(out, r"coroutines/asio-mt .*\n\s+EXCLUDED: wrong result: .*checksum mismatch")
        self.assertRegex(out, r"serial/baseline .*\n\s+EXCLUDED: 10,000 tasks alive at once failed: timeout")
        self.assertIn("Not rankable", out)
        self.assertRegex(out, r"threads/tbb\s+cpu run .* skipped: threads/tbb was not built")

    def test_says_what_would_change_the_answer(self):
        section = self.proc.stdout.split("What would change the answer:")[1]
        self.assertIn("would rank first", section)
        self.assertIn("memory budget below", section)

    def test_prints_exact_commands_for_missing_runs(self):
        commands = COMMAND.findall(self.proc.stdout)
        self.assertTrue(commands, self.proc.stdout)
        self.assertIn("--workloads cpu --param task_us=20 --param workers=2 --preset full", self.proc.stdout)

    def test_json_matches_text(self):
        proc, out = advise_json(fixture("failed.json"), "--profile", "slow-calls")
        self.assertEqual(out["ranking"][0]["model"], "coroutines/asio")
        self.assertTrue(all("command" in c and "why" in c for c in out["commands"]))
        self.assertIn("T_wave", out["scoring"])


class ProfilesFromFlags(unittest.TestCase):
    def test_flags_alone(self):
        proc = run_script("advise", fixture("full.json"), "--compute-us", "200", "--concurrent", "1000")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("profile 'custom'", proc.stdout)
        self.assertIn(" 1. ", proc.stdout)

    def test_flags_override_the_file(self):
        proc, out = advise_json(fixture("full.json"), "--profile", "slow-calls", "--memory-budget-mb", "1")
        self.assertEqual(out["profile"]["memory_budget_mb"], 1)
        self.assertEqual(out["profile"]["wait_ms"], 100)
        # In 1 MiB only serial/baseline fits (one task alive at a time), and it says how slow.
        ranked = [r for r in out["ranking"] if r["status"] == "ranked"]
        self.assertEqual([r["model"] for r in ranked], ["serial/baseline"])
        self.assertGreater(ranked[0]["estimate_ms"], 100_000)

    def test_insufficient_evidence_exits_3_with_the_runs_to_make(self):
        proc = run_script("advise", fixture("latency.json"), "--profile", "cpu-batch")
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertIn("Not rankable", proc.stdout)
        self.assertRegex(proc.stdout, r"cmbench run --models serial/baseline,.* --workloads cpu "
                                      r"--param task_us=200 --param workers=2 --preset default")

    def test_out_file_is_written(self):
        tmp = TempDir()
        try:
            out = tmp.join("advice.txt")
            proc = run_script("advise", fixture("v1.json"), "--facts", fixture("facts.json"), "--profile",
                              "cpu-batch", "--out", out)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(out) as f:
                self.assertEqual(f.read(), proc.stdout)
            self.assertIn("debug build", proc.stdout)
        finally:
            tmp.cleanup()

    def test_help_documents_the_scoring(self):
        proc = run_script("advise", "--help")
        self.assertEqual(proc.returncode, 0)
        for word in ("T_wave", "makespan / ideal", "speedup", "memory_budget_mb", "latency_target_ms",
                     "What would change", "cmbench run"):
            self.assertIn(word, proc.stdout.replace("\n", " ").replace("  ", " ") if " " in word else proc.stdout)


class BadInput(unittest.TestCase):
    def assert_refused(self, proc, fragment):
        self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("advise: error: ", proc.stderr)
        self.assertIn(fragment, proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_bad_reports(self):
        for name, fragment in MALFORMED.items():
            with self.subTest(name=name):
                self.assert_refused(run_script("advise", fixture(name), "--profile", "cpu-batch"), fragment)

    def test_bad_profiles(self):
        tmp = TempDir()
        try:
            cases = {
                "typo.json": ({"compute_us": 5, "concurent_requests": 3}, "unknown field concurent_requests"),
                "negative.json": ({"compute_us": -5}, "expected a number >= 0"),
                "nothing.json": ({"compute_us": 0, "wait_ms": 0}, "nothing to estimate"),
                "string.json": ({"compute_us": "5"}, "expected a number"),
                "list.json": ([1, 2], "a profile is a JSON object"),
                "latency.json": ({"compute_us": 5, "objective": "latency"}, "needs latency_target_ms"),
            }
            for name, (doc, fragment) in cases.items():
                with self.subTest(name=name):
                    path = tmp.join(name)
                    with open(path, "w") as f:
                        json.dump(doc, f)
                    self.assert_refused(run_script("advise", fixture("full.json"), "--profile", path), fragment)
            path = tmp.join("broken.json")
            with open(path, "w") as f:
                f.write("{")
            self.assert_refused(run_script("advise", fixture("full.json"), "--profile", path), "not valid JSON")
        finally:
            tmp.cleanup()
        self.assert_refused(run_script("advise", fixture("full.json"), "--profile", "nope.json"), "no such profile")
        self.assert_refused(run_script("advise", fixture("full.json")), "no profile")


class ScoringUnits(unittest.TestCase):
    """The estimate's arithmetic on one model, against the formula in the docstring."""

    def test_wait_and_compute_terms(self):
        res = R.Results(report_io.load_reports([fixture("full.json")]))
        profile = advice.make_profile({"compute_us": 200, "wait_ms": 20, "concurrent_requests": 5000})
        ranked = advice.assess(res, profile, 2)
        a = next(x for x in ranked if x.model == "coroutines/asio")
        wait = next(e for e in a.evidence if e.kind == "wait")
        compute = next(e for e in a.evidence if e.kind == "compute")
        io = res.find_by_name(wait.rows[0])
        self.assertEqual(io.params["tasks"], 5000)
        self.assertAlmostEqual(wait.value, io.real_ms, places=3)  # measured exactly: no scaling
        speedups = [res.speedup(p)[0] for p in res.points_for("cpu", "coroutines/asio")
                    if p.params["tasks"] == 1000]
        self.assertAlmostEqual(compute.value, 5000 * 0.2 / max(speedups))
        self.assertAlmostEqual(a.t_wave, wait.value + compute.value)

    def test_a_run_past_the_trial_timeout_is_not_suggested(self):
        # 10,000 calls of 10 s: serial/baseline's own estimate is 100,000 s per trial, the pools'
        # thousands of seconds; coroutines wait them all at once (~10 s).
        res = R.Results(report_io.load_reports([fixture("full.json")]))
        profile = advice.make_profile({"compute_us": 20, "wait_ms": 10000, "concurrent_requests": 10000})
        result = advice.advise(res, profile)
        io = [c for c in result["commands"] if "--workloads io" in c["command"]]
        self.assertEqual(len(io), 1, result["commands"])
        models = io[0]["command"].split("--models ")[1].split()[0].split(",")
        self.assertIn("coroutines/asio", models)
        self.assertNotIn("serial/baseline", models)
        self.assertNotIn("threads/pool", models)
        self.assertRegex(io[0]["why"], r"left out: .*serial/baseline \(estimated [\d,]+ s per trial")
        self.assertIn("past the 120 s trial timeout", io[0]["why"])

    def test_a_change_of_leader_says_when_the_leader_is_excluded(self):
        res = R.Results(report_io.load_reports([fixture("full.json")]))
        profile = advice.make_profile({"compute_us": 20, "wait_ms": 100, "concurrent_requests": 10000,
                                       "memory_budget_mb": 20})
        result = advice.advise(res, profile)
        changes = [c for c in result["changes"] if "would rank first" in c and "requests in flight" in c]
        self.assertTrue(changes, result["changes"])
        self.assertTrue(any("is excluded there: memory" in c for c in changes), changes)

    def test_without_server_runs_a_missing_latency_asks_for_pingpong(self):
        # full.json has no pingpong and no server runs: suggest a workload this build has.
        res = R.Results(report_io.load_reports([fixture("full.json")]))
        profile = advice.make_profile({"compute_us": 20, "concurrent_requests": 64, "latency_target_ms": 1})
        result = advice.advise(res, profile)
        latency = [c for c in result["commands"] if "lower bound on latency" in c["why"]]
        self.assertEqual(len(latency), 1, result["commands"])
        self.assertIn("--workloads pingpong", latency[0]["command"])
        self.assertNotIn("serial/baseline", latency[0]["command"])
        self.assertFalse([c for c in result["commands"] if "--workloads server" in c["command"]])

    def test_make_profile_defaults(self):
        p = advice.make_profile({"wait_ms": 5})
        self.assertEqual(p["concurrent_requests"], 1)
        self.assertEqual(p["objective"], "throughput")
        with self.assertRaises(ReportError):
            advice.make_profile({"wait_ms": 5, "latency_percentile": 100})


if __name__ == "__main__":
    unittest.main()
