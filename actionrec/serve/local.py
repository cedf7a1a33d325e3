"""``actionrec serve`` in a child process on a free port of 127.0.0.1, for tests, benchmarks and
scripts that need a real server: started, waited for until ``/healthz`` answers, stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(checkpoint, *flags: str, env: dict | None = None, startup_s: float = 120.0
                 ) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of ``actionrec serve --checkpoint CHECKPOINT FLAGS...``; its stderr
    is a pipe (read it after stopping the process)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "actionrec", "serve", "--checkpoint", str(checkpoint),
         "--port", str(port), *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"actionrec serve exited with {proc.returncode}: "
                                   f"{proc.stderr.read().decode().strip()}")
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"actionrec serve not answering on {url} after "
                                       f"{startup_s:g} s") from None
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
