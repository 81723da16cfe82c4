"""`perfsuite info`: the MXNet build, its features and the machine, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from perfsuite import env
from perfsuite.cli.common import EXIT_OK
from perfsuite.outputs import print_format
from perfsuite.tables import table


def add_info_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``perfsuite info``."""
    parser = subparsers.add_parser(
        "info",
        help="show the MXNet build, threads, CPU and MXNET_* flags in effect",
        description=(
            "Show the environment every perfsuite measurement records: the installed MXNet distribution "
            "and version (mxnet vs mxnet-cu102; 1.7.0.post2 reports mx.__version__ 1.7.0), build features "
            "(CUDA, MKLDNN), visible GPUs, OpenMP threads MXNet will use, CPU, library versions and the "
            "MXNET_* variables set. Imports mxnet (a few seconds)."
        ),
        epilog=(
            "OpenMP threads: with OMP_NUM_THREADS unset, MXNet 1.x on x86 uses half the CPUs (1 on a "
            "2-core machine); set OMP_NUM_THREADS for timings."
        ),
    )
    parser.add_argument("--format", choices=("table", "json"), default=None,
                        help="table (default) or json: one JSON object (with 'format_version') for scripts and "
                             "result files")
    parser.add_argument("--json", action="store_true",
                        help="deprecated spelling of --format json (elsewhere --json FILE writes a file)")
    parser.set_defaults(handler=_cmd_info)


def _format_value(value: Any) -> str:
    """One table cell: dicts of flags as NAME=value, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) if value else "(none)"
    return str(value)


def format_env_table(info: Any) -> str:
    """Render an :class:`~perfsuite.env.EnvInfo` as an aligned 'key  value' table, one fact per line."""
    enabled = [name for name, on in info.features.items() if on]
    rows: list[tuple[str, str]] = [
        ("mxnet distribution", f"{info.mxnet_distribution} {info.mxnet_dist_version}"),
        ("mxnet.__version__", info.mxnet_version),
        ("build", "CUDA" if info.is_cuda_build else "CPU"),
        ("mkldnn/onednn", "yes" if info.has_mkldnn else "no"),
        ("gpus visible", str(info.num_gpus)),
        ("features enabled", ", ".join(enabled) if enabled else "(none)"),
        ("omp threads", str(info.omp_threads)),
        ("cpu model", info.cpu_model),
        ("cpus usable", str(info.cpu_count)),
        ("gluonnlp", _format_value(info.gluonnlp_version)),
        ("numpy", info.numpy_version),
        ("python", info.python_version),
        ("platform", info.platform),
        ("MXNET_* flags set", _format_value(info.mxnet_flags)),
    ]

    return "\n".join(ln.rstrip() for ln in table(["", ""], rows, "plain").splitlines()[1:])


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the environment as a table or JSON."""

    fmt = print_format(args.json, args.format, "table", "info")
    info = env.collect_env()
    if fmt == "json":
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(format_env_table(info))
    return EXIT_OK
