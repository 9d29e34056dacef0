"""Python side of cmbench: reading reports, charts, the HTML page and advice.

Modules:
  report_io  load, validate and normalise reports (older versions with --facts), atomic writes
  results    the reports' facts (models, workloads), one measured point per (workload, model,
             params), figures of merit, CIs, speedups
  link       network link conditions (cmbench run --link): read, compared, written back
  style      a distinct colour, line style and marker per model from the facts; number formatting
  charts     matplotlib figures (Agg), returned as Chart objects; never writes files itself
  html       the self-contained HTML page
  advice     ranking models for a project profile, with evidence and missing-run commands
  cli        shared command-line plumbing (one-line errors, exit status 2 on bad input)
"""

# cmbench's report format (context.cmbench_schema_version; before 2, context.json_schema_version,
# which Google Benchmark's tools need to be 1 and which stays 1 from 2 on).
SUPPORTED_SCHEMA_VERSION = 2
# The oldest format read: 1 lacks the facts in context (models, workloads), which are then taken
# from `cmbench list --json` (--facts FILE); 0 is refused.
OLDEST_SCHEMA_VERSION = 1
