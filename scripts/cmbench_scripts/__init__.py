"""Python side of cmbench: reading reports, charts, the HTML page and advice.

Modules:
  report_io  load, validate and normalise reports (schema upgrades), atomic writes
  results    one measured point per (workload, model, params), figures of merit, CIs, speedups
  style      colours per family, line styles per variant, number formatting
  charts     matplotlib figures (Agg), returned as Chart objects; never writes files itself
  html       the self-contained HTML page
  advice     ranking models for a project profile, with evidence and missing-run commands
  cli        shared command-line plumbing (one-line errors, exit status 2 on bad input)
"""

SUPPORTED_SCHEMA_VERSION = 1
