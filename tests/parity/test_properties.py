"""Hypothesis properties: the optimized paths agree with the references on drawn shapes, lengths and seeds.

Each drawn example becomes a ParityCase, so a failure prints the case (path, mode, shape, seed) that reproduces it.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from perfsuite.parity.ops import ParityCase, run_case, skip_reason
from perfsuite.pytest_plugin import skip_unless_runnable

seeds = st.integers(0, 2 ** 31 - 1)
heads_dims = st.sampled_from([(12, 64), (16, 64), (1, 1), (2, 3), (3, 5), (4, 16), (8, 8)])


def _check(case: ParityCase) -> None:
    skip_unless_runnable(skip_reason(case))
    result = run_case(case)
    assert result.passed, f"{case}\n{result.message}"


@settings(max_examples=25)
@given(hd=heads_dims, L=st.integers(1, 160), B=st.integers(1, 4), seed=seeds,
       path=st.sampled_from(["interleaved_selfatt_qk", "interleaved_selfatt_valatt"]))
def test_selfatt_property(hd, L, B, seed, path):
    h, d = hd
    _check(ParityCase(path, "float32", (("L", L), ("B", B), ("H", h), ("d", d)), seed=seed))


@settings(max_examples=15)
@given(hd=heads_dims, Lq=st.integers(1, 96), Lk=st.integers(1, 96), B=st.integers(1, 3), seed=seeds,
       path=st.sampled_from(["interleaved_encdec_qk", "interleaved_encdec_valatt"]))
def test_encdec_property(hd, Lq, Lk, B, seed, path):
    h, d = hd
    _check(ParityCase(path, "float32", (("Lq", Lq), ("Lk", Lk), ("B", B), ("H", h), ("d", d)), seed=seed))


@settings(max_examples=30)
@given(rows=st.integers(1, 64), L=st.integers(1, 512), kind=st.sampled_from(["full", "random", "one"]),
       dist=st.sampled_from(["bert", "wide", "large"]), mode=st.sampled_from(["float32", "float16"]), seed=seeds)
def test_softmax_length_property(rows, L, kind, dist, mode, seed):
    _check(ParityCase("softmax_length", mode, (("rows", rows), ("L", L), ("length", kind)), dist=dist, seed=seed))


@settings(max_examples=20)
@given(N=st.integers(1, 32), C=st.integers(2, 1024), dist=st.sampled_from(["bert", "unit"]),
       mode=st.sampled_from(["float32", "float16"]), seed=seeds)
def test_layer_norm_property(N, C, dist, mode, seed):
    _check(ParityCase("layer_norm", mode, (("N", N), ("C", C)), dist=dist, seed=seed))


@settings(max_examples=20)
@given(B=st.integers(1, 16), K=st.integers(1, 1024), N=st.integers(1, 256), seed=seeds,
       dist=st.sampled_from(["bert", "large", "positive"]))
def test_fully_connected_property(B, K, N, seed, dist):
    _check(ParityCase("fully_connected", "float32", (("B", B), ("K", K), ("N", N)), dist=dist, seed=seed))
