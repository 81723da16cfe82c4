"""Whole-model inference paths: the ways users deploy GluonNLP BERT on MXNet, each prepared once and run many times.

`prepare(path, cfg, weights, ...)` does all the work a deployment does before serving (build, hybridize, export,
re-import, partition, quantize, apply graph passes) and returns a `Runner`; calling the runner is one synchronized
forward pass that returns NumPy outputs. Parity checks and (later) timings use the same runners, so what is
checked is what is measured.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite import env as _env, flags as pflags
from perfsuite.errors import PerfsuiteInputError
from perfsuite.passes import apply_passes_isolated, load_pass_library
from perfsuite.paths.naive_bert import build_naive_bert
from perfsuite.paths.onnx import CACHE_ENV, onnx_cache_key, prepare_onnxruntime, skip_reason_onnx
from perfsuite.paths.runner import INPUT_NAMES, Runner, nd_inputs, to_outputs
from perfsuite.weights import BertConfig, CONFIGS, Weights

__all__ = ["MODEL_PATHS", "PathSpec", "Runner", "prepare", "skip_reason_path", "to_outputs", "count_ops",
           "check_selection", "INPUT_NAMES", "INT8_CONFIGS", "INT8_DEFAULT"]



@dataclass(frozen=True)
class PathSpec:
    """One deployment path: what it is, what it needs, and how it is judged."""

    name: str
    doc: str
    device: str = "cpu"
    dtype: str = "float32"
    flags: Tuple[Tuple[str, str], ...] = ()
    min_version: str = "1.6.0"
    needs_mkldnn: bool = False
    judged_by: str = "tolerance"  # "tolerance" (elementwise bound) or "agreement" (INT8)


MODEL_PATHS: Dict[str, PathSpec] = {
    p.name: p
    for p in (
        PathSpec("imperative", "GluonNLP BERTModel run imperatively (no graph)"),
        PathSpec("hybridized", "hybridize(static_alloc=True, static_shape=True), as the seed's script"),
        PathSpec("exported", "hybridized, export()ed to JSON + params, re-imported with SymbolBlock.imports"),
        PathSpec("naive_attention", "same weights, separate Q/K/V projections + batch_dot + masked softmax (the "
                                    "ablation baseline of the interleaved attention)"),
        PathSpec("onednn", "exported graph partitioned with optimize_for(backend='MKLDNN'); fused _sg_mkldnn_* "
                           "nodes are counted and required", min_version="1.7.0", needs_mkldnn=True),
        PathSpec("int8", "oneDNN INT8: quantize_net with naive calibration; judged by agreement with FP32",
                 min_version="1.7.0", needs_mkldnn=True, judged_by="agreement"),
        PathSpec("graph_pass", "exported symbol rewritten by a custom graph-pass library (optimize_for(pass))",
                 min_version="1.7.0"),
        PathSpec("onnxruntime", "exported graph converted by MXNet's ONNX exporter (mx.onnx.export_model, opset 13 "
                                "pinned) and run by onnxruntime.InferenceSession, CPUExecutionProvider "
                                "(perfsuite.paths.onnx)", min_version="1.9.0"),
        PathSpec("onnxruntime_int8", "the onnxruntime path's ONNX model quantized by ONNX Runtime's own "
                                     "quantize_dynamic (INT8 weights, dynamic activations), CPUExecutionProvider; "
                                     "judged by agreement with FP32", judged_by="agreement",
                 min_version="1.9.0"),
        PathSpec("gpu_fp32", "hybridized on mx.gpu(0), FP32", device="gpu"),
        PathSpec("gpu_fp16", "cast('float16') on GPU with MXNET_SAFE_ACCUMULATION=1 (FP32 accumulation)",
                 device="gpu", dtype="float16", flags=(("MXNET_SAFE_ACCUMULATION", "1"), ("MXNET_FC_TRUE_FP16", "0"))),
        PathSpec("gpu_fp16_unsafe", "cast('float16') on GPU, MXNET_SAFE_ACCUMULATION=0", device="gpu",
                 dtype="float16", flags=(("MXNET_SAFE_ACCUMULATION", "0"),)),
        PathSpec("gpu_fp16_true", "cast('float16') on GPU, MXNET_FC_TRUE_FP16=1 and safe accumulation (the seed's "
                                  "fastest setting)", device="gpu", dtype="float16",
                 flags=(("MXNET_FC_TRUE_FP16", "1"), ("MXNET_SAFE_ACCUMULATION", "1")), min_version="1.7.0"),
        PathSpec("gpu_fp16_nofusion", "as gpu_fp16 with pointwise fusion off (MXNET_USE_FUSION=0)", device="gpu",
                 dtype="float16", flags=(("MXNET_SAFE_ACCUMULATION", "1"), ("MXNET_USE_FUSION", "0"))),
        PathSpec("gpu_onnxruntime", "the onnxruntime path's ONNX model on ONNX Runtime's CUDAExecutionProvider "
                                    "(needs onnxruntime-gpu), FP32", device="gpu", min_version="1.9.0"),
    )
}


#: INT8 quantization recipes (mxnet.contrib.quantization.quantize_net_v2 settings). "gluonnlp" calibrates with
#: GluonNLP 0.10's own BertLayerCollector (calib_mode 'customize': min/max per layer output, GELU outputs clipped
#: at 10 and LayerNorm outputs at -50, GluonNLP's BERT INT8 recipe), which finds its layers by GluonNLP's node names.
#: The default is the best configuration that meets the INT8 task criterion (perfsuite.parity.int8_task), chosen by
#: `python -m perfsuite.studies.int8_study` (README: INT8).
INT8_CONFIGS: Dict[str, Dict[str, Any]] = {
    "smart-channel-naive": dict(quantize_mode="smart", quantize_granularity="channel-wise", calib_mode="naive"),
    "smart-channel-entropy": dict(quantize_mode="smart", quantize_granularity="channel-wise", calib_mode="entropy"),
    "smart-tensor-naive": dict(quantize_mode="smart", quantize_granularity="tensor-wise", calib_mode="naive"),
    "full-channel-naive": dict(quantize_mode="full", quantize_granularity="channel-wise", calib_mode="naive"),
    "smart-channel-gluonnlp": dict(quantize_mode="smart", quantize_granularity="channel-wise",
                                   calib_mode="customize", collector=(-50.0, 10.0)),
    "full-channel-gluonnlp": dict(quantize_mode="full", quantize_granularity="channel-wise",
                                  calib_mode="customize", collector=(-50.0, 10.0)),
    "smart-channel-naive-fp32-ffn2": dict(quantize_mode="smart", quantize_granularity="channel-wise",
                                          calib_mode="naive", exclude_layers_match=["ffn_2"]),
}
INT8_DEFAULT = "smart-channel-gluonnlp"


def skip_reason_path(path: str, info: Optional[_env.EnvInfo] = None) -> Optional[str]:
    """Why `path` cannot run on this installation, naming what is missing; None when it can."""
    spec = _spec(path)
    if path in ONNX_PATHS:

        reason = skip_reason_onnx(path)
        if reason:
            return reason
    info = info or _env.collect_env()
    if spec.device == "gpu":
        reason = _env.skip_reason_gpu(info)
        if reason:
            return reason
    if not _env.mxnet_at_least(spec.min_version, info):
        return (f"needs MXNet >= {spec.min_version} for the {path} path; found "
                f"{info.mxnet_distribution} {info.mxnet_dist_version}")
    if spec.needs_mkldnn:
        reason = _env.skip_reason_mkldnn(info)
        if reason:
            return reason
    return None


def check_selection(model: str, path: str, batch: int, seq_len: int) -> None:
    """Validate a (model, path, batch size, sequence length) choice, naming the bad value and what is allowed."""

    if model not in CONFIGS:
        raise PerfsuiteInputError(f"unknown model {model!r}; allowed: {', '.join(CONFIGS)}")
    _spec(path)
    if not isinstance(batch, int) or batch < 1:
        raise PerfsuiteInputError(f"batch size {batch!r}: must be a positive integer")
    max_len = CONFIGS[model].max_length
    if not isinstance(seq_len, int) or not 2 <= seq_len <= max_len:
        raise PerfsuiteInputError(f"sequence length {seq_len!r}: allowed 2 <= seq_len <= {max_len}")


#: The ONNX Runtime path that stands in for an MXNet path when the gate's candidate is ONNX Runtime (a migration
#: off MXNet): the deployed graph (export() + SymbolBlock.imports, as GluonNLP's deploy.py) -> that graph exported
#: to ONNX and run by ORT; MXNet's oneDNN INT8 -> ORT's own dynamic INT8 of the export; GPU FP32 -> ORT's CUDA
#: provider. MXNet-only paths (naive attention, oneDNN FP32 fusion, graph passes, FP16 variants) have none.
ORT_COUNTERPARTS: Dict[str, str] = {"exported": "onnxruntime", "int8": "onnxruntime_int8",
                                    "gpu_fp32": "gpu_onnxruntime"}

#: the paths served by ONNX Runtime from MXNet's ONNX export (perfsuite.paths.onnx; the `onnx` extra). They need
#: MXNet >= 1.9.0: 1.8's exporter (mx.contrib.onnx) has no translation for Embedding, LayerNorm, SequenceMask,
#: _contrib_arange_like or the interleaved attention operators, so it cannot export BERT.
ONNX_PATHS = ("onnxruntime", "onnxruntime_int8", "gpu_onnxruntime")


def _spec(path: str) -> PathSpec:
    if path not in MODEL_PATHS:
        raise PerfsuiteInputError(f"unknown path {path!r}; allowed: {', '.join(MODEL_PATHS)}")
    return MODEL_PATHS[path]


def count_ops(symbol_json: str, prefix: str) -> Dict[str, int]:
    """How many nodes of each op whose name starts with `prefix` a symbol JSON holds."""
    counts: Dict[str, int] = {}
    for node in json.loads(symbol_json)["nodes"]:
        if node["op"].startswith(prefix):
            counts[node["op"]] = counts.get(node["op"], 0) + 1
    return counts


def _example(cfg: BertConfig, batch: int = 2, seq_len: int = 8) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed example batch to trace graphs (values do not matter; deploy.py traces with arange ids)."""
    ids = np.full((batch, seq_len), 1, dtype=np.int32)
    return ids, np.zeros_like(ids), np.full((batch,), seq_len, dtype=np.int32)


