"""Shared command-line plumbing: one-line errors on stderr and exit status 2 for bad input."""

import os
import sys

from .report_io import ReportError

EXIT_BAD_INPUT = 2


def fail(prog, message):
    """Prints `prog: error: message` (one line) and exits with status 2."""
    line = " ".join(str(message).split())
    sys.stderr.write("%s: error: %s\n" % (prog, line))
    sys.exit(EXIT_BAD_INPUT)


def run(prog, main, argv=None):
    """Runs main(argv); turns ReportError into a one-line error and exit status 2."""
    try:
        status = main(argv)
    except ReportError as e:
        fail(prog, e)
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % prog)
        sys.exit(130)
    except BrokenPipeError:
        # `scripts/advise ... | head`: not an error of ours.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(0)
    sys.exit(status or 0)


def require_matplotlib():
    """matplotlib comes from Debian's python3-matplotlib for /usr/bin/python3; another python3
    (a pyenv one) may not see it. Say so in one line instead of a traceback."""
    import importlib
    try:
        for name in ("numpy", "matplotlib"):
            importlib.import_module(name)
    except ImportError as e:
        raise ReportError("%s cannot import %s: run the script as scripts/NAME (it starts with "
                          "#!/usr/bin/python3) or install python3-matplotlib"
                          % (sys.executable, e.name or "matplotlib"))


FACTS_HELP = ("the models' and workloads' facts for reports of format 1 (json_schema_version 1 and no "
              "cmbench_schema_version), which lack "
              "them: a file written by `build/release/harness/cmbench list --json > FILE` (a "
              "newer report's own facts are always used)")


def add_facts_argument(parser):
    parser.add_argument("--facts", metavar="FILE", help=FACTS_HELP)


def parse_at(values):
    """`--at workers=2 --at tasks=1000` -> {"workers": 2, "tasks": 1000}."""
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ReportError("--at %r: expected NAME=VALUE, e.g. --at workers=2" % item)
        try:
            out[name.strip()] = int(parse_count(value))
        except ValueError:
            raise ReportError("--at %r: %r is not a whole number" % (item, value))
    return out


def parse_count(text):
    """'10k' -> 10000, '1M' -> 1000000, '2.5' -> 2.5 (the harness's suffixes)."""
    text = text.strip()
    mult = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], None)
    number = float(text[:-1] if mult else text)
    value = number * (mult or 1)
    return int(value) if value == int(value) else value
