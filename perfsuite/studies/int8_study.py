"""Which INT8 recipe keeps 99 % of FP32's quality, and at what speed? Every configuration of
perfsuite.paths.model.INT8_CONFIGS is calibrated on the corpus's calibration split, judged on the semantic-search
task (perfsuite.parity.int8_task: nDCG@10, recall@10, Spearman, cosine) and timed against oneDNN FP32 in alternation
(counterbalanced rounds in one process; the speed-up with its interval from perfsuite.stats). A benchmark, not a
test: a few minutes on 2 cores.

    python -m perfsuite.studies.int8_study --out results/int8-study.json
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Optional, Sequence
from perfsuite.env import collect_env
from perfsuite.errors import PerfsuiteInputError
from perfsuite.parity import int8_task as it
from perfsuite.parity.model import model_weights
from perfsuite.paths.model import INT8_CONFIGS, prepare
from perfsuite.results import write_json_atomic
from perfsuite.stats import compare_paired
from perfsuite.tables import table
from perfsuite.timing import time_alternating
from perfsuite.tokenizer import Tokenizer
from perfsuite.weights import CONFIGS

__all__ = ["main", "study"]


def study(configs: Sequence[str], rounds: int = 6, batch: int = 8, seq_len: int = 64,
          log: Any = sys.stderr) -> List[Dict[str, Any]]:
    from perfsuite.models import load_minilm

    cfg, weights = CONFIGS["minilm"], model_weights("minilm")
    tok = Tokenizer(load_minilm()[2])
    calib, evals = it.splits()
    calib_batch = tok.encode(calib, seq_len=it.TASK_SEQ_LEN, truncate=True)

    try:
        fp32, fp32_name = prepare("onednn", cfg, weights, task="embedding"), "oneDNN FP32"
    except PerfsuiteInputError as exc:  # MXNet 1.8 partitions none of BERT's encoder (FullyConnected flatten=False)
        print(f"oneDNN FP32 unavailable here ({str(exc)[:80]}...): the speed-up is against hybridized FP32", file=log)
        fp32, fp32_name = prepare("hybridized", cfg, weights, task="embedding"), "hybridized FP32"
    ref = it.embed(prepare("hybridized", cfg, weights, task="embedding"), tok, evals)
    timed_batch = tok.encode(evals[:batch], seq_len=seq_len, truncate=True)
    fp32_in = fp32.inputs(*timed_batch)
    rows = []
    for name in configs:
        t0 = time.perf_counter()
        int8 = prepare("int8", cfg, weights, task="embedding", calib_batches=[calib_batch], int8_config=name)
        res = it.run_retrieval_task(int8, None, tok, evals, config={"name": name}, fp32_embeddings=ref)
        int8_in = int8.inputs(*timed_batch)
        samples = time_alternating({"fp32": lambda: fp32.forward(fp32_in), "int8": lambda: int8.forward(int8_in)},
                                   rounds=rounds, warmup=1)
        speed = compare_paired([s.wall_s for s in samples["fp32"]], [s.wall_s for s in samples["int8"]],
                               confidence=0.95, threshold=0.05, unit="round")
        row = {"config": name, "quantization": int8.info.get("quantization"), **res.metrics,
               "passed": res.passed, "speedup": 1 / speed.ratio, "speedup_low": 1 / speed.high,
               "speedup_high": 1 / speed.low, "rounds": rounds, "seconds": round(time.perf_counter() - t0, 1),
               "speedup_vs": fp32_name}
        rows.append(row)
        print(f"{name}: nDCG@10 {row['ndcg@10']:.4f} recall@10 {row['recall@10']:.3f} Spearman "
              f"{row['spearman']:.3f} cos min {row['cosine_min']:.3f} speed-up {row['speedup']:.2f}x "
              f"[{row['speedup_low']:.2f}, {row['speedup_high']:.2f}] ({row['seconds']} s)", file=log, flush=True)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perfsuite.studies.int8_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(INT8_CONFIGS), help="comma-separated INT8_CONFIGS names")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds for the speed-up (default 6)")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in INT8_CONFIGS]
    if unknown:
        print(f"error: unknown configuration(s) {unknown}; allowed: {', '.join(INT8_CONFIGS)}", file=sys.stderr)
        return 2
    rows = study(names, rounds=args.rounds)
    info = collect_env()
    print(f"MiniLM INT8 vs FP32 on {info.describe_mxnet()}, {info.cpu_model}, {info.omp_threads} threads")
    print(table(["configuration", "nDCG@10", "recall@10", "Spearman", "cos min", "cos median", "meets 0.99",
                 f"speed-up vs {rows[0]['speedup_vs'] if rows else 'FP32'} (b8, L64)"],
                [[r["config"], f"{r['ndcg@10']:.4f}", f"{r['recall@10']:.3f}", f"{r['spearman']:.3f}",
                  f"{r['cosine_min']:.3f}", f"{r['cosine_median']:.3f}", "yes" if r["passed"] else "no",
                  f"{r['speedup']:.2f}x [{r['speedup_low']:.2f}, {r['speedup_high']:.2f}]"] for r in rows]))
    if args.out:
        write_json_atomic(args.out, {"format": "perfsuite-int8-study", "format_version": 1, "env": info.to_dict(),
                                     "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
