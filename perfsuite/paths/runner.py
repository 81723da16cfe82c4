"""The interface every prepared deployment path has (perfsuite.paths.model's MXNet paths and
perfsuite.paths.onnx's ONNX Runtime ones): a Runner called with a batch returns NumPy outputs. Here, below both, so
that neither imports the other to get it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from perfsuite import flags as pflags
from perfsuite.errors import PerfsuiteInputError

__all__ = ["INPUT_NAMES", "Runner", "to_outputs", "nd_inputs"]

#: The exported graph's inputs, as deploy.py names and feeds them (token ids, token types, valid length; float32).
INPUT_NAMES = ("data0", "data1", "data2")


@dataclass
class Runner:
    """A prepared path of one task graph: call it with a batch, get NumPy outputs (synchronized)."""

    path: str
    block: Any
    ctx: Any
    dtype: str
    flags: Dict[str, str] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)  # e.g. fused node counts, quantization settings
    task: str = "classification"

    def inputs(self, token_ids: np.ndarray, token_types: np.ndarray, valid_length: np.ndarray) -> List[Any]:
        """The batch as MXNet arrays on the runner's context, as deploy.py feeds them: ids and types float32, the
        valid length in the model's dtype (kept out of timed regions)."""
        return nd_inputs((token_ids, token_types, valid_length), self.ctx, self.dtype)

    def forward(self, nd_inputs: Sequence[Any]) -> Any:
        """One forward pass on prepared inputs, waited for (the engine is asynchronous)."""
        import mxnet as mx

        with pflags.mxnet_flags(**self.flags):
            out = self.block(*nd_inputs)
            mx.nd.waitall()
        return out

    def __call__(self, token_ids: np.ndarray, token_types: np.ndarray, valid_length: np.ndarray) -> Dict[str, np.ndarray]:
        return to_outputs(self.forward(self.inputs(token_ids, token_types, valid_length)), self.task, valid_length)


def nd_inputs(batch: Tuple[np.ndarray, np.ndarray, np.ndarray], ctx: Any, dtype: str = "float32") -> List[Any]:
    import mxnet as mx

    return [mx.nd.array(batch[0], ctx=ctx, dtype="float32"), mx.nd.array(batch[1], ctx=ctx, dtype="float32"),
            mx.nd.array(batch[2], ctx=ctx, dtype=dtype)]


def to_outputs(out: Any, task: str, valid_length: Any) -> Dict[str, np.ndarray]:
    """A task graph's single output as float64 NumPy under the convention's name (plus the mean embedding)."""
    from perfsuite.models import outputs_dict

    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise PerfsuiteInputError(f"a {task} graph must return one output; got {len(out)}")
        out = out[0]
    return {k: v.astype(np.float64) for k, v in outputs_dict(out, task, valid_length).items()}
