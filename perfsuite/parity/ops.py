"""Op-level parity checks: one registry of cases, run the same way by pytest, hypothesis and `perfsuite parity`.

A case names a path (an MXNet optimized op), a precision mode (perfsuite.parity.tolerance.MODES), a device and a shape.
Running it draws seeded inputs at realistic BERT scales, rounds them to the storage dtype, feeds the *same*
values to the MXNet path (under the mode's MXNET_* flags) and to the float64 NumPy reference, and compares under
the bound from the tolerance table. `run_case(case, impl=...)` swaps in another implementation with the path's
signature: that is how the tests of the tests feed deliberately broken kernels through the same comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from perfsuite import env as _env, flags as pflags, reference as ref
from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity import tolerance as tl
from perfsuite.parity.check import CheckResult, compare
from perfsuite.paths import ops

__all__ = ["ParityCase", "OpSpec", "OPS", "run_case", "run_cases", "summarize", "Outcome", "SummaryRow",
           "default_cases", "skip_reason", "make_inputs", "Inputs"]

Inputs = Dict[str, Any]


@dataclass(frozen=True)
class ParityCase:
    """One check: path x mode x device x shape x input distribution x seed. Frozen and hashable."""

    path: str
    mode: str
    shape: Tuple[Tuple[str, Any], ...]
    device: str = "cpu"
    dist: str = "bert"
    seed: int = 0
    flags: Tuple[Tuple[str, str], ...] = ()  # flags beyond the mode's (e.g. MXNET_USE_FUSION)

    def __post_init__(self) -> None:
        if self.path not in OPS:
            raise PerfsuiteInputError(f"unknown path {self.path!r}; allowed: {', '.join(sorted(OPS))}")
        if self.mode not in tl.MODES:
            raise PerfsuiteInputError(f"unknown mode {self.mode!r}; allowed: {', '.join(tl.MODES)}")
        tl.tolerance_for(self.path, self.mode)  # raises for a (path, mode) the table does not declare
        if self.device not in ("cpu", "gpu"):
            raise PerfsuiteInputError(f"unknown device {self.device!r}; allowed: cpu, gpu")
        spec = OPS[self.path]
        if self.dist not in spec.dists:
            raise PerfsuiteInputError(
                f"unknown input distribution {self.dist!r} for {self.path}; allowed: {', '.join(spec.dists)}")
        missing = set(spec.shape_keys) - set(dict(self.shape))
        if missing:
            raise PerfsuiteInputError(f"{self.path} needs shape keys {spec.shape_keys}; missing {sorted(missing)}")
        for k, v in self.shape:
            if isinstance(v, (int, np.integer)) and k not in ("length",) and v <= 0:
                raise PerfsuiteInputError(f"shape {k}={v} for {self.path}: must be a positive integer")

    @property
    def dims(self) -> Dict[str, Any]:
        return dict(self.shape)

    @property
    def shape_str(self) -> str:
        return "x".join(f"{k}{v}" for k, v in self.shape)

    @property
    def id(self) -> str:
        extra = "".join(f"-{k.replace('MXNET_', '').lower()}{v}" for k, v in self.flags)
        return f"{self.path}-{self.mode}-{self.device}-{self.shape_str}-{self.dist}{extra}-s{self.seed}"

    @property
    def all_flags(self) -> Dict[str, str]:
        f = tl.MODES[self.mode].flag_dict
        f.update(dict(self.flags))
        return f

    @property
    def tolerance(self) -> tl.Tolerance:
        return tl.tolerance_for(self.path, self.mode)


@dataclass(frozen=True)
class OpSpec:
    """How to check one path: its inputs, its MXNet implementation, its reference and error model."""

    name: str
    shape_keys: Tuple[str, ...]
    dists: Tuple[str, ...]
    make_inputs: Callable[[Dict[str, Any], np.random.Generator, str, str], Inputs]
    impl: Callable[..., np.ndarray]
    expected_and_bound: Callable[[Inputs, tl.Tolerance], Tuple[np.ndarray, np.ndarray]]
    cpu_fp16: bool  # does MXNet have a CPU float16 kernel for it?
    min_version: str = "1.6.0"
    doc: str = ""


# ----------------------------------------------------------------------------------------------- inputs
def _stored(a: np.ndarray, dtype: str) -> np.ndarray:
    """Round to the storage dtype: path and reference both see exactly these values."""
    return np.asarray(a).astype(dtype)


def _nonzero(rng: np.random.Generator, shape: Tuple[int, ...], scale: float) -> np.ndarray:
    """Random values bounded away from zero (sign random): a dropped bias or beta cannot hide."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.0, size=shape) * scale


