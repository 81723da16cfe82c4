"""The workload grid, declared once: used by `pytest --benchmark`, asv and `perfsuite run` alike.

The seed's grid: sequence lengths 80, 128, 384; batch sizes 1, 4, 8, 16, 32, 64, 128, 300; tasks classification
(SST-2), question answering (SQuAD) and embedding; BERT-base and BERT-large (plus MiniLM and a small model here).
Profiles pick subsets: `quick` fits a 2-core machine in minutes, `full` is the seed's grid for real hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from perfsuite.errors import PerfsuiteInputError
from perfsuite.paths.model import MODEL_PATHS, check_selection
from perfsuite.weights import CONFIGS, BertConfig

__all__ = ["SEQ_LENS", "BATCH_SIZES", "TASKS", "Workload", "Profile", "PROFILES", "select", "bert_flops",
           "SPEEDUPS"]

SEQ_LENS: Tuple[int, ...] = (80, 128, 384)
BATCH_SIZES: Tuple[int, ...] = (1, 4, 8, 16, 32, 64, 128, 300)
TASKS: Tuple[str, ...] = ("classification", "qa", "embedding")

# The speed-up table, as the seed shows it: (optimized path, its baseline, what the optimization is).
SPEEDUPS: Tuple[Tuple[str, str, str], ...] = (
    ("hybridized", "naive_attention", "interleaved vs naive attention"),
    ("onednn", "hybridized", "oneDNN fusion vs plain"),
    ("int8", "onednn", "INT8 vs FP32 (oneDNN)"),
    ("gpu_fp16", "gpu_fp32", "GPU FP16 vs FP32"),
    ("gpu_fp16_true", "gpu_fp16", "true FP16 vs FP16"),
    ("gpu_fp16", "gpu_fp16_nofusion", "pointwise fusion on vs off"),
)


@dataclass(frozen=True)
class Workload:
    """One timed configuration: model x path x task x batch size x sequence length (all tokens valid)."""

    model: str
    path: str
    task: str
    batch: int
    seq_len: int

    def __post_init__(self) -> None:
        check_selection(self.model, self.path, self.batch, self.seq_len)
        if self.task not in TASKS:
            raise PerfsuiteInputError(f"unknown task {self.task!r}; allowed: {', '.join(TASKS)}")

    @property
    def cfg(self) -> BertConfig:
        return CONFIGS[self.model]

    @property
    def id(self) -> str:
        return f"{self.model}/{self.path}/{self.task}/b{self.batch}/L{self.seq_len}"

    @property
    def flops(self) -> float:
        return bert_flops(self.cfg, self.batch, self.seq_len, self.task)


def bert_flops(cfg: BertConfig, batch: int, seq_len: int, task: str = "classification") -> float:
    """Floating-point operations of one forward pass (2 per multiply-add; GEMMs and attention only).

    Per layer and token: Q, K, V and output projections 4 * 2 U^2, FFN 2 * 2 U H, attention scores and
    context 2 * 2 L U. Plus the pooler (2 U^2 per sentence) and the head (2 U C per sentence or token).
    """
    u, h = cfg.units, cfg.hidden
    tokens = batch * seq_len
    per_layer = tokens * (8 * u * u + 4 * u * h + 4 * seq_len * u)
    head = batch * 2 * u * 2 if task == "classification" else (tokens * 2 * u * 2 if task == "qa" else 0)
    return float(cfg.layers * per_layer + batch * 2 * u * u + head)


@dataclass(frozen=True)
class Profile:
    """A named subset of the grid."""

    name: str
    models: Tuple[str, ...]
    paths: Tuple[str, ...]
    tasks: Tuple[str, ...]
    batch_sizes: Tuple[int, ...]
    seq_lens: Tuple[int, ...]
    doc: str

    def workloads(self) -> List[Workload]:
        return [Workload(m, p, t, b, L) for m in self.models for p in self.paths for t in self.tasks
                for L in self.seq_lens for b in self.batch_sizes]


CPU_PATHS = ("naive_attention", "hybridized", "onednn", "int8")
GPU_PATHS = ("gpu_fp32", "gpu_fp16", "gpu_fp16_true", "gpu_fp16_nofusion", "gpu_fp16_unsafe")

PROFILES: Dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("quick", ("bert-base",), CPU_PATHS, ("classification",), (1, 2, 4, 8, 16, 32), (128,),
                "BERT-base, seq 128, batch 1-32, the main CPU paths: a few minutes on a 2-core machine"),
        Profile("full", ("bert-base", "bert-large"), CPU_PATHS + GPU_PATHS, TASKS, BATCH_SIZES, SEQ_LENS,
                "the seed's whole grid (every path that can run here); for real hardware"),
        Profile("smoke", ("small",), CPU_PATHS, ("classification",), (1, 4), (32,),
                "a tiny model, for tests and CI: proves every piece runs"),
    )
}


def _pick(name: str, given: Optional[Sequence], allowed: Iterable) -> Optional[Tuple]:
    if given is None:
        return None
    allowed = list(allowed)
    for v in given:
        if v not in allowed:
            raise PerfsuiteInputError(f"unknown {name} {v!r}; allowed: {', '.join(map(str, allowed))}")
    return tuple(given)


def select(profile: str = "quick", models: Optional[Sequence[str]] = None, paths: Optional[Sequence[str]] = None,
           tasks: Optional[Sequence[str]] = None, batch_sizes: Optional[Sequence[int]] = None,
           seq_lens: Optional[Sequence[int]] = None) -> List[Workload]:
    """A profile's workloads, with any dimension overridden by the user's selection."""
    if profile not in PROFILES:
        raise PerfsuiteInputError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    p = PROFILES[profile]
    for b in batch_sizes or ():
        if not isinstance(b, int) or b < 1:
            raise PerfsuiteInputError(f"batch size {b!r}: must be a positive integer")
    for L in seq_lens or ():
        if not isinstance(L, int) or not 2 <= L <= 512:
            raise PerfsuiteInputError(f"sequence length {L!r}: allowed 2 <= seq_len <= 512")
    p = replace(p,
                models=_pick("model", models, CONFIGS) or p.models,
                paths=_pick("path", paths, MODEL_PATHS) or p.paths,
                tasks=_pick("task", tasks, TASKS) or p.tasks,
                batch_sizes=tuple(batch_sizes) if batch_sizes else p.batch_sizes,
                seq_lens=tuple(seq_lens) if seq_lens else p.seq_lens)
    return p.workloads()
