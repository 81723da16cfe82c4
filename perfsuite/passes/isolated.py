"""Applying a pass library in a child process (``python -m perfsuite.passes.child``): a library that crashes or
hangs ends the child, not the caller; PassLibraryCrashed names the signal, the library and the pass."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from perfsuite.errors import PerfsuiteInputError
from perfsuite.passes.common import (CHILD_INPUT_ERROR_STATUS, DEFAULT_PASS_TIMEOUT_S, DEFAULT_STARTUP_TIMEOUT_S,
                                     IDENTITY_PASS, LIB_SUFFIXES, PathLike)

__all__ = ["PassLibraryCrashed", "IsolatedPassResult", "apply_passes_isolated"]


class PassLibraryCrashed(RuntimeError):
    """A pass library killed (signal, abnormal exit) or froze the child process that applied its passes.

    The message names the library, the pass that was running and the signal (e.g. ``SIGFPE``) or
    ``hung for more than N s``. Attributes: ``library``, ``pass_name`` (None: no pass was running),
    ``signal_name`` (None unless a signal ended the child), ``returncode``, ``hung``, ``output`` (the child's
    stdout + stderr, merged).
    """

    def __init__(self, message: str, *, library: Path, pass_name: Optional[str], signal_name: Optional[str],
                 returncode: Optional[int], hung: bool, output: str) -> None:
        super().__init__(message)
        self.library = library
        self.pass_name = pass_name
        self.signal_name = signal_name
        self.returncode = returncode
        self.hung = hung
        self.output = output

    def __reduce__(self) -> Tuple[Any, ...]:
        """Picklable (keyword-only fields), so worker processes can pass it on."""
        fields = dict(library=self.library, pass_name=self.pass_name, signal_name=self.signal_name,
                      returncode=self.returncode, hung=self.hung, output=self.output)
        return (_rebuild_crash, (str(self), fields))


def _rebuild_crash(message: str, fields: Dict[str, Any]) -> PassLibraryCrashed:
    return PassLibraryCrashed(message, **fields)


@dataclasses.dataclass(frozen=True)
class IsolatedPassResult:
    """What :func:`apply_passes_isolated` produced: the new files and what the child reported.

    ``nodes_after`` holds the graph's node count after each pass; ``op_count_changes`` the operators whose count
    the passes changed (e.g. ``{'broadcast_add': 12}``). Times inside the child: ``pass_seconds`` per pass,
    ``import_seconds`` (``import mxnet``), ``load_seconds`` (loading the library), ``child_seconds`` (its whole run
    from ``import mxnet`` to the saved files); ``wall_seconds`` is the child process as the parent saw it
    (interpreter start included).
    """

    symbol_file: Path
    params_file: Path
    library: Path
    passes: Tuple[str, ...]
    nodes_before: int
    nodes_after: Tuple[int, ...]
    op_count_changes: Dict[str, int]
    pass_seconds: Tuple[float, ...]
    import_seconds: float
    load_seconds: float
    child_seconds: float
    wall_seconds: float
    mxnet_version: str

    @property
    def overhead_seconds(self) -> float:
        """Wall time not spent running passes: process start, imports, loading/saving files and the library."""
        return self.wall_seconds - sum(self.pass_seconds)


#: Exit status of perfsuite.passes.child when it reported a PerfsuiteInputError (a clean failure).
_OUTPUT_TAIL_LINES = 12
_OUTPUT_LINE_CHARS = 240
_POLL_S = 0.05
# MXNet's SIGSEGV handler prints this and exits with status 255 (in case a library re-installs such a handler)
_MXNET_SIGNAL_LINE = re.compile(r"Segmentation fault: (\d+)")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _child_env() -> Dict[str, str]:
    """The parent's environment, with the directory holding this perfsuite first on PYTHONPATH.

    The child then imports the same perfsuite as the parent even when the parent found it through sys.path
    tweaks (pytest's rootdir, an uninstalled checkout) rather than PYTHONPATH or an installation.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        parts.insert(0, root)
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _read_events(report: Path) -> List[Dict[str, Any]]:
    events: List[Dict[str, Any]] = []
    try:
        lines = report.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return events
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:  # a line cut short by the crash
            break
    return events


def _running_pass(events: List[Dict[str, Any]]) -> Tuple[Optional[str], str]:
    """(pass that was running, where the child was) from its event log."""
    started = [e["pass"] for e in events if e.get("event") == "pass_start"]
    finished = [e["pass"] for e in events if e.get("event") == "pass_done"]
    if len(started) > len(finished):
        return started[-1], f"in pass {started[-1]!r}"
    if finished:
        return None, f"after pass {finished[-1]!r} (while saving the result)"
    if any(e.get("event") == "library_loading" for e in events):
        return None, "while loading the library (before any pass ran)"
    return None, "before loading the library (starting Python / importing mxnet / reading the model)"


def _tail(output: str, lines: int = _OUTPUT_TAIL_LINES, cut: bool = True) -> str:
    """The last non-empty lines of the child's output, indented; long ones (faulthandler's module list) cut.

    The child's own summary of a clean failure ("perfsuite.passes.child: ...") is left out: the message has it.
    """
    skip = ("Extension modules:", "perfsuite.passes.child:")
    kept = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith(skip)][-lines:]
    return "\n".join("    " + (ln if not cut or len(ln) <= _OUTPUT_LINE_CHARS else ln[:_OUTPUT_LINE_CHARS] + " ...")
                     for ln in kept) or "    (none)"


