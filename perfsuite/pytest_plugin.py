"""perfsuite's pytest plugin: markers, hypothesis profiles, the environment header and skip helpers.

Loaded with `-p perfsuite.pytest_plugin` (pyproject's addopts), so it is active before options are parsed.
"""

from __future__ import annotations

import os
from typing import Optional

import pytest

__all__ = ["skip_unless_runnable"]

MARKERS = {
    "gpu": "needs a CUDA build of MXNet and a visible GPU; skipped with the exact reason elsewhere",
    "parity": "numerical parity of an MXNet path against the float64 NumPy reference",
    "slow": "takes more than a few seconds on a 2-core machine",
}


def _register_hypothesis_profiles() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is a dependency; tolerate its absence in foreign environments
        return
    # CI: derandomized (same examples every run), no deadline (MXNet's first call per shape is slow),
    # no example database (a fresh checkout must behave like any other).
    settings.register_profile("perfsuite-ci", derandomize=True, deadline=None, database=None,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("perfsuite-dev", deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("PERFSUITE_HYPOTHESIS_PROFILE")
                          or ("perfsuite-ci" if os.environ.get("CI") else "perfsuite-dev"))


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    _register_hypothesis_profiles()


def pytest_report_header(config: pytest.Config) -> str:
    try:
        from perfsuite.env import collect_env

        info = collect_env()
        feats = ",".join(k for k in ("CUDA", "CUDNN", "MKLDNN", "BLAS_MKL", "BLAS_OPEN") if info.features.get(k))
        from hypothesis import settings

        return (f"perfsuite: {info.mxnet_distribution} {info.mxnet_dist_version} (mx {info.mxnet_version}; "
                f"{feats or 'no CUDA/MKLDNN'}), gpus={info.num_gpus}, gluonnlp {info.gluonnlp_version}, "
                f"numpy {info.numpy_version}, hypothesis profile {settings._current_profile}")
    except Exception as exc:  # the header must never break a run
        return f"perfsuite: environment not readable ({exc})"


def skip_unless_runnable(reason: Optional[str]) -> None:
    """pytest.skip(reason) when reason is set; reasons come from perfsuite.env / perfsuite.parity.skip_reason."""
    if reason:
        pytest.skip(reason)
