"""INT8 judged the way MLPerf judges it: quality on a task users run, on real weights and real text.

The task: semantic search with all-MiniLM-L6-v2, a sentence-embedding model (what its users run it for). The
corpus is the documentation text that ships with CPython (`pydoc_data.topics`, the help() topics, written by the
Python documentation authors, PSF license; available offline on every machine with Python). Its sentences are
split in a fixed, deterministic way; the first CALIB_SENTENCES calibrate the quantization and the next
EVAL_SENTENCES (disjoint) are embedded by FP32 and INT8 (mean of valid tokens, as sentence-transformers pools).

Every evaluated sentence is a query against all the others. With the FP32 cosine similarities as graded relevance
(clipped at 0), nDCG@10 of the INT8 ranking is the INT8 model's retrieval quality relative to FP32 (FP32's own
ranking scores 1 by construction): the criterion is nDCG@10 >= 0.99 (MLPerf's 99 % of FP32 quality). Reported
beside it, stricter agreement figures: recall@10 (the share of FP32's top 10 INT8 also returns), the Spearman
correlation of all pairwise similarities, and the minimum and median cosine between each sentence's INT8 and
FP32 embeddings.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from perfsuite.errors import PerfsuiteInputError

__all__ = ["corpus", "embed", "retrieval_metrics", "TaskResult", "run_retrieval_task", "CRITERION",
           "CALIB_SENTENCES", "EVAL_SENTENCES", "TASK_SEQ_LEN", "head_figures"]

#: MLPerf's rule: the quantized model keeps at least 99 % of the FP32 model's quality (nDCG@10 here).
CRITERION = 0.99
CALIB_SENTENCES = 200
EVAL_SENTENCES = 1500
TASK_SEQ_LEN = 64
_K = 10


def corpus() -> List[str]:
    """The sentences of CPython's pydoc topics: split at sentence ends, 6-50 words, no code blocks, unique, in the
    order of the sorted topic names (deterministic for a given Python release)."""
    import pydoc_data.topics as topics

    out: List[str] = []
    for key in sorted(topics.topics):
        text = re.sub(r"\s+", " ", topics.topics[key])
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
            words = s.split()
            if 6 <= len(words) <= 50 and ">>>" not in s and "{" not in s and s[0].isupper() and s[-1] in ".!?":
                out.append(s.strip())
    return list(dict.fromkeys(out))


def corpus_fingerprint(sentences: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]


def splits(n_eval: int = EVAL_SENTENCES, n_calib: int = CALIB_SENTENCES) -> Tuple[List[str], List[str]]:
    """(calibration sentences, evaluation sentences): disjoint, from the start of the corpus."""
    sentences = corpus()
    if n_calib + n_eval > len(sentences):
        raise PerfsuiteInputError(f"the pydoc corpus of this Python has {len(sentences)} sentences; asked for "
                                  f"{n_calib} calibration + {n_eval} evaluation sentences")
    return sentences[:n_calib], sentences[n_calib:n_calib + n_eval]


def embed(runner: Any, tokenizer: Any, sentences: Sequence[str], seq_len: int = TASK_SEQ_LEN,
          batch: int = 64) -> np.ndarray:
    """Mean-of-valid-tokens embeddings (float64) of `sentences` through an embedding-task runner; long sentences
    are cut to seq_len (the same cut for every path compared)."""
    ids, types, valid = tokenizer.encode(list(sentences), seq_len=seq_len, truncate=True)
    parts = []
    for s in range(0, len(sentences), batch):
        out = runner(ids[s:s + batch], types[s:s + batch], valid[s:s + batch])
        parts.append(out["embedding_mean"])
    return np.concatenate(parts).astype(np.float64)


def _normalize(e: np.ndarray) -> np.ndarray:
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def retrieval_metrics(fp32: np.ndarray, int8: np.ndarray, k: int = _K) -> Dict[str, float]:
    """nDCG@k of INT8's ranking with FP32's similarities as graded relevance, recall@k of FP32's top k, Spearman
    correlation of the pairwise similarities, minimum and median per-sentence cosine (INT8 vs FP32)."""
    from scipy.stats import spearmanr

    if fp32.shape != int8.shape or fp32.ndim != 2 or fp32.shape[0] <= k:
        raise PerfsuiteInputError(f"need two (N, units) embeddings of one shape with N > {k}; got {fp32.shape} "
                                  f"and {int8.shape}")
    f, q = _normalize(fp32), _normalize(int8)
    sim_f, sim_q = f @ f.T, q @ q.T
    n = sim_f.shape[0]
    np.fill_diagonal(sim_f, -np.inf)
    np.fill_diagonal(sim_q, -np.inf)
    top_f = np.argsort(-sim_f, axis=1)[:, :k]
    top_q = np.argsort(-sim_q, axis=1)[:, :k]
    gains = np.clip(np.where(np.isfinite(sim_f), sim_f, 0.0), 0.0, None)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    rows = np.arange(n)[:, None]
    dcg = (gains[rows, top_q] * discount).sum(axis=1)
    idcg = (gains[rows, top_f] * discount).sum(axis=1)
    ndcg = float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 1.0)))
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_f, top_q)]))
    iu = np.triu_indices(n, 1)
    rho = float(spearmanr(sim_f[iu], sim_q[iu]).statistic)
    cos = (f * q).sum(axis=1)
    return {"ndcg@10": ndcg, "recall@10": recall, "spearman": rho, "cosine_min": float(cos.min()),
            "cosine_median": float(np.median(cos))}


@dataclass
class TaskResult:
    """The retrieval task's verdict and figures for one INT8 configuration."""

    metrics: Dict[str, float]
    passed: bool
    config: Dict[str, Any]
    corpus: Dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        m = self.metrics
        return (f"{'PASS' if self.passed else 'FAIL'} INT8 semantic search on {self.corpus.get('eval')} pydoc "
                f"sentences (MiniLM, seq {self.corpus.get('seq_len')}): nDCG@10 {m['ndcg@10']:.4f} "
                f"(>= {CRITERION}), recall@10 {m['recall@10']:.3f}, Spearman {m['spearman']:.3f}, cosine min "
                f"{m['cosine_min']:.3f} (median {m['cosine_median']:.3f})")


