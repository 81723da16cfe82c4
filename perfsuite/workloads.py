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
from perfsuite.validate import MAX_BATCH_SIZE
from perfsuite.weights import BertConfig, CONFIGS, TASKS

__all__ = ["SEQ_LENS", "BATCH_SIZES", "TASKS", "Workload", "Profile", "PROFILES", "select", "bert_flops",
           "SPEEDUPS", "CPU_PATHS", "GPU_PATHS", "MODEL_PARITY_SHAPES", "ASV_GRIDS", "asv_params", "Target",
           "GateProfile", "GATE_PROFILES", "ORT_PATHS", "OP_BENCHMARKS"]

SEQ_LENS: Tuple[int, ...] = (80, 128, 384)
BATCH_SIZES: Tuple[int, ...] = (1, 4, 8, 16, 32, 64, 128, 300)

# The speed-up table, as the seed shows it: (optimized path, its baseline, what the optimization is).
SPEEDUPS: Tuple[Tuple[str, str, str], ...] = (
    ("hybridized", "naive_attention", "interleaved vs naive attention"),
    ("onednn", "hybridized", "oneDNN fusion vs plain"),
    ("int8", "onednn", "INT8 vs FP32 (oneDNN)"),
    ("gpu_fp16", "gpu_fp32", "GPU FP16 vs FP32"),
    ("gpu_fp16_true", "gpu_fp16", "true FP16 vs FP16"),
    ("gpu_fp16", "gpu_fp16_nofusion", "pointwise fusion on vs off"),
    ("onnxruntime", "exported", "ONNX Runtime vs MXNet (the same exported graph)"),
    ("onnxruntime_int8", "onnxruntime", "ORT INT8 vs ORT FP32"),
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


#: The CPU paths timed by the latency grids (each optimization and its baseline: SPEEDUPS).
CPU_PATHS = ("naive_attention", "hybridized", "onednn", "int8")
GPU_PATHS = ("gpu_fp32", "gpu_fp16", "gpu_fp16_true", "gpu_fp16_nofusion", "gpu_fp16_unsafe")
#: ONNX Runtime (the `onnx` extra; `perfsuite run --path exported,onnxruntime,onnxruntime_int8`, pytest --benchmark)
ORT_PATHS = ("onnxruntime", "onnxruntime_int8", "gpu_onnxruntime")

#: Whole-model parity: the batch size and sequence length each model is checked at (pytest, `perfsuite parity
#: --model` defaults, `perfsuite run`'s parity summary and the gate). Big enough for padding and several
#: sentences, small enough for the float64 reference to stay within seconds.
MODEL_PARITY_SHAPES: Dict[str, Tuple[int, int]] = {"small": (4, 64), "minilm": (8, 48), "bert-base": (2, 128),
                                                   "bert-large": (1, 128)}

#: The asv benchmark grids (benchmarks/bench_model.py): class name -> (model, paths, batch sizes, sequence lengths).
ASV_GRIDS: Dict[str, Tuple[str, Tuple[str, ...], Tuple[int, ...], Tuple[int, ...]]] = {
    "BertSmall": ("small", CPU_PATHS, (1, 32), (80, 128)),
    "BertSmallMemory": ("small", CPU_PATHS, (32,), (128,)),
    "BertSmallThroughput": ("small", CPU_PATHS, (1, 32), (128,)),
    "BertBase": ("bert-base", ("hybridized", "onednn"), (1, 8), (128,)),
    "BertBaseMemory": ("bert-base", ("hybridized",), (8,), (128,)),
    "BertBaseThroughput": ("bert-base", ("hybridized", "onednn"), (1, 8), (128,)),
    "BertBaseGPU": ("bert-base", ("gpu_fp32", "gpu_fp16", "gpu_fp16_true"), (1, 128), (128,)),
    "BertBaseGPUThroughput": ("bert-base", ("gpu_fp32", "gpu_fp16", "gpu_fp16_true"), (1, 128), (128,)),
}


def asv_params(name: str) -> List[List]:
    """asv `params` of benchmark class `name`: [paths, batch sizes, sequence lengths]."""
    _, paths, batches, seqs = ASV_GRIDS[name]
    return [list(paths), list(batches), list(seqs)]

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
        if not isinstance(b, int) or not 1 <= b <= MAX_BATCH_SIZE:
            raise PerfsuiteInputError(f"--batch-size {b!r}: allowed 1 to {MAX_BATCH_SIZE}")
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


# ------------------------------------------------------------------------------------------- upgrade gate
#: The op benchmarks, name -> what it times (perfsuite.bench.op_callable builds them; BERT-base's shapes at sequence
#: length 128, batch 8).
OP_BENCHMARKS: Dict[str, str] = {
    "attention_interleaved": "interleaved_matmul_selfatt_qk + softmax(length) + valatt on the joint QKV tensor",
    "attention_naive": "separate Q, K, V (B*H, L, d) batch_dot + mask built in the graph + softmax + batch_dot",
    "softmax_length": "softmax(x, length=, use_length=True) over (B*H, L, L)",
    "softmax_mask": "softmax of where(mask, x, -1e4) * mask over (B*H, L, L)",
    "layernorm_fp16_safe": "float16 LayerNorm (B*L, 768), MXNET_SAFE_ACCUMULATION=1",
    "layernorm_fp16_unsafe": "float16 LayerNorm (B*L, 768), MXNET_SAFE_ACCUMULATION=0",
    "softmax_fp16_safe": "float16 softmax with length, MXNET_SAFE_ACCUMULATION=1",
    "softmax_fp16_unsafe": "float16 softmax with length, MXNET_SAFE_ACCUMULATION=0",
    "fc_float32": "FullyConnected (B*L, 768) x (3072, 768) float32",
    "fc_float16": "FullyConnected float16 (CUDA builds only)",
}


@dataclass(frozen=True)
class Target:
    """One thing the upgrade gate times in both environments: an op benchmark ('op:softmax_length', see
    OP_BENCHMARKS) or a whole-model workload ('model:bert-base/hybridized/classification/b1/L128')."""

    id: str

    def __post_init__(self) -> None:
        self.parts()  # validates

    def parts(self) -> Tuple[str, Optional[str], Optional[Workload]]:
        """(kind, op name or None, workload or None)."""
        kind, _, rest = self.id.partition(":")
        if kind == "op":
            if rest not in OP_BENCHMARKS:
                raise PerfsuiteInputError(f"unknown op benchmark {rest!r} in target {self.id!r}; allowed: "
                                          f"{', '.join(OP_BENCHMARKS)}")
            return "op", rest, None
        if kind == "model":
            bits = rest.split("/")
            if len(bits) != 5 or not bits[3].startswith("b") or not bits[4].startswith("L"):
                raise PerfsuiteInputError(f"target {self.id!r}: expected model:MODEL/PATH/TASK/bBATCH/LSEQ, e.g. "
                                          "model:bert-base/hybridized/classification/b1/L128")
            try:
                batch, seq = int(bits[3][1:]), int(bits[4][1:])
            except ValueError:
                raise PerfsuiteInputError(f"target {self.id!r}: batch and sequence length must be integers") from None
            return "model", None, Workload(bits[0], bits[1], bits[2], batch, seq)
        raise PerfsuiteInputError(f"target {self.id!r}: must start with 'op:' or 'model:'")

    @property
    def kind(self) -> str:
        return self.parts()[0]


@dataclass(frozen=True)
class GateProfile:
    """What an upgrade gate checks: the parity selection run in both environments and the timed targets."""

    name: str
    doc: str
    targets: Tuple[str, ...]
    parity_ops: str  # "all", "quick" (sequence length 128 only) or "none"
    parity_models: Tuple[str, ...]  # whole-model parity: each model through every deployment path
    time_budget_s: float  # default --time-budget: the whole gate, parity included
    session_s: float  # measuring time per target and side in one session (sets the first pairs per session)
    #: the sequential design's planned maximum of sessions per workload (perfsuite.stats.SequentialDesign); single
    #: ops (cheap sessions, more process-to-process spread) may have their own
    max_sessions: int = 20
    max_op_sessions: Optional[int] = None
    #: the targets when the candidate is ONNX Runtime: MXNet paths with an ORT counterpart
    #: (perfsuite.paths.model.ORT_COUNTERPARTS); the baseline times the MXNet path, the candidate its counterpart
    ort_targets: Tuple[str, ...] = ()
    #: default --time-budget when the candidate is ONNX Runtime (None: time_budget_s). Its BERT-base targets prepare
    #: slowly (the baseline builds the exported graph in every session's fresh worker) and run long at batch 8
    ort_time_budget_s: Optional[float] = None

    def target_list(self, runtime: str = "mxnet") -> List[Target]:
        return [Target(t) for t in (self.ort_targets if runtime == "onnxruntime" else self.targets)]


def _model_target(model: str, path: str, batch: int, seq: int, task: str = "classification") -> str:
    return f"model:{model}/{path}/{task}/b{batch}/L{seq}"


# Short targets give many pairs per minute: the per-op benchmarks (10-70 ms here) and BERT-base at batch 1
# (about 0.2 s); the small model covers the oneDNN and INT8 paths without BERT-base's 10-20 s of preparation
# per worker and session. GPU targets skip on CPU builds with the reason.
GATE_PROFILES: Dict[str, GateProfile] = {
    g.name: g
    for g in (
        GateProfile(
            "tiny", "two ops and the small model: proves the gate end to end in CI (about 3 minutes)",
            ("op:softmax_length", "op:fc_float32", _model_target("small", "hybridized", 8, 64)),
            parity_ops="quick", parity_models=("small",), time_budget_s=240.0, session_s=1.5, max_sessions=12,
            ort_targets=(_model_target("small", "exported", 8, 64),)),
        GateProfile(
            "quick", "six op benchmarks (interleaved attention, softmax with length, float16 LayerNorm and "
                     "softmax with safe accumulation, FC float32, and FC float16 on CUDA builds), BERT-base batch 1 "
                     "(seq 128) and the small model's oneDNN and INT8 paths (GPU FP16 paths on CUDA builds); op "
                     "parity and whole-model parity of the small model and real MiniLM; a 10-minute budget",
            ("op:attention_interleaved", "op:softmax_length", "op:layernorm_fp16_safe", "op:softmax_fp16_safe",
             "op:fc_float32", "op:fc_float16", _model_target("bert-base", "hybridized", 1, 128),
             _model_target("small", "onednn", 8, 64), _model_target("small", "int8", 8, 64),
             _model_target("bert-base", "gpu_fp16", 1, 128), _model_target("bert-base", "gpu_fp16_true", 1, 128)),
            parity_ops="all", parity_models=("small", "minilm"), time_budget_s=600.0, session_s=3.0, max_sessions=12,
            max_op_sessions=24,
            ort_targets=(_model_target("bert-base", "exported", 1, 128), _model_target("bert-base", "exported", 8, 128),
                         _model_target("small", "int8", 8, 64), _model_target("bert-base", "gpu_fp32", 1, 128)),
            ort_time_budget_s=900.0),
        GateProfile(
            "full", "every op benchmark, BERT-base through every CPU and GPU path at batch 1 and 8 (seq 128), "
                    "whole-model parity of small, MiniLM and BERT-base: an hour or more",
            tuple(f"op:{o}" for o in ("attention_interleaved", "attention_naive", "softmax_length", "softmax_mask",
                                      "layernorm_fp16_safe", "layernorm_fp16_unsafe", "softmax_fp16_safe",
                                      "softmax_fp16_unsafe", "fc_float32", "fc_float16"))
            + tuple(_model_target("bert-base", p, b, 128) for p in CPU_PATHS + GPU_PATHS for b in (1, 8)),
            parity_ops="all", parity_models=("small", "minilm", "bert-base"), time_budget_s=3600.0, session_s=6.0,
            max_sessions=30,
            ort_targets=tuple(_model_target("bert-base", p, b, 128) for p in ("exported", "int8", "gpu_fp32")
                              for b in (1, 8))),
    )
}
