"""Build, load and apply custom graph-pass libraries (MXNet >= 1.7, ``REGISTER_PASS`` + ``optimize_for``).

The seed applied the passes of a compiled library with ``mx.library.load(lib)`` then
``sym.optimize_for(pass_name, arg_params, aux_params)``. perfsuite tests that feature with its own small
library, :file:`perfsuite_passes.cc` (beside this file), compiled at test time with g++ against the
installed wheel's ``include/mxnet/lib_api.h``. Like real user libraries (GluonNLP's scripts/bert pass) it finds
its targets by GluonNLP 0.10's node names: the first FFN FullyConnected of every layer,
``bertencoder0_transformer<N>_positionwiseffn0_ffn_1_fwd`` (:data:`GLUONNLP_FFN_NAME`), and it parses the
graph with lib_api.h's own facilities (``JsonParser`` on 1.7, ``mxnet::ext::Graph`` on 1.8/1.9):

- ``perfsuite_identity_rewrite`` (correct): every target with a bias becomes ``FullyConnected(no_bias=True)`` +
  ``broadcast_add(., bias)``; one more node per layer, same outputs. A graph without any target is an error
  naming the names it looked for (MX_FAIL), not a silent no-op.
- ``perfsuite_drop_bias`` (deliberately wrong): the same without the add; the biases are lost and a parity
  check must fail.
- ``perfsuite_crash`` (crashes on purpose): divides by the count of a node kind BERT never has: SIGFPE.
- ``perfsuite_hang`` (hangs on purpose): sleeps forever.
- Option ``fc_name_contains=<text>`` (an ``optimize_for`` keyword) restricts the rewrite to targets whose name
  contains the text (e.g. ``'transformer1_'``); any other option makes the pass fail, so a typo cannot do nothing.

A pass library is native code running inside MXNet: a bug in it kills or freezes the process that applies it.
:func:`apply_passes_isolated` (isolated.py) therefore applies passes in a child process
(``python -m perfsuite.passes.child``) and turns a crash or a hang into :class:`PassLibraryCrashed`;
:func:`apply_passes` works in-process.

Which MXNet builds can use it (``MX_LIBRARY_VERSION`` is lib_api's version):

- 1.9.x (lib_api 11): the wheel ships ``include/mxnet/lib_api.h`` and ``src/lib_api.cc``; both are compiled.
- 1.7.x (lib_api 7): ``lib_api.h`` is header-only; the pass works on the graph's JSON string.
- 1.8.x (lib_api 10): the wheels (mxnet 1.8.0 and 1.8.0.post0, mxnet-native and mxnet-cu100/101/102/110/112
  1.8.0.post0; PyPI has no sdist) ship ``lib_api.h`` but not ``src/lib_api.cc``, which defines the functions the
  header only declares; without it the library cannot be built: give ``lib_api_cc=`` the ``src/lib_api.cc`` of
  apache/mxnet at tag 1.8.0 (1.9's does not compile against 1.8's header).
- 1.6.x and older: no ``REGISTER_PASS``; ``optimize_for`` knows only built-in backends.

MXNet behaviour this module guards against (seen with the 1.7.0.post2, 1.8.0.post0 and 1.9.1 CPU wheels):

- ``optimize_for`` with a name no library registered raises nothing: it logs
  ``Error optimizing for backend '<name>' cannot be found`` and returns the graph unchanged.
  :func:`apply_passes` therefore checks names against the passes of the libraries loaded with
  :func:`load_pass_library` (read from each library's ``_passRegSize``/``_passRegGet`` exports).
- Loading a library that references symbols nobody defines (e.g. built against 1.8's ``lib_api.h`` without
  ``lib_api.cc``) kills the Python process (``symbol lookup error``), it is not an exception. The library is
  therefore opened with ``ctypes`` first (immediate binding), which turns that into an ``OSError``.
- When two loaded libraries register the same pass name, the one loaded last is used.
- 1.7's ``optimize_for`` needs an NDArray for every argument, data inputs included, when ``args`` is given
  (1.8+ accept missing ones); 1.7 keeps deleted params in the dicts, 1.8+ pops them in place.
- MXNet installs a SIGSEGV handler that prints ``Segmentation fault: 11`` and exits with status 255, which
  hides the signal; the child process restores the default handlers for fatal signals after importing mxnet.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from perfsuite.cache import cache_root
from perfsuite.env import collect_env, find_mxnet_distribution, mxnet_at_least
from perfsuite.errors import PerfsuiteInputError
from perfsuite.passes.common import (CHILD_INPUT_ERROR_STATUS, CRASH_PASS, DEFAULT_PASS_TIMEOUT_S,
                                     DEFAULT_STARTUP_TIMEOUT_S, DROP_BIAS_PASS, GLUONNLP_FFN_NAME, HANG_PASS,
                                     IDENTITY_PASS, LIB_SUFFIXES, PASS_NAMES, PathLike)
from perfsuite.passes.isolated import IsolatedPassResult, PassLibraryCrashed, apply_passes_isolated
from perfsuite.results import atomic_path

__all__ = [
    "CHILD_INPUT_ERROR_STATUS",
    "CRASH_PASS",
    "DEFAULT_PASS_TIMEOUT_S",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "DROP_BIAS_PASS",
    "GLUONNLP_FFN_NAME",
    "HANG_PASS",
    "IDENTITY_PASS",
    "IsolatedPassResult",
    "PASS_NAMES",
    "PASS_SOURCE",
    "PassLibraryCrashed",
    "apply_passes",
    "apply_passes_isolated",
    "build_pass_library",
    "default_cache_dir",
    "library_passes",
    "load_pass_library",
    "loaded_passes",
    "skip_reason_passes",
]


#: The C++ source of perfsuite's pass library (package data).
PASS_SOURCE = Path(__file__).with_name("perfsuite_passes.cc")

_MIN_MXNET = "1.7.0"
_CXX = "g++"
_CXXFLAGS = ("-shared", "-fPIC", "-std=c++17", "-O2", "-Wl,-z,defs")  # -z,defs: undefined symbols fail the link
_COMPILE_TIMEOUT_S = 600

# Libraries loaded through load_pass_library, oldest first: path -> pass names it registers.
# MXNet uses the last-loaded registration of a pass name, so resolution walks this from the end.
_LOADED: Dict[Path, Tuple[str, ...]] = {}
_HANDLES: Dict[Path, ctypes.CDLL] = {}  # keep the ctypes handles alive


# ---------------------------------------------------------------------------------------------
# Locating the headers
# ---------------------------------------------------------------------------------------------


def _default_mxnet_dir() -> Path:
    """Directory of the importable ``mxnet`` package, found without importing it."""
    spec = importlib.util.find_spec("mxnet")
    if spec is None or not spec.submodule_search_locations:
        raise PerfsuiteInputError("no importable 'mxnet' package; install an MXNet distribution (1.7.0 or later)")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _describe_mxnet_dir(mxnet_dir: Path) -> str:
    """'mxnet 1.9.1' for the importable package's directory, else the directory itself."""
    try:
        if mxnet_dir == _default_mxnet_dir():

            dist = find_mxnet_distribution()
            if dist is not None:
                return f"{dist.name} {dist.version}"
    except PerfsuiteInputError:
        pass
    return f"the mxnet package at {mxnet_dir}"