def _attention_probs(rng: np.random.Generator, rows: int, lq: int, lk: int, dtype: str) -> np.ndarray:
    """Realistic attention weights: softmax of N(0, 2) logits with random valid lengths (zeros beyond)."""
    logits = rng.standard_normal((rows, lq, lk)) * 2.0
    length = rng.integers(1, lk + 1, size=(rows, lq))
    return _stored(ref.softmax(logits, length=length), dtype)


def _fc_inputs(d: Dict[str, Any], rng: np.random.Generator, dtype: str, dist: str) -> Inputs:
    b, k, n = d["B"], d["K"], d["N"]
    x_scale = {"bert": 1.0, "large": 10.0, "positive": 1.0}[dist]
    x = rng.standard_normal((b, k)) * x_scale
    w = rng.standard_normal((n, k)) * 0.02 * (50.0 if dist == "positive" else 1.0)
    if dist == "positive":
        x, w = np.abs(x), np.abs(w)
    return {"x": _stored(x, dtype), "weight": _stored(w, dtype), "bias": _stored(_nonzero(rng, (n,), 0.1), dtype)}


def _fc_expected(inp: Inputs, tol: tl.Tolerance) -> Tuple[np.ndarray, np.ndarray]:
    x, w, b = inp["x"], inp["weight"], inp["bias"]
    exp = ref.fully_connected(x, w, b)
    mag = ref.fully_connected(np.abs(x), np.abs(w), np.abs(b))
    return exp, tl.gemm_bound(tol, mag, x.shape[-1])


def _qkv(d: Dict[str, Any], rng: np.random.Generator, width_per_head: int, length_key: str = "L") -> np.ndarray:
    shape = (d[length_key], d["B"], d["H"] * width_per_head * d["d"])
    return rng.standard_normal(shape) * 1.5


def _sa_qk_inputs(d, rng, dtype, dist) -> Inputs:
    return {"qkv": _stored(_qkv(d, rng, 3), dtype), "heads": d["H"]}


def _sa_qk_expected(inp, tol):
    qkv, h = inp["qkv"], inp["heads"]
    d = qkv.shape[-1] // (3 * h)
    return ref.selfatt_qk(qkv, h), tl.gemm_bound(tol, ref.selfatt_qk(np.abs(qkv), h), d)


def _sa_val_inputs(d, rng, dtype, dist) -> Inputs:
    att = _attention_probs(rng, d["B"] * d["H"], d["L"], d["L"], dtype)
    return {"qkv": _stored(_qkv(d, rng, 3), dtype), "att": att, "heads": d["H"]}


def _sa_val_expected(inp, tol):
    qkv, att, h = inp["qkv"], inp["att"], inp["heads"]
    return (ref.selfatt_valatt(qkv, att, h),
            tl.gemm_bound(tol, ref.selfatt_valatt(np.abs(qkv), np.abs(att), h), att.shape[-1]))


def _ed_qk_inputs(d, rng, dtype, dist) -> Inputs:
    q = rng.standard_normal((d["Lq"], d["B"], d["H"] * d["d"])) * 1.5
    return {"q": _stored(q, dtype), "kv": _stored(_qkv(d, rng, 2, "Lk"), dtype), "heads": d["H"]}


def _ed_qk_expected(inp, tol):
    q, kv, h = inp["q"], inp["kv"], inp["heads"]
    d = q.shape[-1] // h
    return ref.encdec_qk(q, kv, h), tl.gemm_bound(tol, ref.encdec_qk(np.abs(q), np.abs(kv), h), d)


def _ed_val_inputs(d, rng, dtype, dist) -> Inputs:
    att = _attention_probs(rng, d["B"] * d["H"], d["Lq"], d["Lk"], dtype)
    return {"kv": _stored(_qkv(d, rng, 2, "Lk"), dtype), "att": att, "heads": d["H"]}


def _ed_val_expected(inp, tol):
    kv, att, h = inp["kv"], inp["att"], inp["heads"]
    return (ref.encdec_valatt(kv, att, h),
            tl.gemm_bound(tol, ref.encdec_valatt(np.abs(kv), np.abs(att), h), att.shape[-1]))