def run_retrieval_task(int8_runner: Any, fp32_runner: Any, tokenizer: Any, eval_sentences: Sequence[str],
                       seq_len: int = TASK_SEQ_LEN, config: Optional[Dict[str, Any]] = None,
                       fp32_embeddings: Optional[np.ndarray] = None) -> TaskResult:
    """Embed the evaluation sentences with both runners and judge INT8 by nDCG@10 against the criterion."""
    f = fp32_embeddings if fp32_embeddings is not None else embed(fp32_runner, tokenizer, eval_sentences, seq_len)
    q = embed(int8_runner, tokenizer, eval_sentences, seq_len)
    metrics = retrieval_metrics(f, q)
    return TaskResult(metrics, metrics["ndcg@10"] >= CRITERION, dict(config or {}),
                      {"eval": len(eval_sentences), "seq_len": seq_len, "source": "pydoc_data.topics",
                       "fingerprint": corpus_fingerprint(list(eval_sentences))})


def head_figures(actual: Dict[str, np.ndarray], ref: Dict[str, np.ndarray], valid: np.ndarray) -> Dict[str, float]:
    """Figures (not criteria) for task heads without training (seeded random): the share of inputs whose argmax
    flips among those whose FP32 margin exceeds 3x the median INT8-FP32 logit difference (a confident input should
    not flip), and the share of all flips. Random heads put many inputs near ties that any perturbation flips."""
    out: Dict[str, float] = {}

    def flips(a: np.ndarray, r: np.ndarray, name: str) -> None:
        top_r = np.argsort(-r, axis=-1)
        margin = np.take_along_axis(r, top_r[..., :1], -1)[..., 0] - np.take_along_axis(r, top_r[..., 1:2], -1)[..., 0]
        scale = float(np.median(np.abs(a - r))) or 1e-12
        flipped = a.argmax(-1) != r.argmax(-1)
        confident = margin > 3 * scale
        out[f"{name}_flips"] = float(flipped.mean())
        out[f"{name}_confident_flips"] = float(flipped[confident].mean()) if confident.any() else 0.0
        out[f"{name}_confident_share"] = float(confident.mean())

    if "classification" in actual:
        flips(actual["classification"], ref["classification"], "classification")
    if "qa" in actual:
        mask = np.arange(ref["qa"].shape[1])[None, :] >= np.asarray(valid)[:, None]
        for k, name in ((0, "qa_start"), (1, "qa_end")):
            a = np.where(mask, -1e9, actual["qa"][..., k])
            r = np.where(mask, -1e9, ref["qa"][..., k])
            flips(a, r, name)
    if "embedding_mean" in actual:
        a, r = _normalize(actual["embedding_mean"]), _normalize(ref["embedding_mean"])
        out["embedding_cosine_min"] = float((a * r).sum(axis=1).min())
    return out