def _lib_api_version(header_text: str) -> Optional[int]:
    m = re.search(r"^\s*#\s*define\s+MX_LIBRARY_VERSION\s+(\d+)", header_text, re.MULTILINE)
    return int(m.group(1)) if m else None


# What PyPI offers for the lib_api versions whose wheels lack src/lib_api.cc.
_LIB_API_CC_ON_PYPI = {
    10: ("No MXNet 1.8 distribution on PyPI ships it (checked: the wheels of mxnet 1.8.0 and 1.8.0.post0, "
         "mxnet-native and mxnet-cu100/cu101/cu102/cu110/cu112 1.8.0.post0; there is no sdist). "),
}


def _source_tag(what: str, version: int) -> str:
    """The apache/mxnet tag whose src/lib_api.cc matches: the wheel's release ('1.8.0' for 1.8.0.post0)."""
    m = re.search(r" (\d+\.\d+\.\d+)", what)
    if m:
        return m.group(1)
    return {7: "1.7.0", 10: "1.8.0", 11: "1.9.1"}.get(version, f"<the release with lib_api version {version}>")


#: The src/lib_api.cc to compile in when the wheel lacks it (MXNet 1.8): read when lib_api_cc= is not given.
LIB_API_CC_ENV = "PERFSUITE_LIB_API_CC"


