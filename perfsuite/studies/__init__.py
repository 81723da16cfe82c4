"""Benchmarks, not tests: one-off studies the README quotes, each a `python -m perfsuite.studies.<name>` tool
(int8_study: INT8 recipes; timer_check: perfsuite's timer against a hand loop; gate_speed: the gate against a
user's process; duet_check: the gate's sequential pairs against a duet design; virtual_gate: the gate's planner
and decision on synthetic sessions)."""
