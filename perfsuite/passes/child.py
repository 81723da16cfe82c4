"""Child process of :func:`perfsuite.passes.apply_passes_isolated`: load a pass library, apply passes, save.

``python -m perfsuite.passes.child --library LIB --symbol S --params P --out-prefix O --report R --pass NAME...``
loads the model (``S``, ``P`` as written by ``export``), loads ``LIB`` with :func:`perfsuite.passes.load_pass_library`,
applies each ``--pass`` in order with :func:`perfsuite.passes.apply_passes` and writes ``O-symbol.json`` and
``O-0000.params``. A pass library is native code: it may kill or freeze this process, which is why it runs here
and not in the caller.

Progress goes to the report file ``R``, one JSON object per line, flushed before each step, so that the parent
can tell which pass was running when the process died: ``start``, ``library_loading``, ``library_loaded``,
``pass_start``/``pass_done`` per pass, then ``done`` or ``error``. Exit status: 0 done, 2 (a clean failure:
PerfsuiteInputError, e.g. MX_FAIL or an unknown pass name, its message in the ``error`` event), 1 any other
exception; a crash ends the process by its signal.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import time
import traceback
from collections import Counter
from typing import IO, Any, Dict, Optional, Sequence, Tuple

from perfsuite.errors import PerfsuiteInputError
from perfsuite.passes.library import CHILD_INPUT_ERROR_STATUS, apply_passes, load_pass_library
from perfsuite.results import atomic_path

__all__ = ["main"]

# Signals MXNet (1.7-1.9) or a pass library may catch and turn into "exit(255)"; the default action lets the
# parent see which signal ended the process.
_FATAL_SIGNALS = ("SIGSEGV", "SIGFPE", "SIGBUS", "SIGILL", "SIGABRT")


class _Report:
    """Appends JSON events to the report file, flushed at once (the next step may kill the process)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: str, **fields: Any) -> None:
        self._stream.write(json.dumps({"event": event, **fields}) + "\n")
        self._stream.flush()


def _shape(text: str) -> Tuple[str, Tuple[int, ...]]:
    """'data0=1,128' -> ('data0', (1, 128)); 'x=' is a scalar."""
    name, sep, dims = text.partition("=")
    if not sep or not name:
        raise PerfsuiteInputError(f"--input-shape {text!r}; allowed: NAME=D1,D2,... (e.g. data0=1,128)")
    try:
        return name, tuple(int(d) for d in dims.split(",") if d.strip())
    except ValueError:
        raise PerfsuiteInputError(f"--input-shape {text!r}: dimensions must be integers, e.g. data0=1,128") from None


def _option(text: str) -> Tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise PerfsuiteInputError(f"--option {text!r}; allowed: KEY=VALUE")
    return key, value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m perfsuite.passes.child", description=__doc__.splitlines()[0])
    p.add_argument("--library", required=True, help="the pass library (.so)")
    p.add_argument("--symbol", required=True, help="the exported model's -symbol.json")
    p.add_argument("--params", required=True, help="the exported model's .params (arg:/aux: keys)")
    p.add_argument("--out-prefix", required=True, help="writes OUT_PREFIX-symbol.json and OUT_PREFIX-0000.params")
    p.add_argument("--report", required=True, help="JSON-lines progress report")
    p.add_argument("--pass", dest="passes", action="append", required=True, metavar="NAME",
                   help="a pass to apply; repeat for several, applied in order")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2", help="a data input's shape")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a pass option (optimize_for)")
    return p


def _default_fatal_signals() -> None:
    """Undo MXNet's SIGSEGV handler (prints 'Segmentation fault: 11', exits 255); print Python's stack instead."""
    for name in _FATAL_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    faulthandler.enable(file=sys.stderr, all_threads=False)  # then re-raises with the default action