def _build_inputs(mxnet_dir: Optional[PathLike], lib_api_cc: Optional[PathLike]) -> Dict[str, Any]:
    """Check that everything the build needs exists; return the include dir, lib_api version, sources.

    Raises PerfsuiteInputError naming what is missing (never compiles anything).
    """
    mdir = Path(mxnet_dir).expanduser().resolve() if mxnet_dir is not None else _default_mxnet_dir()
    what = _describe_mxnet_dir(mdir)
    # The environment variable is a fallback for wheels that lack src/lib_api.cc (MXNet 1.8): it is set once for a
    # whole CI job or test session, so it must not override the file a 1.9 wheel ships nor break a 1.7 build.
    env_cc = os.environ.get(LIB_API_CC_ENV) or None
    header = mdir / "include" / "mxnet" / "lib_api.h"
    if not header.is_file():
        raise PerfsuiteInputError(
            f"building perfsuite's pass library needs mxnet/include/mxnet/lib_api.h; {header} does not exist "
            f"({what} ships no C++ headers; the mxnet 1.7.0 and later CPU wheels do), "
            "or give mxnet_dir= a package directory that has it"
        )
    text = header.read_text(encoding="utf-8", errors="replace")
    version = _lib_api_version(text)
    if version is None or "REGISTER_PASS" not in text:
        raise PerfsuiteInputError(
            f"building perfsuite's pass library needs a lib_api.h with REGISTER_PASS (MXNet >= {_MIN_MXNET}); "
            f"{header} ({what}) has no REGISTER_PASS / MX_LIBRARY_VERSION"
        )
    if 7 < version < 10 or version > 11:
        raise PerfsuiteInputError(
            f"building perfsuite's pass library needs lib_api version 7 (MXNet 1.7), 10 (1.8, with lib_api_cc=) "
            f"or 11 (1.9); {header} ({what}) is version {version}"
        )
    cc: Optional[Path] = None
    if version >= 10:  # the Graph API: lib_api.h declares, src/lib_api.cc defines
        tag = _source_tag(what, version)
        if lib_api_cc is not None:
            cc = Path(lib_api_cc).expanduser().resolve()
            if not cc.is_file():
                raise PerfsuiteInputError(
                    f"lib_api_cc={str(lib_api_cc)!r}: {cc} does not exist; give the path of the file src/lib_api.cc "
                    f"of apache/mxnet at tag {tag} (the release of {header}, lib_api version {version})"
                )
        else:
            cc = mdir / "src" / "lib_api.cc"
            if not cc.is_file() and env_cc is not None:
                cc = Path(env_cc).expanduser().resolve()
                if not cc.is_file():
                    raise PerfsuiteInputError(
                        f"{LIB_API_CC_ENV}={env_cc!r}: {cc} does not exist; give the path of the file src/lib_api.cc "
                        f"of apache/mxnet at tag {tag} (the release of {header}, lib_api version {version})"
                    )
            if not cc.is_file():
                raise PerfsuiteInputError(
                    f"building perfsuite's pass library needs src/lib_api.cc for lib_api version {version}: {what} "
                    f"ships include/mxnet/lib_api.h (MX_LIBRARY_VERSION {version}), which only declares the "
                    f"lib_api functions, but not src/lib_api.cc, which defines them ({cc} does not exist). "
                    f"{_LIB_API_CC_ON_PYPI.get(version, '')}"
                    f"Provide the file src/lib_api.cc of apache/mxnet at tag {tag} (the same release as the "
                    f"header; another release's does not compile against it) and pass its path as lib_api_cc= "
                    f"(build_pass_library) or in the environment variable {LIB_API_CC_ENV} (the CLI, the gate's workers and the "
                    f"tests read it)"
                )
    elif lib_api_cc is not None:
        raise PerfsuiteInputError(
            f"lib_api_cc={str(lib_api_cc)!r} given, but {header} is lib_api version {version} (MXNet 1.7), "
            "which is header-only; allowed: lib_api_cc=None"
        )
    return {"mxnet_dir": mdir, "what": what, "include": mdir / "include", "header": header,
            "lib_api_version": version, "lib_api_cc": cc}


