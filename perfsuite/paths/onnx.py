"""ONNX Runtime paths: the deployed task graph exported with MXNet's own ONNX exporter and served by ONNX Runtime.

This is the migration path off MXNet 1.x: a team exports the graph deploy.py exports (symbol JSON + params) with
``mx.onnx.export_model`` (MXNet 1.9.x) and serves the ONNX file with ``onnxruntime.InferenceSession``. perfsuite
prepares exactly that and runs it behind the same :class:`~perfsuite.paths.model.Runner` interface, so the ONNX
Runtime path is judged against the float64 NumPy BERT like the FP32 MXNet paths and timed by the same callables.

Facts this module relies on (read in MXNet 1.9.1's ``mxnet/onnx/mx2onnx`` and 1.8.0.post0's
``mxnet/contrib/onnx/mx2onnx``, and checked by running them):

* ``mx.onnx.export_model`` (1.9.x) has no opset argument: it exports at ``onnx.defs.onnx_opset_version()``, the
  newest opset of the *installed onnx package*, with its newest translations (opset 13), and validates the graph
  with ``onnx.checker.check_graph`` under ``onnx.checker.DEFAULT_CONTEXT`` (also the package's newest opset).
  BERT's LayerNorm is translated to ``ReduceMean`` with an ``axes`` attribute, which opset 18 removed; so with
  onnx >= 1.13 (opset >= 18; the oldest onnx with Python 3.11 wheels is 1.13) the export fails in MXNet's own
  check ("Unrecognized attribute: axes for operator ReduceMean"). With onnx 1.12.0 (opset 17; Python <= 3.10) it
  succeeds, declaring opset 17. onnx >= 1.19 removed ``onnx.mapping``, which the exporter imports (it then raises
  "Onnx and protobuf need to be installed", which is misleading).
* perfsuite therefore runs ``mx.onnx.export_model`` with the opset *pinned* (:data:`ONNX_OPSET`, 13: the newest
  opset MXNet 1.9.1 has translations for) by :func:`pinned_opset`, which sets the onnx package's default opset
  and the checker's context for the duration of the call. The exported graph is byte-identical to the one
  ``mx.onnx.export_model`` writes unpatched with onnx 1.12.0 on Python 3.10 (checked for the classification graph
  of the small model); only the declared opset differs (13 instead of 17).
* MXNet 1.8 and older have only ``mx.contrib.onnx.export_model`` (static shapes; 1.8.0.post0 has no translation
  for Embedding, LayerNorm, SequenceMask, the interleaved attention ops, _contrib_arange_like, broadcast_axis,
  stack, zeros_like): it cannot export GluonNLP BERT; :func:`export_onnx` raises its error with the list of
  untranslated op types, so each case says so.
* MXNet's exporter lists every weight as a graph input too; ONNX Runtime then cannot treat them as constants (it
  warns and names its remove_initializer_from_input.py tool). The served model has them removed
  (:func:`serve_model`); values are unchanged.
* With onnx installed, ``import mxnet`` (1.9.1) imports it (the exporter registers its translations at import);
  perfsuite itself imports onnx and onnxruntime only inside functions.

The ONNX Runtime session (:func:`session_options`): CPUExecutionProvider (CUDAExecutionProvider first for
gpu_onnxruntime), ORT_ENABLE_ALL graph optimizations, sequential execution, one inter-op thread and as many
intra-op threads as MXNet's OpenMP threads here (PERFSUITE_ORT_THREADS overrides); all recorded in Runner.info.

The pinned versions (:data:`PINNED`) are installed by perfsuite's ``onnx`` extra: ``pip install '.[onnx]'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.env import detect_omp_threads, parse_version
from perfsuite.errors import PerfsuiteInputError
from perfsuite.paths.runner import INPUT_NAMES, Runner
from perfsuite.results import write_atomic

__all__ = ["ONNX_OPSET", "PINNED", "INSTALL", "PROVIDERS", "ORT_INT8_CONFIGS", "ORT_INT8_DEFAULT",
           "OnnxRuntimeRunner", "skip_reason_onnx", "onnx_versions", "pinned_opset", "export_onnx",
           "export_block", "session_options", "make_session", "quantize_onnx", "prepare_onnxruntime", "ort_threads",
           "runner_from_onnx", "remove_initializers_from_inputs", "serve_model"]

#: The opset perfsuite exports at: the newest one MXNet 1.9.1's exporter has translations for (opset 12 and 13
#: tables in mxnet/onnx/mx2onnx/_op_translations).
ONNX_OPSET = 13

#: The versions the ONNX Runtime paths were checked with (the `onnx` extra of pyproject.toml). onnx 1.17.0: still
#: has onnx.mapping (removed in 1.19), Python 3.8-3.12 wheels, numpy >= 1.20. onnxruntime 1.22.1: Python
#: 3.10-3.13 wheels, numpy >= 1.21.6 (runs with numpy 1.23.5, which MXNet 1.x needs), opsets up to 22.
PINNED: Tuple[Tuple[str, str], ...] = (("onnx", "1.17.0"), ("onnxruntime", "1.22.1"))

#: What to install when onnx or onnxruntime is missing.
INSTALL = ("pip install '.[onnx]' in a perfsuite checkout (with its MXNet extra: '.[cpu,onnx]'; installs onnx==1.17.0 "
           "and onnxruntime==1.22.1), or pip install onnx==1.17.0 onnxruntime==1.22.1 numpy==1.23.5")

#: The execution providers of each ONNX Runtime path (perfsuite.paths.model.ONNX_PATHS).
PROVIDERS: Dict[str, Tuple[str, ...]] = {
    "onnxruntime": ("CPUExecutionProvider",),
    "onnxruntime_int8": ("CPUExecutionProvider",),
    "gpu_onnxruntime": ("CUDAExecutionProvider", "CPUExecutionProvider"),
}

#: ONNX Runtime's own INT8: onnxruntime.quantization.quantize_dynamic of the served FP32 model (weights quantized
#: offline, activations per call; no calibration). The default was chosen by the semantic-search task
#: (perfsuite.parity.int8_task, 1,500 pydoc sentences, MiniLM): nDCG@10 0.9875 for ORT's defaults (per-tensor QInt8:
#: fails the 0.99 criterion), 0.9973 per channel, 0.9940 QUInt8, 0.9970 per channel after pre-processing, which
#: also quantizes the QKV projection and was the fastest (1.97x [1.40, 2.77] vs ORT FP32 at batch 8, seq 64, on 2
#: busy cores; MXNet's INT8 was 2.72x [2.19, 3.37] vs the same ORT FP32).
ORT_INT8_CONFIGS: Dict[str, Dict[str, Any]] = {
    "dynamic-qint8": dict(weight_type="QInt8", per_channel=False, reduce_range=False),
    "dynamic-qint8-per-channel": dict(weight_type="QInt8", per_channel=True, reduce_range=False),
    "dynamic-quint8": dict(weight_type="QUInt8", per_channel=False, reduce_range=False),
    "dynamic-qint8-matmul-only": dict(weight_type="QInt8", per_channel=False, reduce_range=False,
                                      op_types_to_quantize=["MatMul"]),
    # ORT's recommended pre-processing first (quant_pre_process: ORT graph optimizations and ONNX shape inference;
    # its symbolic shape inference fails on MXNet's export, "Incomplete symbolic shape inference", so it is skipped):
    # constant-folding the interleaved QKV weight MXNet assembles in the graph lets quantize_dynamic quantize the QKV
    # projection too (24 MatMulInteger for MiniLM's 6 layers instead of 18)
    "dynamic-qint8-per-channel-preprocessed": dict(weight_type="QInt8", per_channel=True, reduce_range=False,
                                                   preprocess=True),
}
ORT_INT8_DEFAULT = "dynamic-qint8-per-channel-preprocessed"

_OPSET_LOCK = threading.Lock()


def onnx_versions() -> Dict[str, Optional[str]]:
    """Installed versions of onnx and onnxruntime (None when missing), without importing them."""
    import importlib.metadata as md

    out: Dict[str, Optional[str]] = {}
    for dist in ("onnx", "onnxruntime", "onnxruntime-gpu"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[module] is None (imports of it blocked)
        return False


def skip_reason_onnx(path: str = "onnxruntime") -> Optional[str]:
    """Why the ONNX Runtime path `path` cannot run here (what to install), or None.

    Whether this MXNet's exporter can export a task graph is not decided here: preparing the path runs the exporter
    and raises its error (MXNet 1.8 and older cannot export BERT), so each case reports it."""
    if path not in PROVIDERS:
        raise PerfsuiteInputError(f"unknown ONNX Runtime path {path!r}; allowed: {', '.join(PROVIDERS)}")
    missing = [m for m in ("onnx", "onnxruntime") if not _importable(m)]
    if missing:
        return f"needs {' and '.join(missing)} for the {path} path: {INSTALL}"
    versions = onnx_versions()
    if versions["onnx"] and parse_version(versions["onnx"]) >= (1, 19, 0, 0):
        return (f"MXNet's ONNX exporter imports onnx.mapping, which onnx {versions['onnx']} no longer has (removed "
                f"in 1.19); install onnx==1.17.0 (any of 1.13.0-1.18.x works with the opset perfsuite pins)")
    if path == "gpu_onnxruntime":
        import onnxruntime as ort

        providers = ort.get_available_providers()
        if "CUDAExecutionProvider" not in providers:
            return (f"needs onnxruntime-gpu with the CUDAExecutionProvider; found providers {providers} "
                    f"(onnxruntime {ort.__version__}); install onnxruntime-gpu=={dict(PINNED)['onnxruntime']} "
                    "instead of onnxruntime on a CUDA host")
    return None


@contextlib.contextmanager
def pinned_opset(opset: int = ONNX_OPSET):
    """Make the onnx package's default opset `opset` for the duration of the block: what MXNet's exporter exports
    at (``onnx.defs.onnx_opset_version()``, also what ``onnx.helper.make_model`` declares) and validates against
    (``onnx.checker.DEFAULT_CONTEXT``). Restored on exit, also when the block raises; one block at a time."""
    import onnx.checker
    import onnx.defs

    with _OPSET_LOCK:
        saved_fn = onnx.defs.onnx_opset_version
        saved_ctx = dict(onnx.checker.DEFAULT_CONTEXT.opset_imports)
        onnx.defs.onnx_opset_version = lambda: opset
        onnx.checker.DEFAULT_CONTEXT.opset_imports = {"": opset}
        try:
            yield
        finally:
            onnx.defs.onnx_opset_version = saved_fn
            onnx.checker.DEFAULT_CONTEXT.opset_imports = saved_ctx


def _exporter() -> Tuple[Callable[..., Any], str]:
    """MXNet's ONNX exporter here: mx.onnx.export_model (1.9.x) or mx.contrib.onnx.export_model (1.8 and older)."""
    import mxnet as mx

    try:
        import mxnet.onnx  # noqa: F401  (1.9.x)

        return mx.onnx.export_model, "mx.onnx.export_model"
    except ImportError:
        pass
    try:
        import mxnet.contrib.onnx  # noqa: F401

        return mx.contrib.onnx.export_model, "mx.contrib.onnx.export_model"
    except ImportError as exc:  # pragma: no cover - every 1.x wheel has one of the two
        raise PerfsuiteInputError(f"this MXNet ({mx.__version__}) has no ONNX exporter: {exc}") from None


