import json

import numpy as np
import pytest

from actionrec.data.build import build_dataset, build_loader
from actionrec.engine.evaluate import collect_scores, compute_metrics
from actionrec.engine.inference import evaluate_checkpoint
from actionrec.engine.recognizer import load
from tests.conftest import tiny_config


def test_metrics_on_known_scores():
    names = ["a", "b", "c", "d"]
    scores = np.array([[0.7, 0.2, 0.1, 0.0],   # a -> a
                       [0.1, 0.6, 0.3, 0.0],   # a -> b
                       [0.2, 0.3, 0.5, 0.0],   # c -> c
                       [0.0, 0.1, 0.6, 0.3]])  # d -> c, d second
    labels = np.array([0, 0, 2, 3])
    m = compute_metrics(scores, labels, names, pairs=[(0, 1), (2, 3)])
    assert m["top1"] == 0.5 and m["top5"] == 1.0
    assert m["per_class"] == {"a": 0.5, "b": None, "c": 1.0, "d": 0.0}
    assert m["mean_class_accuracy"] == pytest.approx(0.5)  # classes without videos left out
    assert m["confusion"][0] == [1, 1, 0, 0] and m["confusion"][3] == [0, 0, 1, 0]
    assert m["pair_accuracy"] == 0.5  # a>b, a<b, c>d, d<c
    assert m["pair_identity_accuracy"] == 1.0  # every arg-max falls in the right pair


def test_results_do_not_depend_on_batch_size(trained_tsn, synth_small, tmp_path):
    cfg = tiny_config(synth_small, tmp_path, "test.clips=2", "test.crops=3")
    recognizer = load(trained_tsn, config=cfg)
    model, device = recognizer.model, recognizer.device
    dataset = build_dataset(cfg, "test", clips=2, crops=3)
    assert dataset[0]["clip"].shape == (6, 4, 3, 32, 32)
    runs = [collect_scores(model, build_loader(cfg, dataset, batch_size=b, shuffle=False), device)
            for b in (1, 3, 7)]
    for other in runs[1:]:
        np.testing.assert_allclose(other.scores, runs[0].scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(other.labels, runs[0].labels)
        np.testing.assert_array_equal(other.scores.argmax(1), runs[0].scores.argmax(1))


def test_evaluate_checkpoint_writes_reports_and_skips_bad(trained_tsn, synth_small, tmp_path):
    lst = tmp_path / "test.txt"
    lst.write_text((synth_small / "val.txt").read_text() + "videos/gone.mp4 3\n")
    cfg = tiny_config(synth_small, tmp_path, f"data.test_list={lst}")
    metrics, paths = evaluate_checkpoint(cfg, trained_tsn, out_dir=tmp_path / "out")
    assert metrics["num_videos"] == 10 and len(metrics["skipped"]) == 1
    assert "gone.mp4: file not found" in metrics["skipped"][0]["reason"]
    saved = json.loads(paths["results"].read_text())
    assert saved["top1"] == metrics["top1"] and "pair_accuracy" in saved
    csv_rows = paths["confusion_csv"].read_text().splitlines()
    assert csv_rows[0].startswith("true \\ predicted,move_right,move_left") and len(csv_rows) == 11
    assert paths["confusion_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
