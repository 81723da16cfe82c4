"""Whole-model parity: GluonNLP BERT, through each deployment path, against the independent float64 NumPy BERT.

FP32/FP16 paths are judged elementwise per output (sequence, pooled, classification logits, QA logits, mean
embedding) under the model entry of the tolerance table: a multiple of the error that a correct implementation
in the same precision makes (the NumPy precision twin), per sentence. INT8 is judged by agreement with the FP32
reference (top-1 classification, QA start/end, embedding cosine), with thresholds from the same table.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from perfsuite import tolerance as tl
from perfsuite.compare import Comparison, compare
from perfsuite.errors import PerfsuiteInputError
from perfsuite.paths.model import MODEL_PATHS, OUTPUTS, Runner, check_selection, prepare, skip_reason_path
from perfsuite.weights import CONFIGS, BertConfig, Weights, random_weights

__all__ = ["ModelCase", "Batch", "MODELS", "model_weights", "make_batch", "reference_outputs", "model_bound",
           "compare_outputs", "agreement", "run_model_case", "sentences", "ModelResult", "ModelOutcome",
           "run_model_cases", "with_embedding"]

MODELS = tuple(CONFIGS)
Batch = Tuple[np.ndarray, np.ndarray, np.ndarray]
COMPARED = OUTPUTS + ("embedding_mean",)


@dataclass(frozen=True)
class ModelCase:
    """One whole-model check: model x path x batch x sequence length x input source x seed."""

    model: str
    path: str
    batch: int
    seq_len: int
    inputs: str = "random"  # "random" token ids, or "text" (real sentences, tokenized)
    seed: int = 0

    def __post_init__(self) -> None:
        check_selection(self.model, self.path, self.batch, self.seq_len)
        if self.inputs not in ("random", "text"):
            raise PerfsuiteInputError(f"unknown input source {self.inputs!r}; allowed: random, text")

    @property
    def cfg(self) -> BertConfig:
        return CONFIGS[self.model]

    @property
    def id(self) -> str:
        return f"{self.model}-{self.path}-b{self.batch}-L{self.seq_len}-{self.inputs}-s{self.seed}"


@functools.lru_cache(maxsize=4)
def model_weights(model: str, seed: int = 0) -> Weights:
    """The model's weights: real all-MiniLM-L6-v2 for 'minilm', seeded non-zero random ones otherwise (seed 0
    unless asked; runners and references of one session must use the same weights)."""
    if model == "minilm":
        from perfsuite.models import load_minilm

        return load_minilm()[1]
    return random_weights(CONFIGS[model], seed)


def sentences() -> List[str]:
    """perfsuite's own small corpus: SST-2-like reviews and question/context pairs (one per line)."""
    text = resources.files("perfsuite").joinpath("data/sentences.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def make_batch(case: ModelCase) -> Batch:
    """Seeded inputs: random ids with random valid lengths (one full row), or real sentences tokenized."""
    cfg, b, L = case.cfg, case.batch, case.seq_len
    rng = np.random.default_rng(case.seed)
    if case.inputs == "text":
        from perfsuite.models import Tokenizer, load_minilm

        corpus = sentences()
        picked = [corpus[(case.seed + i) % len(corpus)] for i in range(b)]
        return Tokenizer(load_minilm()[2]).encode(picked, seq_len=L, truncate=False)
    valid = rng.integers(1, L + 1, size=b).astype(np.int32)
    valid[0] = L
    ids = rng.integers(1000, cfg.vocab_size, size=(b, L)).astype(np.int32)
    types = np.zeros((b, L), dtype=np.int32)
    for i, v in enumerate(valid):
        ids[i, v:] = 0  # [PAD]
        types[i, v // 2: v] = 1  # a second segment, as in sentence pairs
    return ids, types, valid


def _embedding_mean(seq: np.ndarray, valid: np.ndarray) -> np.ndarray:
    mask = (np.arange(seq.shape[1])[None, :] < valid[:, None]).astype(np.float64)
    return (seq * mask[..., None]).sum(axis=1) / valid[:, None]


def with_embedding(out: Dict[str, np.ndarray], valid: np.ndarray) -> Dict[str, np.ndarray]:
    """Add the mean-of-valid-tokens embedding (sentence-transformers' pooling) to a path's outputs."""
    out = dict(out)
    out["embedding_mean"] = _embedding_mean(out["sequence"], np.asarray(valid))
    return out


def reference_outputs(cfg: BertConfig, weights: Weights, batch: Batch, dtype: str = "float64") -> Dict[str, np.ndarray]:
    """The NumPy reference (or its precision twin) on the batch, with GluonNLP's output semantics."""
    from perfsuite.reference.bert import forward

    ids, types, valid = batch
    out = forward(cfg, weights, ids, types, valid, dtype=dtype)
    return with_embedding({k: np.asarray(out[k], dtype=np.float64) for k in OUTPUTS}, valid)


def model_bound(ref: Dict[str, np.ndarray], twin: Dict[str, np.ndarray], dtype: str) -> Dict[str, np.ndarray]:
    """Per output and sentence: factor * max |twin - ref| + floor_ulps * u * max |ref| (see tolerance.MODEL)."""
    entry = tl.MODEL_TOLERANCES[dtype]
    u = tl.UNIT_ROUNDOFF[dtype]
    bounds = {}
    for name in COMPARED:
        r, t = ref[name], twin[name]
        axes = tuple(range(1, r.ndim))
        twin_err = np.abs(t - r).max(axis=axes, keepdims=True)
        scale = np.abs(r).max(axis=axes, keepdims=True)
        bounds[name] = np.broadcast_to(entry.factor * twin_err + entry.floor_ulps * u * scale, r.shape)
    return bounds


def compare_outputs(actual: Dict[str, np.ndarray], ref: Dict[str, np.ndarray], bounds: Dict[str, np.ndarray],
                    context: Dict[str, Any]) -> List[Comparison]:
    """One comparison per compared output."""
    return [compare(actual[n], ref[n], bounds[n], name=n, context=context) for n in COMPARED]


def agreement(actual: Dict[str, np.ndarray], ref: Dict[str, np.ndarray], valid: np.ndarray) -> Dict[str, float]:
    """INT8 vs FP32 reference: top-1 agreement (classification, QA start and end over valid tokens), cosine."""
    valid = np.asarray(valid)
    masked = np.arange(ref["qa"].shape[1])[None, :] >= valid[:, None]

    def qa_argmax(x: np.ndarray, k: int) -> np.ndarray:
        return np.where(masked, -np.inf, x[..., k]).argmax(axis=1)

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        num = (a * b).sum(axis=1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return float((num / den).min())

    return {
        "classification_top1": float((actual["classification"].argmax(1) == ref["classification"].argmax(1)).mean()),
        "qa_start_top1": float((qa_argmax(actual["qa"], 0) == qa_argmax(ref["qa"], 0)).mean()),
        "qa_end_top1": float((qa_argmax(actual["qa"], 1) == qa_argmax(ref["qa"], 1)).mean()),
        "embedding_mean_cosine_min": cosine(actual["embedding_mean"], ref["embedding_mean"]),
        "embedding_pooled_cosine_min": cosine(actual["pooled"], ref["pooled"]),
    }


@dataclass(frozen=True)
class ModelResult:
    """The outcome of a model case: per-output comparisons (tolerance paths) or agreement metrics (INT8)."""

    case: ModelCase
    passed: bool
    comparisons: Tuple[Comparison, ...] = ()
    metrics: Optional[Dict[str, float]] = None
    info: Optional[Dict[str, Any]] = None

    @property
    def worst_ratio(self) -> float:
        return max((c.worst_ratio for c in self.comparisons), default=float("nan"))

    @property
    def message(self) -> str:
        if self.metrics is not None:
            limits = tl.INT8_AGREEMENT
            parts = [f"{k}={v:.4f} (>= {limits[k]})" for k, v in self.metrics.items()]
            return f"{'PASS' if self.passed else 'FAIL'} {self.case.id}: " + ", ".join(parts)
        bad = [c for c in self.comparisons if not c.passed]
        shown = bad or sorted(self.comparisons, key=lambda c: -c.worst_ratio)[:1]
        return "\n".join(f"{self.case.id}: {c.message}" for c in shown)


def run_model_case(case: ModelCase, runner: Optional[Runner] = None, batch: Optional[Batch] = None,
                   **prepare_kwargs: Any) -> ModelResult:
    """Prepare the path (unless a runner is given), run the batch, and judge it against the reference."""
    cfg, weights = case.cfg, model_weights(case.model)  # weights are fixed per model; case.seed drives the inputs
    batch = batch if batch is not None else make_batch(case)
    spec = MODEL_PATHS[case.path]
    if runner is None:
        reason = skip_reason_path(case.path)
        if reason:
            raise PerfsuiteInputError(f"{case.id} cannot run here: {reason}")
        if spec.judged_by == "agreement" and "calib_batches" not in prepare_kwargs:
            prepare_kwargs["calib_batches"] = [batch]
        runner = prepare(case.path, cfg, weights, **prepare_kwargs)
    actual = with_embedding(runner(*batch), batch[2])
    ref = reference_outputs(cfg, weights, batch)
    context = {"model": case.model, "path": case.path, "batch": case.batch, "seq_len": case.seq_len,
               "inputs": case.inputs, "seed": case.seed}
    if spec.judged_by == "agreement":
        metrics = agreement(actual, ref, batch[2])
        passed = all(metrics[k] >= v for k, v in tl.INT8_AGREEMENT.items())
        return ModelResult(case, passed, metrics=metrics, info=runner.info)
    twin = reference_outputs(cfg, weights, batch, dtype=spec.dtype)
    comps = compare_outputs(actual, ref, model_bound(ref, twin, spec.dtype), context)
    return ModelResult(case, all(c.passed for c in comps), tuple(comps), info=runner.info)


@dataclass(frozen=True)
class ModelOutcome:
    """What happened to one model case: pass, fail, error (MXNet or preparation raised) or skip (reason)."""

    case: ModelCase
    status: str
    result: Optional[ModelResult] = None
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        r = self.result
        return {"id": self.case.id, "model": self.case.model, "path": self.case.path, "batch": self.case.batch,
                "seq_len": self.case.seq_len, "inputs": self.case.inputs, "seed": self.case.seed,
                "status": self.status, "detail": self.detail, "seconds": round(self.seconds, 3),
                "worst_ratio": None if r is None or not r.comparisons else r.worst_ratio,
                "metrics": None if r is None else r.metrics,
                "info": None if r is None else r.info,
                "comparisons": [] if r is None else [c.to_dict() for c in r.comparisons]}


def own_pass_selection() -> Tuple[Optional[str], Tuple[str, ...], Optional[str]]:
    """perfsuite's own pass library built for this MXNet and its correct rewrite, for checking the graph_pass
    path when the user names no library: (library, passes, None), or (None, (), why it cannot be built here)."""
    from perfsuite.passes import build_pass_library, skip_reason_passes

    reason = skip_reason_passes()
    if reason:
        return None, (), reason
    try:
        return str(build_pass_library()), ("perfsuite_identity_rewrite",), None
    except PerfsuiteInputError as exc:
        return None, (), str(exc).splitlines()[0]


def run_model_cases(cases: List[ModelCase], pass_library: Optional[str] = None, passes: Tuple[str, ...] = (),
                    progress: Optional[Any] = None) -> List[ModelOutcome]:
    """Run model cases, preparing each (model, path) once; errors and skips are outcomes, not crashes."""
    import time

    from perfsuite.models import minilm_available

    runners: Dict[Tuple[str, str], Any] = {}
    outcomes: List[ModelOutcome] = []
    for i, case in enumerate(cases):
        t0 = time.perf_counter()
        reason = skip_reason_path(case.path) or (minilm_available() if case.model == "minilm" else None)
        if case.path == "graph_pass" and not reason and not (pass_library and passes):
            reason = "needs --custom-pass-lib and --custom-passes (a pass library and the passes to apply)"
        if reason:
            out = ModelOutcome(case, "skip", detail=reason)
        else:
            try:
                key = (case.model, case.path)
                if key not in runners:
                    kwargs: Dict[str, Any] = {}
                    if case.path == "graph_pass":
                        kwargs = {"pass_library": pass_library, "passes": list(passes)}
                    if MODEL_PATHS[case.path].judged_by == "agreement":
                        calib = ModelCase(case.model, case.path, 16, case.seq_len, case.inputs, seed=case.seed + 1000)
                        kwargs["calib_batches"] = [make_batch(calib)]
                    runners[key] = prepare(case.path, case.cfg, model_weights(case.model), **kwargs)
                res = run_model_case(case, runner=runners[key])
                out = ModelOutcome(case, "pass" if res.passed else "fail", res, res.message)
            except PerfsuiteInputError as exc:
                out = ModelOutcome(case, "error", detail=str(exc))
            except Exception as exc:  # an MXNet error is a finding about this build, reported per case
                first = str(exc).strip().splitlines()
                out = ModelOutcome(case, "error", detail=f"{type(exc).__name__}: {first[-1] if first else ''}"[:500])
        out = ModelOutcome(out.case, out.status, out.result, out.detail, time.perf_counter() - t0)
        outcomes.append(out)
        if progress:
            progress(i + 1, len(cases), out)
    return outcomes
