"""The golden fixtures are what tests/fixtures/make_fixtures.py writes, byte for byte."""

import os
import subprocess
import sys
import unittest

from helpers import FIXTURES, TempDir


class FixturesAreReproducible(unittest.TestCase):
    def test_generator_reproduces_the_checked_in_fixtures(self):
        tmp = TempDir()
        try:
            proc = subprocess.run([sys.executable, os.path.join(FIXTURES, "make_fixtures.py"),
                                   "--out", tmp.path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            made = sorted(n for n in os.listdir(tmp.path) if n.endswith(".json"))
            checked_in = sorted(n for n in os.listdir(FIXTURES) if n.endswith(".json"))
            self.assertEqual(made, checked_in)
            for name in made:
                with open(os.path.join(tmp.path, name), "rb") as a, \
                        open(os.path.join(FIXTURES, name), "rb") as b:
                    self.assertTrue(a.read() == b.read(),
                                    "%s differs from make_fixtures.py's output: rerun "
                                    "/usr/bin/python3 tests/fixtures/make_fixtures.py" % name)
        finally:
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