def _find_cxx() -> str:
    cxx = shutil.which(_CXX)
    if cxx is None:
        raise PerfsuiteInputError(
            f"building perfsuite's pass library needs {_CXX} (C++17) on PATH; none found in "
            f"PATH={os.environ.get('PATH', '')!r} (e.g. apt-get install g++)"
        )
    return cxx


def _cxx_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where built libraries are cached: $PERFSUITE_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, /perfsuite/passes."""

    return cache_root() / "passes"


def _writable_dir(preferred: Path) -> Path:
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=preferred, prefix=".probe-", delete=True)
        probe.close()
        return preferred
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"perfsuite-{os.getuid() if hasattr(os, 'getuid') else 'user'}" / "passes"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def build_pass_library(out_dir: Optional[PathLike] = None, mxnet_dir: Optional[PathLike] = None,
                       *, lib_api_cc: Optional[PathLike] = None, force: bool = False) -> Path:
    """Compile :data:`PASS_SOURCE` into a shared library for the given (default: importable) MXNet; return its path.

    ``g++ -shared -fPIC -std=c++17 -O2 -Wl,-z,defs -I<mxnet_dir>/include perfsuite_passes.cc [lib_api.cc]``.
    ``mxnet_dir`` is an installed ``mxnet`` package directory (the one holding ``include/mxnet/lib_api.h``);
    ``lib_api_cc`` overrides ``<mxnet_dir>/src/lib_api.cc`` (needed for 1.8 wheels, which lack it).
    The result is cached in ``out_dir`` (default :func:`default_cache_dir`, or a temp dir when that is not
    writable) under a name made of the MXNet version and a hash of the pass source, lib_api.h, lib_api.cc,
    the compiler and its flags; an existing file is reused unless ``force``. The file appears atomically, so
    concurrent builds are safe. Raises PerfsuiteInputError naming what is missing (g++, lib_api.h,
    lib_api.cc) or quoting the compiler's errors.
    """
    inputs = _build_inputs(mxnet_dir, lib_api_cc)
    cxx = _find_cxx()
    if not PASS_SOURCE.is_file():
        raise PerfsuiteInputError(f"perfsuite's pass source {PASS_SOURCE} is missing from the installed package")
    sources = [PASS_SOURCE] + ([inputs["lib_api_cc"]] if inputs["lib_api_cc"] else [])

    key = hashlib.sha256()
    for src in sources + [inputs["header"]]:
        key.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    key.update(" ".join(_CXXFLAGS).encode() + b"\0" + _cxx_version(cxx).encode())
    # 'mxnet-1.9.1' for the importable MXNet, else the lib_api version; the hash tells builds apart anyway
    what = inputs["what"]
    label = re.sub(r"[^A-Za-z0-9.]+", "-", what) if " at " not in what else f"libapi{inputs['lib_api_version']}"
    directory = _writable_dir(Path(out_dir).expanduser().resolve() if out_dir is not None else default_cache_dir())
    target = directory / f"libperfsuite_passes-{label}-{key.hexdigest()[:16]}.so"
    if target.is_file() and not force:
        return target

    started = time.perf_counter()
    with atomic_path(target, suffix=".so", mode=0o755) as tmp_name:
        cmd = [cxx, *_CXXFLAGS, "-I", str(inputs["include"]), *map(str, sources), "-o", tmp_name]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise PerfsuiteInputError(
                f"compiling perfsuite's pass library took over {_COMPILE_TIMEOUT_S} s: {' '.join(cmd)}") from None
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()] or proc.stderr.splitlines()
            raise PerfsuiteInputError(
                f"compiling perfsuite's pass library against {inputs['header']} (lib_api version "
                f"{inputs['lib_api_version']}, {inputs['what']}) failed with exit code {proc.returncode}:\n"
                + "\n".join(lines[:15]) + f"\ncommand: {' '.join(cmd)}"
            )
    build_pass_library.last_compile_seconds = time.perf_counter() - started  # type: ignore[attr-defined]
    return target


build_pass_library.last_compile_seconds = None  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def library_passes(path: PathLike) -> Tuple[str, ...]:
    """Names of the graph passes a lib_api library registers, read from its ``_passRegSize``/``_passRegGet``.

    Opens the library with ctypes (immediate binding: a library with undefined symbols gives an error here
    instead of killing the process inside MXNet). Raises PerfsuiteInputError when it cannot be opened or
    is not an MXNet extension library.
    """
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if p in _HANDLES:
        lib = _HANDLES[p]
    else:
        try:
            lib = ctypes.CDLL(str(p), mode=getattr(os, "RTLD_NOW", 2) | getattr(os, "RTLD_LOCAL", 0))
        except OSError as exc:
            hint = ""
            if "undefined symbol" in str(exc):
                cause = ("built against lib_api.h 10+ without src/lib_api.cc? " if "mxnet3ext" in str(exc) else "")
                hint = f" ({cause}mx.library.load would abort the whole process with 'symbol lookup error')"
            raise PerfsuiteInputError(f"cannot open pass library {p}: {exc}{hint}") from None
        _HANDLES[p] = lib
    missing = [sym for sym in ("_opVersion", "_passRegSize", "_passRegGet", "initialize") if not hasattr(lib, sym)]
    if missing:
        raise PerfsuiteInputError(
            f"{p} is not an MXNet extension library with graph passes: it does not export {', '.join(missing)} "
            f"(libraries built with mxnet/lib_api.h of MXNet >= {_MIN_MXNET} do)"
        )
    lib._passRegSize.restype = ctypes.c_int
    lib._passRegSize.argtypes = []
    lib._passRegGet.restype = None
    lib._passRegGet.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_char_p)]
    names = []
    for i in range(lib._passRegSize()):
        fn, name = ctypes.c_void_p(), ctypes.c_char_p()
        lib._passRegGet(i, ctypes.byref(fn), ctypes.byref(name))
        names.append((name.value or b"").decode("utf-8", "replace"))
    return tuple(names)


def load_pass_library(path: PathLike) -> Path:
    """Load a graph-pass library into MXNet (``mx.library.load``) and remember its passes; return its absolute path.

    Loading the same path again is allowed and makes its passes the ones MXNet uses (last loaded wins).
    Raises PerfsuiteInputError for a missing file, a name MXNet refuses (only ``.so``/``.dll``), a file
    that cannot be opened or is no MXNet extension library, or MXNet's own refusal (e.g.
    "Library version (7) does not match MXNet version (11)" for a library built for another release).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise PerfsuiteInputError(f"pass library path {path!r} is a {type(path).__name__}; allowed: str or os.PathLike")
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))  # absolute, as MXNet demands
    if not p.is_file():
        raise PerfsuiteInputError(f"pass library {p} does not exist (given: {str(path)!r})")
    if p.suffix not in LIB_SUFFIXES:
        raise PerfsuiteInputError(
            f"pass library {p} does not end in {' or '.join(LIB_SUFFIXES)}; mx.library.load refuses other names"
        )
    names = library_passes(p)
    import mxnet as mx  # lazy: importing mxnet takes seconds

    if not hasattr(mx, "library"):
        raise PerfsuiteInputError(f"this MXNet ({mx.__version__}) has no mx.library; pass libraries need MXNet >= {_MIN_MXNET}")
    try:
        mx.library.load(str(p), verbose=False)
    except mx.base.MXNetError as exc:
        msg = str(exc).strip()
        lines = [ln for ln in msg.splitlines() if "MXNetError" in ln] or msg.splitlines()[-1:]
        raise PerfsuiteInputError(f"MXNet could not load pass library {p}: {lines[0] if lines else msg}") from None
    _LOADED.pop(p, None)
    _LOADED[p] = names
    return p


