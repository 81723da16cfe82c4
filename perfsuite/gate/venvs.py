"""Isolated Python environments holding one MXNet each, for the upgrade gate (and anything else that runs two
MXNet builds side by side).

A SPEC names what to install:

- a requirement pinned to exactly one release: ``mxnet==1.8.0.post0``, ``mxnet-cu102==1.7.0`` (the MXNet
  distributions: mxnet, mxnet-mkl, mxnet-native, mxnet-cuNNN[mkl]; ranges, wildcards, ``!=``, ``===``, markers and
  extras are refused: an environment is cached by its spec and must name one release);
- a local wheel file: ``./dist/mxnet-1.9.1-py3-none-manylinux2014_x86_64.whl``;
- an existing interpreter that already has MXNet: ``python:/opt/venvs/mx19/bin/python`` (used as it is);
- the gate's candidate only: an ONNX Runtime release, ``onnxruntime==1.22.1`` (or ``onnxruntime-gpu==...``): the
  environment gets that ONNX Runtime, the MXNet that exports the model (the *exporter*, by default the baseline's
  MXNet when it is 1.9 or newer) and the onnx release MXNet's exporter works with (perfsuite.paths.onnx.PINNED).

Environments are built with uv (`uv venv` + `uv pip install`; measured on the 2-core machine: 7-9 s for a new
environment with uv's cache warm, most of it resolving against PyPI; pip unpacks the 150 MB libmxnet.so for every
environment and takes longer; uv links it from its cache), under ``<cache>/envs/<name>-<key>``, where the key hashes
the spec (and a wheel's content), the interpreter, the pinned companions (numpy 1.23.5, gluonnlp 0.10.0,
safetensors) and perfsuite's version. A build happens in a temporary folder that is renamed into place only when
complete, so an interrupted build is never reused, and two gates building the same environment at once keep
one. `--installer pip` is the fallback where uv is unavailable.

perfsuite itself is not installed into the environments: the workers import a staged copy of the exact perfsuite
code that runs the gate (``<cache>/src/<content hash>/``, put first on PYTHONPATH), so both sides and the driver
always run the same perfsuite, and an environment stays valid across perfsuite commits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from perfsuite import __version__
from perfsuite.cache import cache_root
from perfsuite.errors import PerfsuiteInputError
from perfsuite.paths.onnx import PINNED
import perfsuite

__all__ = ["EnvSpec", "Environment", "parse_spec", "with_exporter", "ORT_DISTS", "DEFAULT_EXPORTER", "check_interpreter", "ensure_environment", "stage_perfsuite", "envs_dir",
           "COMPANIONS", "INSTALLERS", "find_uv", "compile_bytecode"]

#: What every environment gets beside its MXNet: the same numpy on both sides (MXNet 1.x needs < 1.24), the
#: GluonNLP release perfsuite builds BERT with, safetensors for the real MiniLM weights, scipy for the INT8 task's
#: rank correlation, and the small libraries perfsuite's modules import (tabulate, packaging).
COMPANIONS = ("numpy==1.23.5", "gluonnlp==0.10.0", "safetensors>=0.4", "scipy>=1.7", "tabulate>=0.8",
              "packaging>=20")
INSTALLERS = ("uv", "pip")
#: ONNX Runtime distributions a gate candidate may name (the way off MXNet: perfsuite.paths.onnx).
ORT_DISTS = ("onnxruntime", "onnxruntime-gpu")
#: The MXNet that exports the model to ONNX when the baseline cannot (MXNet < 1.9 has no BERT-capable exporter).
DEFAULT_EXPORTER = "mxnet==1.9.1"
#: Bump when the layout of an environment changes, so old cached ones are not reused.
_LAYOUT = 1
_MARKER = "perfsuite-env.json"


@dataclass(frozen=True)
class EnvSpec:
    """What one side of a comparison runs: a requirement, a wheel file or an existing interpreter."""

    kind: str  # "requirement", "wheel" or "python"
    text: str  # as the user wrote it
    requirement: Optional[str] = None  # normalized requirement, or the wheel's absolute path
    path: Optional[str] = None  # wheel file or interpreter
    dist: Optional[str] = None  # distribution name (mxnet, mxnet-cu102, ...), where known before installing
    runtime: str = "mxnet"  # "mxnet", or "onnxruntime" (the model exported by `exporter`, run by ONNX Runtime)
    extra: Tuple[str, ...] = ()  # installed beside the requirement (an ONNX Runtime spec: its exporter and onnx)
    exporter: Optional[str] = None  # ONNX Runtime only: the MXNet requirement (or wheel) that exports the model

    @property
    def label(self) -> str:
        """Short name for tables: 'mxnet==1.9.1', the wheel's file name, or 'python:/path'."""
        if self.kind == "wheel":
            return Path(self.path or "").name
        if self.kind == "python":
            return f"python:{self.path}"
        return self.requirement or self.text

    @property
    def release_key(self) -> Tuple[str, ...]:
        """What identifies the software: mxnet==1.9.1 and mxnet==1.9.1.0 are one release (PEP 440)."""
        if self.kind == "requirement" and self.requirement and "==" in self.requirement:
            from packaging.utils import canonicalize_version

            name, _, version = self.requirement.partition("==")
            return (self.kind, name, canonicalize_version(version), *self.extra)
        return (self.kind, self.requirement or "", self.path or "", *self.extra)

    @property
    def is_cuda(self) -> bool:
        return bool(self.dist and re.match(r"mxnet-cu\d+", self.dist))


