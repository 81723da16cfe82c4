"""The published asv dashboard, opened in headless Chromium: perfsuite's benchmarks and the MXNet versions show.

Needs `asv run` + `asv publish` (.asv/html/index.html, or the folder in PERFSUITE_ASV_HTML) and a Chromium
binary (Debian: `apt-get install chromium`); skips with the reason otherwise. The dashboard is served by
`python -m http.server` on 127.0.0.1 (asv's pages fetch their JSON with XHR, which file:// URLs refuse),
and the pages are rendered with --dump-dom after a virtual-time budget that lets asv's scripts finish.
Screenshots go to .asv/screenshots/ (or PERFSUITE_ASV_SCREENSHOTS).

asv 0.6's index.html loads jQuery, flot, bootstrap, stupidtable and md5 from CDNs (asv PR #1149), which
machines without general internet access (this workplace, many CI hosts) cannot reach: the page then shows
only "One or more external (JavaScript) dependencies of airspeed velocity failed to load". The test
therefore serves a copy of the published folder whose CDN links point to the same libraries taken from the
npm registry with `npm pack` (cached in .asv/vendor/); the dashboard itself (asv's JS, index.json, graphs/)
is served as published. PERFSUITE_ASV_CDN=1 serves the folder unchanged (for a machine with internet).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("PERFSUITE_ASV_HTML", ROOT / ".asv" / "html"))
SHOTS = Path(os.environ.get("PERFSUITE_ASV_SCREENSHOTS", ROOT / ".asv" / "screenshots"))
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> Optional[str]:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _skip_reason() -> Optional[str]:
    if not (HTML / "index.html").is_file():
        return (f"no published asv dashboard at {HTML / 'index.html'}: run `asv machine --yes`, "
                "`asv run --quick` and `asv publish` first")
    if not (HTML / "index.json").is_file():
        return f"{HTML} has index.html but no index.json: re-run `asv publish`"
    if _chromium() is None:
        return f"no Chromium binary on PATH (looked for {', '.join(CHROMIUM_NAMES)}); `apt-get install chromium`"
    return None


SKIP = _skip_reason()
pytestmark = [pytest.mark.dashboard, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


@pytest.fixture(scope="module")
def index() -> dict:
    return json.loads((HTML / "index.json").read_text())


# ------------------------------------------------------------------ local copies of the CDN libraries
VENDOR = Path(os.environ.get("PERFSUITE_ASV_VENDOR", ROOT / ".asv" / "vendor"))
_CDNJS_TO_NPM = {"flot": "flot", "stupidtable": "stupid-table-plugin", "blueimp-md5": "blueimp-md5"}
_EXTERNAL = re.compile(r"""(<(?:script|link)\b[^>]*?\b(?:src|href)=")(https?://[^"]+)("[^>]*>)""")


def _npm_source(url: str) -> Tuple[str, str, List[str]]:
    """(npm package, version, candidate paths in the package) for one CDN URL of asv's index.html."""
    m = re.match(r"^https://code\.jquery\.com/jquery-([\d.]+)(\.min)?\.js$", url)
    if m:
        return "jquery", m.group(1), ["dist/jquery.min.js", "dist/jquery.js"]
    m = re.match(r"^https://cdn\.jsdelivr\.net/npm/((?:@[^/]+/)?[^@/]+)@([^/]+)/(.+)$", url)
    if m:
        return m.group(1), m.group(2), [m.group(3)]
    m = re.match(r"^https://cdnjs\.cloudflare\.com/ajax/libs/([^/]+)/([^/]+)/(.+)$", url)
    if m and m.group(1) in _CDNJS_TO_NPM:
        path = m.group(3)
        plain = path.replace(".min.js", ".js")
        return _CDNJS_TO_NPM[m.group(1)], m.group(2), [p + q for p in ("", "js/", "dist/") for q in (path, plain)]
    raise LookupError(f"no npm source known for {url}")


def _npm_package(name: str, version: str) -> Path:
    """The unpacked npm package (cached in VENDOR); the exact version, else the newest of its major version
    (stupidtable 1.0.1 of cdnjs is published on npm as stupid-table-plugin 1.1.3 only)."""
    err = ""
    for spec in (f"{name}@{version}", f"{name}@{version.split('.')[0]}"):
        cached = [p for p in VENDOR.glob(f"{name.replace('/', '+')}@*") if p.name == spec.replace("/", "+")]
        if cached:
            return cached[0]
        VENDOR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="perfsuite-npm-") as tmp:
            proc = subprocess.run(["npm", "pack", spec, "--pack-destination", tmp, "--silent"],
                                  capture_output=True, text=True, timeout=300)
            tgz = list(Path(tmp).glob("*.tgz"))
            if proc.returncode != 0 or not tgz:
                last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                err = f"npm pack {spec} exited {proc.returncode}: {last[0]}"
                continue
            dest = VENDOR / spec.replace("/", "+")
            with tarfile.open(tgz[0]) as tar:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.8.17 / 3.11.4
                    tar.extractall(dest, filter="data")
                else:  # pragma: no cover
                    tar.extractall(dest)
            return dest
    raise RuntimeError(err)


