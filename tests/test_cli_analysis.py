import csv
import json
import re

import pytest
import torch

from actionrec.analysis.paper import rows_from
from actionrec.engine.train import train
from tests.conftest import run, tiny_config


@pytest.fixture(scope="module")
def trained_gst(synth_small, tmp_path_factory):
    work = tmp_path_factory.mktemp("gst")
    train(tiny_config(synth_small, work, "model.name=gst", "train.epochs=1"))
    return work / "best.safetensors"


def test_flops_json_and_text(capsys):
    code, out, _ = run(capsys, "flops", "stm", "--frames", "8", "--size", "224", "--classes", "174",
                       "--json")
    row = json.loads(out)
    assert code == 0 and row["params"] == pytest.approx(24.0e6, rel=0.01)
    assert row["macs"] == pytest.approx(33.3e9, rel=0.01)
    code, out, _ = run(capsys, "flops", "gst", "--opt", "alpha=0.125")
    assert code == 0 and "19.62 M params" in out and "MACs" in out
    assert "paper, GST Table 2 (GST alpha=1/8): params 19.7 (-0.4 % ours)" in out


def test_flops_defaults_to_the_papers_input_and_prints_the_paper_beside(capsys):
    code, out, _ = run(capsys, "flops", "msti", "--json")
    row = json.loads(out)
    assert code == 0 and (row["frames"], row["size"], row["classes"]) == (16, 224, 400)
    assert row["paper"] == [{"source": "MSTI-Net Table 3", "params_m": 16.4, "gmacs": 46.3}]
    assert row["params"] / 1e6 == pytest.approx(16.4, rel=0.1)
    code, _, err = run(capsys, "flops", "gst", "--opt", "gamma=1")
    assert code == 2 and "has no option gamma" in err


def test_flops_of_a_feature_head_takes_a_feature_sequence(capsys):
    code, out, _ = run(capsys, "flops", "lstm", "--opt", "in_features=1536")
    assert code == 0 and "input 25x1536, 400 classes): 10.90 M params, 0.26 GMACs" in out
    assert "paper, StNet Table 1 (LSTM): params 10.9 (+0.0 % ours)" in out


def test_tables_terminal_markdown_and_unknown_source(capsys, tmp_path):
    md = tmp_path / "tables.md"
    code, out, _ = run(capsys, "tables", "--source", "StNet", "--markdown", md)
    lines = [line for line in out.splitlines() if line.startswith("StNet Table")]
    assert code == 0 and len(lines) == len(rows_from("StNet"))
    r101 = next(line for line in lines if "StNet ResNet101" in line).split()
    assert r101[-6:] == ["52.15", "52.15", "+0.0", "310.5", "310.48", "-0.0"]
    assert "| StNet Table 3 | StNet ResNet101 | 25x15x256x256 | 52.15 | 52.15 | +0.0 | 310.5 | " \
           "310.48 | -0.0 |  |" in md.read_text()
    assert "not built: InceptionResNet-V2 backbone" in md.read_text()
    code, _, err = run(capsys, "tables", "--source", "I3D")
    assert code == 2 and "no paper rows from 'I3D'; sources: GST Table 1" in err


def test_bench_rows_and_baseline(capsys):
    code, out, _ = run(capsys, "bench", "stm", "gst", "--backbone", "resnet18", "--frames", "4",
                       "--size", "64", "--batch", "1", "--rounds", "1", "--baseline-frames", "4",
                       "--json")
    report = json.loads(out)
    rows = {r["model"]: r for r in report["rows"]}
    assert code == 0 and set(rows) == {"stm", "gst", "tsn (baseline)"}
    assert rows["tsn (baseline)"]["input"] == "resnet50 4x3x64x64"
    for r in rows.values():
        assert {"model", "latency_s", "videos_per_s", "macs"} <= set(r) and r["latency_s"] > 0
        assert r["videos_per_s"] == pytest.approx(1 / r["latency_s"])
    assert report["machine"]["matmul_gflops"] > 1
    from actionrec.models.registry import build_model
    from actionrec.report.flops import count_macs

    stm = build_model("stm", num_classes=174, num_frames=4, backbone="resnet18")
    tsn = build_model("tsn", num_classes=174, num_frames=4)
    expected = count_macs(stm, torch.zeros(1, 4, 3, 64, 64)) / count_macs(tsn, torch.zeros(1, 4, 3, 64, 64))
    assert rows["stm"]["macs_ratio_to_tsn_r50"] == pytest.approx(expected)
    # each ratio is to the baseline's timings beside it (tests/analysis/test_benchmark.py)
    for name in ("stm", "gst"):
        assert rows[name]["ratio_to_tsn_r50"] == pytest.approx(rows[name]["latency_s"]
                                                               / rows[name]["baseline_s"])
    base = rows["tsn (baseline)"]
    assert base["ratio_to_tsn_r50"] == 1.0 and base["baseline_s"] == base["latency_s"]


