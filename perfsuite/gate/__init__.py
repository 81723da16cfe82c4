"""The upgrade gate (`perfsuite gate`, `explain`, `bisect`): baseline and candidate MXNet in isolated environments
(venvs), one worker process per side (worker: the child; driver: the parent's handle on it), what the gate is asked
(options), sessions of counterbalanced pairs (gate) planned from the measured noise (plan), the three-outcome
verdict (verdict), the human summary (summary), the search for the release or op that regressed (explain) and the
measurement of the gate itself (calibration)."""
