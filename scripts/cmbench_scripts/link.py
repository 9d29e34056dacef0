"""Network link conditions (`cmbench run --link delay=5ms,jitter=1ms,rate=100mbit`): reading them
from a report row, a report's context or a profile, comparing them, and writing them back as the
flag's text.

A link is {"delay_ns", "jitter_ns", "rate_bps"} (each a number or None: not set), or None for no
link at all (the nodes reached directly). It is read from:
  - the flag's text: "delay=5ms,jitter=1ms,rate=100mbit" (times in ns, us, ms or s; rates in bit,
    kbit, mbit or gbit per second, or bps, kbps, mbps, gbps);
  - an object: {"delay_ms": 5, "jitter_us": 200, "rate_mbit": 100}, each name with its unit, or
    {"delay": "5ms", ...} (a number without a unit in its name: milliseconds for delay and
    jitter, bits per second for rate).
A link whose every figure is 0 or unset is no link.
"""

import re

from . import style as S

TIME_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
RATE_BPS = {"bit": 1.0, "bps": 1.0, "kbit": 1e3, "kbps": 1e3, "mbit": 1e6, "mbps": 1e6,
            "gbit": 1e9, "gbps": 1e9}
FIELDS = (("delay", TIME_NS, 1e6, "delay_ns"), ("jitter", TIME_NS, 1e6, "jitter_ns"),
          ("rate", RATE_BPS, 1.0, "rate_bps"))
_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


class LinkError(ValueError):
    """A link that cannot be read; the message says what was expected."""


def _amount(text, units, bare, what):
    m = _AMOUNT.match(str(text))
    if not m:
        raise LinkError("%s %r is not a number with a unit" % (what, text))
    unit = m.group(2).lower()
    if unit and unit not in units:
        raise LinkError("%s %r: unknown unit %r (expected one of %s)" % (what, text, unit, ", ".join(units)))
    return float(m.group(1)) * (units[unit] if unit else bare)


def _number(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise LinkError("%s is %r, expected a number >= 0" % (what, v))
    return float(v)


def parse(value):
    """The link `value` (flag text, object or None) as {"delay_ns", "jitter_ns", "rate_bps"}, or
    None for no link. Raises LinkError."""
    if value is None:
        return None
    out = {key: None for _, _, _, key in FIELDS}
    if isinstance(value, str):
        for part in (p for p in value.split(",") if p.strip()):
            name, sep, amount = part.partition("=")
            field = next((f for f in FIELDS if f[0] == name.strip().lower()), None)
            if not sep or field is None:
                raise LinkError("%r: expected NAME=AMOUNT with NAME one of delay, jitter, rate" % part.strip())
            out[field[3]] = _amount(amount, field[1], field[2], field[0])
    elif isinstance(value, dict):
        for name, v in value.items():
            field = next((f for f in FIELDS if name == f[0] or name.startswith(f[0] + "_")), None)
            if field is None or v is None:
                continue  # a figure of the link these scripts do not compare (loss, say)
            unit = name[len(field[0]) + 1:].lower()
            if isinstance(v, str):
                out[field[3]] = _amount(v, field[1], field[2], name)
            elif not unit:
                out[field[3]] = _number(v, name) * field[2]
            elif unit in field[1]:
                out[field[3]] = _number(v, name) * field[1][unit]
            else:
                raise LinkError("%s: unknown unit %r (expected one of %s)" % (name, unit, ", ".join(field[1])))
    else:
        raise LinkError("a link is a text such as \"delay=5ms\" or an object, not %r" % (value,))
    if not any(out.values()):
        return None
    return out


def delay_ns(link):
    return (link or {}).get("delay_ns") or 0.0


def same(a, b):
    """Whether two links are the same conditions (no link and a link of zeros are the same)."""
    return key(a) == key(b)


def key(link):
    """A hashable, comparable form of a link (for grouping rows)."""
    return tuple(round((link or {}).get(k) or 0.0, 3) for _, _, _, k in FIELDS)


def distance(a, b):
    """How far apart two links are, for choosing the nearest: the delay first, then the jitter,
    then whether the rate differs."""
    da, db = a or {}, b or {}
    return (abs(delay_ns(a) - delay_ns(b)), abs((da.get("jitter_ns") or 0) - (db.get("jitter_ns") or 0)),
            0 if (da.get("rate_bps") or 0) == (db.get("rate_bps") or 0) else 1)


def flag(link):
    """The `--link` text for these conditions ("delay=5ms,rate=100mbit"), or None for no link."""
    if not link:
        return None
    parts = []
    for name, _, _, k in FIELDS:
        v = link.get(k)
        if not v:
            continue
        if k == "rate_bps":
            parts.append("%s=%gmbit" % (name, v / 1e6) if v >= 1e6 else "%s=%gkbit" % (name, v / 1e3)
                         if v >= 1e3 else "%s=%gbit" % (name, v))
        elif v >= 1e6:
            parts.append("%s=%gms" % (name, v / 1e6))
        else:
            parts.append("%s=%gus" % (name, v / 1e3))
    return ",".join(parts)


def describe(link):
    """One phrase: "no link (nodes reached directly)" or "delay 5 ms, jitter 1 ms, rate 100 Mbit/s"."""
    if not link:
        return "no link (nodes reached directly)"
    bits = []
    if link.get("delay_ns"):
        bits.append("delay %s" % S.fmt_time_ns(link["delay_ns"]))
    if link.get("jitter_ns"):
        bits.append("jitter %s" % S.fmt_time_ns(link["jitter_ns"]))
    if link.get("rate_bps"):
        bits.append("rate %s bit/s" % S.fmt_count(link["rate_bps"]))
    return ", ".join(bits)