def loaded_passes() -> Dict[str, Path]:
    """Pass name -> the library MXNet uses for it (the last one loaded with :func:`load_pass_library`)."""
    out: Dict[str, Path] = {}
    for lib, names in _LOADED.items():  # oldest first: later libraries overwrite
        for name in names:
            out[name] = lib
    return out


# ---------------------------------------------------------------------------------------------
# Applying
# ---------------------------------------------------------------------------------------------


def _loaded_description() -> str:
    if not _LOADED:
        return "no pass library is loaded; call load_pass_library(path) first"
    return "loaded: " + "; ".join(f"{lib} registers {', '.join(names) or 'no passes'}" for lib, names in _LOADED.items())


def _check_apply_inputs(sym: Any, arg_params: Mapping[str, Any], aux_params: Mapping[str, Any],
                        passes: Sequence[str], options: Optional[Mapping[str, Any]]
                        ) -> Tuple[Dict[str, Path], Dict[str, Any]]:
    """apply_passes' inputs checked before any work: (the registry of loaded passes, the options as a dict)."""
    import mxnet as mx

    if not isinstance(sym, mx.sym.Symbol):
        raise PerfsuiteInputError(f"sym is a {type(sym).__name__}; allowed: an mxnet.symbol.Symbol")
    if isinstance(passes, (str, bytes)) or not all(isinstance(p, str) and p for p in passes):
        raise PerfsuiteInputError(f"passes={passes!r}; allowed: a list of non-empty pass names, e.g. ['{IDENTITY_PASS}']")
    for name, value in (("arg_params", arg_params), ("aux_params", aux_params)):
        if not isinstance(value, Mapping):
            raise PerfsuiteInputError(f"{name} is a {type(value).__name__}; allowed: a dict of name -> NDArray")

    if not mxnet_at_least(_MIN_MXNET):
        raise PerfsuiteInputError(f"custom graph passes need MXNet >= {_MIN_MXNET}; found mxnet {mx.__version__}")
    registry = loaded_passes()
    for name in passes:
        if name not in registry:
            raise PerfsuiteInputError(
                f"graph pass {name!r} is not registered by any pass library loaded with load_pass_library "
                f"({_loaded_description()}); MXNet's optimize_for would only log \"Error optimizing for backend "
                f"'{name}' cannot be found\" and return the graph unchanged"
            )
    options = dict(options or {})
    reserved = {"args", "aux", "ctx", "shape_dict", "type_dict", "stype_dict", "skip_infer", "backend"}
    if reserved & set(options):
        raise PerfsuiteInputError(
            f"options {sorted(reserved & set(options))} collide with optimize_for's own parameters; "
            "allowed: pass-specific option names"
        )
    return registry, options


