"""Does perfsuite's latency figure agree with a careful hand-written loop over the same graph? A benchmark, not a
test: it builds BERT the way GluonNLP's deploy script does (get_model + BERTClassifier, hybridize with
static_alloc/static_shape), times it with a plain loop (3 warm-up calls, then 25 calls each ended by asnumpy(),
median), and times perfsuite's own callable for the same workload with `perfsuite run`'s quick-profile timing
(perfsuite.bench.timed + perfsuite.timing.time_callable), in alternating rounds in one process. Each round gives one
ratio perfsuite / hand loop; the rounds are compared with perfsuite.stats.compare_paired.

    python -m perfsuite.studies.timer_check --rounds 8          # BERT-base, batch 1, sequence length 128
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional, Sequence

import numpy as np
from perfsuite import bench
from perfsuite.measure_pass import PROFILE_TIMING
from perfsuite.stats import compare_paired
from perfsuite.timing import mxnet_sync, time_callable
from perfsuite.workloads import Workload

__all__ = ["main"]


def _hand_loop(net, inputs, warmup: int = 3, calls: int = 25) -> float:
    for _ in range(warmup):
        net(*inputs).asnumpy()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        net(*inputs).asnumpy()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv: Optional[Sequence[str]] = None) -> int:
    import mxnet as mx
    import gluonnlp as nlp
    from gluonnlp.model import BERTClassifier, get_model

    p = argparse.ArgumentParser(prog="python -m perfsuite.studies.timer_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args(argv)

    w = Workload("bert-base", "hybridized", "classification", args.batch, args.seq_len)
    fn, _ = bench.timed(w)
    vocab = nlp.vocab.BERTVocab(nlp.data.count_tokens(["x"]))
    bert, _ = get_model("bert_12_768_12", dataset_name=None, vocab=vocab, pretrained=False, use_pooler=True,
                        use_decoder=False, use_classifier=False)
    net = BERTClassifier(bert, num_classes=2, dropout=0.1)
    net.initialize(mx.init.Normal(0.02))
    net.hybridize(static_alloc=True, static_shape=True)
    ids, types, valid = bench.batch_for(w)
    inputs = [mx.nd.array(ids, dtype="float32"), mx.nd.array(types, dtype="float32"),
              mx.nd.array(valid, dtype="float32")]
    net(*inputs).asnumpy()
    timing = PROFILE_TIMING["quick"]
    ours: List[float] = []
    hand: List[float] = []
    for r in range(args.rounds):
        order = ("ours", "hand") if r % 2 == 0 else ("hand", "ours")
        for who in order:
            if who == "ours":
                samples, _ = time_callable(fn, warmup=timing.warmup, min_repeat=timing.min_repeat,
                                           max_repeat=timing.max_repeat, min_time_s=timing.min_time_s,
                                           max_time_s=timing.max_time_s, sync=mxnet_sync)
                ours.append(float(np.median([s.wall_s for s in samples if not s.contaminated]
                                            or [s.wall_s for s in samples])))
            else:
                hand.append(_hand_loop(net, inputs))
        print(f"round {r + 1}/{args.rounds}: perfsuite {ours[-1] * 1e3:.1f} ms, hand loop {hand[-1] * 1e3:.1f} ms",
              file=sys.stderr)
    c = compare_paired(hand, ours, threshold=0.02, unit="round")
    print(f"perfsuite / hand loop on {w.id}: {c.describe()}")
    print(f"medians: perfsuite {np.median(ours) * 1e3:.1f} ms, hand loop {np.median(hand) * 1e3:.1f} ms "
          f"(quick profile timing: warm-up {timing.warmup}, {timing.min_repeat}-{timing.max_repeat} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
