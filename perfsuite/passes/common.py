"""Names shared by the pass library's modules: the passes perfsuite's library registers, the child process's
limits and status, what mx.library.load accepts."""

from __future__ import annotations

import os
from typing import Union

__all__ = ["IDENTITY_PASS", "DROP_BIAS_PASS", "CRASH_PASS", "HANG_PASS", "PASS_NAMES", "GLUONNLP_FFN_NAME",
           "DEFAULT_PASS_TIMEOUT_S", "DEFAULT_STARTUP_TIMEOUT_S", "LIB_SUFFIXES", "CHILD_INPUT_ERROR_STATUS",
           "PathLike"]

PathLike = Union[str, "os.PathLike[str]"]

IDENTITY_PASS = "perfsuite_identity_rewrite"
DROP_BIAS_PASS = "perfsuite_drop_bias"
CRASH_PASS = "perfsuite_crash"
HANG_PASS = "perfsuite_hang"
#: Every pass the library registers, in registration order.
PASS_NAMES = (IDENTITY_PASS, DROP_BIAS_PASS, CRASH_PASS, HANG_PASS)
#: The nodes the library rewrites: GluonNLP 0.10's name for layer N's first FFN FullyConnected.
GLUONNLP_FFN_NAME = "bertencoder0_transformer{layer}_positionwiseffn0_ffn_1_fwd"
#: How long :func:`apply_passes_isolated` lets the child load the library, apply the passes and save the
#: result before calling the library hung.
DEFAULT_PASS_TIMEOUT_S = 300.0
#: How long it lets the child start Python, import mxnet and read the model before that.
DEFAULT_STARTUP_TIMEOUT_S = 300.0
LIB_SUFFIXES = (".so", ".dll")  # what mx.library.load accepts
#: The child's exit status for a clean failure it reports as an input error (MX_FAIL, unknown pass, ...).
CHILD_INPUT_ERROR_STATUS = 2