def _export_and_import(block: Any, example: List[Any], workdir: str, name: str, ctx: Any) -> Tuple[Any, str]:
    """Run once, export JSON + params, re-import as a SymbolBlock (the seed's deploy flow)."""
    import mxnet as mx

    block(*example)
    mx.nd.waitall()
    prefix = os.path.join(workdir, name)
    block.export(prefix, epoch=0)
    sym_file, params_file = prefix + "-symbol.json", prefix + "-0000.params"
    imported = mx.gluon.SymbolBlock.imports(sym_file, list(INPUT_NAMES), params_file, ctx=ctx)
    with open(sym_file) as fh:
        return imported, fh.read()


def prepare(path: str, cfg: BertConfig, weights: Weights, workdir: Optional[str] = None,
            **kwargs: Any) -> Runner:
    """Build `path` of the task's graph for (cfg, weights) (`_prepare`). Without `workdir`, the exported graph,
    parameters and ONNX files go to a temporary folder that lives as long as the runner and is removed with it
    (or at exit): BERT-base leaves 0.4-1.3 GB there per prepared path."""
    if workdir is not None:
        return _prepare(path, cfg, weights, workdir=workdir, **kwargs)
    import shutil
    import weakref

    tmp = tempfile.mkdtemp(prefix=f"perfsuite-{path}-")
    try:
        runner = _prepare(path, cfg, weights, workdir=tmp, **kwargs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    weakref.finalize(runner, shutil.rmtree, tmp, True)
    return runner


def _quantize_int8(block: Any, calib_batches: Optional[Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]]],
                   int8_config: Optional[str], ctx: Any, info: Dict[str, Any]) -> Any:
    """The int8 path: quantize_net_v2 on the hybridized FP32 block, calibrated on `calib_batches` (the INT8
    configuration's settings), checked to hold quantized nodes; what was done goes into `info`."""
    import mxnet as mx

    from mxnet.contrib.quantization import quantize_net_v2

    assert calib_batches  # checked by _prepare
    arrays = [np.concatenate([b[i] for b in calib_batches]) for i in range(3)]
    dataset = mx.gluon.data.ArrayDataset(*[mx.nd.array(a, dtype="float32") for a in arrays])
    loader = mx.gluon.data.DataLoader(dataset, batch_size=len(calib_batches[0][0]))
    name = int8_config or INT8_DEFAULT
    if name not in INT8_CONFIGS:
        raise PerfsuiteInputError(f"unknown INT8 configuration {name!r}; allowed: {', '.join(INT8_CONFIGS)}")
    settings = dict(INT8_CONFIGS[name])
    collector = settings.pop("collector", None)
    kwargs: Dict[str, Any] = {}
    if collector is not None:
        from gluonnlp.calibration import BertLayerCollector

        kwargs["LayerOutputCollector"] = BertLayerCollector(clip_min=collector[0], clip_max=collector[1])
    block = quantize_net_v2(block, quantized_dtype="auto", calib_data=loader,
                            num_calib_examples=len(arrays[0]), ctx=ctx, **settings, **kwargs)
    block.hybridize(static_alloc=True, static_shape=True)
    quantized = count_ops(block._cached_graph[1].tojson(), "")
    info["quantized_nodes"] = {k: v for k, v in quantized.items() if "quantize" in k}
    if not info["quantized_nodes"]:
        raise PerfsuiteInputError("quantize_net_v2 returned a graph without quantized nodes: INT8 did not run")
    info["int8_config"] = name
    info["quantization"] = (f"{name}: quantize_net_v2({', '.join(f'{k}={v!r}' for k, v in settings.items())}"
                            f"{', GluonNLP BertLayerCollector(clip_min=%g, clip_max=%g)' % collector if collector else ''}"
                            f", {len(arrays[0])} calibration sentences)")
    return block


