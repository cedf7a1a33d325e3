"""Live input: ``predict --stream`` gives the windows a whole-file timeline gives, fed through
stdin, a local HTTP server and a file still being written; a dropped source is reconnected or
ends with one line; Ctrl-C stops cleanly."""

import http.server
import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from actionrec.data.synthetic import write_video
from actionrec.engine.recognizer import load
from actionrec.engine.windows import slide
from tests.conftest import REPO, sigint_default
from tests.helpers import FPS, scenes

WINDOW = ["--window", "2", "--stride", "1"]


@pytest.fixture(scope="module")
def ts_parts(tmp_path_factory):
    """Two MPEG-TS files (a stream's format): 8 s of actions, then 4 s more."""
    root = tmp_path_factory.mktemp("stream")
    first, second = root / "first.ts", root / "second.ts"
    write_video(first, scenes([0, 1, 4, 5], 50), fps=FPS, options={"g": "25"})
    write_video(second, scenes([2, 3], 50), fps=FPS, options={"g": "25"})
    return first, second


def predict_stream(source, checkpoint, *extra, stdin=None, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "actionrec", "predict", "--stream", str(source),
                           "--checkpoint", str(checkpoint), "--json", *WINDOW, *extra],
                          input=stdin, capture_output=True, timeout=timeout, cwd=REPO)
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    return proc.returncode, rows, proc.stderr.decode()


def file_rows(checkpoint, path):
    """The windows of the whole-file timeline (``predict --window``) of the same video."""
    recognizer = load(checkpoint, device="cpu")
    cfg, model = recognizer.config, recognizer.model
    return slide(model, cfg, str(path), window=2, stride=1, progress=False).windows


def assert_same_scores(rows, windows):
    for row, w in zip(rows, windows, strict=True):
        assert row["top"][0]["prob"] == pytest.approx(float(w.probs.max()), abs=1e-5)


def assert_same_windows(rows, windows):
    assert [(r["start"], r["end"]) for r in rows] == [(round(w.start, 3), round(w.end, 3))
                                                      for w in windows]
    assert_same_scores(rows, windows)


class Server:
    """A local HTTP server on 127.0.0.1: each GET answers with the next of ``replies``, a
    function of the request handler; ``None`` (or running out) answers 404."""

    def __init__(self, replies):
        self.replies, self.requests = list(replies), 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                reply = server.replies[server.requests] if server.requests < len(
                    server.replies) else None
                server.requests += 1
                if reply is None:
                    self.send_error(404)
                    return
                reply(self)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/live.ts"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def body(data: bytes, *, cut: int | None = None, stall: float = 0.0):
    """An HTTP reply sending ``data`` in pieces. With ``cut``: after that many bytes the
    connection is dropped (the declared length not reached: an I/O error to the client), or with
    ``stall`` held silent that many seconds first. Without a length the body is chunked, as a
    live source's is."""
    def reply(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp2t")
        if cut is None:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        for i in range(0, len(data) if cut is None else cut, 188 * 100):
            piece = data[i: i + 188 * 100] if cut is None else data[i: min(i + 188 * 100, cut)]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if cut is None else piece)
            handler.wfile.flush()
        if cut is None:
            handler.wfile.write(b"0\r\n\r\n")
        time.sleep(stall)
        handler.close_connection = True
    return reply


def half(data: bytes) -> int:
    return len(data) // 2 // 188 * 188  # whole MPEG-TS packets


def test_stdin_stream_gives_the_files_windows(trained_tsn, ts_parts):
    code, rows, err = predict_stream("-", trained_tsn, stdin=ts_parts[0].read_bytes())
    assert code == 0, err
    assert_same_windows(rows, file_rows(trained_tsn, ts_parts[0]))
    assert len(rows) == 7 and f"-: end of stream after {len(rows)} windows" in err


def test_http_stream_gives_the_files_windows(trained_tsn, ts_parts):
    with Server([body(ts_parts[0].read_bytes())]) as server:
        code, rows, err = predict_stream(server.url, trained_tsn)
    assert code == 0, err
    assert_same_windows(rows, file_rows(trained_tsn, ts_parts[0]))


def test_a_dropped_http_source_is_reconnected_and_time_goes_on(trained_tsn, ts_parts):
    first, second = (p.read_bytes() for p in ts_parts)
    with Server([body(first, cut=half(first)), body(second)]) as server:
        code, rows, err = predict_stream(server.url, trained_tsn)
    assert code == 0, err
    assert "Input/output error" in err and "reconnecting in 1 s (1/3)" in err
    assert server.requests == 2
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts) and starts[-1] > 4  # the second connection's windows follow
    # the second connection is the second file: its 3 windows, 1 s apart, end the output
    assert_same_scores(rows[-3:], file_rows(trained_tsn, ts_parts[1]))
    assert np.diff(starts[-3:]) == pytest.approx([1, 1])


def test_a_source_that_stays_down_ends_with_one_line(trained_tsn, ts_parts):
    first = ts_parts[0].read_bytes()
    with Server([body(first, cut=half(first), stall=5)]) as server:  # silent, then 404
        code, rows, err = predict_stream(server.url, trained_tsn, "--reconnect", "1",
                                         "--idle-timeout", "2")
    assert "dropped at" in err
    assert code == 2 and rows and server.requests == 2
    assert err.strip().splitlines()[-1].startswith(
        f"actionrec: error: {server.url}: 1 reconnect attempt(s) failed (last: ")
    assert "Traceback" not in err


def test_a_source_that_cannot_be_opened_is_one_line(trained_tsn, tmp_path):
    code, rows, err = predict_stream(tmp_path / "nothing.ts", trained_tsn)
    assert code == 2 and not rows and "nothing.ts: no such file or device" in err
    (tmp_path / "text.ts").write_text("not a video\n")
    code, rows, err = predict_stream(tmp_path / "text.ts", trained_tsn, "--idle-timeout", "1")
    assert code == 2 and "text.ts: cannot open as a video stream" in err and "Traceback" not in err


def test_a_file_being_written_is_read_to_its_end(trained_tsn, ts_parts, tmp_path):
    data, growing = ts_parts[0].read_bytes(), tmp_path / "growing.ts"
    growing.write_bytes(data[:188 * 50])

    def writer():
        with open(growing, "ab") as f:
            for i in range(188 * 50, len(data), 188 * 100):
                time.sleep(0.1)
                f.write(data[i: i + 188 * 100])
                f.flush()

    thread = threading.Thread(target=writer)
    thread.start()
    code, rows, err = predict_stream(growing, trained_tsn, "--idle-timeout", "3")
    thread.join()
    assert code == 0, err
    assert_same_windows(rows, file_rows(trained_tsn, ts_parts[0]))


def test_ctrl_c_stops_cleanly(trained_tsn, ts_parts):
    data = ts_parts[0].read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "actionrec", "predict", "--stream", "-",
                             "--checkpoint", str(trained_tsn), "--json", *WINDOW],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO, preexec_fn=sigint_default)
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    first = proc.stdout.readline()  # a window is out while the source is still open
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    rows = [json.loads(line) for line in [first, *out.splitlines()]]
    assert proc.returncode == 0, err
    assert f"-: stopped (Ctrl-C) after {len(rows)} windows" in err.decode()
    assert "Traceback" not in err.decode() and 1 <= len(rows) < 7 and rows[0]["top"]
