"""scripts/advise: rankings for the shipped profiles, cited evidence, missing-run commands,
and bad profiles."""

import json
import os
import re
import unittest

from helpers import MALFORMED, PROFILES, TempDir, fixture, load_json, run_script
import synthetic as syn

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
        self.assertEqual(names, ["cpu-batch.json", "fan-out.json", "latency-server.json", "slow-calls.json"])
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


def advise_on(rows, profile, workloads=(syn.SERVER_FACTS, syn.SCATTER_FACTS)):
    """The advice on a synthetic report of `rows` for a profile dict."""
    res = R.Results([report_io.parse_report(syn.report(rows, workloads), "synthetic.json")])
    result = advice.advise(res, advice.make_profile(profile))
    return result, {a.model: a for a in result["ranking"]}, advice.to_text(result, res)


LATENCY = {"compute_us": 20, "concurrent_requests": 8, "request_rate": 10000, "latency_target_ms": 1,
           "objective": "latency"}


class ServerEvidence(unittest.TestCase):
    """The latency profile from the server's own rows: fixed rates that kept up, saturation
    searches interpolated at the rate, generator-bound rows as lower bounds."""

    def test_a_model_that_saturates_below_the_rate_is_excluded(self):
        rows = [syn.search_row("threads/pool", 15000, 200e3, 800e3),
                syn.search_row("processes/pool", 5000, 100e3, 300e3),
                syn.search_row("processes/spawn", 0, None, None)]
        result, by, text = advise_on(rows, LATENCY)
        self.assertIn("less than the search's first rate (no rate passed)", by["processes/spawn"].problems[0])
        slow = by["processes/pool"]
        self.assertEqual(slow.group, 1)
        self.assertIn("saturates at 5,000 requests/s, below the 10,000", slow.problems[0])
        self.assertIn(rows[1]["name"], slow.problems[0])
        fast = by["threads/pool"]
        self.assertEqual(fast.group, 0)
        self.assertEqual(result["ranking"][0].model, "threads/pool")
        # 10,000/s lies between 50% (7,500/s: 200 us) and 90% (13,500/s: 800 us) of the saturation:
        # log-interpolated, 200 us x 4^(2500/6000).
        self.assertAlmostEqual(fast.latency_ns, 200e3 * 4 ** (2500 / 6000), delta=1)
        self.assertEqual(fast.saturation_rps, 15000)
        ev = next(e for e in fast.evidence if e.kind == "latency")
        self.assertEqual(ev.rows, [rows[0]["name"]])
        self.assertIn("interpolated between the p99 at 50% (200 µs) and at 90% of the saturation (800 µs)", ev.text)
        # A fixed rate above the saturation that did not keep up contradicts nothing.
        rows.append(syn.fixed_row("threads/pool", 30000, 16000, 50e6, kept_up=False))
        result, by, text = advise_on(rows, LATENCY)
        self.assertFalse([u for u in by["threads/pool"].unproven if "contradicted" in u])
        rows.append(syn.fixed_row("threads/pool", 12000, 9000, 50e6, kept_up=False))
        result, by, text = advise_on(rows, LATENCY)
        self.assertTrue([u for u in by["threads/pool"].unproven if "contradicted" in u and "12,000" in u])
        self.assertIn("from %s" % rows[0]["name"], text)

    def test_a_fixed_rate_that_kept_up_is_the_measurement_and_one_that_did_not_excludes(self):
        rows = [syn.fixed_row("threads/pool", 10000, 9950, 400e3),
                syn.fixed_row("threads/pool", 40000, 30000, 30e6, kept_up=False),
                syn.fixed_row("coroutines/asio", 10000, 7000, 50e6, kept_up=False),
                syn.fixed_row("coroutines/asio", 5000, 5000, 100e3)]
        result, by, text = advise_on(rows, LATENCY)
        pool = by["threads/pool"]
        self.assertEqual(pool.latency_ns, 400e3)
        self.assertEqual(next(e for e in pool.evidence if e.kind == "latency").rows, [rows[0]["name"]])
        self.assertFalse([u for u in pool.unproven if "contradicted" in u])  # 40,000/s is above its 10,000/s
        asio = by["coroutines/asio"]  # its run at 5,000/s says nothing about 10,000/s
        self.assertEqual(asio.group, 1)
        self.assertIn("did not keep up", asio.problems[0])
        self.assertIn(rows[2]["name"], asio.problems[0])
        # A percentile other than p99 is read from the run's own distribution.
        result, by, _ = advise_on(rows, dict(LATENCY, latency_percentile=50))
        self.assertEqual(by["threads/pool"].latency_ns, 100e3)

    def test_a_generator_bound_row_is_a_lower_bound(self):
        rows = [syn.search_row("threads/pool", 40000, 200e3, 600e3, generator_bound=True),
                syn.search_row("coroutines/asio", 8000, 100e3, 300e3, generator_bound=True)]
        result, by, text = advise_on(rows, LATENCY)
        pool = by["threads/pool"]
        self.assertEqual(pool.group, 0)
        self.assertTrue(pool.saturation_is_bound)
        self.assertIn("saturation at least 40,000 requests/s (generator-bound: a lower bound)", text)
        self.assertIn("lower bound of the server's saturation", next(e.text for e in pool.evidence if e.kind == "latency"))
        # Below the rate, but only because the generator could offer no more: not excluded, unproven,
        # with the run that offers more load.
        asio = by["coroutines/asio"]
        self.assertFalse(asio.problems)
        self.assertTrue(any("lower bound" in u for u in asio.unproven), asio.unproven)
        self.assertEqual(asio.group, 2)
        self.assertTrue(any("--models coroutines/asio --workloads server" in c["command"] and
                             "--param generator_threads=2" in c["command"] for c in result["commands"]),
                        result["commands"])

    def test_without_server_rows_of_a_model_the_run_to_make_is_a_server_run(self):
        rows = [syn.search_row("threads/pool", 40000, 200e3, 600e3)]
        result, by, _ = advise_on(rows, LATENCY)
        self.assertEqual(by.keys(), {"threads/pool"})  # models come from the report's rows
        rows.append(syn.scatter_row("coroutines/asio", 5000))
        result, by, _ = advise_on(rows, LATENCY)
        self.assertEqual(by["coroutines/asio"].group, 2)
        self.assertTrue(any("--models coroutines/asio --workloads server --param compute_us=20 --param rate=10000"
                            in c["command"] for c in result["commands"]), result["commands"])

    def test_ranks_by_the_tail_at_the_rate_then_the_saturation(self):
        rows = [syn.search_row("threads/pool", 20000, 300e3, 900e3),
                syn.search_row("coroutines/asio", 60000, 300e3, 900e3),
                syn.search_row("threads/tbb", 25000, 100e3, 900e3)]
        result, by, _ = advise_on(rows, LATENCY)
        self.assertEqual([a.model for a in result["ranking"]], ["threads/tbb", "coroutines/asio", "threads/pool"])

    def test_the_shipped_profile_cites_the_fixtures_server_runs(self):
        proc, out = advise_json(fixture("latency.json"), "--profile", os.path.join(PROFILES, "latency-server.json"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        cited = [row for place in out["ranking"] for e in place["evidence"] if e["kind"] == "latency"
                 for row in e["rows"]]
        self.assertTrue(cited)
        self.assertTrue(all(name.startswith("server/") for name in cited), cited)


FAN_OUT = {"remote_calls": 1000, "nodes": 2, "in_flight": 64, "compute_us": 20, "wait_ms": 2}


class FanOutProfile(unittest.TestCase):
    def test_ranks_by_the_nearest_scatter_runs_and_asks_for_a_missing_one(self):
        rows = [syn.scatter_row("threads/pool", 4000), syn.scatter_row("coroutines/asio", 9000),
                syn.scatter_row("threads/pool", 99000, tasks=100, in_flight=4),  # far from the profile
                syn.scatter_row("threads/tbb", 50000, tasks=100, in_flight=4)]
        result, by, text = advise_on(rows, FAN_OUT)
        ranked = [a.model for a in result["ranking"] if a.group == 0]
        self.assertEqual(ranked, ["coroutines/asio", "threads/pool"])
        asio = by["coroutines/asio"]
        self.assertAlmostEqual(asio.t_wave, 1000 / 9000 * 1e3)
        ev = next(e for e in asio.evidence if e.kind == "fan-out")
        self.assertEqual(ev.rows, [rows[1]["name"]])
        self.assertIn("makespan/ideal", ev.text)
        self.assertIsNone(ev.extrapolated)
        # threads/tbb ran only far from the profile: not rankable, with the run that would tell.
        self.assertEqual(by["threads/tbb"].group, 2)
        self.assertTrue(any("--models threads/tbb --workloads scatter" in c["command"] and "--param tasks=1000" in
                            c["command"] and "--param in_flight=64" in c["command"] for c in result["commands"]),
                        result["commands"])
        self.assertIn("Ranking by the estimated time for 1,000 remote calls", text)

    def test_a_far_configuration_is_flagged(self):
        rows = [syn.scatter_row("threads/pool", 4000, tasks=100, in_flight=4)]
        result, by, _ = advise_on(rows, FAN_OUT)
        ev = next(e for e in by["threads/pool"].evidence if e.kind == "fan-out")
        self.assertIn("measured at tasks=100, in_flight=4, the profile has tasks=1,000, in_flight=64", ev.extrapolated)

    def test_fan_out_fields_need_remote_calls(self):
        with self.assertRaisesRegex(ReportError, "nodes describe a fan-out: give remote_calls"):
            advice.make_profile({"nodes": 2, "compute_us": 1})
        p = advice.make_profile({"remote_calls": 10})  # no work per call: the calls alone
        self.assertEqual(p["remote_calls"], 10)

    def test_the_shipped_profile_runs_from_the_command_line(self):
        tmp = TempDir()
        try:
            path = tmp.join("scatter.json")
            with open(path, "w") as f:
                json.dump(syn.report([syn.scatter_row("threads/pool", 4000),
                                      syn.scatter_row("coroutines/asio", 9000)]), f)
            proc, out = advise_json(path, "--profile", "fan-out")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual([r["model"] for r in out["ranking"]], ["coroutines/asio", "threads/pool"])
        finally:
            tmp.cleanup()


class LinkConditions(unittest.TestCase):
    ROWS = [syn.scatter_row("threads/pool", 9000), syn.scatter_row("coroutines/asio", 5000),
            syn.scatter_row("threads/pool", 1000, link={"delay_ms": 5}),
            syn.scatter_row("coroutines/asio", 3000, link={"delay_ms": 5})]

    def test_runs_on_the_profiles_link_are_preferred(self):
        result, by, _ = advise_on(self.ROWS, FAN_OUT)
        self.assertEqual(result["ranking"][0].model, "threads/pool")  # no link: the runs without one
        result, by, text = advise_on(self.ROWS, dict(FAN_OUT, link="delay=5ms"))
        self.assertEqual(result["ranking"][0].model, "coroutines/asio")
        ev = next(e for e in by["coroutines/asio"].evidence if e.kind == "fan-out")
        self.assertEqual(ev.rows, [self.ROWS[3]["name"]])
        self.assertIsNone(ev.extrapolated)
        self.assertIn("link: delay 5.00 ms", text)

    def test_says_when_it_used_runs_on_another_link(self):
        result, by, _ = advise_on(self.ROWS, dict(FAN_OUT, link="delay=20ms,jitter=1ms"))
        ev = next(e for e in by["coroutines/asio"].evidence if e.kind == "fan-out")
        self.assertEqual(ev.rows, [self.ROWS[3]["name"]])  # 5 ms is nearer 20 ms than none
        self.assertIn("measured on delay 5.00 ms, the profile's link is delay 20.0 ms, jitter 1.00 ms",
                      ev.extrapolated)
        self.assertTrue(any("--link delay=20ms,jitter=1ms" in c["command"] for c in result["commands"]),
                        result["commands"])

    def test_the_reports_own_link_stands_for_rows_without_one(self):
        doc = syn.report([syn.scatter_row("threads/pool", 9000)])
        doc["context"]["link"] = "delay=5ms"
        res = R.Results([report_io.parse_report(doc, "synthetic.json")])
        self.assertEqual(res.points[0].link["delay_ns"], 5e6)

    def test_bad_links_are_refused(self):
        with self.assertRaisesRegex(ReportError, "link: .*unknown unit"):
            advice.make_profile(dict(FAN_OUT, link="delay=5 parsecs"))
        doc = syn.report([syn.scatter_row("threads/pool", 9000, link={"delay": "soon"})])
        with self.assertRaisesRegex(ReportError, r"benchmarks\[0\]\.link .*expected link conditions"):
            report_io.parse_report(doc, "synthetic.json")


if __name__ == "__main__":
    unittest.main()