def export_onnx(symbol_file: str, params_file: str, onnx_file: str, in_shapes: Sequence[Tuple[int, ...]],
                opset: int = ONNX_OPSET, dynamic: bool = True) -> Dict[str, Any]:
    """Export a deployed graph (symbol JSON + params, as HybridBlock.export writes them) to ONNX with MXNet's own
    exporter at the pinned opset; returns what was done (exporter, opset, seconds, nodes). Inputs are float32
    (deploy.py's feed); with `dynamic` the batch and sequence dimensions are left free (MXNet 1.9.x only).
    Raises PerfsuiteInputError naming the exporter and its error when it cannot export the graph."""
    import mxnet as mx
    import onnx

    fn, name = _exporter()
    t0 = time.perf_counter()
    try:
        with pinned_opset(opset):
            if name == "mx.onnx.export_model":
                kwargs: Dict[str, Any] = dict(in_shapes=list(in_shapes), in_types=[np.float32] * len(in_shapes),
                                              onnx_file_path=onnx_file)
                if dynamic:
                    kwargs.update(dynamic=True, dynamic_input_shapes=[(None,) * len(s) for s in in_shapes])
                fn(symbol_file, params_file, **kwargs)
            else:  # 1.8 and older: static shapes, one input type
                kwargs = dict(input_shape=list(in_shapes), input_type=np.float32, onnx_file_path=onnx_file)
                if "opset_version" in inspect.signature(fn).parameters:
                    kwargs["opset_version"] = opset
                fn(symbol_file, params_file, **kwargs)
                dynamic = False
    except Exception as exc:  # the exporter's own error is the finding: say which exporter and what it said
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        msg = lines[0].rstrip(".") if lines else ""
        if "Context:" in str(exc) or len(lines) > 1:  # onnx checker: keep the node context
            msg = " ".join(ln.strip() for ln in lines[:3])
        missing = _untranslated_ops(symbol_file, opset)
        raise PerfsuiteInputError(f"MXNet {mx.__version__}'s ONNX exporter ({name}, opset {opset}, onnx "
                                  f"{onnx.__version__}) cannot export this graph: {type(exc).__name__}: "
                                  f"{msg}"[:600] + (f"; op types of the graph it has no translation for: "
                                                    f"{', '.join(missing)}" if missing else "")) from None
    seconds = time.perf_counter() - t0
    model = onnx.load(onnx_file, load_external_data=False)
    declared = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    if declared.get("ai.onnx") != opset:
        raise PerfsuiteInputError(f"{name} wrote opset {declared} instead of the pinned opset {opset}")
    ops: Dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    initializers = {i.name for i in model.graph.initializer}
    return {"exporter": name, "mxnet": mx.__version__, "onnx": onnx.__version__, "opset": opset,
            "ir_version": model.ir_version, "dynamic_shapes": dynamic, "export_s": round(seconds, 3),
            "onnx_nodes": len(model.graph.node), "onnx_ops": dict(sorted(ops.items())),
            # MXNet's exporter also lists every weight as a graph input (ORT then may not constant-fold them; kept
            # as exported: removing them changed nothing measurable for MiniLM at batch 8, seq 64)
            "graph_inputs": [i.name for i in model.graph.input if i.name not in initializers],
            "initializers_in_graph_inputs": sum(1 for i in model.graph.input if i.name in initializers),
            "onnx_bytes": os.path.getsize(onnx_file), "onnx_file": onnx_file}