#: The MXNet distributions on PyPI: mxnet, mxnet-mkl, mxnet-native, mxnet-cu102, mxnet-cu112mkl, ...
MXNET_DIST = re.compile(r"^mxnet(-(mkl|native|cu\d+(mkl)?))?$")


def parse_spec(text: str, option: str = "spec", allow_runtime: bool = False) -> EnvSpec:
    """Parse a SPEC, raising PerfsuiteInputError that names the bad value and what is allowed. `allow_runtime`
    also accepts an ONNX Runtime requirement (onnxruntime==X.Y; the gate's candidate); complete it with
    with_exporter()."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    allowed = ("allowed: a requirement such as mxnet==1.9.1 or mxnet-cu102==1.7.0, a local .whl file, or "
               "python:/path/to/bin/python (an interpreter that already has MXNet)")
    if allow_runtime:
        allowed += ", or an ONNX Runtime release such as onnxruntime==1.22.1 (onnxruntime-gpu on CUDA hosts)"
    if not isinstance(text, str) or not text.strip():
        raise PerfsuiteInputError(f"{option} {text!r} is empty; {allowed}")
    text = text.strip()
    if text.startswith("python:"):
        path = os.path.abspath(os.path.expanduser(text[len("python:"):]))
        if not text[len("python:"):]:
            raise PerfsuiteInputError(f"{option} {text!r} names no interpreter; {allowed}")
        if not os.path.isfile(path):
            raise PerfsuiteInputError(f"{option} {text!r}: {path} does not exist or is not a file; {allowed}")
        if not os.access(path, os.X_OK):
            raise PerfsuiteInputError(f"{option} {text!r}: {path} is not executable; {allowed}")
        return EnvSpec("python", text, path=path)
    if text.endswith(".whl"):
        import zipfile

        path = os.path.abspath(os.path.expanduser(text))
        if os.path.isdir(path):
            raise PerfsuiteInputError(f"{option} {text!r}: {path} is a folder, not a wheel file; {allowed}")
        if not os.path.isfile(path):
            raise PerfsuiteInputError(f"{option} {text!r}: wheel file {path} does not exist; {allowed}")
        if not zipfile.is_zipfile(path):
            raise PerfsuiteInputError(f"{option} {text!r}: {path} is not a wheel (not a zip archive); {allowed}")
        try:
            name, version, _, _ = parse_wheel_filename(os.path.basename(path))
        except Exception as exc:  # packaging's InvalidWheelFilename
            raise PerfsuiteInputError(f"{option} {text!r} is not a valid wheel file name ({exc})") from None
        if not str(name).startswith("mxnet"):
            raise PerfsuiteInputError(f"{option} {text!r} is a wheel of {name}, not of an MXNet distribution; {allowed}")
        return EnvSpec("wheel", text, requirement=path, path=path, dist=str(name))
    if os.sep in text or text.startswith("."):
        raise PerfsuiteInputError(f"{option} {text!r} looks like a path but is not a .whl file; {allowed}")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise PerfsuiteInputError(f"{option} {text!r} is not a valid requirement ({exc}); {allowed}") from None
    name = canonicalize_name(req.name)
    if req.marker is not None or req.url or req.extras:
        raise PerfsuiteInputError(f"{option} {text!r}: markers, extras and URLs are not supported; give the "
                                  f"distribution and one exact version, e.g. {name}==1.9.1")
    if name in ORT_DISTS and not allow_runtime:
        raise PerfsuiteInputError(f"{option} {text!r}: ONNX Runtime can only be the candidate of `perfsuite gate` "
                                  "(the baseline is the MXNet you run today, and explain/bisect compare MXNet "
                                  f"builds); {allowed}")
    if not MXNET_DIST.match(name) and name not in ORT_DISTS:
        raise PerfsuiteInputError(f"{option} {text!r} installs {req.name}, not an MXNet distribution (mxnet, "
                                  f"mxnet-cuNNN, mxnet-mkl, mxnet-native); {allowed}")
    example = "1.22.1" if name in ORT_DISTS else "1.9.1"
    if not req.specifier:
        raise PerfsuiteInputError(f"{option} {text!r} names no version; pin one, e.g. {name}=={example} (the cached "
                                  "environment is keyed by the spec, so an unpinned one would never be rebuilt)")
    specs = list(req.specifier)
    pin = specs[0] if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version else None
    if pin is None:
        raise PerfsuiteInputError(f"{option} {text!r}: pin exactly one version with ==, e.g. {name}=={example} (a "
                                  "range, a wildcard, != or === names no single release, and the cached "
                                  "environment is keyed by the spec)")
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(pin.version)
    except InvalidVersion:
        raise PerfsuiteInputError(f"{option} {text!r}: {pin.version!r} is not a valid version") from None
    return EnvSpec("requirement", text, requirement=f"{name}=={version}", dist=name,
                   runtime="onnxruntime" if name in ORT_DISTS else "mxnet")


def with_exporter(spec: EnvSpec, baseline: EnvSpec, exporter: Optional[str] = None,
                  option: str = "--exporter") -> EnvSpec:
    """Complete an ONNX Runtime spec with the MXNet that exports the model in its environment and the pinned onnx.

    `exporter` (a requirement or wheel) wins; otherwise the baseline's MXNet when it is a requirement or wheel of
    1.9.0 or newer (the same MXNet, weights and GluonNLP graph as the baseline, exported as a migrating user
    would); otherwise DEFAULT_EXPORTER (MXNet 1.8 and older cannot export BERT: perfsuite.paths.model.ONNX_PATHS)."""
    from dataclasses import replace

    from packaging.requirements import Requirement
    from packaging.version import Version

    if spec.runtime != "onnxruntime":
        return spec
    if exporter is not None:
        exp = parse_spec(exporter, option)
        if exp.kind == "python":
            raise PerfsuiteInputError(f"{option} {exporter!r}: the exporter is installed into the candidate's "
                                      "environment; give a requirement such as mxnet==1.9.1 or a wheel file")
    elif baseline.kind in ("requirement", "wheel") and baseline.runtime == "mxnet":
        exp = baseline
    else:
        exp = parse_spec(DEFAULT_EXPORTER, option)
    version = None
    if exp.kind == "wheel":
        from packaging.utils import parse_wheel_filename

        version = parse_wheel_filename(os.path.basename(exp.path or ""))[1]
    else:
        pins = [s.version for s in Requirement(exp.requirement or "").specifier if s.operator in ("==", "===")]
        version = Version(pins[0]) if pins else None
    if version is None or version < Version("1.9.0"):
        if exporter is not None:
            raise PerfsuiteInputError(f"{option} {exporter!r}: exporting BERT to ONNX needs a pinned MXNet >= 1.9.0 "
                                      "(1.8's exporter has no translation for Embedding, LayerNorm and the "
                                      "interleaved attention operators)")
        exp = parse_spec(DEFAULT_EXPORTER, option)
    onnx_pin = f"onnx=={dict(PINNED)['onnx']}"
    return replace(spec, extra=(exp.requirement or "", onnx_pin), exporter=exp.label)


def envs_dir() -> Path:
    return cache_root() / "envs"


def find_uv() -> Optional[str]:
    """The uv binary: the one of the `uv` Python package (a perfsuite dependency), else uv on PATH."""
    try:
        from uv import find_uv_bin  # type: ignore

        return find_uv_bin()
    except Exception:
        return shutil.which("uv")


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _env_key(spec: EnvSpec, installer: str, variant: str = "") -> str:
    what: Dict[str, Any] = {"spec": spec.requirement, "extra": list(spec.extra), "kind": spec.kind,
                            "python": sys.version, "variant": variant,
                            "base_python": os.path.realpath(sys.executable), "companions": list(COMPANIONS),
                            "perfsuite": __version__, "layout": _LAYOUT, "installer": installer}
    if spec.kind == "wheel":
        what["wheel_sha256"] = _sha256_file(spec.path or "")
    for extra in spec.extra:  # an exporter given as a wheel file
        if extra.endswith(".whl") and os.path.isfile(extra):
            what[f"sha256 {os.path.basename(extra)}"] = _sha256_file(extra)
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Environment:
    """A ready environment: its interpreter, where it lives, and what building or finding it cost."""

    spec: EnvSpec
    python: str
    root: Optional[str]  # None for a python: spec
    key: Optional[str]
    created: bool  # built by this call (False: reused from the cache, or an existing interpreter)
    seconds: float  # time to build it, or to find and check it
    installer: Optional[str] = None
    log: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"spec": self.spec.text, "label": self.spec.label, "kind": self.spec.kind, "python": self.python,
                "root": self.root, "key": self.key, "created": self.created, "seconds": round(self.seconds, 2),
                "installer": self.installer, "runtime": self.spec.runtime, "extra": list(self.spec.extra),
                "exporter": self.spec.exporter}


def _run(cmd: Sequence[str], what: str, timeout: float, env: Optional[Dict[str, str]] = None) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise PerfsuiteInputError(f"{what} took over {timeout:.0f} s: {' '.join(cmd)}") from None
    except OSError as exc:
        raise PerfsuiteInputError(f"{what}: cannot run {cmd[0]} ({exc.strerror})") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        raise PerfsuiteInputError(f"{what} failed (exit {proc.returncode}):\n  " + "\n  ".join(lines[-12:]))
    return proc.stdout


def _clean_stale(directory: Path, older_than_s: float = 3600.0) -> None:
    """Remove temporary build folders that interrupted builds left behind (never reused, only deleted)."""
    now = time.time()
    for p in directory.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def check_interpreter(spec: EnvSpec, option: str = "") -> None:
    """Refuse a python: spec that does not run Python >= 3.7 or has no MXNet (before any work); errors start with
    the option that gave it."""
    who = f"{option} {spec.text!r}" if option else repr(spec.text)
    code = ("import sys, importlib.util; print(sys.version_info[0], sys.version_info[1], "
            "importlib.util.find_spec('mxnet') is not None)")
    try:
        out = subprocess.run([spec.path or "", "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PerfsuiteInputError(f"{who} is not a Python interpreter that runs ({exc})") from None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 3:
        raise PerfsuiteInputError(f"{who} is not a Python interpreter (running it with -c gave exit "
                                  f"{out.returncode}: {(out.stderr or out.stdout).strip()[:200]!r})")
    if (int(parts[0]), int(parts[1])) < (3, 7):
        raise PerfsuiteInputError(f"{who} is Python {parts[0]}.{parts[1]}; perfsuite needs Python >= 3.7")
    if parts[2] != "True":
        raise PerfsuiteInputError(f"{who} has no MXNet (import mxnet would fail); install one into it, "
                                  "or give a requirement such as mxnet==1.9.1 and let the gate build the environment")


def ensure_environment(spec: EnvSpec, installer: str = "uv", rebuild: bool = False,
                       progress: Optional[Callable[[str], None]] = None, variant: str = "") -> Environment:
    """Return a ready environment for `spec`: reuse the cached one, or build it (atomically) and cache it.

    `variant` makes a separate environment for the same spec (an A/A gate compares two separately built
    environments of the same MXNet, not one environment with itself)."""
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    if spec.kind == "python":
        check_interpreter(spec)
        return Environment(spec, spec.path or "", None, None, False, time.perf_counter() - t0)
    if installer not in INSTALLERS:
        raise PerfsuiteInputError(f"installer {installer!r}; allowed: {', '.join(INSTALLERS)}")
    uv = find_uv() if installer == "uv" else None
    if installer == "uv" and uv is None:
        raise PerfsuiteInputError("installer uv: no uv binary found (pip install uv, or use --installer pip)")
    key = _env_key(spec, installer, variant)
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", spec.label if spec.kind == "requirement" else (spec.dist or "wheel"))
    slug += f"-{variant}" if variant else ""
    root = envs_dir() / f"{slug.strip('-')}-{key}"
    python = root / "bin" / "python"
    if (root / _MARKER).is_file() and python.exists() and not rebuild:
        return Environment(spec, str(python), str(root), key, False, time.perf_counter() - t0, installer)
    root.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(root.parent)
    tmp = root.parent / f".tmp-{root.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    say(f"building the environment for {spec.label} with {installer} (cached afterwards in {root}) ...")
    try:
        tmp_python = tmp / "bin" / "python"
        packages = [spec.requirement or "", *spec.extra, *COMPANIONS]
        if installer == "uv":
            _run([uv or "uv", "venv", "--quiet", "--relocatable", "--python", sys.executable, str(tmp)],
                 f"creating a virtual environment for {spec.label}", 300)
            _run([uv or "uv", "pip", "install", "--quiet", "--compile-bytecode", "--python", str(tmp_python),
                  *packages], f"installing {spec.label} with uv", 1800)
        else:
            _run([sys.executable, "-m", "venv", str(tmp)], f"creating a virtual environment for {spec.label}", 300)
            _run([str(tmp_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
                 f"installing {spec.label} with pip", 3600)
        seconds = time.perf_counter() - t0
        (tmp / _MARKER).write_text(json.dumps({"spec": spec.text, "requirement": spec.requirement, "key": key,
                                               "installer": installer, "seconds": round(seconds, 2),
                                               "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                               "perfsuite_version": __version__}, indent=1) + "\n")
        if rebuild and root.exists():
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:  # another gate finished the same environment first: keep theirs
            if not (root / _MARKER).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Environment(spec, str(python), str(root), key, True, time.perf_counter() - t0, installer)


def compile_bytecode(env: Environment, staged: Optional[str] = None) -> float:
    """Compile the Python files a gate's workers import, once, with the environment's own interpreter: the
    environment's site-packages (only in an environment perfsuite built, never in a python: interpreter's) and
    the staged perfsuite copy. Every session starts fresh workers; without bytecode (uv does not compile by
    default, and PYTHONDONTWRITEBYTECODE=1 or a read-only folder keeps Python from caching it) each worker compiled
    MXNet's and perfsuite's sources again: measured on the 2-core machine, two workers' start took 6.6-7.0 s per
    session, 2.2-2.3 s with bytecode. Already compiled files are only checked (about 0.5 s). Best effort: a file
    that does not compile (a package's Python 2 test file) is compiled at import, as before. Returns the seconds
    it took."""
    t0 = time.perf_counter()
    paths = [str(p) for p in sorted(Path(env.root).glob("lib/python*/site-packages"))] if env.root else []
    if staged:
        paths.append(str(Path(staged) / "perfsuite"))
    if paths:
        try:
            subprocess.run([env.python, "-m", "compileall", "-q", "-j", "0", *paths], capture_output=True,
                           timeout=900)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return time.perf_counter() - t0


def _package_files(package_dir: Path) -> List[Path]:
    return sorted(p for p in package_dir.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo", ".so"))


def stage_perfsuite() -> Path:
    """Copy the running perfsuite package to <cache>/src/<content hash>/perfsuite (once per content) and return
    the folder to put on the workers' PYTHONPATH."""

    package_dir = Path(perfsuite.__file__).resolve().parent
    files = _package_files(package_dir)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(package_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    target = cache_root() / "src" / h.hexdigest()[:16]
    if (target / "perfsuite" / "__init__.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        for f in files:
            dest = tmp / "perfsuite" / f.relative_to(package_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "perfsuite" / "__init__.py").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
