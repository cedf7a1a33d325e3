"""A real ``actionrec serve`` process on 127.0.0.1 and the clips the serving tests upload."""

import json
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from actionrec.data.synthetic import write_video
from actionrec.serve.local import local_server
from tests.helpers import FPS, scenes


@contextmanager
def served(checkpoint, tmp_path, *flags, env=None):
    """A real server (``local_server``) whose temporary files go to a folder of its own;
    yields (base URL, that folder, process)."""
    scratch = tmp_path / f"scratch{time.monotonic_ns()}"
    scratch.mkdir()
    with local_server(checkpoint, *flags, env={"TMPDIR": str(scratch), **(env or {})}) as (
            url, proc):
        yield url, scratch, proc


def call(url, path, body=None, headers=None, method=None, timeout=120):
    """(status, JSON body, headers) of one request."""
    request = urllib.request.Request(url + path, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def uploads_left(scratch) -> list:
    """The upload folders a server left in its temporary folder."""
    return list(scratch.rglob("actionrec_upload_*"))


def wait_for(url: str, key: str, n: int, *, at_most: bool = False, tries: int = 100) -> None:
    """Until the server's /healthz says ``n`` (or, ``at_most``, no more) for ``key``, polled
    every 0.1 s ``tries`` times."""
    for _ in range(tries):
        value = call(url, "/healthz")[1][key]
        if value == n or at_most and value < n:
            return
        time.sleep(0.1)
    raise AssertionError(f"never {key} == {n}: {call(url, '/healthz')[1]}")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_clips")
    good, long = root / "clip.mp4", root / "long.mp4"
    write_video(good, scenes([0, 1, 4], 50), fps=FPS, options={"g": "25"})  # 6 s
    write_video(root / "other.mp4", scenes([5, 2, 3], 50), fps=FPS)
    write_video(long, scenes(list(range(10)) * 3, 50, size=16), fps=FPS)  # 60 s
    whole = good.read_bytes()
    (root / "cut_moov.mp4").write_bytes(whole[: len(whole) // 2])  # index at the end: gone
    fast = root / "fast.mp4"
    write_video(fast, scenes([0, 1, 4], 50), fps=FPS, container_options={"movflags": "faststart"})
    (root / "cut_fast.mp4").write_bytes(fast.read_bytes()[: fast.stat().st_size // 3])
    return root