def _untranslated_ops(symbol_file: str, opset: int) -> List[str]:
    """The op types of a symbol JSON that this MXNet's ONNX exporter has no translation for (up to `opset`)."""
    import json

    try:
        with open(symbol_file) as fh:
            ops = {n["op"] for n in json.load(fh)["nodes"] if n["op"] != "null"}
        try:  # 1.9.x: {opset: {op: translation}}
            from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph

            known = set().union(*(set(MXNetGraph.registry_.get(v, {})) for v in range(opset, 11, -1)))
        except ImportError:  # 1.8 and older: {op: translation}
            from mxnet.contrib.onnx.mx2onnx.export_onnx import MXNetGraph

            known = set(MXNetGraph.registry_)
    except Exception:  # only an explanation: never hide the exporter's own error
        return []
    return sorted(ops - known)


def export_block(block: Any, example: Sequence[Any], workdir: str, name: str = "bert",
                 opset: int = ONNX_OPSET) -> Dict[str, Any]:
    """The deployment flow up to the ONNX file: run the hybridized block once, export() JSON + params (what
    deploy.py exports), then export_onnx. Returns export_onnx's record."""
    import mxnet as mx

    block(*example)
    mx.nd.waitall()
    prefix = os.path.join(workdir, name)
    block.export(prefix, epoch=0)
    return export_onnx(prefix + "-symbol.json", prefix + "-0000.params", os.path.join(workdir, name + ".onnx"),
                       [tuple(x.shape) for x in example], opset=opset)


