"""asv benchmarks of perfsuite (see asv.conf.json and the README's asv section).

Thin classes over perfsuite.workloads (what to run) and perfsuite.bench (how to prepare and call it), so asv,
`pytest --benchmark` and `perfsuite run` time the same callables. Modules import no MXNet at import time:
asv imports them once per environment to discover the benchmarks.
"""
