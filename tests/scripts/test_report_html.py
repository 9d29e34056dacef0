"""scripts/report: the self-contained HTML page, checked as text and in headless Chromium."""

import html.parser
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from helpers import MALFORMED, TempDir, fixture, png_size, run_script

URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", re.I)


class _Collector(html.parser.HTMLParser):
    """Tags and the attributes that could load something from elsewhere."""

    def __init__(self):
        super().__init__()
        self.tags = {}
        self.loads = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data", "poster") and value:
                if not value.startswith(("#", "data:")):
                    self.loads.append((tag, name, value))


PAGE = {}


def setUpModule():
    """One page (the full report merged with the failed one) for the text and browser checks."""
    tmp = TempDir()
    page = tmp.join("full.html")
    PAGE.update(tmp=tmp, page=page,
                proc=run_script("report", fixture("full.json"), fixture("failed.json"), "--out", page))


def tearDownModule():
    PAGE["tmp"].cleanup()


class ReportPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.page, cls.proc = PAGE["tmp"], PAGE["page"], PAGE["proc"]
        with open(cls.page, encoding="utf-8") as f:
            cls.text = f.read()
        cls.parsed = _Collector()
        cls.parsed.feed(cls.text)

    def test_written(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertTrue(self.text.startswith("<!DOCTYPE html>"))
        self.assertFalse([n for n in os.listdir(self.tmp.path) if n.endswith(".tmp")])

    def test_self_contained(self):
        self.assertEqual(self.parsed.loads, [], "the page loads something from elsewhere")
        self.assertEqual(URL.findall(self.text), [], "the page names an external URL")
        self.assertNotIn("<link", self.text)
        self.assertNotIn("@import", self.text)
        self.assertNotIn("url(http", self.text)

    def test_sections(self):
        for anchor in ("warnings", "overview", "failures", "w-cpu", "w-io", "w-spawn",
                       "memory-section", "environment", "rawsection"):
            self.assertIn('id="%s"' % anchor, self.text)

    def test_charts_are_inline_svg_with_unique_ids(self):
        self.assertGreaterEqual(self.parsed.tags.get("svg", 0), 13)
        self.assertEqual(self.parsed.tags.get("img", 0), 0)
        ids = re.findall(r'\bid="([^"]+)"', self.text)
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        self.assertEqual(dupes, [])

    def test_warnings_are_highlighted(self):
        box = self.text[self.text.index('class="warnings"'):self.text.index('id="overview"')]
        self.assertIn("oversubscribed", box)
        self.assertIn("failed", box)
        self.assertIn("uncommitted changes", box)

    def test_environment_and_raw_table(self):
        env = self.text[self.text.index('id="environment"'):self.text.index('id="rawsection"')]
        for value in ("AMD EPYC 7B13", "GNU 12.2.0", "-O3 -DNDEBUG", "3f9c2e1d0b7a", "tbb 2021.8.0",
                      "pid_max 32768", "full.json", "failed.json",
                      "condvar_round_trip 64.1 µs per round trip (before 64.1 µs, after 66.9 µs)"):
            self.assertIn(value, env)
        raw = self.text[self.text.index('id="rawsection"'):]
        self.assertIn("io/processes/spawn/tasks:100000/wait_ms:100/workers:32/concurrency:0_median", raw)
        self.assertIn('class="failed"', raw)
        self.assertIn('class="skipped"', raw)
        self.assertIn("fork failed with 32,700 processes alive", raw)
        self.assertIn('<table id="raw">', raw)

    def test_png_embedding(self):
        page = self.tmp.join("png.html")
        proc = run_script("report", fixture("v1.json"), "--facts", fixture("facts.json"), "--out", page,
                          "--embed", "png")
        try:
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(page, encoding="utf-8") as f:
                text = f.read()
            self.assertIn('src="data:image/png;base64,', text)
            self.assertIn("schema 1, read with the facts given", text)
            self.assertIn("debug build", text)
        finally:
            if os.path.exists(page):
                os.unlink(page)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


# Skipped only outside CI: `scripts/test` installs chromium, so under CI its absence is a failure.
@unittest.skipUnless(_chromium() or os.environ.get("CI"), "chromium is not installed (apt-get install -y chromium): "
                                                          "the page was not checked in a browser")
class ReportInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not _chromium():
            raise AssertionError("CI is set but chromium is not installed: scripts/setup --tests installs it")
        cls.tmp, cls.page = PAGE["tmp"], PAGE["page"]
        assert PAGE["proc"].returncode == 0, PAGE["proc"].stderr

    def chromium(self, *args):
        profile = tempfile.mkdtemp(prefix="cmbench-chromium-")
        try:
            return subprocess.run([_chromium()] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                                  cwd=self.tmp.path)
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    def test_screenshot_is_a_real_page(self):
        shot = self.tmp.join("shot.png")
        proc = self.chromium("--screenshot=" + shot, "--window-size=1280,2000", "file://" + self.page)
        self.assertTrue(os.path.exists(shot), proc.stderr.decode(errors="replace")[-2000:])
        with open(shot, "rb") as f:
            data = f.read()
        self.assertEqual(png_size(data), (1280, 2000))
        self.assertGreater(len(data), 50_000)
        import matplotlib.image
        pixels = matplotlib.image.imread(shot)[:, :, :3]
        colours = len({tuple(p) for p in (pixels[::7, ::7].reshape(-1, 3) * 255).astype(int).tolist()})
        self.assertGreater(colours, 200, "the screenshot has too few colours to be the rendered page")
        non_white = (pixels.min(axis=2) < 0.9).mean()
        self.assertGreater(non_white, 0.05, "the screenshot is nearly blank")

    def test_script_runs_and_charts_render(self):
        proc = self.chromium("--dump-dom", "file://" + self.page)
        dom = proc.stdout.decode("utf-8", errors="replace")
        self.assertIn('data-ready="yes"', dom, "the table script did not run")
        self.assertIn("rows shown", dom)
        self.assertGreaterEqual(dom.count("<svg"), 13)


class ReportBadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()

    def tearDown(self):
        self.tmp.cleanup()

    def test_malformed_reports_write_nothing(self):
        for name, fragment in MALFORMED.items():
            with self.subTest(name=name):
                out = self.tmp.join("page.html")
                proc = run_script("report", fixture(name), "--out", out)
                self.assertEqual(proc.returncode, 2)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1)
                self.assertIn("report: error: ", proc.stderr)
                self.assertIn(fragment, proc.stderr)
                self.assertFalse(os.path.exists(out))

    def test_an_existing_page_survives_bad_input(self):
        out = self.tmp.join("page.html")
        with open(out, "w") as f:
            f.write("previous page")
        proc = run_script("report", fixture("malformed_truncated.json"), "--out", out)
        self.assertEqual(proc.returncode, 2)
        with open(out) as f:
            self.assertEqual(f.read(), "previous page")

    def test_output_folder_missing(self):
        proc = run_script("report", fixture("full.json"), "--out", self.tmp.join("no", "page.html"))
        self.assertEqual(proc.returncode, 2)
        self.assertIn("does not exist", proc.stderr)

    def test_help(self):
        proc = run_script("report", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("self-contained", proc.stdout)


if __name__ == "__main__":
    unittest.main()