def _load_model(symbol_file: str, params_file: str) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
    """(symbol, arg_params, aux_params) of an exported model; plain names count as args unless auxiliary."""
    import mxnet as mx

    try:
        sym = mx.sym.load(symbol_file)
    except mx.base.MXNetError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PerfsuiteInputError(f"cannot load symbol file {symbol_file}: {first}") from None
    try:
        loaded = mx.nd.load(params_file)
    except mx.base.MXNetError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PerfsuiteInputError(f"cannot load params file {params_file}: {first}") from None
    if not isinstance(loaded, dict):
        raise PerfsuiteInputError(f"params file {params_file} holds a list of arrays; allowed: named arrays (export)")
    aux_names = set(sym.list_auxiliary_states())
    args: Dict[str, Any] = {}
    aux: Dict[str, Any] = {}
    for key, value in loaded.items():
        kind, sep, name = key.partition(":")
        if sep and kind in ("arg", "aux"):
            (args if kind == "arg" else aux)[name] = value
        else:
            (aux if key in aux_names else args)[key] = value
    return sym, args, aux


def _op_counts(sym: Any) -> Counter:
    return Counter(node["op"] for node in json.loads(sym.tojson())["nodes"])


def _save(out_prefix: str, sym: Any, args: Dict[str, Any], aux: Dict[str, Any]) -> Tuple[str, str]:
    """Write OUT-symbol.json and OUT-0000.params via temporary names, so a failure leaves no half files."""
    import mxnet as mx

    symbol_file, params_file = f"{out_prefix}-symbol.json", f"{out_prefix}-0000.params"
    with atomic_path(symbol_file) as tmp_sym, atomic_path(params_file) as tmp_params:
        sym.save(tmp_sym)
        mx.nd.save(tmp_params, {**{f"arg:{k}": v for k, v in args.items()},
                                **{f"aux:{k}": v for k, v in aux.items()}})
    return symbol_file, params_file


def run(ns: argparse.Namespace, report: _Report) -> None:
    """Load, apply, save; every step announced in the report before it runs."""
    began = time.perf_counter()
    import mxnet as mx

    import_seconds = time.perf_counter() - began
    _default_fatal_signals()
    report("start", pid=os.getpid(), mxnet=mx.__version__, python=sys.version.split()[0], import_seconds=import_seconds)
    shapes = dict(_shape(s) for s in ns.input_shape)
    options = dict(_option(o) for o in ns.option)
    sym, args, aux = _load_model(ns.symbol, ns.params)
    before = _op_counts(sym)
    report("library_loading", library=ns.library)
    t0 = time.perf_counter()
    lib = load_pass_library(ns.library)
    load_seconds = time.perf_counter() - t0
    report("library_loaded", library=str(lib), seconds=load_seconds)
    for name in ns.passes:
        report("pass_start", **{"pass": name})
        t0 = time.perf_counter()
        sym, args, aux = apply_passes(sym, args, aux, [name], options=options, input_shapes=shapes or None)
        seconds = time.perf_counter() - t0
        report("pass_done", **{"pass": name, "seconds": seconds, "nodes": sum(_op_counts(sym).values())})
    after = _op_counts(sym)
    changes = {op: after[op] - before[op] for op in sorted(set(before) | set(after)) if after[op] != before[op]}
    symbol_file, params_file = _save(ns.out_prefix, sym, args, aux)
    report("done", symbol_file=symbol_file, params_file=params_file, nodes_before=sum(before.values()),
           op_count_changes=changes, import_seconds=import_seconds, load_seconds=load_seconds,
           seconds=time.perf_counter() - began, mxnet=mx.__version__)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (see the module docstring)."""
    ns = _parser().parse_args(argv)
    with open(ns.report, "a", encoding="utf-8") as stream:
        report = _Report(stream)
        try:
            run(ns, report)
        except PerfsuiteInputError as exc:
            report("error", kind="input", type=type(exc).__name__, message=str(exc))
            print(f"perfsuite.passes.child: {exc}", file=sys.stderr)
            return CHILD_INPUT_ERROR_STATUS
        except Exception as exc:  # reported to the parent, which raises PassLibraryCrashed
            text = str(exc).strip()
            report("error", kind="exception", type=type(exc).__name__,
                   message=text if len(text) <= 1000 else text[:500] + " ... " + text[-500:])
            traceback.print_exc()
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