def ort_threads() -> Tuple[int, str]:
    """(intra-op threads for ONNX Runtime, where the number comes from). By default the OpenMP threads MXNet uses
    in this process (perfsuite.env.detect_omp_threads: OMP_NUM_THREADS, else MXNet's default), so both runtimes
    get the same cores; PERFSUITE_ORT_THREADS overrides. ONNX Runtime ignores OMP_NUM_THREADS (its own pool)."""
    raw = os.environ.get("PERFSUITE_ORT_THREADS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise PerfsuiteInputError(f"PERFSUITE_ORT_THREADS={raw!r}: must be a positive integer")
        return n, "PERFSUITE_ORT_THREADS"

    return detect_omp_threads(), "the OpenMP threads MXNet uses here (OMP_NUM_THREADS, else MXNet's default)"


def session_options(intra_op_threads: Optional[int] = None) -> Tuple[Any, Dict[str, Any]]:
    """(onnxruntime.SessionOptions, what they are): all graph optimizations (ORT_ENABLE_ALL, ORT's default),
    sequential execution with one inter-op thread, `intra_op_threads` (default: ort_threads()) intra-op threads,
    ORT's default spinning, warnings silenced (its "Removing initializer" notes about MXNet's export)."""
    import onnxruntime as ort

    source = "given"
    if intra_op_threads is None:
        intra_op_threads, source = ort_threads()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(intra_op_threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only
    return so, {"graph_optimization_level": "ORT_ENABLE_ALL", "execution_mode": "ORT_SEQUENTIAL",
                "intra_op_num_threads": int(intra_op_threads), "intra_op_threads_from": source,
                "inter_op_num_threads": 1, "intra_op_allow_spinning": "1 (ORT's default: not set)"}


def make_session(model: Any, providers: Sequence[str] = ("CPUExecutionProvider",),
                 intra_op_threads: Optional[int] = None) -> Tuple[Any, Dict[str, Any]]:
    """(onnxruntime.InferenceSession of `model` (a file path, serialized bytes or an onnx.ModelProto), what was
    asked and what ORT took). Raises when ORT does not use the first provider asked for (no silent CPU fallback)."""
    import onnxruntime as ort

    if not isinstance(model, (str, bytes, os.PathLike)):
        model = model.SerializeToString()
    so, info = session_options(intra_op_threads)
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model if isinstance(model, bytes) else os.fspath(model), sess_options=so,
                                providers=list(providers))
    info = dict(info, session_s=round(time.perf_counter() - t0, 3), onnxruntime=ort.__version__,
                providers_requested=list(providers), providers=sess.get_providers())
    if sess.get_providers()[0] != providers[0]:
        raise PerfsuiteInputError(f"onnxruntime did not take {providers[0]}: the session runs on "
                                  f"{sess.get_providers()} (available: {ort.get_available_providers()})")
    names = [i.name for i in sess.get_inputs()]
    if names != list(INPUT_NAMES):
        raise PerfsuiteInputError(f"the ONNX model's inputs are {names}; expected deploy.py's {list(INPUT_NAMES)}")
    return sess, info


def remove_initializers_from_inputs(model: Any) -> int:
    """Drop from a ModelProto's graph inputs every name that is also an initializer; returns how many.

    MXNet's exporter lists every weight as a graph input as well as an initializer. ONNX Runtime then treats the
    weights as overridable inputs, not constants: no constant folding (MXNet assembles the interleaved QKV weight in
    the graph, so that runs on every call) and a warning at session creation that names this fix (its
    onnxruntime/tools/python/remove_initializer_from_input.py, which does what this does). The weights' values are
    unchanged; BERT-base at batch 1, sequence 128 ran 23 % faster with the fix here (alternated, 2 cores)."""
    initializers = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in initializers]
    removed = len(model.graph.input) - len(keep)
    if removed:
        del model.graph.input[:]
        model.graph.input.extend(keep)
    return removed