def _graph_pass_block(ex_np: Tuple[np.ndarray, np.ndarray, np.ndarray], workdir: str, ctx: Any,
                      pass_library: Optional[str], passes: Sequence[str], pass_timeout_s: Optional[float],
                      info: Dict[str, Any]) -> Any:
    """The graph_pass path: the exported graph (bert-symbol.json in `workdir`) through the user's pass library in a
    child process, loaded back as a SymbolBlock with its parameters; what was done goes into `info`."""
    import mxnet as mx

    assert pass_library and passes  # checked by _prepare before exporting
    b, L = ex_np[0].shape
    # the user's library is loaded and applied in a child process: a crash or a hang there is a verdict
    # (PassLibraryCrashed names the signal and the library), not the end of perfsuite
    res = apply_passes_isolated(os.path.join(workdir, "bert-symbol.json"),
                                os.path.join(workdir, "bert-0000.params"), pass_library, list(passes),
                                {"data0": (b, L), "data1": (b, L), "data2": (b,)},
                                os.path.join(workdir, "bert-passed"),
                                **({"timeout_s": pass_timeout_s} if pass_timeout_s else {}))
    sym = mx.sym.load(str(res.symbol_file))
    params = mx.nd.load(str(res.params_file))
    try:
        block = mx.gluon.SymbolBlock(sym, [mx.sym.var(n) for n in INPUT_NAMES])
    except mx.base.MXNetError:  # the pass left ops of the library's own: run them with it loaded here

        load_pass_library(pass_library)
        block = mx.gluon.SymbolBlock(sym, [mx.sym.var(n) for n in INPUT_NAMES])
    block_params = block.collect_params()
    for key, value in params.items():
        name = key.split(":", 1)[1] if ":" in key else key
        if name in block_params:
            block_params[name]._load_init(value, ctx)
    info["passes"] = list(passes)
    info["pass_library"] = str(pass_library)
    info["pass_child_seconds"] = round(res.wall_seconds, 3)
    info["pass_nodes"] = {"before": res.nodes_before, "after": res.nodes_after}
    return block