def _localized_copy(dest: Path) -> Path:
    """A copy of the published dashboard whose CDN links point at local copies of the same libraries."""
    shutil.copytree(HTML, dest)
    html = (dest / "index.html").read_text()
    if os.environ.get("PERFSUITE_ASV_CDN") == "1":
        return dest
    if shutil.which("npm") is None:
        pytest.skip("asv's index.html loads jQuery/flot/bootstrap from CDNs and there is no `npm` to take local "
                    "copies from the npm registry (apt-get install npm), or set PERFSUITE_ASV_CDN=1 with internet")

    def local(m: re.Match) -> str:
        url = m.group(2)
        name, version, candidates = _npm_source(url)
        try:
            pkg = _npm_package(name, version) / "package"
        except RuntimeError as exc:
            pytest.skip(f"cannot take a local copy of {url} from the npm registry: {exc}")
        found = next((pkg / c for c in candidates if (pkg / c).is_file()), None)
        assert found is not None, f"{name}@{version} has none of {candidates} (for {url})"
        rel = Path("vendor") / pkg.parent.name / found.relative_to(pkg)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, dest / rel)
        tag = m.group(1) + rel.as_posix() + m.group(3)
        # subresource-integrity hashes name the CDN's bytes; the npm files may be built differently
        return re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)

    html = _EXTERNAL.sub(local, html)
    left = _EXTERNAL.findall(html)
    assert not left, f"external links left in index.html: {[u for _, u, _ in left]}"
    (dest / "index.html").write_text(html)
    return dest


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _localized_copy(tmp_path_factory.mktemp("asv") / "html")


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """`python -m http.server` on 127.0.0.1, a free port chosen by the OS; yields the base URL."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                             "--directory", str(site)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 43211 (http://127.0.0.1:43211/) ..."
        m = re.search(r"port (\d+)", line)
        assert m, f"http.server did not report its port: {line!r}"
        yield f"http://127.0.0.1:{m.group(1)}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _chromium_run(args: List[str], timeout: float = 180.0) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="perfsuite-chromium-") as profile:
        cmd = [_chromium() or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               "--virtual-time-budget=20000", "--window-size=1400,1000", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _dump_dom(url: str) -> str:
    proc = _chromium_run(["--dump-dom", url])
    assert proc.returncode == 0, f"chromium --dump-dom {url} exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def _screenshot(url: str, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / name
    if out.exists():
        out.unlink()
    proc = _chromium_run([f"--screenshot={out}", url])
    assert proc.returncode == 0 and out.is_file() and out.stat().st_size > 10_000, (
        f"no screenshot of {url}: exit {proc.returncode}, {proc.stderr[-2000:]}")
    return out


def _mxnet_versions(index: dict) -> List[str]:
    versions: List[str] = []
    for key, values in index.get("params", {}).items():
        if re.match(r"^(pip\+)?mxnet(-[a-z0-9]+)?$", key):
            versions += [str(v) for v in values if v not in (None, "")]
    return versions


def test_dashboard_lists_perfsuite_benchmarks(server: str, index: dict) -> None:
    names = sorted(index["benchmarks"])
    assert any(n.startswith("bench_model.") for n in names) and any(n.startswith("bench_ops.") for n in names), names
    dom = _dump_dom(server + "index.html")
    assert "perfsuite" in dom  # the project name in the page title / navigation
    shown = [n for n in names if n in dom]
    missing = [n for n in names if n not in dom]
    assert not missing, f"benchmarks in index.json but not on the rendered page: {missing} (shown: {shown})"
    shot = _screenshot(server + "index.html", "dashboard-index.png")
    print(f"screenshot: {shot}")


def test_dashboard_shows_the_mxnet_versions(server: str, index: dict) -> None:
    versions = _mxnet_versions(index)
    assert versions, f"index.json names no MXNet version among its params: {sorted(index.get('params', {}))}"
    bench = "bench_model.BertBase.time_forward"
    if bench not in index["benchmarks"]:
        bench = sorted(index["benchmarks"])[0]
    url = f"{server}index.html#{bench}"
    dom = _dump_dom(url)
    missing = [v for v in versions if v not in dom]
    assert not missing, f"MXNet versions {missing} not on the graph page of {bench} (index.json has {versions})"
    assert bench in dom
    shot = _screenshot(url, "dashboard-graph.png")
    print(f"screenshot: {shot}")