def apply_passes(sym: Any, arg_params: Mapping[str, Any], aux_params: Mapping[str, Any],
                 passes: Sequence[str], *, options: Optional[Mapping[str, Any]] = None,
                 input_shapes: Optional[Mapping[str, Sequence[int]]] = None) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
    """Apply each named graph pass in order with ``sym.optimize_for(name, args, aux, **options)``.

    Every name must be registered by a library loaded with :func:`load_pass_library`; otherwise
    PerfsuiteInputError names the pass and the loaded libraries (MXNet itself would only log
    "Error optimizing for backend '<name>' cannot be found" and return the graph unchanged).
    The caller's dicts are not modified. Returns ``(new_sym, arg_params, aux_params)`` with the params
    restricted to the new symbol's arguments/auxiliary states plus any the passes created.

    ``input_shapes`` ({name: shape} of the non-parameter inputs, e.g. ``{'data': (1, 128)}``) is passed as
    ``shape_dict`` on MXNet 1.8+; give it for real models: 1.8+ infer shapes before running a pass, and some
    operators fail on unknown input shapes (1.9.1, ``contrib.arange_like``: "Check failed: real_axis >=0 &&
    real_axis < (*in_attrs)[0].ndim(): cannot handle param.axis 1"). On 1.7, whose ``optimize_for`` needs an NDArray for every argument when
    params are given, it becomes zero placeholders; without it the passes run without params on 1.7 (fine for
    passes that only rewrite the graph, such as perfsuite's; a warning says so).
    """
    import mxnet as mx

    registry, options = _check_apply_inputs(sym, arg_params, aux_params, passes, options)
    new_style = "shape_dict" in inspect.signature(sym.optimize_for).parameters  # 1.8+
    args: Dict[str, Any] = dict(arg_params)
    aux: Dict[str, Any] = dict(aux_params)
    for name in passes:
        call_kw: Dict[str, Any] = dict(options)
        placeholders: List[str] = []
        if new_style:
            if input_shapes:
                call_kw["shape_dict"] = {k: tuple(v) for k, v in input_shapes.items()}
            call_args: Optional[Dict[str, Any]] = args
            call_aux: Optional[Dict[str, Any]] = aux
        else:  # 1.7: every argument (and aux state) must be present when params are given
            missing = [a for a in sym.list_arguments() if a not in args]
            missing_aux = [a for a in sym.list_auxiliary_states() if a not in aux]
            shapes = dict(input_shapes or {})
            if (missing or missing_aux) and not all(m in shapes for m in missing + missing_aux):
                warnings.warn(
                    f"MXNet {mx.__version__}'s optimize_for needs an NDArray for every argument when params are "
                    f"given; {missing + missing_aux} have none and input_shapes does not cover them, so pass "
                    f"{name!r} runs without params", stacklevel=2)
                call_args, call_aux = None, None
            else:
                call_args, call_aux = dict(args), dict(aux)
                for m in missing:
                    call_args[m] = mx.nd.zeros(tuple(shapes[m]))
                for m in missing_aux:
                    call_aux[m] = mx.nd.zeros(tuple(shapes[m]))
                placeholders = missing + missing_aux
        try:
            new_sym = sym.optimize_for(name, call_args, call_aux, **call_kw)
        except mx.base.MXNetError as exc:
            message = f"graph pass {name!r} from {registry[name]} failed: {_pass_error(exc)}"
            unknown = [a for a in sym.list_arguments() if a not in args and a not in (input_shapes or {})]
            if "Error calling graph pass" not in str(exc) and new_style and unknown:
                message += (f" | MXNet infers shapes before running a pass and some operators (e.g. contrib.arange_like) "
                            f"fail on unknown input shapes: give input_shapes= for {unknown}")
            raise PerfsuiteInputError(message) from None
        if call_args is not None and call_args is not args:
            args.update({k: v for k, v in call_args.items() if k not in placeholders})
        if call_aux is not None and call_aux is not aux:
            aux.update({k: v for k, v in call_aux.items() if k not in placeholders})
        keep_args, keep_aux = set(new_sym.list_arguments()), set(new_sym.list_auxiliary_states())
        args = {k: v for k, v in args.items() if k in keep_args}
        aux = {k: v for k, v in aux.items() if k in keep_aux}
        sym = new_sym
    return sym, args, aux