def _prepare(path: str, cfg: BertConfig, weights: Weights, workdir: str,
            calib_batches: Optional[Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]]] = None,
            pass_library: Optional[str] = None, passes: Sequence[str] = (),
            example: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
            onednn_backend: str = "MKLDNN", task: str = "classification",
            pass_timeout_s: Optional[float] = None, int8_config: Optional[str] = None) -> Runner:
    """Build `path` of the task's graph for (cfg, weights): everything a deployment does before serving (the seed's
    deploy.py flow); raises if it cannot."""
    import mxnet as mx

    from perfsuite.models import build_gluonnlp_bert

    spec = _spec(path)
    reason = skip_reason_path(path)
    if reason:
        raise PerfsuiteInputError(f"path {path!r} cannot run here: {reason}")
    ctx = mx.gpu(0) if spec.device == "gpu" else mx.cpu()
    flags = dict(spec.flags)
    ex_np = example or _example(cfg)

    def nd(batch: Tuple[np.ndarray, np.ndarray, np.ndarray], dtype: str = "float32") -> List[Any]:
        return nd_inputs(batch, ctx, dtype)

    info: Dict[str, Any] = {"doc": spec.doc}
    with pflags.mxnet_flags(**flags):  # bind-time flags (MXNET_USE_FUSION) must be set while graphs are built
        if path == "naive_attention":
            block = build_naive_bert(cfg, weights, ctx=ctx, task=task)
            block.hybridize(static_alloc=True, static_shape=True)
        else:
            block = build_gluonnlp_bert(cfg, weights, task=task, ctx=ctx)
        if path in ("imperative", "naive_attention"):
            pass
        elif path in ("hybridized", "gpu_fp32"):
            block.hybridize(static_alloc=True, static_shape=True)
        elif path == "exported":
            block.hybridize(static_alloc=True, static_shape=True)
            block, _ = _export_and_import(block, nd(ex_np), workdir, "bert", ctx)
        elif path == "onednn":
            block.hybridize(static_alloc=True, static_shape=True)
            block.optimize_for(*nd(ex_np), backend=onednn_backend)
            block, sym_json = _export_and_import(block, nd(ex_np), workdir, "bert-onednn", ctx)
            fused = count_ops(sym_json, "_sg_mkldnn")
            info["fused_nodes"] = fused
            if not fused:
                raise PerfsuiteInputError(
                    f"optimize_for(backend={onednn_backend!r}) fused nothing: the exported graph has no _sg_mkldnn_* node "
                    "(MXNet only logs an unknown backend and returns the graph unchanged); the oneDNN path did not run")
        elif path == "int8":
            if not calib_batches:
                raise PerfsuiteInputError("the int8 path needs calibration batches (calib_batches)")
            block.hybridize(static_alloc=True, static_shape=True)
            block = _quantize_int8(block, calib_batches, int8_config, ctx, info)
        elif path == "graph_pass":
            if not pass_library or not passes:
                raise PerfsuiteInputError("the graph_pass path needs a pass library and at least one pass name")
            block.hybridize(static_alloc=True, static_shape=True)
            _export_and_import(block, nd(ex_np), workdir, "bert", ctx)
            block = _graph_pass_block(ex_np, workdir, ctx, pass_library, passes, pass_timeout_s, info)
        elif path in ONNX_PATHS:

            cache_dir = os.environ.get(CACHE_ENV) or None
            key = onnx_cache_key(path, cfg, weights, task, int8_config) if cache_dir else None
            return prepare_onnxruntime(path, block, nd(ex_np), workdir, task, info, int8_config=int8_config,
                                       cache_dir=cache_dir, cache_key=key)
        elif path.startswith("gpu_fp16"):
            block.cast("float16")
            block.hybridize(static_alloc=True, static_shape=True)
        else:  # pragma: no cover - MODEL_PATHS and this function are kept in step by tests
            raise PerfsuiteInputError(f"path {path!r} has no preparation")
    info["task"] = task
    return Runner(path, block, ctx, spec.dtype, flags, info, task)
