"""Measurement tooling, apart from the chapter's code: ``python -m d2lstyle.benchmark`` runs
:mod:`d2lstyle.benchmark.harness`; docs/performance.md has what it measured."""
