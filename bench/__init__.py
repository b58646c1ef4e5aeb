"""Kernel benchmarks: the cases both harnesses time (``bench.cases``), the one timer
(``bench.timing``) and input generator (``bench.inputs``) every kernel script shares,
the asv suite (``bench.benchmarks``) and the history tables the site draws from asv's
and pytest-benchmark's results (``bench.history``)."""