def serve_model(onnx_file: str, out_file: str) -> Dict[str, Any]:
    """The exported ONNX model prepared for ONNX Runtime as ORT asks (remove_initializers_from_inputs), saved to
    out_file; returns what was done."""
    import onnx

    t0 = time.perf_counter()
    model = onnx.load(onnx_file)
    removed = remove_initializers_from_inputs(model)
    onnx.save(model, out_file)
    return {"onnx_file": out_file, "initializers_removed_from_graph_inputs": removed,
            "serve_s": round(time.perf_counter() - t0, 3),
            "how": "weights listed as graph inputs by MXNet's exporter removed from the inputs (ONNX Runtime's "
                   "remove_initializer_from_input.py), so ORT treats them as constants"}


def quantize_onnx(onnx_file: str, out_file: str, config: str = ORT_INT8_DEFAULT) -> Dict[str, Any]:
    """ONNX Runtime's own INT8: quantize_dynamic of the exported FP32 model with ORT_INT8_CONFIGS[config]."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if config not in ORT_INT8_CONFIGS:
        raise PerfsuiteInputError(f"unknown ONNX Runtime INT8 configuration {config!r}; allowed: "
                                  f"{', '.join(ORT_INT8_CONFIGS)}")
    settings = dict(ORT_INT8_CONFIGS[config])
    settings["weight_type"] = getattr(QuantType, settings["weight_type"])
    t0 = time.perf_counter()
    if settings.pop("preprocess", False):
        from onnxruntime.quantization import quant_pre_process

        pre_file = out_file[: -len(".onnx")] + "-preprocessed.onnx" if out_file.endswith(".onnx") else out_file + ".pre"
        quant_pre_process(onnx_file, pre_file, skip_symbolic_shape=True)
        onnx_file = pre_file
    quantize_dynamic(onnx_file, out_file, **settings)
    seconds = time.perf_counter() - t0
    ops: Dict[str, int] = {}
    for node in onnx.load(out_file, load_external_data=False).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    quantized = {k: v for k, v in ops.items() if "Integer" in k or "Quant" in k}
    if not quantized:
        raise PerfsuiteInputError(f"quantize_dynamic ({config}) wrote a model without integer ops: INT8 did not run")
    shown = ", ".join(f"{k}={v!r}" for k, v in ORT_INT8_CONFIGS[config].items() if k != "preprocess")
    pre = ("quant_pre_process(skip_symbolic_shape=True), then "
           if ORT_INT8_CONFIGS[config].get("preprocess") else "")
    return {"int8_config": config, "quantization": f"{config}: onnxruntime.quantization.{pre}quantize_dynamic({shown})",
            "quantize_s": round(seconds, 3), "quantized_nodes": quantized}


@dataclass
class OnnxRuntimeRunner(Runner):
    """A Runner whose block is an onnxruntime.InferenceSession: inputs are float32 NumPy arrays (deploy.py's
    feed), a forward pass is one session.run, which returns when the outputs are computed (synchronized by
    construction: ORT has no asynchronous engine; with CUDA the outputs are copied back to the host)."""

    def inputs(self, token_ids: np.ndarray, token_types: np.ndarray, valid_length: np.ndarray) -> List[Any]:
        return [np.ascontiguousarray(token_ids, dtype=np.float32), np.ascontiguousarray(token_types, dtype=np.float32),
                np.ascontiguousarray(valid_length, dtype=np.float32)]

    def forward(self, nd_inputs: Sequence[Any]) -> Any:
        return self.block.run(None, dict(zip(INPUT_NAMES, nd_inputs)))


def runner_from_onnx(path: str, model: Any, task: str, info: Optional[Dict[str, Any]] = None,
                     transform: Optional[Callable[[Any], None]] = None) -> OnnxRuntimeRunner:
    """An OnnxRuntimeRunner of an ONNX model (file path or onnx.ModelProto) for `path`'s providers. `transform`, if
    given, edits the loaded onnx.ModelProto in place before the session is created (tests of the tests corrupt an
    initializer this way)."""
    import onnx

    if transform is not None:
        if not isinstance(model, onnx.ModelProto):
            model = onnx.load(os.fspath(model))
        transform(model)
    sess, sinfo = make_session(model, PROVIDERS[path])
    info = dict(info or {})
    info["session"] = sinfo
    # the threads ORT computes with, recorded where OpenMP threads are (perfsuite.bench.measure's path_info)
    info["ort_intra_op_threads"] = sinfo["intra_op_num_threads"]
    info["ort_inter_op_threads"] = sinfo["inter_op_num_threads"]
    info["task"] = task
    if transform is not None:
        info["transformed"] = getattr(transform, "__doc__", None) or getattr(transform, "__name__", "transform")
    return OnnxRuntimeRunner(path, sess, None, "float32", {}, info, task)


#: Set by the gate for its ONNX Runtime workers: a folder where the served model of each (weights, task, path) is
#: kept after its first export, so later sessions' fresh workers skip MXNet's exporter (about 30 s for BERT-base on
#: 2 cores; only the session creation is repeated). Removed when the gate ends.
CACHE_ENV = "PERFSUITE_ONNX_CACHE"


def onnx_cache_key(path: str, cfg: Any, weights: Dict[str, np.ndarray], task: str,
                   int8_config: Optional[str]) -> str:
    """What the served model depends on: the path (and INT8 recipe), the task graph, the configuration, every
    weight's name, shape and bytes, the MXNet and onnx versions and the opset."""
    import hashlib

    import mxnet as mx

    h = hashlib.blake2b(digest_size=16)
    h.update(repr((path, task, int8_config or (ORT_INT8_DEFAULT if path == "onnxruntime_int8" else None), repr(cfg),
                   mx.__version__, sorted(onnx_versions().items(), key=str), ONNX_OPSET)).encode())
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name])
        h.update(f"{name}{a.shape}{a.dtype}".encode())
        h.update(a.data)
    return h.hexdigest()


