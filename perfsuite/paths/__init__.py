"""The implementations under test, each with the float64 references' signatures: MXNet's optimized ops (ops), the
deployment paths of a whole model from imperative to INT8, graph pass and GPU FP16 (model), BERT with naive
attention as the ablation baseline (naive_bert), the ONNX Runtime paths (onnx) and the Runner interface every
prepared path has (runner)."""
