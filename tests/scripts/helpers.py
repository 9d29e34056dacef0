"""Shared paths and helpers for the script tests (run with /usr/bin/python3, which has
Debian's matplotlib, numpy and scipy)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(REPO, "scripts")
FIXTURES = os.path.join(REPO, "tests", "fixtures")
PROFILES = os.path.join(SCRIPTS, "profiles")

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)

MALFORMED = {
    # fixture: a fragment the one-line error must contain
    "malformed_truncated.json": "not valid JSON",
    "malformed_toplevel_list.json": "top level is a JSON array",
    "malformed_no_benchmarks.json": "no `benchmarks` array",
    "empty_benchmarks.json": "no benchmarks in the report",
    "not_cmbench.json": "not a cmbench report",
    "future_version.json": "cmbench_schema_version 3 is newer",
}


def cmbench_facts(folder):
    """The facts of the build under test (`cmbench list --json`) in a file of `folder`, or None
    when the tests run without it (ctest sets CMBENCH_EXE)."""
    exe = os.environ.get("CMBENCH_EXE")
    if not exe or not os.path.exists(exe):
        return None
    path = os.path.join(folder, "cmbench-facts.json")
    with open(path, "w", encoding="utf-8") as f:
        subprocess.run([exe, "list", "--json"], stdout=f, check=True, timeout=60)
    return path


def cmbench_path():
    """The cmbench CTest built (CMBENCH_EXE), else the release build's."""
    return os.environ.get("CMBENCH_EXE") or os.path.join(REPO, "build", "release", "harness", "cmbench")


def fixture(name):
    return os.path.join(FIXTURES, name)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_script(name, *args, timeout=240):
    """Runs scripts/NAME as a user would (through its #!/usr/bin/python3 line)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "cmbench-test-mplconfig"))
    return subprocess.run([os.path.join(SCRIPTS, name)] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, cwd=REPO, env=env)


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="cmbench-scripts-test-")

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def png_size(data):
    """(width, height) from a PNG's IHDR, or None if `data` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
