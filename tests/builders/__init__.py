"""Builders and helpers shared by test modules: imported from here, never from another test
module. `otlp` (requests, POSTs, waiting for rows), `processes` (ports, a collector process),
`rows` (event, verdict and alert rows inserted straight into a database), `slos` (SLO
documents)."""