def prepare_onnxruntime(path: str, block: Any, example: Sequence[Any], workdir: str, task: str,
                        info: Optional[Dict[str, Any]] = None, int8_config: Optional[str] = None,
                        transform: Optional[Callable[[Any], None]] = None, cache_dir: Optional[str] = None,
                        cache_key: Optional[str] = None) -> OnnxRuntimeRunner:
    """The ONNX Runtime deployment of a GluonNLP task graph (perfsuite.paths.model.prepare's branch for the paths of
    ONNX_PATHS): hybridize, export JSON + params, export to ONNX with MXNet's exporter at the pinned opset, take the
    weights out of the graph inputs as ORT asks (serve_model), quantize with quantize_dynamic for onnxruntime_int8,
    and open an InferenceSession with the path's providers. With `cache_dir` and `cache_key` (onnx_cache_key), a
    served model stored there by an earlier call is used instead of exporting again, and a new one is stored."""
    import shutil

    reason = skip_reason_onnx(path)
    if reason:
        raise PerfsuiteInputError(f"path {path!r} cannot run here: {reason}")
    info = dict(info or {})
    cached = os.path.join(cache_dir, f"{cache_key}.onnx") if cache_dir and cache_key else None
    if cached and os.path.isfile(cached):
        info["onnx_cache"] = {"reused": cached}
        info["onnx_file"] = cached
        return runner_from_onnx(path, cached, task, info, transform=transform)
    block.hybridize(static_alloc=True, static_shape=True)
    export = export_block(block, example, workdir)
    info["export"] = export
    served = serve_model(export["onnx_file"], os.path.join(workdir, "bert-ort.onnx"))
    info["served_model"] = served
    onnx_file = served["onnx_file"]
    if path == "onnxruntime_int8":
        q_file = os.path.join(workdir, "bert-int8.onnx")
        info.update(quantize_onnx(onnx_file, q_file, int8_config or ORT_INT8_DEFAULT))
        onnx_file = q_file
    info["onnx_file"] = onnx_file  # the model the session runs: the one file kept in workdir
    runner = runner_from_onnx(path, onnx_file, task, info, transform=transform)
    # the intermediates (MXNet's JSON + params, the raw export, the FP32 and pre-processed models of the INT8 path)
    # are 1-3x the model's size each (BERT-base: 440 MB): removed once the session holds the model
    removed = []
    made = [os.path.join(workdir, n) for n in ("bert-symbol.json", "bert-0000.params", "bert.onnx", "bert-ort.onnx",
                                                "bert-int8-preprocessed.onnx")]
    for f in made:  # only the files this function wrote
        if os.path.abspath(f) != os.path.abspath(onnx_file) and os.path.isfile(f):
            os.remove(f)
            removed.append(os.path.basename(f))
    runner.info["removed_intermediates"] = removed
    if cached:  # keep the served model for the next worker (atomically: a concurrent reader sees all or nothing)

        os.makedirs(os.path.dirname(cached), exist_ok=True)
        with open(onnx_file, "rb") as src:
            write_atomic(cached, lambda fh: shutil.copyfileobj(src, fh), binary=True)
        runner.info["onnx_cache"] = {"stored": cached}
    return runner