_SOFTMAX_SCALE = {"bert": 3.0, "wide": 10.0, "large": 1e4}


def _softmax_inputs(d, rng, dtype, dist) -> Inputs:
    rows, n = d["rows"], d["L"]
    x = rng.standard_normal((rows, n)) * _SOFTMAX_SCALE[dist]
    if dist == "large":
        x = rng.uniform(-1e4, 1e4, size=(rows, n))
    kind = d["length"]
    if kind == "full":
        length = np.full(rows, n)
    elif kind == "one":
        length = np.ones(rows, dtype=np.int64)
    elif kind == "random":
        length = rng.integers(1, n + 1, size=rows)
    else:
        raise PerfsuiteInputError(f"softmax length kind {kind!r}; allowed: full, one, random")
    return {"x": _stored(x, dtype), "length": length.astype(np.int32)}


def _softmax_expected(inp, tol):
    x, length = inp["x"].astype(np.float64), inp["length"]
    y = ref.softmax(x, length=length)
    valid = np.arange(x.shape[-1])[None, :] < length[:, None]
    row_max = np.where(valid, x, -np.inf).max(axis=-1, keepdims=True)
    shifted = np.where(valid, x - row_max, 0.0)
    return y, tl.softmax_bound(tol, y, shifted, length)


_LN_EPS = 1e-5  # GluonNLP 0.10 BERT's layer_norm_eps


