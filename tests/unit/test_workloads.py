"""perfsuite.workloads: the grid is the seed's, profiles have the documented sizes, selection overrides any
dimension, bad input is named, and the FLOP count matches a hand computation."""

from __future__ import annotations

import pytest

from perfsuite.errors import PerfsuiteInputError
from perfsuite.paths.model import MODEL_PATHS
from perfsuite.weights import CONFIGS
from perfsuite.workloads import BATCH_SIZES, PROFILES, SEQ_LENS, SPEEDUPS, TASKS, Workload, bert_flops, select


def test_grid_is_the_seeds():
    assert SEQ_LENS == (80, 128, 384)
    assert BATCH_SIZES == (1, 4, 8, 16, 32, 64, 128, 300)
    assert TASKS == ("classification", "qa", "embedding")


def test_quick_profile():
    ws = select("quick")
    assert len(ws) == 4 * 6  # 4 CPU paths x batch 1, 2, 4, 8, 16, 32
    assert {w.model for w in ws} == {"bert-base"} and {w.seq_len for w in ws} == {128}
    assert sorted({w.batch for w in ws}) == [1, 2, 4, 8, 16, 32]
    assert {w.path for w in ws} == {"naive_attention", "hybridized", "onednn", "int8"}
    assert {w.task for w in ws} == {"classification"}
    assert all(MODEL_PATHS[w.path].device == "cpu" for w in ws)


def test_full_profile_is_the_whole_seed_grid():
    ws = select("full")
    p = PROFILES["full"]
    assert set(p.models) == {"bert-base", "bert-large"}
    assert len(p.paths) == 9 and {"gpu_fp16", "gpu_fp16_true", "int8"} <= set(p.paths)
    assert len(ws) == 2 * 9 * 3 * 8 * 3 == 1296
    assert {w.seq_len for w in ws} == set(SEQ_LENS) and {w.batch for w in ws} == set(BATCH_SIZES)
    assert len({w.id for w in ws}) == len(ws)  # no duplicates


def test_smoke_profile_is_small():
    ws = select("smoke")
    assert len(ws) == 4 * 2
    assert {w.model for w in ws} == {"small"} and {w.seq_len for w in ws} == {32}
    assert sorted({w.batch for w in ws}) == [1, 4]


def test_profiles_only_name_known_paths_models_tasks():
    for p in PROFILES.values():
        assert set(p.paths) <= set(MODEL_PATHS) and set(p.models) <= set(CONFIGS) and set(p.tasks) <= set(TASKS)
        assert p.doc
    for optimized, baseline, label in SPEEDUPS:
        assert optimized in MODEL_PATHS and baseline in MODEL_PATHS and label


def test_select_overrides():
    ws = select("quick", paths=["hybridized"], batch_sizes=[1, 32])
    assert [(w.path, w.batch) for w in ws] == [("hybridized", 1), ("hybridized", 32)]
    ws = select("full", models=["bert-base"], paths=["onednn"], tasks=["qa"], batch_sizes=[8], seq_lens=[384])
    assert ws == [Workload("bert-base", "onednn", "qa", 8, 384)]
    assert {w.model for w in select("smoke", models=["minilm"])} == {"minilm"}
    assert select("quick", seq_lens=[80, 384])[0].seq_len == 80
    # None (or empty) keeps the profile's value
    assert select("quick", paths=None) == select("quick")


def test_workload_id_and_order():
    w = Workload("bert-base", "hybridized", "classification", 8, 128)
    assert w.id == "bert-base/hybridized/classification/b8/L128"
    assert w.cfg is CONFIGS["bert-base"]
    assert [x.batch for x in select("quick", paths=["int8"])] == [1, 2, 4, 8, 16, 32]


@pytest.mark.parametrize("kw,needle", [
    (dict(profile="fast"), "unknown profile 'fast'; allowed: quick, full, smoke"),
    (dict(paths=["hybridised"]), "unknown path 'hybridised'; allowed: imperative, hybridized"),
    (dict(models=["bert-huge"]), "unknown model 'bert-huge'; allowed: small, bert-base, bert-large, minilm"),
    (dict(tasks=["ner"]), "unknown task 'ner'; allowed: classification, qa, embedding"),
    (dict(batch_sizes=[0]), "--batch-size 0: allowed 1 to 4096"),
    (dict(batch_sizes=[2.5]), "--batch-size 2.5: allowed 1 to 4096"),
    (dict(seq_lens=[1]), "sequence length 1: allowed 2 <= seq_len <= 512"),
    (dict(seq_lens=[513]), "sequence length 513: allowed 2 <= seq_len <= 512"),
])
def test_select_bad_input(kw, needle):
    with pytest.raises(PerfsuiteInputError) as err:
        select(**kw)
    assert needle in str(err.value)


@pytest.mark.parametrize("args,needle", [
    (("gpt2", "hybridized", "classification", 1, 128), "unknown model 'gpt2'"),
    (("bert-base", "tensorrt", "classification", 1, 128), "unknown path 'tensorrt'"),
    (("bert-base", "hybridized", "ner", 1, 128), "unknown task 'ner'"),
    (("bert-base", "hybridized", "classification", 0, 128), "batch size 0: must be a positive integer"),
    (("bert-base", "hybridized", "classification", "8", 128), "batch size '8': must be a positive integer"),
    (("bert-base", "hybridized", "classification", 1, 1024), "sequence length 1024: allowed 2 <= seq_len <= 512"),
])
def test_workload_bad_input(args, needle):
    with pytest.raises(PerfsuiteInputError) as err:
        Workload(*args)
    assert needle in str(err.value)


def test_flops_bert_base_seq128_batch1_by_hand():
    # BERT-base: U = 768 units, H = 3072 hidden, 12 layers; one sentence of L = 128 tokens; 2 FLOP per multiply-add.
    # Per token and layer: Q, K, V, output projections 4 * 2 * 768^2          =  4,718,592
    #                      FFN up and down 2 * 2 * 768 * 3072                  =  9,437,184
    #                      scores q.k and context att.v 2 * 2 * 128 * 768      =    393,216
    #                                                                    sum   = 14,548,992
    # x 128 tokens x 12 layers                                                 = 22,347,251,712
    # pooler 2 * 768^2 = 1,179,648; classifier (2 classes) 2 * 768 * 2 = 3,072
    expected = 22_347_251_712 + 1_179_648 + 3_072
    assert expected == 22_348_434_432
    w = Workload("bert-base", "hybridized", "classification", 1, 128)
    assert w.flops == expected
    assert bert_flops(CONFIGS["bert-base"], 1, 128) == expected


def test_flops_scale_with_batch_and_task():
    cfg = CONFIGS["bert-base"]
    one, eight = bert_flops(cfg, 1, 128), bert_flops(cfg, 8, 128)
    assert eight == 8 * one  # everything is per sentence
    emb, qa = bert_flops(cfg, 1, 128, "embedding"), bert_flops(cfg, 1, 128, "qa")
    assert one - emb == 2 * 768 * 2  # the classification head
    assert qa - emb == 128 * 2 * 768 * 2  # start/end logits on every token
    # attention is quadratic in L: seq 384 costs more than 3x seq 128
    assert bert_flops(cfg, 1, 384) > 3 * bert_flops(cfg, 1, 128)