def test_bench_all_times_paper_and_common_inputs_in_one_table(capsys, tmp_path):
    md = tmp_path / "bench.md"
    code, out, _ = run(capsys, "bench", "--all", "gst", "gru", "--frames", "2", "--size", "32",
                       "--batch", "1", "--rounds", "1", "--markdown", md)
    assert code == 0
    inputs = [re.split(r"\s{2,}", line)[1] for line in out.splitlines()[2:6]]
    assert inputs == ["paper 8x224x224 (GST Tables 2-3)", "resnet50 2x3x32x32",
                      "paper 25 x 1536-d features (StNet Table 1)", "resnet50 8x3x32x32"]
    gst_paper = out.splitlines()[2].split()
    assert gst_paper[-5] == "29.00"  # GMACs of GST-R50 at 8x224 (Table 3: 29.5)
    assert "fp32 matmul (2048^3, the faster of MKL and oneDNN) in this run" in out
    text = md.read_text()
    assert text.startswith("# Inference speed\n\nWritten by `actionrec bench --all gst gru")
    assert "| gru | paper 25 x 1536-d features (StNet Table 1) |" in text
    code, _, err = run(capsys, "bench")
    assert code == 2 and "name models to time, or --all" in err


def test_export_checkpoint(capsys, trained_gst, tmp_path):
    code, out, _ = run(capsys, "export", trained_gst, "--out", tmp_path / "gst.onnx")
    assert code == 0 and "max abs diff" in out and (tmp_path / "gst.onnx").stat().st_size > 1000


def test_int8_export_is_offered_only_where_accuracy_holds(capsys, trained_gst, synth_small,
                                                         tmp_path):
    """GST's 3D temporal convolutions quantised too; fp32 ONNX Runtime scores the test list as
    `actionrec test` (PyTorch) does; the int8 graph is quantised (QLinearConv nodes, int8 weights)
    and close to fp32; a bar it cannot meet writes nothing."""
    import onnx

    from actionrec.config import dump_config
    from actionrec.export import OnnxModel

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(dump_config(tiny_config(synth_small, tmp_path / "w", "model.name=gst")))
    code, out, _ = run(capsys, "test", cfg, "--checkpoint", trained_gst, "--json")
    pytorch_top1 = json.loads(out)["top1"]
    code, out, err = run(capsys, "export", trained_gst, "--out", tmp_path / "gst.int8.onnx",
                         "--int8", cfg, "--calibration", "8")
    assert code == 0, err
    fp32, int8 = (re.search(rf"^{name} \(ONNX Runtime\): top-1 ([\d.]+) %", out, re.M)
                  for name in ("fp32", "int8"))
    assert float(fp32.group(1)) == pytest.approx(100 * pytorch_top1, abs=1e-6)
    assert float(fp32.group(1)) - float(int8.group(1)) <= 1 and "calibrated on 8 val clips" in out
    graph = onnx.load(tmp_path / "gst.int8.onnx").graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 20  # every convolution of ResNet-18's GST and the classifier
    x = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    fp32_model = tmp_path / "gst.onnx"
    run(capsys, "export", trained_gst, "--out", fp32_model)
    a, b = OnnxModel(fp32_model)(x), OnnxModel(tmp_path / "gst.int8.onnx")(x)
    assert (a - b).abs().max() <= 0.1 * a.abs().max() and not torch.equal(a, b)
    code, _, err = run(capsys, "export", trained_gst, "--out", tmp_path / "no.onnx", "--int8", cfg,
                       "--max-drop", "-1")  # int8 would have to beat fp32 by a point
    assert code != 0 and "int8 not offered" in err and not (tmp_path / "no.onnx").exists()


