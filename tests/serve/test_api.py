"""``actionrec serve`` through a real uvicorn server on 127.0.0.1: the answers are those of
``actionrec predict`` and of the timeline, every bad upload is a 4xx with a one-line reason and
leaves no file behind, the queue answers 503 when full, slow requests time out, and the token
guards the API. What an attacker sends: ``test_hostile.py``."""

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from actionrec.engine.inference import predict_videos
from actionrec.engine.recognizer import load
from actionrec.engine.windows import slide
from actionrec.models.registry import example_input, get_spec
from actionrec.report.flops import count_macs, count_params
from tests.serve.conftest import call, served, uploads_left, wait_for


@pytest.fixture(scope="module")
def server(trained_tsn, tmp_path_factory):
    with served(trained_tsn, tmp_path_factory.mktemp("server"), "--max-upload-mb", "1",
                "--max-duration", "30", "--queue", "1") as s:
        yield s


def test_model_and_health(server, trained_tsn):
    url, _, _ = server
    assert call(url, "/healthz")[:2] == (200, {"status": "ok", "model": "tsn", "in_progress": 0,
                                               "capacity": 2, "uploading": 0,
                                               "upload_capacity": 8})
    code, info, _ = call(url, "/v1/model")
    recognizer = load(trained_tsn, device="cpu")
    names, model = recognizer.classes, recognizer.model
    example = example_input(get_spec("tsn"), frames=4, size=32)
    assert code == 200 and info["classes"] == names and info["model"] == "tsn"
    assert info["params"] == count_params(model) and info["macs_per_view"] == count_macs(
        model, example) and "multiply-accumulates" in info["macs_note"]
    assert info["input"]["shape_per_view"] == [4, 3, 32, 32]
    schema = call(url, "/openapi.json")[1]
    assert {"/v1/predict", "/v1/model", "/healthz"} <= set(schema["paths"])


def test_prediction_equals_predicts_with_timeline_and_maps(server, trained_tsn, clips):
    url, scratch, _ = server
    clip = clips / "clip.mp4"
    code, body, _ = call(url, "/v1/predict?timeline=true&cam=true&topk=5&window=2&stride=1",
                         clip.read_bytes())
    assert code == 200, body
    (expected,) = predict_videos(trained_tsn, [str(clip)], topk=5, device="cpu")
    assert [t["class"] for t in body["top"]] == [c for c, _ in expected.top]
    np.testing.assert_allclose([t["prob"] for t in body["top"]], [p for _, p in expected.top],
                               rtol=1e-5)
    recognizer = load(trained_tsn, device="cpu")
    cfg, model = recognizer.config, recognizer.model
    timeline = slide(model, cfg, str(clip), window=2, stride=1, progress=False)
    windows = body["timeline"]["windows"]
    assert [(w["start"], w["end"]) for w in windows] == [
        (round(w.start, 3), round(w.end, 3)) for w in timeline.windows]
    np.testing.assert_allclose([w["top"][0]["prob"] for w in windows],
                               [w.probs.max() for w in timeline.windows], rtol=1e-5)
    assert body["cam"]["class"] == body["top"][0]["class"] and len(body["cam"]["frames"]) == 4
    for src in body["cam"]["frames"]:
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.size == (32, 32) and np.asarray(image).std() > 0
    assert body["video"]["duration_s"] == 6.0 and not uploads_left(scratch)


@pytest.mark.parametrize("name,body,status,reason", [
    ("text", b"this is not a video\n", 422, "not a readable video: upload: cannot open"),
    ("empty", b"", 400, "empty upload"),
    ("cut_moov", None, 422, "not a readable video: upload"),
    ("cut_fast", None, 422, "not a readable video: upload"),
    ("oversize", os.urandom(3 * 2**19), 413, "upload over the server's 1 MiB (--max-upload-mb)"),
    ("long", None, 413, "the video is 60.0 s long; this server takes at most 30 s"),
])
def test_bad_uploads_are_one_line_4xx_and_leave_no_file(server, clips, name, body, status,
                                                          reason):
    url, scratch, _ = server
    data = body if body is not None else (clips / f"{name}.mp4").read_bytes()
    code, answer, _ = call(url, "/v1/predict", data, method="POST")
    assert code == status and answer["detail"].startswith(reason), answer
    assert "\n" not in answer["detail"] and str(scratch) not in answer["detail"]
    assert not uploads_left(scratch)


