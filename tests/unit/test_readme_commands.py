"""The README and `--help` agree: every `perfsuite COMMAND --option` the README shows exists in that command's
parser (no abbreviations: they are refused), and every README command's SPECs are accepted by the spec parser."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from perfsuite import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands():
    text = README.read_text()
    # command lines: indented code blocks, and inline code that starts with the command
    lines = [ln.strip() for ln in text.splitlines() if ln.startswith("    ") and "perfsuite " in ln]
    lines += [m.group(1) for m in re.finditer(r"`((?:\.venv/bin/)?perfsuite [a-z][^`]*)`", text)]
    found = []
    for line in lines:
        m = re.search(r"(?:^|\s|/)perfsuite\s+([a-z][a-z-]+)(\s.*)?$", line)
        if not m or line.startswith("#") or "python -m perfsuite." in line:
            continue
        cmd = m.group(1)
        rest = (m.group(2) or "").split("#")[0]
        rest = rest.split("|")[0]
        try:
            words = shlex.split(rest)
        except ValueError:
            words = rest.split()
        found.append((cmd, words, line))
    return found


COMMANDS = _commands()


def test_the_readme_shows_commands():
    assert len({c for c, _, _ in COMMANDS}) >= 8, [c for c, _, _ in COMMANDS]


@pytest.mark.parametrize("cmd,words,line", COMMANDS, ids=[f"{c}:{i}" for i, (c, _, _) in enumerate(COMMANDS)])
def test_every_readme_option_exists_in_its_parser(cmd, words, line):
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices  # the registered subcommands
    if cmd not in sub:
        pytest.skip(f"not a perfsuite command line: {line!r}")
    known = {opt for action in sub[cmd]._actions for opt in action.option_strings}
    used = [w.split("=")[0] for w in words if w.startswith("--")]
    missing = [o for o in used if o not in known]
    assert not missing, f"README line {line!r} uses {missing}, which `perfsuite {cmd} --help` does not list"


def test_readme_specs_parse():
    from perfsuite.gate.venvs import parse_spec

    for cmd, words, line in COMMANDS:
        if cmd not in ("gate", "explain", "bisect"):
            continue
        for opt in ("--baseline", "--candidate", "--good", "--bad"):
            if opt in words:
                spec = words[words.index(opt) + 1]
                if spec.startswith(("python:", ".")) or spec.endswith(".whl"):
                    continue  # files on the reader's machine
                parse_spec(spec, opt, allow_runtime=opt == "--candidate")
