"""Whole-model parity: GluonNLP BERT's deployed task graphs (classification, QA, embedding, as deploy.py exports
them), through each deployment path, against the independent float64 NumPy BERT.

FP32/FP16 paths are judged elementwise on what the task's graph returns (classification logits; QA start/end
logits; the sequence output and its mean-of-valid-tokens embedding) under the model entry of the tolerance table:
a multiple of the error that a correct implementation in the same precision makes (the NumPy precision twin), per
sentence. INT8 is judged by agreement with the FP32 reference (top-1 classification, QA start/end, embedding
cosine), with thresholds from the same table.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from perfsuite import __version__
from perfsuite.cache import cache_root
from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity import int8_task as it, tolerance as tl
from perfsuite.parity.check import CheckResult, compare
from perfsuite.parity.int8_task import head_figures
from perfsuite.passes import PassLibraryCrashed, build_pass_library, skip_reason_passes
from perfsuite.paths.model import MODEL_PATHS, Runner, check_selection, prepare, skip_reason_path
from perfsuite.reference.bert import forward
from perfsuite.tokenizer import Tokenizer
from perfsuite.weights import BertConfig, CONFIGS, Weights, expected_shapes, random_weights

__all__ = ["ModelCase", "Batch", "MODELS", "model_weights", "make_batch", "reference_outputs", "model_bound",
           "compare_outputs", "run_model_case", "int8_task_applies", "int8_task_result", "int8_calibration", "sentences", "ModelResult", "ModelOutcome",
           "run_model_cases", "with_embedding"]

MODELS = tuple(CONFIGS)
Batch = Tuple[np.ndarray, np.ndarray, np.ndarray]
#: The reference outputs each task's graph is compared on.
COMPARED: Dict[str, Tuple[str, ...]] = {"classification": ("classification",), "qa": ("qa",),
                                        "embedding": ("sequence", "embedding_mean")}
#: All outputs of the NumPy reference perfsuite uses.
REFERENCE_OUTPUTS = ("sequence", "pooled", "classification", "qa", "embedding_mean")


@dataclass(frozen=True)
class ModelCase:
    """One whole-model check: model x path x task graph x batch x sequence length x input source x seed."""

    model: str
    path: str
    batch: int
    seq_len: int
    inputs: str = "random"  # "random" token ids, or "text" (real sentences, tokenized)
    seed: int = 0
    task: str = "classification"  # which deployed graph: classification, qa or embedding

    def __post_init__(self) -> None:
        from perfsuite.models import check_task

        check_selection(self.model, self.path, self.batch, self.seq_len)
        check_task(self.task)
        if self.inputs not in ("random", "text"):
            raise PerfsuiteInputError(f"unknown input source {self.inputs!r}; allowed: random, text")

    @property
    def cfg(self) -> BertConfig:
        return CONFIGS[self.model]

    @property
    def id(self) -> str:
        return f"{self.model}-{self.path}-{self.task}-b{self.batch}-L{self.seq_len}-{self.inputs}-s{self.seed}"


@functools.lru_cache(maxsize=4)
def model_weights(model: str, seed: int = 0) -> Weights:
    """The model's weights: real all-MiniLM-L6-v2 for 'minilm', seeded non-zero random ones otherwise (seed 0
    unless asked; runners and references of one session must use the same weights)."""
    if model == "minilm":
        from perfsuite.models import load_minilm

        return load_minilm()[1]
    cfg = CONFIGS[model]
    if cfg.layers * cfg.units < 6 * 384:  # small models draw their weights faster than a file loads
        return random_weights(cfg, seed)
    return _cached_random_weights(cfg, seed)


def _cached_random_weights(cfg: BertConfig, seed: int) -> Weights:
    """random_weights, kept in perfsuite's cache (weights/, one .npy file per parameter) after the
    first draw: BERT-base's 110 M seeded normals take 2.6 s to draw, and the upgrade gate builds BERT-base in two
    fresh workers every session. The folder is keyed by the config, the seed, perfsuite's and numpy's versions
    (numpy's generator defines the values) and renamed into place complete; a cache that cannot be written is
    simply not used."""
    import os
    import shutil
    import uuid

    folder = cache_root() / "weights" / f"{cfg.name}-seed{seed}-perfsuite{__version__}-numpy{np.__version__}"
    names = list(expected_shapes(cfg))
    if (folder / "complete").is_file():
        try:
            return {k: np.load(folder / f"{k}.npy") for k in names}
        except (OSError, ValueError):  # a damaged cache: draw again
            pass
    w = random_weights(cfg, seed)
    tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        for k, v in w.items():
            np.save(tmp / f"{k}.npy", v)
        (tmp / "complete").write_text("")
        os.replace(tmp, folder)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return w


def sentences() -> List[str]:
    """perfsuite's own small corpus: SST-2-like reviews and question/context pairs (one per line)."""
    text = resources.files("perfsuite").joinpath("data/sentences.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def make_batch(case: ModelCase) -> Batch:
    """Seeded inputs: random ids with random valid lengths (one full row), or real sentences tokenized."""
    cfg, b, L = case.cfg, case.batch, case.seq_len
    rng = np.random.default_rng(case.seed)
    if case.inputs == "text":
        from perfsuite.models import load_minilm

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
    """Add the mean-of-valid-tokens embedding (sentence-transformers' pooling) to outputs that have a sequence."""
    out = dict(out)
    if "sequence" in out:
        out["embedding_mean"] = _embedding_mean(out["sequence"], np.asarray(valid))
    return out


def reference_outputs(cfg: BertConfig, weights: Weights, batch: Batch, dtype: str = "float64") -> Dict[str, np.ndarray]:
    """The NumPy reference (or its precision twin) on the batch, with GluonNLP's output semantics: every output
    any task graph returns (sequence, pooled, classification, qa) and the mean embedding."""

    ids, types, valid = batch
    out = forward(cfg, weights, ids, types, valid, dtype=dtype)
    return with_embedding({k: np.asarray(out[k], dtype=np.float64) for k in REFERENCE_OUTPUTS[:4]}, valid)


def model_bound(ref: Dict[str, np.ndarray], twin: Dict[str, np.ndarray], dtype: str) -> Dict[str, np.ndarray]:
    """Per output and sentence: factor * max |twin - ref| + floor_ulps * u * max |ref| (see tolerance.MODEL)."""
    entry = tl.MODEL_TOLERANCES[dtype]
    u = tl.UNIT_ROUNDOFF[dtype]
    bounds = {}
    for name in REFERENCE_OUTPUTS:
        r, t = ref[name], twin[name]
        axes = tuple(range(1, r.ndim))
        twin_err = np.abs(t - r).max(axis=axes, keepdims=True)
        scale = np.abs(r).max(axis=axes, keepdims=True)
        bounds[name] = np.broadcast_to(entry.factor * twin_err + entry.floor_ulps * u * scale, r.shape)
    return bounds


def compare_outputs(actual: Dict[str, np.ndarray], ref: Dict[str, np.ndarray], bounds: Dict[str, np.ndarray],
                    context: Dict[str, Any]) -> List[CheckResult]:
    """One comparison per output the task graph returned (classification, qa, sequence, embedding_mean)."""
    names = [n for n in REFERENCE_OUTPUTS if n in actual]
    if not names:
        raise PerfsuiteInputError(f"no output to compare; got {sorted(actual)}")
    return [compare(actual[n], ref[n], bounds[n], name=n, context=context) for n in names]


@dataclass(frozen=True)
class ModelResult:
    """The outcome of a model case: per-output comparisons (tolerance paths) or agreement metrics (INT8)."""

    case: ModelCase
    passed: bool
    comparisons: Tuple[CheckResult, ...] = ()
    metrics: Optional[Dict[str, float]] = None
    info: Optional[Dict[str, Any]] = None

    base_comparisons: Tuple[CheckResult, ...] = ()  # graph_pass: the passed model vs the unpassed exported one

    @property
    def worst_ratio(self) -> float:
        if self.base_comparisons:  # a pass is judged against its unpassed model
            return max(c.worst_ratio for c in self.base_comparisons)
        return max((c.worst_ratio for c in self.comparisons), default=float("nan"))

    @property
    def reference_passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def message(self) -> str:
        if self.base_comparisons:
            base_ok = all(c.passed for c in self.base_comparisons)
            ref_worst = max((c.worst_ratio for c in self.comparisons), default=float("nan"))
            head = (f"{'PASS' if base_ok else 'FAIL'} {self.case.id}: the passed model "
                    f"{'agrees with' if base_ok else 'DIFFERS from'} the unpassed exported model (worst error/bound "
                    f"{self.worst_ratio:.3g}); against the float64 reference: "
                    f"{'passes' if self.reference_passed else 'fails'} (worst {ref_worst:.3g})")
            if not self.reference_passed and base_ok:
                head += ("; the base model itself fails the reference on this MXNet, not the pass: "
                         + (self.info or {}).get("base_reference", "see the exported path"))
            bad = [c for c in self.base_comparisons if not c.passed]
            return "\n".join([head] + [f"{self.case.id}: {c.message}" for c in bad])
        if self.metrics is not None:
            if (self.info or {}).get("int8_task"):
                return f"{self.case.id}: {self.info['int8_task']}"
            parts = [f"{k}={v:.4f}" for k, v in self.metrics.items()]
            bad = tl.int8_floor_violations(self.metrics)
            verdict = "PASS" if self.passed else "FAIL"
            return (f"{verdict} {self.case.id}: INT8 figures (no trained task head: not a quality criterion): "
                    + ", ".join(parts) + (f"; beyond floor: {'; '.join(bad)}" if bad else ""))
        bad = [c for c in self.comparisons if not c.passed]
        shown = bad or sorted(self.comparisons, key=lambda c: -c.worst_ratio)[:1]
        return "\n".join(f"{self.case.id}: {c.message}" for c in shown)


def int8_task_applies(case: ModelCase) -> bool:
    """INT8 (MXNet's, or ONNX Runtime's own) is judged on the semantic-search task for real MiniLM weights through
    the embedding graph."""
    return case.path in ("int8", "onnxruntime_int8") and case.model == "minilm" and case.task == "embedding"


def int8_calibration(case: ModelCase) -> Batch:
    """What the INT8 path calibrates on: the task corpus's calibration split (disjoint from the evaluated
    sentences) for the task case, else a seeded batch of the case's kind."""
    if int8_task_applies(case):
        from perfsuite.models import load_minilm

        calib, _ = it.splits()
        return Tokenizer(load_minilm()[2]).encode(calib, seq_len=it.TASK_SEQ_LEN, truncate=True)
    return make_batch(ModelCase(case.model, case.path, 16, case.seq_len, case.inputs, seed=case.seed + 1000,
                                task=case.task))


@functools.lru_cache(maxsize=2)
def _fp32_task_embeddings() -> np.ndarray:
    """FP32 (hybridized) MiniLM embeddings of the task's evaluation sentences, once per process."""
    from perfsuite.models import load_minilm

    _, evals = it.splits()
    fp32 = prepare("hybridized", CONFIGS["minilm"], model_weights("minilm"), task="embedding")
    return it.embed(fp32, Tokenizer(load_minilm()[2]), evals)


def int8_task_result(int8_runner: Runner, n_eval: Optional[int] = None) -> Any:
    """perfsuite.parity.int8_task.run_retrieval_task for an INT8 MiniLM embedding runner (on the first n_eval evaluation
    sentences when given: only for tests of the judge; the criterion is stated for all of them)."""
    from perfsuite.models import load_minilm

    _, evals = it.splits()
    fp32 = _fp32_task_embeddings()
    if n_eval is not None:
        evals, fp32 = evals[:n_eval], fp32[:n_eval]
    return it.run_retrieval_task(int8_runner, None, Tokenizer(load_minilm()[2]), evals,
                                 config={"name": int8_runner.info.get("int8_config"),
                                         "quantization": int8_runner.info.get("quantization")},
                                 fp32_embeddings=fp32)


def run_model_case(case: ModelCase, runner: Optional[Runner] = None, batch: Optional[Batch] = None,
                   base_runner: Optional[Runner] = None, **prepare_kwargs: Any) -> ModelResult:
    """Prepare the path (unless a runner is given), run the batch, and judge it against the reference.

    A graph pass is judged twice: against the unpassed exported model of the same MXNet (`base_runner`, prepared
    here when not given), which decides the verdict under tolerance.GRAPH_PASS_VS_BASE, and against the
    reference, reported beside it (a base model that fails the reference is this MXNet's fault, not the pass's).
    """
    cfg, weights = case.cfg, model_weights(case.model)  # weights are fixed per model; case.seed drives the inputs
    batch = batch if batch is not None else make_batch(case)
    spec = MODEL_PATHS[case.path]
    if runner is None:
        reason = skip_reason_path(case.path)
        if reason:
            raise PerfsuiteInputError(f"{case.id} cannot run here: {reason}")
        if spec.judged_by == "agreement" and "calib_batches" not in prepare_kwargs:
            prepare_kwargs["calib_batches"] = [int8_calibration(case)]
        runner = prepare(case.path, cfg, weights, task=case.task, **prepare_kwargs)
    actual = with_embedding(runner(*batch), batch[2])
    ref = reference_outputs(cfg, weights, batch)
    context = {"model": case.model, "path": case.path, "task": case.task, "batch": case.batch,
               "seq_len": case.seq_len, "inputs": case.inputs, "seed": case.seed}
    if spec.judged_by == "agreement":

        if int8_task_applies(case):  # real weights and a task users run: the MLPerf-style criterion
            res = int8_task_result(runner)
            info = dict(runner.info, int8_task=res.message, int8_task_config=res.config, int8_corpus=res.corpus)
            return ModelResult(case, res.passed, metrics=res.metrics, info=info)
        figures = head_figures(actual, ref, batch[2])
        return ModelResult(case, not tl.int8_floor_violations(figures), metrics=figures, info=runner.info)
    twin = reference_outputs(cfg, weights, batch, dtype=spec.dtype)
    comps = compare_outputs(actual, ref, model_bound(ref, twin, spec.dtype), context)
    if case.path != "graph_pass":
        return ModelResult(case, all(c.passed for c in comps), tuple(comps), info=runner.info)
    if base_runner is None:
        base_runner = prepare("exported", cfg, weights, task=case.task)
    base = with_embedding(base_runner(*batch), batch[2])
    entry = tl.GRAPH_PASS_VS_BASE
    base_bounds = {}
    for name in base:
        r = ref[name]
        axes = tuple(range(1, r.ndim))
        twin_err = np.abs(twin[name] - r).max(axis=axes, keepdims=True)
        scale = np.abs(base[name]).max(axis=axes, keepdims=True)
        base_bounds[name] = np.broadcast_to(entry.factor * twin_err + entry.floor_ulps * tl.UNIT_ROUNDOFF["float32"]
                                            * scale, r.shape)
    base_comps = [compare(actual[n], base[n], base_bounds[n], name=f"{n} (vs unpassed)", context=context)
                  for n in base if n in actual]
    base_ref = compare_outputs(base, ref, model_bound(ref, twin, spec.dtype), context)
    info = dict(runner.info)
    if not all(c.passed for c in base_ref):
        worst = max(base_ref, key=lambda c: c.worst_ratio)
        info["base_reference"] = f"the unpassed exported model's {worst.name} is at error/bound {worst.worst_ratio:.3g}"
    return ModelResult(case, all(c.passed for c in base_comps), tuple(comps), info=info,
                       base_comparisons=tuple(base_comps))


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
        return {"id": self.case.id, "model": self.case.model, "path": self.case.path, "task": self.case.task,
                "batch": self.case.batch,
                "seq_len": self.case.seq_len, "inputs": self.case.inputs, "seed": self.case.seed,
                "status": self.status, "detail": self.detail, "seconds": round(self.seconds, 3),
                "worst_ratio": None if r is None or not r.comparisons else r.worst_ratio,
                "metrics": None if r is None else r.metrics,
                "info": None if r is None else r.info,
                "comparisons": [] if r is None else [c.to_dict() for c in r.comparisons],
                "vs_unpassed": [] if r is None else [c.to_dict() for c in r.base_comparisons],
                "reference_passed": None if r is None or not r.comparisons else r.reference_passed}


def own_pass_selection() -> Tuple[Optional[str], Tuple[str, ...], Optional[str]]:
    """perfsuite's own pass library built for this MXNet and its correct rewrite, for checking the graph_pass
    path when the user names no library: (library, passes, None), or (None, (), why it cannot be built here)."""

    reason = skip_reason_passes()
    if reason:
        return None, (), reason
    try:
        return str(build_pass_library()), ("perfsuite_identity_rewrite",), None
    except PerfsuiteInputError as exc:
        return None, (), str(exc).splitlines()[0]


def run_model_cases(cases: List[ModelCase], pass_library: Optional[str] = None, passes: Tuple[str, ...] = (),
                    progress: Optional[Any] = None, pass_timeout_s: Optional[float] = None) -> List[ModelOutcome]:
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
                key = (case.model, case.path, case.task)
                if key not in runners:
                    kwargs: Dict[str, Any] = {}
                    if case.path == "graph_pass":
                        kwargs = {"pass_library": pass_library, "passes": list(passes),
                                  "pass_timeout_s": pass_timeout_s}
                    if MODEL_PATHS[case.path].judged_by == "agreement":
                        kwargs["calib_batches"] = [int8_calibration(case)]
                    runners[key] = prepare(case.path, case.cfg, model_weights(case.model), task=case.task, **kwargs)
                base = None
                if case.path == "graph_pass":
                    bkey = (case.model, "exported", case.task)
                    if bkey not in runners:
                        runners[bkey] = prepare("exported", case.cfg, model_weights(case.model), task=case.task)
                    base = runners[bkey]
                res = run_model_case(case, runner=runners[key], base_runner=base)
                out = ModelOutcome(case, "pass" if res.passed else "fail", res, res.message)
            except PerfsuiteInputError as exc:
                out = ModelOutcome(case, "error", detail=str(exc))
            except Exception as exc:  # an MXNet error is a finding about this build, reported per case

                lines = str(exc).strip().splitlines()
                # a crashed pass library is named by the first line (signal, library, pass); MXNet's by the last
                line = (lines[0] if isinstance(exc, PassLibraryCrashed) else lines[-1]) if lines else ""
                out = ModelOutcome(case, "error", detail=f"{type(exc).__name__}: {line}"[:500])
        out = ModelOutcome(out.case, out.status, out.result, out.detail, time.perf_counter() - t0)
        outcomes.append(out)
        if progress:
            progress(i + 1, len(cases), out)
    return outcomes
