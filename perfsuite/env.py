"""What MXNet build runs here, which MXNET_* flags are set, and why a test must skip (what each flag means and
setting one for a block of code: perfsuite.flags).

Every measurement perfsuite records carries an :class:`EnvInfo`, because a number means little
without the distribution (``mxnet`` vs ``mxnet-cu102``), its build features (MKL-DNN, CUDA), the
OpenMP thread count and the MXNET_* flags it ran under. This module imports ``mxnet`` only inside
the functions that need it, so importing it (and running ``perfsuite --help``) stays fast.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import os
import platform
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Optional

from perfsuite.errors import PerfsuiteInputError

__all__ = [
    "usable_cpus",
    "read_cpu_model",
    "ENV_FORMAT_VERSION",
    "FLAG_PREFIX",
    "EnvInfo",
    "FEATURES",
    "FEATURE_NOTES",
    "MXNetDistribution",
    "collect_env",
    "detect_omp_threads",
    "find_mxnet_distribution",
    "mxnet_at_least",
    "parse_version",
    "skip_reason_feature",
    "skip_reason_gpu",
    "skip_reason_mkldnn",
]

#: Version of the dict/JSON layout written by :meth:`EnvInfo.to_dict`; bump on any incompatible change.
ENV_FORMAT_VERSION = 1

FLAG_PREFIX = "MXNET_"

# ---------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------

def parse_version(version: str) -> tuple[int, int, int, int]:
    """Parse a PEP 440 version (packaging.version, the one version parser) into ``(major, minor, micro, post)``
    for ordering MXNet releases.

    ``'1.7.0.post2'`` -> ``(1, 7, 0, 2)``; ``'1.9'`` -> ``(1, 9, 0, 0)``. Pre-release, dev and local
    segments are ignored: a 1.9.0 nightly (``1.9.0b20210801``) counts as 1.9.0, which is what feature
    gating wants (nightlies carry the features of the release they precede).
    """
    from packaging.version import InvalidVersion, Version

    if not isinstance(version, str):
        raise PerfsuiteInputError(
            f"version {version!r} is a {type(version).__name__}; allowed: a version string such as '1.9.1' or '1.7.0.post2'"
        )
    try:
        v = Version(version.strip())
    except InvalidVersion:
        raise PerfsuiteInputError(
            f"cannot parse version {version!r}; allowed: a PEP 440 version such as '1.9.1' or '1.7.0.post2'"
        ) from None
    parts = (list(v.release) + [0, 0, 0])[:3]
    return (parts[0], parts[1], parts[2], v.post or 0)


# ---------------------------------------------------------------------------------------------
# The distribution that provides `import mxnet`
# ---------------------------------------------------------------------------------------------


class MXNetDistribution(NamedTuple):
    """The installed distribution that provides the ``mxnet`` module: normalized name and its version."""

    name: str
    version: str


def _normalize_dist_name(name: str) -> str:
    """PEP 503 normalization ('mxnet_cu102' -> 'mxnet-cu102') so reports spell names one way."""
    return re.sub(r"[-_.]+", "-", name).lower()


def find_mxnet_distribution() -> Optional[MXNetDistribution]:
    """Return the distribution (e.g. ``('mxnet', '1.9.1')``, ``('mxnet-cu102', '1.7.0.post2')``) providing ``mxnet``.

    Every MXNet distribution (mxnet, mxnet-cuXXX, mxnet-mkl, mxnet-native, ...) installs the same top-level
    module, and ``mx.__version__`` drops post-release tags, so the distribution is the only reliable record of
    what was installed. Does not import mxnet. Returns None when no installed distribution provides it
    (e.g. a source checkout on ``PYTHONPATH``). When several do (a broken environment), the one whose files
    contain the module Python would import wins.
    """
    try:
        names = importlib.metadata.packages_distributions().get("mxnet", [])
    except Exception:  # pragma: no cover - metadata of some unrelated distribution is unreadable
        names = []
    candidates: list[importlib.metadata.Distribution] = []
    seen: set[str] = set()
    for name in names:
        key = _normalize_dist_name(name)
        if key in seen:
            continue
        seen.add(key)
        try:
            candidates.append(importlib.metadata.distribution(name))
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            continue
    if not candidates:
        return None
    chosen = candidates[0]
    if len(candidates) > 1:
        spec = importlib.util.find_spec("mxnet")
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        for dist in candidates:
            try:
                located = Path(str(dist.locate_file("mxnet/__init__.py"))).resolve()
            except Exception:  # pragma: no cover
                continue
            if origin is not None and located == origin:
                chosen = dist
                break
    return MXNetDistribution(_normalize_dist_name(chosen.metadata["Name"]), chosen.version)


# ---------------------------------------------------------------------------------------------
# OpenMP threads and CPU
# ---------------------------------------------------------------------------------------------


def usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware; what OpenMP's omp_get_num_procs sees on Linux)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:  # pragma: no cover
            pass
    return os.cpu_count() or 1


def _positive_int_env(environ: Mapping[str, str], name: str) -> Optional[int]:
    """First integer of an OpenMP-style value ('4' or '4,2'); None when unset or not a positive integer."""
    raw = environ.get(name)
    if raw is None:
        return None
    first = raw.split(",")[0].strip()
    try:
        value = int(first)
    except ValueError:
        return None
    return value if value > 0 else None


def detect_omp_threads(environ: Optional[Mapping[str, str]] = None, cpus: Optional[int] = None) -> int:
    """OpenMP threads MXNet 1.x will use for its operators, following ``src/engine/openmp.cc``.

    ``OMP_NUM_THREADS`` wins when set. Otherwise ``MXNET_OMP_MAX_THREADS`` caps the usable CPUs, and with
    neither set MXNet on x86 takes HALF the CPUs (it assumes hyperthreading): on this project's 2-core
    machines an unset ``OMP_NUM_THREADS`` means 1 thread (checked: per-thread CPU time of an fp16 LayerNorm).
    Set ``OMP_NUM_THREADS`` explicitly for timings; this function only reports.
    """
    env = os.environ if environ is None else environ
    ncpu = usable_cpus() if cpus is None else cpus
    omp = _positive_int_env(env, "OMP_NUM_THREADS")
    if omp is not None:
        return omp
    cap = _positive_int_env(env, "MXNET_OMP_MAX_THREADS")
    if cap is not None:
        return max(1, min(cap, ncpu))
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        return max(1, ncpu >> 1)
    return max(1, ncpu)


def read_cpu_model() -> str:
    """CPU model name from /proc/cpuinfo ('model name'), else platform.processor(), else 'unknown'."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _dist_version(name: str) -> Optional[str]:
    """Installed version of distribution `name` without importing it; None if not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# EnvInfo
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvInfo:
    """Where a measurement ran: MXNet distribution and build, threads, CPU, library versions, MXNET_* flags.

    Build fakes for tests with ``dataclasses.replace(collect_env(), ...)``. Not hashable (holds dicts).
    """

    mxnet_distribution: str  # 'mxnet', 'mxnet-cu102', ... ('unknown' when no distribution metadata)
    mxnet_dist_version: str  # installed distribution version, e.g. '1.7.0.post2' ('unknown' likewise)
    mxnet_version: str  # mx.__version__, e.g. '1.7.0' for the 1.7.0.post2 wheel
    features: dict[str, bool]  # mx.runtime.Features(): name -> enabled
    num_gpus: int  # GPUs MXNet sees (0 on CPU builds)
    omp_threads: int  # see detect_omp_threads()
    cpu_model: str
    cpu_count: int  # CPUs this process may use (affinity-aware)
    gluonnlp_version: Optional[str]
    numpy_version: str
    python_version: str
    platform: str
    mxnet_flags: dict[str, str] = field(default_factory=dict)  # MXNET_* variables set at collection time

    @property
    def is_cuda_build(self) -> bool:
        """True when this MXNet was built with CUDA (feature 'CUDA'), whether or not a GPU is visible."""
        return bool(self.features.get("CUDA", False))

    @property
    def has_mkldnn(self) -> bool:
        """True when the build has MKL-DNN/oneDNN (feature 'MKLDNN'; 1.6.0 CPU wheels lack it)."""
        return bool(self.features.get("MKLDNN", False))

    def describe_mxnet(self) -> str:
        """Short 'distribution version' text used in reports and skip reasons, e.g. 'mxnet 1.9.1'."""
        return f"{self.mxnet_distribution} {self.mxnet_dist_version}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of all fields plus 'format_version'; inverse of :meth:`from_dict`."""
        out: dict[str, Any] = {"format_version": ENV_FORMAT_VERSION}
        out.update(dataclasses.asdict(self))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EnvInfo":
        """Rebuild an EnvInfo from :meth:`to_dict` output; rejects other format versions and unknown keys."""
        payload = dict(data)
        version = payload.pop("format_version", None)
        if version != ENV_FORMAT_VERSION:
            raise PerfsuiteInputError(
                f"EnvInfo format_version {version!r} is not supported; allowed: {ENV_FORMAT_VERSION}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(payload) - set(names))
        missing = [n for n in names if n not in payload and n != "mxnet_flags"]
        if unknown or missing:
            raise PerfsuiteInputError(
                f"EnvInfo dict has unknown keys {unknown} and lacks keys {missing}; allowed keys: {', '.join(names)}"
            )
        return cls(**payload)


@lru_cache(maxsize=1)
def _static_env() -> dict[str, Any]:
    """The parts of EnvInfo that cannot change within a process (imports mxnet once, ~2 s)."""
    import mxnet as mx  # lazy: importing mxnet takes seconds

    try:
        features = {name: bool(feat.enabled) for name, feat in mx.runtime.Features().items()}
    except Exception:  # pragma: no cover - mx.runtime exists from 1.5.0 on
        features = {}
    try:
        num_gpus = int(mx.context.num_gpus())
    except Exception:  # a CUDA build without a driver can raise instead of answering 0
        num_gpus = 0
    dist = find_mxnet_distribution()
    import numpy

    return dict(
        mxnet_distribution=dist.name if dist else "unknown",
        mxnet_dist_version=dist.version if dist else "unknown",
        mxnet_version=str(getattr(mx, "__version__", "unknown")),
        features=features,
        num_gpus=num_gpus,
        cpu_model=read_cpu_model(),
        cpu_count=usable_cpus(),
        gluonnlp_version=_dist_version("gluonnlp"),
        numpy_version=str(numpy.__version__),
        python_version=platform.python_version(),
        platform=platform.platform(),
    )


def collect_env(refresh: bool = False) -> EnvInfo:
    """Describe this process's environment; the MXNet part is cached, flags and threads are read now.

    The build facts (distribution, features, GPUs, CPU) are collected once per process (pass
    ``refresh=True`` to redo it); ``mxnet_flags`` and ``omp_threads`` reflect ``os.environ`` at this call,
    so a record taken inside :func:`mxnet_flags` shows the flags that were in force.
    """
    if refresh:
        _static_env.cache_clear()
    static = dict(_static_env())
    static["features"] = dict(static["features"])  # callers may not mutate the cached dict
    flags = {k: v for k, v in sorted(os.environ.items()) if k.startswith(FLAG_PREFIX)}
    return EnvInfo(omp_threads=detect_omp_threads(), mxnet_flags=flags, **static)


# ---------------------------------------------------------------------------------------------
# Features by first release, and skip reasons
# ---------------------------------------------------------------------------------------------

#: feature name -> first MXNet release that has it (from apache/mxnet PRs; see docs facts.md).
FEATURES: Mapping[str, str] = MappingProxyType(
    {
        "interleaved_attention": "1.6.0",
        "softmax_length": "1.6.0",
        "use_fusion": "1.6.0",
        "safe_accumulation": "1.5.0",
        "fc_true_fp16": "1.7.0",
        "custom_graph_pass": "1.7.0",
        "cuda_graphs": "1.8.0",
        "onednn_attention_fusion": "1.9.0",
    }
)

#: feature name -> the API or flag it stands for, named in skip reasons.
FEATURE_NOTES: Mapping[str, str] = MappingProxyType(
    {
        "interleaved_attention": "contrib.interleaved_matmul_selfatt_qk/valatt, encdec_qk/valatt",
        "softmax_length": "softmax(..., length=, use_length=True)",
        "use_fusion": "MXNET_USE_FUSION",
        "safe_accumulation": "MXNET_SAFE_ACCUMULATION",
        "fc_true_fp16": "MXNET_FC_TRUE_FP16",
        "custom_graph_pass": "REGISTER_PASS libraries, HybridBlock.optimize_for",
        "cuda_graphs": "MXNET_ENABLE_CUDA_GRAPHS",
        "onednn_attention_fusion": "optimize_for(backend='MKLDNN') fusing the interleaved attention ops",
    }
)


def _env_version(env: EnvInfo) -> tuple[int, int, int, int]:
    """The MXNet version to gate on: mx.__version__, else the distribution version."""
    for candidate in (env.mxnet_version, env.mxnet_dist_version):
        try:
            return parse_version(candidate)
        except PerfsuiteInputError:
            continue
    raise PerfsuiteInputError(
        f"cannot tell the MXNet version: mx.__version__={env.mxnet_version!r}, "
        f"distribution version={env.mxnet_dist_version!r}; allowed: PEP 440 versions such as '1.9.1'"
    )


def mxnet_at_least(version: str, env: Optional[EnvInfo] = None) -> bool:
    """True when the running (or given) MXNet is at least `version`, e.g. ``mxnet_at_least('1.7.0')``."""
    wanted = parse_version(version)
    have = _env_version(collect_env() if env is None else env)
    return have >= wanted


def skip_reason_gpu(env: Optional[EnvInfo] = None) -> Optional[str]:
    """None when a CUDA build sees at least one GPU; otherwise the reason a GPU test must skip."""
    env = collect_env() if env is None else env
    if not env.is_cuda_build:
        return f"needs a CUDA build of MXNet; found {env.describe_mxnet()} (CPU)"
    if env.num_gpus < 1:
        return f"needs a visible GPU; found {env.describe_mxnet()} (CUDA build) but {env.num_gpus} GPUs visible"
    return None


def skip_reason_feature(feature: str, env: Optional[EnvInfo] = None) -> Optional[str]:
    """None when this MXNet release has `feature` (a key of FEATURES); otherwise why a test must skip.

    Checks the release only; combine with :func:`skip_reason_gpu` / :func:`skip_reason_mkldnn` for
    features that also need a GPU or a oneDNN build.
    """
    if feature not in FEATURES:
        raise PerfsuiteInputError(f"unknown feature {feature!r}; allowed: {', '.join(FEATURES)}")
    env = collect_env() if env is None else env
    first = FEATURES[feature]
    if mxnet_at_least(first, env):
        return None
    return f"needs MXNet >= {first} for {feature} ({FEATURE_NOTES[feature]}); found {env.describe_mxnet()}"


def skip_reason_mkldnn(env: Optional[EnvInfo] = None) -> Optional[str]:
    """None when MXNet was built with MKL-DNN/oneDNN (1.7.0+ CPU wheels); otherwise why a test must skip."""
    env = collect_env() if env is None else env
    if env.has_mkldnn:
        return None
    return f"needs an MXNet build with MKL-DNN/oneDNN (feature MKLDNN); found {env.describe_mxnet()} built without it"
