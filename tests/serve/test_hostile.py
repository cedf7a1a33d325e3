"""``actionrec serve`` against what an attacker or a careless user sends, through real server
processes on 127.0.0.1 and real sockets and signals: every flag and query parameter checked,
slow uploads bounded apart from the computations, SIGTERM ending the server within a bound with
no upload left on disk, multipart forms, the Host check, frames too large refused before they
are decoded, and the OpenAPI schema held to by the server (schemathesis)."""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from PIL import Image

from tests.conftest import run
from tests.helpers import FPS
from tests.serve.conftest import call, served, uploads_left, wait_for

LIMITS = ("--workers", "1", "--queue", "2", "--uploads", "4", "--upload-timeout", "2",
          "--upload-min-rate", "1", "--max-upload-mb", "1", "--max-pixels", "65536",
          "--allow-host", "My.Box")


@pytest.fixture(scope="module")
def server(trained_tsn, tmp_path_factory):
    with served(trained_tsn, tmp_path_factory.mktemp("hostile"), *LIMITS) as s:
        yield s


class SlowUpload(threading.Thread):
    """A client that declares 1 MB and sends one byte every 0.2 s; ``status`` is the first line
    of the answer it got once the server stopped reading; ``leave()`` hangs up."""

    def __init__(self, url: str, length: int = 1_000_000):
        super().__init__(daemon=True)
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\n"
                          f"Content-Length: {length}\r\n\r\n".encode())
        self.status, self.leaving = None, threading.Event()
        self.start()

    def leave(self):
        self.leaving.set()
        self.join()

    def run(self):
        try:
            while not self.leaving.wait(0.2):
                self.sock.sendall(b"\0")
        except OSError:
            pass
        if self.leaving.is_set():
            return self.sock.close()
        self.sock.settimeout(5)
        try:
            self.status = self.sock.recv(4096).split(b"\r\n")[0].decode()
        except OSError as e:
            self.status = repr(e)
        self.sock.close()


def test_slow_uploads_hold_an_upload_slot_for_a_bounded_time_never_a_computation(server, clips):
    url, scratch, _ = server  # 1 worker + 2 waiting, 4 uploads, 2 s grace then 1 KiB/s
    video = (clips / "clip.mp4").read_bytes()
    slow = [SlowUpload(url) for _ in range(4)]
    wait_for(url, "uploading", 4)
    code, answer, headers = call(url, "/v1/predict", video)
    assert code == 503 and "4 uploads in progress" in answer["detail"]
    assert int(headers["Retry-After"]) >= 1
    slow.pop().leave()
    wait_for(url, "uploading", 3, at_most=True)
    assert call(url, "/v1/predict", video)[0] == 200  # 3 slow uploads hold no computation slot
    for client in slow:
        client.join(timeout=10)
        assert client.status == "HTTP/1.1 408 Request Timeout"
    wait_for(url, "uploading", 0)
    assert call(url, "/v1/predict", video)[0] == 200 and not uploads_left(scratch)


@pytest.mark.parametrize("flag,value", [
    ("--port", "99999"), ("--port", "0"), ("--max-duration", "nan"), ("--timeout", "nan"),
    ("--timeout", "0"), ("--max-upload-mb", "inf"), ("--max-upload-mb", "nan"),
    ("--workers", "0"), ("--queue", "-1"), ("--max-pixels", "0"), ("--uploads", "1.5"),
    ("--upload-timeout", "inf"), ("--upload-min-rate", "0"), ("--shutdown-timeout", "nan"),
    ("--allow-host", "evil.com/x"),
])
def test_every_flag_is_checked_before_anything_starts(capsys, tmp_path, flag, value):
    with pytest.raises(SystemExit) as e:
        run(capsys, "serve", "--checkpoint", tmp_path / "none.safetensors", flag, value)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and f"argument {flag}: " in last and "expected" in last, last


@pytest.mark.parametrize("flag,env,error", [
    (["--token", ""], {}, "--token is empty (an unset variable?)"),
    (["--token", "a b"], {}, "--token: a token is printable ASCII without spaces"),
    ([], {"ACTIONREC_TOKEN": ""}, "$ACTIONREC_TOKEN is empty"),
    ([], {"ACTIONREC_TOKEN": " \t"}, "$ACTIONREC_TOKEN is empty"),
])
def test_an_empty_token_is_an_error_never_no_authentication(capsys, monkeypatch, tmp_path, flag,
                                                            env, error):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = run(capsys, "serve", "--checkpoint", tmp_path / "none.safetensors", *flag)
    assert code == 2 and err.startswith("actionrec: error: ")
    assert error in err and len(err.splitlines()) == 1


def test_a_port_in_use_is_one_line_before_the_model_loads(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", "--checkpoint", tmp_path / "none.safetensors",
                           "--port", port)
    assert code == 2 and err.strip() == (f"actionrec: error: --host 127.0.0.1 --port {port}: "
                                         f"cannot listen there: Address already in use")


