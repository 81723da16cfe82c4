"""perfsuite: numerical parity and latency regression suite for BERT inference on MXNet + GluonNLP 0.10."""

import importlib.util as _ilu

__version__ = "0.1.0"

if _ilu.find_spec("mxnet") is None:  # checked before anything imports mxnet, so the message is ours
    raise ImportError(
        "perfsuite needs an MXNet distribution (1.6.0 to 1.9.1) and none is installed. "
        "Install one with the extra that matches your machine: "
        "pip install 'perfsuite[cpu]' (CPU, mxnet 1.9.1) or pip install 'perfsuite[cu102]' (CUDA 10.2, e.g. a T4). "
        "Install only one: every MXNet distribution provides the same module 'mxnet'."
    )

from perfsuite.errors import PerfsuiteInputError  # noqa: E402

__all__ = ["PerfsuiteInputError", "__version__"]
