"""NumPy float64 reference implementations of the ops under test and of the whole BERT model; imports no MXNet,
shares no code with the paths."""

from perfsuite.reference.bert import forward
from perfsuite.reference.ops import (ZERO_LENGTH_MODES, encdec_qk, encdec_valatt, fully_connected, gelu_erf,
                                     gelu_tanh, layer_norm, selfatt_qk, selfatt_valatt, softmax)

__all__ = [
    "ZERO_LENGTH_MODES",
    "encdec_qk",
    "encdec_valatt",
    "forward",
    "fully_connected",
    "gelu_erf",
    "gelu_tanh",
    "layer_norm",
    "selfatt_qk",
    "selfatt_valatt",
    "softmax",
]
