"""The driver's handle on a gate worker (perfsuite.gate.worker): `WorkerProcess` starts ``python -m
perfsuite.gate.worker`` in an environment (its own process group, optionally pinned to CPUs from its start),
sends requests (one JSON object per line) and waits for each reply with a timeout, so a crash, a hang or a broken
protocol becomes a `WorkerError` naming the worker. It can pause the worker (SIGSTOP) while the other side is timed.
Used by the gate, `perfsuite explain`/`bisect` and `perfsuite run`'s memory probes.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from typing import Any, Dict, List, Optional

from perfsuite.errors import PerfsuiteInputError
from perfsuite.gate.worker import CPUS_ENV

__all__ = ["WorkerProcess", "WorkerError"]


class WorkerError(RuntimeError):
    """A worker died, hung past its timeout, or broke the protocol (the gate cannot go on with it)."""


class WorkerProcess:
    """The driver's handle on one worker: start it in an environment, send requests, get replies or errors."""

    def __init__(self, python: str, name: str, pythonpath: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None, log_path: Optional[str] = None,
                 cpus: Optional[List[int]] = None) -> None:
        self.name = name
        self.python = python
        environ = dict(os.environ)
        environ.update(env or {})
        environ.pop(CPUS_ENV, None)
        if cpus:
            environ[CPUS_ENV] = ",".join(str(c) for c in cpus)
        if pythonpath:
            environ["PYTHONPATH"] = pythonpath + (os.pathsep + environ["PYTHONPATH"] if environ.get("PYTHONPATH")
                                                  else "")
        environ["PYTHONUNBUFFERED"] = "1"
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            # cwd: `python -m` puts the working folder first on sys.path; run where only the staged perfsuite is
            self.proc = subprocess.Popen([python, "-m", "perfsuite.gate.worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log, env=environ, bufsize=0,
                                         start_new_session=True, cwd=pythonpath or None)
        except OSError as exc:
            raise WorkerError(f"{name}: cannot start {python} ({exc.strerror})") from None
        self._buf = b""
        self.paused = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pause(self) -> None:
        """Stop the worker's whole process group (SIGSTOP): none of its threads can take a CPU until resume()."""
        if not self.paused and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
            except OSError:
                pass

    def send(self, req: Dict[str, Any]) -> None:
        self.resume()  # a paused worker could not answer
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerError(self._death(f"while sending {req.get('cmd')!r}")) from None

    def receive(self, timeout: float, what: str = "") -> Dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerError(f"{self.name}: no reply to {what or 'a request'} within {timeout:.0f} s "
                                  "(hung; the worker was killed)")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise WorkerError(self._death(f"during {what or 'a request'}"))
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise WorkerError(f"{self.name}: broke the protocol (not JSON: {line[:200]!r})") from None

    def request(self, req: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        """Send one request and wait for its reply; a failed request raises (input: PerfsuiteInputError)."""
        self.send(req)
        reply = self.receive(timeout, repr(req.get("cmd")))
        if not reply.get("ok"):
            msg = f"{self.name}: {req.get('cmd')} {req.get('target', '')}: {reply.get('error')}".replace("  ", " ")
            if reply.get("kind") == "input":
                raise PerfsuiteInputError(msg)
            raise WorkerError(msg)
        return reply

    def _death(self, when: str) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return f"{self.name}: closed its pipe {when} but is still running"
        if code < 0:
            try:
                sig = signal.Signals(-code).name
            except ValueError:
                sig = f"signal {-code}"
            return f"{self.name}: crashed {when} ({sig})"
        return f"{self.name}: exited {when} with status {code}"

    def close(self, timeout: float = 10.0) -> None:
        """Ask the worker to quit; kill it if it does not within `timeout`."""
        self.resume()
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.proc.wait(timeout=timeout)
            except (WorkerError, subprocess.TimeoutExpired):
                self.kill()
        self._close_files()

    def kill(self) -> None:
        self.resume()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            self.proc.wait()
        self._close_files()

    def _close_files(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        if self._log is not subprocess.DEVNULL:
            self._log.close()
            self._log = subprocess.DEVNULL