def test_gst_channel_histograms(capsys, trained_gst, tmp_path, trained_tsn):
    code, out, _ = run(capsys, "analyze", "gst-channels", trained_gst, "--out", tmp_path)
    assert code == 0 and "gst_channels.png" in out
    rows = list(csv.DictReader(open(tmp_path / "gst_channels.csv")))
    blocks = {r["block"] for r in rows}
    assert len(blocks) == 16  # ResNet-18: every 3x3 conv is a GST module
    first = [r for r in rows if r["block"] == "layer1.0.conv1"]
    assert sum(r["path"] == "temporal" for r in first) == 16  # alpha = 1/4 of 64
    assert (tmp_path / "gst_channels.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, "analyze", "gst-channels", trained_tsn, "--out", tmp_path)
    assert code == 2 and "has no GST module" in err


def test_frame_predictions(capsys, trained_gst, shared_data, tmp_path):
    video = shared_data / "videos/mmaction2/demo_demo.mp4"
    code, out, _ = run(capsys, "analyze", "frame-predictions", trained_gst, video, "--out",
                       tmp_path / "frames.png", "--top", "3")
    assert code == 0 and (tmp_path / "frames.png").is_file()
    rows = list(csv.reader(open(tmp_path / "frames.csv")))
    assert len(rows) == 1 + 4 and len(rows[0]) == 1 + 3  # 4 frames, 3 classes
    assert all(0 <= float(v) <= 1 for row in rows[1:] for v in row[1:])


def test_bench_training_steps_and_peak_memory(capsys):
    code, out, _ = run(capsys, "bench", "tsn", "--backbone", "resnet18", "--frames", "2",
                       "--size", "32", "--batch", "2", "--rounds", "1", "--mode", "train",
                       "--memory", "--json")
    report = json.loads(out)
    rows = {r["model"]: r for r in report["rows"]}
    assert code == 0 and report["machine"]["mode"] == "train"
    assert report["machine"]["bn"] == "layers"  # BN is folded for inference only
    # ResNet-50's 98 MB of weights against ResNet-18's 45 MB, each in its own process
    assert rows["tsn (baseline)"]["peak_mib"] > rows["tsn"]["peak_mib"] + 30 > 30
    code, out, _ = run(capsys, "bench", "tsn", "--backbone", "resnet18", "--frames", "2",
                       "--size", "32", "--batch", "1", "--rounds", "1", "--mode", "train",
                       "--precision", "bf16")
    assert code == 0 and "training steps (forward, backward, SGD), bf16" in out
    assert "3 x 2 x MACs x batch / latency" in out


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_bench_step_is_what_it_says(mode):
    """Inference passes leave the weights alone and build no graph; a training step moves them."""
    from actionrec.analysis.benchmark import step_call
    from actionrec.models.registry import build_with_input

    model, x = build_with_input("tsn", classes=3, frames=2, size=32, backbone="resnet18",
                                batch=2, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    step_call(model, x, mode=mode, precision="fp32")()
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(moved) if mode == "train" else not any(moved)
    assert model.training == (mode == "train")


def test_bench_onnx_runtime_rows_beside_pytorch(capsys):
    code, out, err = run(capsys, "bench", "gst", "gru", "--backbone", "resnet18", "--frames", "2",
                       "--size", "32", "--batch", "2", "--rounds", "1", "--backend", "all",
                       "--memory", "--json")
    assert code == 0, err
    report = json.loads(out)
    rows = {r["model"]: r for r in report["rows"]}
    assert code == 0 and set(rows) == {f"{m}{b}" for m in ("gst", "gru") for b in (
        "", " [onnxruntime]", " [onnxruntime-int8]")} | {"tsn (baseline)"}
    assert rows["gst [onnxruntime]"]["macs"] == rows["gst"]["macs"]
    assert "peak_mib" in rows["gst"] and "peak_mib" not in rows["gst [onnxruntime]"]
    code, _, err = run(capsys, "bench", "gst", "--backend", "onnxruntime", "--mode", "train")
    assert code == 2 and "inference only" in err