@pytest.mark.parametrize("query,name", [
    ("timeline=true&window=inf", "window"), ("timeline=true&window=1e308", "window"),
    ("timeline=true&stride=inf", "stride"), ("window=nan", "window"), ("stride=-1", "stride"),
    ("topk=0", "topk"), ("topk=1e3", "topk"), ("smooth=1000000", "smooth"),
])
def test_query_parameters_out_of_range_are_a_one_line_422(server, query, name):
    code, answer, _ = call(server[0], f"/v1/predict?{query}", b"x")
    assert code == 422 and answer["detail"].startswith(f"query parameter '{name}': ")
    assert "\n" not in answer["detail"]


def test_a_multipart_form_is_an_upload_like_the_raw_body(server, clips):
    url, scratch, _ = server
    video = (clips / "clip.mp4").read_bytes()
    raw = call(url, "/v1/predict?topk=3", video)
    form = requests.post(url + "/v1/predict?topk=3", files={"file": ("clip.mp4", video)},
                         data={"note": "x"}, timeout=60)
    assert raw[0] == form.status_code == 200 and form.json() == raw[1]
    for files, status, reason in [
        ({"other": video}, 400, "a multipart form without a field named 'file'"),
        ([("file", video), ("file", video)], 400, "two fields named 'file'"),
        ({"file": os.urandom(2**20 + 1)}, 413, "upload over the server's 1 MiB"),
        ({"file": b""}, 400, "empty upload"),
    ]:
        answer = requests.post(url + "/v1/predict", files=files, timeout=60)
        assert answer.status_code == status and reason in answer.json()["detail"], answer.text
    cut = requests.post(url + "/v1/predict", data=b"--x\r\nContent-Disposition: form-data; "
                        b"name=\"file\"\r\n\r\nabc", timeout=60,
                        headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert cut.status_code == 400 and "cut short" in cut.json()["detail"]
    mixed = call(url, "/v1/predict", video, {"Content-Type": "multipart/mixed; boundary=x"})
    assert mixed[0] == 415 and "-F file=@clip.mp4" in mixed[1]["detail"]
    assert not uploads_left(scratch)


@pytest.mark.parametrize("host,status", [
    ("evil.example", 403), ("localhost.evil.example", 403), ("127.0.0.1.nip.io:80", 403),
    ("", 403), ("localhost", 200), ("LOCALHOST:8000", 200), ("127.0.0.1:1", 200),
    ("[::1]:8000", 200), ("[::1]", 200), ("my.box:443", 200),
])
def test_a_loopback_server_answers_only_to_its_own_names(server, host, status):
    code, answer, _ = call(server[0], "/healthz", headers={"Host": host})
    assert code == status, answer
    if status == 403:
        assert answer["detail"].startswith(f"Host {host!r} is not one this server answers to")


def png(path, side: int):
    Image.new("RGB", (side, side), (200, 30, 30)).save(path)
    return path


def test_frames_over_max_pixels_are_refused_before_decoding(server, tmp_path):
    url, scratch, _ = server  # --max-pixels 65536
    code, answer, _ = call(url, "/v1/predict", png(tmp_path / "a.png", 300).read_bytes())
    assert code == 413 and answer["detail"] == (
        "upload: frames of 300x300 pixels; expected at most 65536 pixels per frame "
        "(--max-pixels)")
    assert call(url, "/v1/predict", png(tmp_path / "b.png", 200).read_bytes())[0] == 200
    assert not uploads_left(scratch)


def growing_mp4(path, small: int, large: int):
    """An MP4 whose header states ``small`` x ``small`` frames but whose second half, an H.264
    stream with a new sequence header, is ``large`` x ``large``."""
    halves = io.BytesIO()
    for side in (small, large):
        with av.open(halves, "w", format="h264") as raw:
            out = raw.add_stream("libx264", rate=FPS)
            out.width = out.height = side
            for i in range(10):
                frame = np.full((side, side, 3), 20 * i, np.uint8)
                raw.mux(out.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            raw.mux(out.encode())
    halves.seek(0)
    with av.open(halves, format="h264") as src, av.open(str(path), "w", format="mp4") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for n, packet in enumerate(p for p in src.demux(video=0) if p.size):
            packet.stream, packet.time_base = out, Fraction(1, FPS)
            packet.pts = packet.dts = n
            packet.duration = 1
            dst.mux(packet)
    return path


def test_frames_that_grow_past_max_pixels_part_way_are_unreadable(server, tmp_path):
    """The header says 160x160 (within --max-pixels 65536): the frames of 512x512 that follow
    are refused by the decoder while the upload is read for the model."""
    url, scratch, _ = server
    code, answer, _ = call(url, "/v1/predict", growing_mp4(tmp_path / "g.mp4", 160, 512)
                           .read_bytes())
    assert code == 422 and answer["detail"].startswith("not a readable video: upload: "), answer
    assert call(url, "/v1/predict", growing_mp4(tmp_path / "h.mp4", 160, 200).read_bytes())[0] \
        == 200
    assert not uploads_left(scratch)


def peak_rss_mib(path) -> float:
    """The peak RSS (MiB) of a process while it probes ``path`` with the default 4096x4096
    limit, counted from after its imports (the peak reset through /proc/self/clear_refs)."""
    script = ("import re, sys\nfrom actionrec.data.video import probe, TooManyPixels\n"
              "open('/proc/self/clear_refs', 'w').write('5')\n"
              "try:\n    probe(sys.argv[1], max_pixels=4096 * 4096)\nexcept TooManyPixels:\n"
              "    pass\nprint(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])\n")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                         text=True, check=True).stdout
    return int(out) / 1024


def test_a_frame_over_the_limit_costs_no_decoded_frame(tmp_path):
    """A 6000x6000 PNG (36 M pixels, over twice the limit: 103 MiB decoded) is refused with the
    memory of a tiny one."""
    huge, tiny = png(tmp_path / "huge.png", 6000), png(tmp_path / "tiny.png", 16)
    assert peak_rss_mib(huge) < peak_rss_mib(tiny) + 30


def test_sigterm_ends_the_server_within_its_bound_and_leaves_no_upload(trained_tsn, tmp_path,
                                                                        clips):
    with served(trained_tsn, tmp_path, "--timeout", "1", "--shutdown-timeout", "1",
                "--upload-timeout", "60") as (url, scratch, proc):
        code, _, _ = call(url, "/v1/predict?timeline=true&window=0.2&stride=0.04",
                          (clips / "long.mp4").read_bytes())
        assert code == 504  # its worker may still be on it
        slow = SlowUpload(url)
        wait_for(url, "uploading", 1)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - start
        slow.join(timeout=5)
        err = proc.stderr.read().decode()
    assert took < 8 and slow.status == "HTTP/1.1 503 Service Unavailable"
    assert not list(scratch.rglob("actionrec_*")) and "Traceback" not in err
    assert "no token: whoever reaches it may use the API" in err


def test_the_server_holds_to_its_openapi_schema(server):
    """Valid and invalid requests drawn from the server's own schema: no 500, every answer
    documented and as documented. Schema-valid bytes are seldom a readable video: a 4xx for them
    is right (positive_data_acceptance left out)."""
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    api = schemathesis.openapi.from_url(server[0] + "/openapi.json")
    cases = st.one_of(api.as_strategy(GenerationMode.POSITIVE),
                      api.as_strategy(GenerationMode.NEGATIVE))

    @given(cases)
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def holds(case):
        case.call_and_validate(excluded_checks=[positive_data_acceptance], timeout=60)

    holds()


def test_an_upload_that_cannot_be_stored_is_a_503_and_frees_its_slot(server, clips):
    """With the server's temporary folder gone (a cleaner removed it), each upload is a one-line
    503, and none keeps its upload slot: more of them than --uploads still get that answer, and
    once the folder is back an upload is served."""
    url, scratch, _ = server
    (folder,) = scratch.glob("actionrec_serve_*")
    shutil.rmtree(folder)
    try:
        for _ in range(6):  # --uploads 4
            code, answer, _ = call(url, "/v1/predict", b"x" * 10)
            assert code == 503 and answer["detail"].startswith("cannot store an upload now: ")
        assert call(url, "/healthz")[1]["uploading"] == 0
    finally:
        folder.mkdir()
    assert call(url, "/v1/predict", (clips / "clip.mp4").read_bytes())[0] == 200


def exchange(url: str, requests_: list[bytes]) -> list[bytes]:
    """Each request sent whole on one connection, then its answer read: the status lines and
    headers of the answers, in order (b"" for one the server never gave)."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=30) as s, s.makefile("rb") as r:
        for request in requests_:
            try:
                s.sendall(request)
                head = b"".join(iter(lambda: r.readline(), b"\r\n"))
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), b"0"))
                r.read(length)
            except OSError:
                head = b""
            answers.append(head)
    return answers


def test_an_oversize_body_sent_whole_is_read_before_its_413(server):
    """A client that sends its whole body before reading (urllib, requests) gets the 413 whole:
    the body is read and dropped (up to DRAIN_BYTES past the limit), so the connection is not
    reset under the answer, and stays usable."""
    url, _, _ = server  # --max-upload-mb 1
    body = os.urandom(3 * 2**19)
    post = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + body
    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    too_big, health = exchange(url, [post, get])
    assert too_big.startswith(b"HTTP/1.1 413 ") and b"connection: close" not in too_big.lower()
    assert health.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("declared, expect", [(2**30, ""), (3 * 2**19, "Expect: 100-continue\r\n")])
def test_an_oversize_body_not_sent_is_refused_at_once(server, declared, expect):
    """Declared far past the limit, or by a client that waits for 100 Continue: 413 before a byte
    of the body, and the connection closed."""
    url, _, _ = server
    post = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n"
            f"{expect}\r\n").encode()
    (answer,) = exchange(url, [post])
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()
