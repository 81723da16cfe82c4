"""Where a whole-model case departs from the float64 reference, layer by layer: the exported task graph run with
its intermediate values as outputs (GluonNLP's node names) and each compared with the NumPy reference's own
intermediate value under the twin-based bound. Used by `perfsuite explain --parity` in the gate's worker processes
(perfsuite.gate.worker's "trace" request), so it imports nothing of the driver's side."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any, Dict, List, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity import tolerance as tl
from perfsuite.parity.model import ModelCase, make_batch, model_weights
from perfsuite.paths.model import INPUT_NAMES, prepare
from perfsuite.reference.bert import forward, trace_points

__all__ = ["TRACE_NODES", "parse_model_case_id", "trace_case"]

#: Reference trace point -> GluonNLP's node in the exported graph (its output), and the operator that produced it.
TRACE_NODES: Dict[str, Tuple[str, str]] = {
    "embeddings.ln": ("bertencoder0_layernorm0_layernorm0_output", "LayerNorm (embeddings)"),
    "attn.ln": ("bertencoder0_transformer{i}_layernorm0_layernorm0_output",
                "LayerNorm after self-attention (interleaved QK/softmax/valatt, FullyConnected proj)"),
    "ffn.1": ("bertencoder0_transformer{i}_positionwiseffn0_ffn_1_fwd_output", "FullyConnected (FFN 1)"),
    "ffn.gelu": ("bertencoder0_transformer{i}_positionwiseffn0_gelu0_leakyrelu0_output", "LeakyReLU(act_type='gelu')"),
    "ffn.ln": ("bertencoder0_transformer{i}_positionwiseffn0_layernorm0_layernorm0_output",
               "LayerNorm after the FFN (FullyConnected FFN 2)"),
}
_CASE_RE = re.compile(r"^(?:model:)?(?P<model>.+)-(?P<path>[a-z0-9_]+)-(?P<task>classification|qa|embedding)"
                      r"-b(?P<batch>\d+)-L(?P<seq>\d+)-(?P<inputs>random|text)-s(?P<seed>\d+)$")



def parse_model_case_id(case_id: str) -> Any:
    """'model:small-exported-embedding-b4-L64-random-s0' -> ModelCase."""

    m = _CASE_RE.match(case_id)
    if not m:
        raise PerfsuiteInputError(f"case {case_id!r} is not a whole-model case id such as "
                                  "model:small-exported-embedding-b4-L64-random-s0 (see perfsuite parity --model ... --list)")
    return ModelCase(m["model"], m["path"], int(m["batch"]), int(m["seq"]), m["inputs"], int(m["seed"]), m["task"])


def _point_node(point: str) -> Tuple[str, str]:
    if point == "embeddings.ln":
        return TRACE_NODES[point]
    layer, _, kind = point.partition(".")
    node, op = TRACE_NODES[kind]
    return node.format(i=int(layer[len("layer"):])), op


def trace_case(case_id: str) -> List[Dict[str, Any]]:
    """Run the case's exported task graph with its intermediate values as outputs and compare each with the
    NumPy reference's (valid positions only; bound: 16x the float32 twin's error per sentence + 8 ulps)."""
    import mxnet as mx

    case = parse_model_case_id(case_id)
    cfg, weights = case.cfg, model_weights(case.model)
    batch = make_batch(case)
    work = tempfile.mkdtemp(prefix="perfsuite-trace-")
    try:  # the exported files are needed only until they are loaded
        runner = prepare("exported", cfg, weights, task=case.task, workdir=work)
        sym = mx.sym.load(os.path.join(work, "bert-symbol.json"))
        params = mx.nd.load(os.path.join(work, "bert-0000.params"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    internals = sym.get_internals()
    names = set(internals.list_outputs())
    points = [p for p in trace_points(cfg) if _point_node(p)[0] in names]
    if not points:
        raise PerfsuiteInputError(f"the exported graph of {case_id} has none of GluonNLP's node names to trace")
    group = mx.sym.Group([internals[_point_node(p)[0]] for p in points])
    net = mx.gluon.SymbolBlock(group, [mx.sym.var(n) for n in INPUT_NAMES])
    mine = net.collect_params()
    for key, value in params.items():
        name = key.split(":", 1)[1] if ":" in key else key
        if name in mine:
            mine[name]._load_init(value, runner.ctx)
    outs = net(*runner.inputs(*batch))
    outs = [outs] if not isinstance(outs, (list, tuple)) else outs
    ref_t: Dict[str, np.ndarray] = {}
    twin_t: Dict[str, np.ndarray] = {}
    forward(cfg, weights, *batch, dtype="float64", trace=ref_t)
    forward(cfg, weights, *batch, dtype="float32", trace=twin_t)
    valid = np.arange(batch[0].shape[1])[None, :] < batch[2][:, None]  # (B, L)
    entry, u = tl.MODEL_TOLERANCES["float32"], tl.UNIT_ROUNDOFF["float32"]
    rows = []
    for p, o in zip(points, outs):
        a = o.asnumpy().astype(np.float64).swapaxes(0, 1)  # the encoder works in (L, B, ...)
        r, t = ref_t[p].astype(np.float64), twin_t[p].astype(np.float64)
        m = valid[..., None]
        err = np.where(m, np.abs(a - r), 0.0)
        twin_err = np.where(m, np.abs(t - r), 0.0).reshape(r.shape[0], -1).max(axis=1)
        scale = np.where(m, np.abs(r), 0.0).reshape(r.shape[0], -1).max(axis=1)
        bound = entry.factor * twin_err + entry.floor_ulps * u * scale
        worst = err.reshape(r.shape[0], -1).max(axis=1) / np.maximum(bound, 1e-300)
        node, op = _point_node(p)
        rows.append({"point": p, "node": node, "operator": op, "worst_ratio": float(worst.max()),
                     "max_abs_error": float(err.max()), "passed": bool(np.all(worst <= 1.0))})
    return rows