def _pass_error(exc: Exception) -> str:
    """The useful part of MXNet's error for a failed pass: its summary plus the library's messages.

    1.9 appends the library's MX_ERROR_MSG lines as "Extension Traceback: [0] file[line]: message";
    lib_api 7 (MXNet 1.7) has no such channel: the library can only print to stderr.
    """
    text = str(exc)
    found = re.search(r"Error calling graph pass[^\n]*", text)
    parts = [found.group(0).strip()] if found else [ln.strip() for ln in text.splitlines() if "MXNetError" in ln][-1:]
    parts += [re.sub(r"^\[\d+\]\s*", "", ln.strip()) for ln in text.splitlines() if re.match(r"\s*\[\d+\]", ln)]
    if found and "Extension Traceback" not in text:
        parts.append("(a lib_api 7 library can only report its reason on stderr)")
    return " | ".join(p for p in parts if p) or text.strip()


# ---------------------------------------------------------------------------------------------
# Skip reason
# ---------------------------------------------------------------------------------------------


def skip_reason_passes(env: Any = None, mxnet_dir: Optional[PathLike] = None) -> Optional[str]:
    """None when perfsuite's pass library can be built and used here; otherwise why a test must skip.

    Checks, in order: the MXNet release (from ``env``, default :func:`perfsuite.env.collect_env`), g++ on PATH,
    the wheel's lib_api.h (and, for lib_api 10+, src/lib_api.cc).
    """

    env = collect_env() if env is None else env
    if not mxnet_at_least(_MIN_MXNET, env):
        return (f"needs MXNet >= {_MIN_MXNET} for custom graph passes (REGISTER_PASS / optimize_for); "
                f"found {env.describe_mxnet()}")
    try:
        _find_cxx()
        _build_inputs(mxnet_dir, None)
    except PerfsuiteInputError as exc:
        return str(exc)
    return None