def _run_child(cmd: List[str], workdir: Path, report: Path, timeout_s: float,
               startup_timeout_s: float) -> Tuple["subprocess.Popen[bytes]", bool, List[Dict[str, Any]], str]:
    """Run the child until it exits or overruns; return (process, hung, its events, its stdout + stderr).

    The child's clock for ``timeout_s`` starts at its ``library_loading`` event; before that it has
    ``startup_timeout_s``. Output goes to a file (a pipe could fill up and block a child nobody reads).
    """
    log = workdir / "output.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, cwd=workdir, env=_child_env(), stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    deadline = started + startup_timeout_s
    library_clock = False
    hung = False
    while True:
        try:
            proc.wait(timeout=_POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if not library_clock and any(e.get("event") == "library_loading" for e in _read_events(report)):
            library_clock, deadline = True, now + timeout_s
        if now > deadline:
            hung = True
            try:  # its own session: the child and anything it started, nothing else
                os.killpg(proc.pid, signal.SIGKILL)
            except (AttributeError, ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
            break
    output = log.read_bytes().decode("utf-8", "replace")
    return proc, hung, _read_events(report), output


def _raise_for_child(proc: Any, hung: bool, events: List[Dict[str, Any]], output: str, lib: Path,
                     timeout_s: float, startup_timeout_s: float) -> str:
    """Raise what the pass child's end means (hung or crashed: PassLibraryCrashed; a clean failure:
    PerfsuiteInputError with MXNet's message); otherwise return where it was (for a later message)."""
    pass_name, where = _running_pass(events)
    details = dict(library=lib, pass_name=pass_name, returncode=proc.returncode, output=output)
    if hung:
        limit = timeout_s if any(e.get("event") == "library_loading" for e in events) else startup_timeout_s
        raise PassLibraryCrashed(
            f"pass library {lib} hung for more than {limit:g} s {where}; the child process (pid {proc.pid}) "
            f"applying it was killed. Its last output:\n{_tail(output)}",
            signal_name=None, hung=True, **details)
    error = next((e for e in events if e.get("event") == "error"), None)
    if proc.returncode == CHILD_INPUT_ERROR_STATUS and error is not None and error.get("kind") == "input":
        message = str(error.get("message", ""))
        if "lib_api 7 library can only report its reason on stderr" in message and output.strip():
            message += f" | the child's output:\n{_tail(output, 5, cut=False)}"
        raise PerfsuiteInputError(message)
    if proc.returncode != 0:
        number = -proc.returncode if proc.returncode < 0 else None
        mxnet_line = _MXNET_SIGNAL_LINE.search(output) if number is None else None
        if mxnet_line:  # MXNet's handler turned the signal into exit status 255
            number = int(mxnet_line.group(1))
        signal_name = _signal_name(number) if number is not None else None
        how = (f"killed by {signal_name} (signal {number})" if signal_name
               else f"ended with exit status {proc.returncode}")
        if error is not None:
            how += f" after an unexpected {error.get('type', 'error')}: {error.get('message', '')}"
        raise PassLibraryCrashed(
            f"pass library {lib} crashed {where}: the child process applying it was {how}. Its last output:\n"
            f"{_tail(output)}", signal_name=signal_name, hung=False, **details)

    return where


def apply_passes_isolated(symbol_file: PathLike, params_file: PathLike, library: PathLike, passes: Sequence[str],
                          input_shapes: Optional[Mapping[str, Sequence[int]]], out_prefix: PathLike, *,
                          options: Optional[Mapping[str, str]] = None, timeout_s: float = DEFAULT_PASS_TIMEOUT_S,
                          startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S) -> IsolatedPassResult:
    """Apply a pass library's passes to an exported model in a child process; return the new files and a report.

    The child (``sys.executable -m perfsuite.passes.child``, same environment and PYTHONPATH, cwd an empty
    temporary directory) loads ``library``, applies ``passes`` in order with :func:`apply_passes` (``options`` and
    ``input_shapes`` as there) and writes ``<out_prefix>-symbol.json`` and ``<out_prefix>-0000.params``
    (``arg:``/``aux:`` keys, as ``export``). The parent never loads the library: native code that crashes or
    hangs ends the child, not the caller.

    Raises :class:`PassLibraryCrashed` when the child is killed by a signal, exits abnormally, or hangs: it is
    killed when loading the library, applying the passes and saving take longer than ``timeout_s`` (counted from
    the moment the child starts loading the library), or when starting Python, importing mxnet and reading the
    model take longer than ``startup_timeout_s``. PerfsuiteInputError for a pass that fails cleanly (MX_FAIL, an
    unknown pass name, a library MXNet refuses) with MXNet's message, and for bad arguments.
    """
    if isinstance(passes, (str, bytes)) or not passes or not all(isinstance(p, str) and p for p in passes):
        raise PerfsuiteInputError(
            f"passes={passes!r}; allowed: a non-empty list of pass names, e.g. ['{IDENTITY_PASS}']")
    for what, value in (("timeout_s", timeout_s), ("startup_timeout_s", startup_timeout_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise PerfsuiteInputError(f"{what}={value!r}; allowed: a positive number of seconds")
    files = {}
    for what, value in (("symbol_file", symbol_file), ("params_file", params_file), ("library", library)):
        if not isinstance(value, (str, os.PathLike)):
            raise PerfsuiteInputError(f"{what} is a {type(value).__name__}; allowed: str or os.PathLike")
        files[what] = Path(os.path.abspath(os.path.expanduser(os.fspath(value))))
        if not files[what].is_file():
            raise PerfsuiteInputError(f"{what} {files[what]} does not exist (given: {str(value)!r})")
    lib = files["library"]
    if lib.suffix not in LIB_SUFFIXES:
        raise PerfsuiteInputError(
            f"pass library {lib} does not end in {' or '.join(LIB_SUFFIXES)}; mx.library.load refuses other names")
    out = Path(os.path.abspath(os.path.expanduser(os.fspath(out_prefix))))
    out.parent.mkdir(parents=True, exist_ok=True)

    workdir = Path(tempfile.mkdtemp(prefix="perfsuite-passes-child-"))
    report = workdir / "report.jsonl"
    cmd = [sys.executable, "-m", "perfsuite.passes.child", "--library", str(lib),
           "--symbol", str(files["symbol_file"]), "--params", str(files["params_file"]),
           "--out-prefix", str(out), "--report", str(report)]
    for name in passes:
        cmd += ["--pass", name]
    for name, shape in (input_shapes or {}).items():
        cmd += ["--input-shape", f"{name}={','.join(str(int(d)) for d in shape)}"]
    for key, value in (options or {}).items():
        cmd += ["--option", f"{key}={value}"]

    started = time.perf_counter()
    try:
        proc, hung, events, output = _run_child(cmd, workdir, report, timeout_s, startup_timeout_s)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    where = _raise_for_child(proc, hung, events, output, lib, timeout_s, startup_timeout_s)
    done = next((e for e in events if e.get("event") == "done"), None)
    if done is None:  # exit status 0 without a report: not something the child does
        raise PassLibraryCrashed(
            f"pass library {lib}: the child process exited with status 0 but reported no result "
            f"({where}). Its last output:\n{_tail(output)}", signal_name=None, hung=False, library=lib,
            pass_name=_running_pass(events)[0], returncode=proc.returncode, output=output)
    per_pass = [e for e in events if e.get("event") == "pass_done"]
    return IsolatedPassResult(
        symbol_file=Path(done["symbol_file"]), params_file=Path(done["params_file"]), library=lib,
        passes=tuple(e["pass"] for e in per_pass), nodes_before=int(done["nodes_before"]),
        nodes_after=tuple(int(e["nodes"]) for e in per_pass), op_count_changes=dict(done["op_count_changes"]),
        pass_seconds=tuple(float(e["seconds"]) for e in per_pass), import_seconds=float(done["import_seconds"]),
        load_seconds=float(done["load_seconds"]),
        child_seconds=float(done["seconds"]), wall_seconds=wall, mxnet_version=str(done["mxnet"]),
    )