def test_a_full_queue_answers_503_slow_requests_504_and_slots_come_back(trained_tsn, tmp_path,
                                                                          clips):
    slow = ("/v1/predict?timeline=true&window=0.2&stride=0.04", (clips / "long.mp4").read_bytes())
    video = (clips / "clip.mp4").read_bytes()
    with served(trained_tsn, tmp_path, "--timeout", "2", "--queue", "1") as (url, scratch, _):
        with ThreadPoolExecutor(2) as pool:  # 1 worker + 1 waiting: both slots held
            held = [pool.submit(call, url, *slow) for _ in range(2)]
            wait_for(url, "in_progress", 2, tries=300)
            code, answer, headers = call(url, "/v1/predict", video)
            assert code == 503 and "busy" in answer["detail"] and int(headers["Retry-After"]) >= 1
            for request in held:
                code, answer, _ = request.result()
                assert code == 504 and "2 s per request (--timeout)" in answer["detail"]
        # the worker stops at its next window, and its slot is free
        wait_for(url, "in_progress", 0, tries=300)
        assert not uploads_left(scratch)
        with ThreadPoolExecutor(2) as pool:  # both slots free again: two at once are served
            answers = list(pool.map(lambda _: call(url, "/v1/predict", video)[0], range(2)))
        assert answers == [200, 200] and not uploads_left(scratch)


def test_the_token_guards_the_api_and_a_public_bind_warns(trained_tsn, tmp_path, clips):
    with served(trained_tsn, tmp_path, "--host", "0.0.0.0", env={"ACTIONREC_TOKEN": "s3cret"}
                ) as (url, _, proc):
        assert call(url, "/healthz")[0] == 200
        code, answer, headers = call(url, "/v1/model")
        assert code == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert call(url, "/v1/model", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(url, "/v1/predict", (clips / "clip.mp4").read_bytes())[0] == 401
        assert call(url, "/v1/model", headers={"Authorization": "Bearer s3cret"})[0] == 200
        proc.terminate()
        err = proc.communicate(timeout=30)[1].decode()
    assert "warning: serving on 0.0.0.0: other machines can reach it" in err
    assert "a bearer token is required for /v1" in err


def test_concurrent_requests_on_three_workers_are_each_their_own(trained_tsn, tmp_path, clips):
    """Grad-CAM hooks the shared model: neither another map nor another request's forward pass
    (here a timeline's many) may reach into it."""
    videos = [(clips / name).read_bytes() for name in ("clip.mp4", "other.mp4")]
    asks = [("/v1/predict?cam=true", videos[0]), ("/v1/predict?cam=true", videos[1]),
            ("/v1/predict?timeline=true&window=0.5&stride=0.04", videos[1])]
    with served(trained_tsn, tmp_path, "--workers", "3") as (url, _, _):
        alone = [call(url, path, body)[1] for path, body in asks]
        assert alone[0]["cam"] != alone[1]["cam"]
        with ThreadPoolExecutor(3) as pool:
            for _ in range(4):
                together = list(pool.map(lambda ask: call(url, *ask)[1], asks))
                assert together == alone


def test_a_config_replaces_the_checkpoints_test_protocol(trained_tsn, tmp_path, clips):
    import yaml

    from actionrec.engine.checkpoint import read_metadata
    from actionrec.serve.local import local_server

    cfg, _ = read_metadata(trained_tsn)
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump(cfg.to_dict()))
    with served(trained_tsn, tmp_path, "--config", config, "--set", "test.clips=2") as (
            url, _, _):
        assert call(url, "/v1/model")[1]["input"]["clips"] == 2
        assert call(url, "/v1/predict", (clips / "clip.mp4").read_bytes())[0] == 200
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**cfg.to_dict(), "model": {**cfg.to_dict()["model"],
                                                                "name": "tsm"}}))
    with pytest.raises(RuntimeError, match="does not match the config: model.name: 'tsn'") as e:
        with local_server(trained_tsn, "--config", str(other)):
            pass
    assert "Traceback" not in str(e.value) and "actionrec: error: " in str(e.value)
