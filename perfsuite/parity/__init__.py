"""Numerical parity: element-wise checks against a reference (check), the one tolerance table (tolerance), the
op-level grid (ops), the whole-model check of every path (model), the INT8 quality task (int8_task) and the
layer-by-layer trace of a failing model case (trace)."""