def _ln_inputs(d, rng, dtype, dist) -> Inputs:
    n, c = d["N"], d["C"]
    if dist == "bert":  # residual stream: per-token offset, std 1..10, a few outlier channels
        x = rng.standard_normal((n, c)) * rng.uniform(1.0, 10.0, size=(n, 1)) + rng.normal(0, 2, size=(n, 1))
        outliers = rng.choice(c, size=max(1, c // 128), replace=False)
        x[:, outliers] += rng.uniform(100.0, 300.0, size=(n, len(outliers))) * rng.choice([-1, 1], len(outliers))
    elif dist == "unit":
        x = rng.standard_normal((n, c))
    elif dist == "huge":  # row std 300: variance 9e4 exceeds the float16 maximum 65504
        x = rng.standard_normal((n, c)) * 300.0
    else:
        raise PerfsuiteInputError(f"layer_norm distribution {dist!r}; allowed: bert, unit, huge")
    gamma = rng.uniform(0.5, 1.5, size=c) * rng.choice([-1.0, 1.0], size=c)
    return {"x": _stored(x, dtype), "gamma": _stored(gamma, dtype),
            "beta": _stored(_nonzero(rng, (c,), 0.5), dtype), "eps": _LN_EPS}


def _ln_expected(inp, tol):
    x, g, b, eps = inp["x"], inp["gamma"], inp["beta"], inp["eps"]
    return ref.layer_norm(x, g, b, eps=eps), tl.layer_norm_bound(tol, x, g, b, eps)


def _gelu_inputs(d, rng, dtype, dist) -> Inputs:
    scale = {"bert": 3.0, "wide": 8.0}[dist]
    return {"x": _stored(rng.standard_normal((d["N"], d["C"])) * scale, dtype)}


def _bias_gelu_inputs(d, rng, dtype, dist) -> Inputs:
    scale = {"bert": 3.0, "wide": 8.0}[dist]
    return {"x": _stored(rng.standard_normal((d["N"], d["C"])) * scale, dtype),
            "bias": _stored(_nonzero(rng, (d["C"],), 1.0), dtype)}


def _bias_gelu_expected(inp, tol):
    z = inp["x"].astype(np.float64) + inp["bias"].astype(np.float64)
    y = ref.gelu_erf(z)
    return y, tl.gelu_bound(tol, np.abs(inp["x"].astype(np.float64)) + np.abs(inp["bias"]), y)


def _gelu_expected(fn):
    def expected(inp, tol):
        y = fn(inp["x"])
        return y, tl.gelu_bound(tol, inp["x"], y)
    return expected


OPS: Dict[str, OpSpec] = {
    s.name: s
    for s in (
        OpSpec("fully_connected", ("B", "K", "N"), ("bert", "large", "positive"), _fc_inputs,
               lambda x, weight, bias: ops.fully_connected(x, weight, bias, ctx=_CTX.get()),
               _fc_expected, cpu_fp16=False, doc="FullyConnected with bias (BERT's GEMMs)"),
        OpSpec("interleaved_selfatt_qk", ("L", "B", "H", "d"), ("bert",), _sa_qk_inputs,
               lambda qkv, heads: ops.selfatt_qk(qkv, heads, ctx=_CTX.get()),
               _sa_qk_expected, cpu_fp16=False, doc="contrib.interleaved_matmul_selfatt_qk"),
        OpSpec("interleaved_selfatt_valatt", ("L", "B", "H", "d"), ("bert",), _sa_val_inputs,
               lambda qkv, att, heads: ops.selfatt_valatt(qkv, att, heads, ctx=_CTX.get()),
               _sa_val_expected, cpu_fp16=False, doc="contrib.interleaved_matmul_selfatt_valatt"),
        OpSpec("interleaved_encdec_qk", ("Lq", "Lk", "B", "H", "d"), ("bert",), _ed_qk_inputs,
               lambda q, kv, heads: ops.encdec_qk(q, kv, heads, ctx=_CTX.get()),
               _ed_qk_expected, cpu_fp16=False, doc="contrib.interleaved_matmul_encdec_qk"),
        OpSpec("interleaved_encdec_valatt", ("Lq", "Lk", "B", "H", "d"), ("bert",), _ed_val_inputs,
               lambda kv, att, heads: ops.encdec_valatt(kv, att, heads, ctx=_CTX.get()),
               _ed_val_expected, cpu_fp16=False, doc="contrib.interleaved_matmul_encdec_valatt"),
        OpSpec("softmax_length", ("rows", "L", "length"), ("bert", "wide", "large"), _softmax_inputs,
               lambda x, length: ops.softmax(x, length, ctx=_CTX.get()),
               _softmax_expected, cpu_fp16=True, doc="softmax(x, length=, use_length=True)"),
        OpSpec("layer_norm", ("N", "C"), ("bert", "unit", "huge"), _ln_inputs,
               lambda x, gamma, beta, eps: ops.layer_norm(x, gamma, beta, eps=eps, ctx=_CTX.get()),
               _ln_expected, cpu_fp16=True, doc="LayerNorm (eps 1e-5, GluonNLP BERT's)"),
        OpSpec("gelu_erf", ("N", "C"), ("bert", "wide"), _gelu_inputs,
               lambda x: ops.gelu_erf(x, ctx=_CTX.get()), _gelu_expected(ref.gelu_erf), cpu_fp16=True,
               doc="LeakyReLU(act_type='gelu'), GluonNLP BERT's activation"),
        OpSpec("gelu_tanh", ("N", "C"), ("bert", "wide"), _gelu_inputs,
               lambda x: ops.gelu_tanh(x, ctx=_CTX.get()), _gelu_expected(ref.gelu_tanh), cpu_fp16=True,
               doc="gluonnlp.model.GELU(approximate=True)"),
        OpSpec("bias_gelu", ("N", "C"), ("bert", "wide"), _bias_gelu_inputs,
               lambda x, bias: ops.bias_gelu_hybrid(x, bias, ctx=_CTX.get()), _bias_gelu_expected,
               cpu_fp16=True, doc="hybridized bias + erf-GELU; on GPU with MXNET_USE_FUSION 0 and 1"),
    )
}


class _Context:
    """The MXNet context the registered implementations run on, set by run_case."""

    def __init__(self) -> None:
        self._ctx: Any = None

    def get(self) -> Any:
        return self._ctx if self._ctx is not None else ops.default_context()

    def set(self, ctx: Any) -> None:
        self._ctx = ctx


_CTX = _Context()


# ----------------------------------------------------------------------------------------------- skips
def skip_reason(case: ParityCase, info: Optional[_env.EnvInfo] = None) -> Optional[str]:
    """Why this case cannot run on this installation (None when it can): exact about what is missing."""
    info = info or _env.collect_env()
    mode = tl.MODES[case.mode]
    spec = OPS[case.path]
    if case.device == "gpu" or mode.gpu_only:
        reason = _env.skip_reason_gpu(info)
        if reason:
            return reason
    if case.device == "cpu":
        if mode.gpu_only:
            return f"{case.mode} ({mode.doc}) exists only on GPU"
        if mode.storage == "float16" and not spec.cpu_fp16:
            return (f"{case.path} has no CPU float16 kernel in MXNet (float16 GEMMs are CUDA-only: "
                    "'float16 fully connected layer is currently only supported by CuDNN version'); "
                    "its float16 check runs on a CUDA build")
    if mode.name == "float16-true":
        reason = _env.skip_reason_feature("fc_true_fp16", info)
        if reason:
            return reason
    if not _env.mxnet_at_least(spec.min_version, info):
        return f"needs MXNet >= {spec.min_version} for {case.path}; found {info.mxnet_distribution} {info.mxnet_dist_version}"
    return None


# ----------------------------------------------------------------------------------------------- run
def _context_for(device: str) -> Any:
    import mxnet as mx

    return mx.gpu(0) if device == "gpu" else mx.cpu()


def make_inputs(case: ParityCase) -> Inputs:
    """The case's seeded inputs, already rounded to the storage dtype."""
    rng = np.random.default_rng(case.seed)
    return OPS[case.path].make_inputs(case.dims, rng, tl.MODES[case.mode].storage, case.dist)


def run_case(case: ParityCase, impl: Optional[Callable[..., np.ndarray]] = None,
             inputs: Optional[Inputs] = None) -> CheckResult:
    """Run one case and compare it with the reference; `impl` replaces the MXNet path (same signature)."""
    spec = OPS[case.path]
    inputs = inputs if inputs is not None else make_inputs(case)
    expected, bound = spec.expected_and_bound(inputs, case.tolerance)
    fn = impl or spec.impl
    context = {"seed": case.seed, "shape": case.shape_str, "dist": case.dist, "device": case.device,
               "flags": ",".join(f"{k}={v}" for k, v in sorted(case.all_flags.items())) or "none",
               "tolerance": f"{case.path}/{case.mode}"}
    _CTX.set(_context_for(case.device) if impl is None else None)
    try:
        with pflags.mxnet_flags(**case.all_flags):
            actual = fn(**inputs)
    finally:
        _CTX.set(None)
    return compare(actual, expected, bound, name=f"{case.path}[{case.mode},{case.device}]", context=context)


# ----------------------------------------------------------------------------------------------- grids
BERT_HEADS = ((12, 64), (16, 64))  # BERT-base, BERT-large head layouts (heads, head_dim)
ODD_HEADS = ((3, 5), (1, 7))
from perfsuite.workloads import SEQ_LENS  # noqa: E402  (the seed's sequence lengths, declared once)


def _modes_for(path: str) -> List[str]:
    return sorted(m for p, m in tl.TOLERANCES if p == path)


def default_cases(devices: Iterable[str] = ("cpu", "gpu"), quick: bool = False) -> List[ParityCase]:
    """The op-level grid run by `pytest` and `perfsuite parity` (every mode, both devices; skips decided at run)."""
    cases: List[ParityCase] = []
    seq_lens = (128,) if quick else SEQ_LENS
    for device in devices:
        for path in ("interleaved_selfatt_qk", "interleaved_selfatt_valatt"):
            for mode in _modes_for(path):
                for (h, d) in BERT_HEADS + ODD_HEADS:
                    for L in (seq_lens if (h, d) in BERT_HEADS else (1, 9)):
                        b = 2 if L <= 128 else 1
                        cases.append(ParityCase(path, mode, (("L", L), ("B", b), ("H", h), ("d", d)), device))
        for path in ("interleaved_encdec_qk", "interleaved_encdec_valatt"):
            for mode in _modes_for(path):
                for (h, d), lq, lk in (((12, 64), 128, 80), ((16, 64), 80, 384), ((3, 5), 1, 7), ((2, 4), 9, 1)):
                    cases.append(ParityCase(path, mode, (("Lq", lq), ("Lk", lk), ("B", 2), ("H", h), ("d", d)),
                                            device))
        for mode in _modes_for("fully_connected"):
            for (b, k, n) in ((8, 768, 2304), (8, 3072, 768), (4, 1024, 4096), (1, 7, 3)):
                cases.append(ParityCase("fully_connected", mode, (("B", b), ("K", k), ("N", n)), device))
            cases.append(ParityCase("fully_connected", mode, (("B", 8), ("K", 1024), ("N", 256)), device,
                                    dist="positive"))
        for mode in _modes_for("softmax_length"):
            for L in seq_lens + (1,):
                for kind in ("full", "random", "one"):
                    if L == 1 and kind != "full":
                        continue
                    for dist in ("bert", "large"):
                        cases.append(ParityCase("softmax_length", mode,
                                                (("rows", 48), ("L", L), ("length", kind)), device, dist))
        for mode in _modes_for("layer_norm"):
            for c in (768, 1024, 5):
                for dist in ("bert", "unit"):
                    cases.append(ParityCase("layer_norm", mode, (("N", 64), ("C", c)), device, dist))
        for path in ("gelu_erf", "gelu_tanh"):
            for mode in _modes_for(path):
                for dist in ("bert", "wide"):
                    cases.append(ParityCase(path, mode, (("N", 64), ("C", 3072)), device, dist))
        for mode in _modes_for("bias_gelu"):
            # MXNET_USE_FUSION is read when the graph is bound and exists only in CUDA builds: on GPU the
            # fused and unfused graphs are both checked; on CPU the plain hybridized graph.
            for fusion in (("1", "0") if device == "gpu" else (None,)):
                flags = (("MXNET_USE_FUSION", fusion),) if fusion else ()
                cases.append(ParityCase("bias_gelu", mode, (("N", 64), ("C", 3072)), device, "bert", flags=flags))
    return cases


# ----------------------------------------------------------------------------------------------- running many
@dataclass(frozen=True)
class Outcome:
    """What happened to one case: pass, fail (beyond tolerance), error (MXNet raised), or skip (with the reason)."""

    case: ParityCase
    status: str
    comparison: Optional[CheckResult] = None
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        c = self.case
        return {"id": c.id, "path": c.path, "mode": c.mode, "device": c.device, "shape": dict(c.shape),
                "dist": c.dist, "seed": c.seed, "flags": c.all_flags, "status": self.status,
                "detail": self.detail, "seconds": round(self.seconds, 4),
                "comparison": self.comparison.to_dict() if self.comparison else None}


def run_cases(cases: Iterable[ParityCase],
              progress: Optional[Callable[[int, int, "Outcome"], None]] = None) -> List[Outcome]:
    """Run every case (skips decided per case); MXNet errors are outcomes, not crashes."""
    import time

    cases = list(cases)
    info = _env.collect_env()
    outcomes: List[Outcome] = []
    for i, case in enumerate(cases):
        reason = skip_reason(case, info)
        t0 = time.perf_counter()
        if reason:
            out = Outcome(case, "skip", detail=reason)
        else:
            try:
                cmp = run_case(case)
                out = Outcome(case, "pass" if cmp.passed else "fail", cmp, cmp.message)
            except Exception as exc:  # an MXNet error is a finding about this build, reported per case
                first = str(exc).strip().splitlines()
                out = Outcome(case, "error", detail=f"{type(exc).__name__}: {first[0] if first else ''}"[:500])
        out = Outcome(out.case, out.status, out.comparison, out.detail, time.perf_counter() - t0)
        outcomes.append(out)
        if progress:
            progress(i + 1, len(cases), out)
    return outcomes


@dataclass(frozen=True)
class SummaryRow:
    """One line of the parity table: a (path, mode, device) group."""

    path: str
    mode: str
    device: str
    shapes: Tuple[str, ...]
    counts: Dict[str, int]
    worst_ratio: float
    verdict: str
    detail: str


def summarize(outcomes: Iterable[Outcome]) -> List[SummaryRow]:
    """Group outcomes per (path, mode, device): FAIL if any failed or errored, SKIP if none ran, else PASS."""
    groups: Dict[Tuple[str, str, str], List[Outcome]] = {}
    for o in outcomes:
        groups.setdefault((o.case.path, o.case.mode, o.case.device), []).append(o)
    rows = []
    for (path, mode, device), outs in groups.items():
        counts = {s: sum(o.status == s for o in outs) for s in ("pass", "fail", "error", "skip")}
        ratios = [o.comparison.worst_ratio for o in outs if o.comparison is not None]
        bad = [o for o in outs if o.status in ("fail", "error")]
        if bad:
            verdict, detail = "FAIL", bad[0].detail
        elif counts["pass"] == 0:
            verdict, detail = "SKIP", outs[0].detail
        else:
            verdict, detail = "PASS", ""
        shapes = tuple(dict.fromkeys(f"{o.case.shape_str}/{o.case.dist}" for o in outs))
        rows.append(SummaryRow(path, mode, device, shapes, counts, max(ratios) if ratios else math.nan,
                               verdict, detail))
    return rows
