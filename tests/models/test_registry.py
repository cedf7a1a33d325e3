"""Every registered model, through its spec: options documented, builds on the meta device, runs
at a tiny input with the right output, keeps the videos of a batch apart, and is listed by
``actionrec models``. Registering a model is enough to have it checked here."""

import inspect

import pytest
import torch

from actionrec.analysis.paper import PAPER_ROWS
from actionrec.models.base import to_channels_last
from actionrec.models.registry import (
    INPUT_KINDS,
    MODELS,
    build_with_input,
    example_input,
    get_spec,
)
from tests.conftest import perturb_norms, run

NAMES = sorted(MODELS)
TINY = {"classes": 3, "frames": 4, "size": 32}  # 4: MSTI-Net's temporal stride leaves 2 frames


@pytest.mark.parametrize("name", NAMES)
def test_spec_documents_every_option(name):
    spec = MODELS[name]
    params = inspect.signature(spec.builder).parameters
    assert spec.input in INPUT_KINDS and spec.summary
    assert {"num_classes", "num_frames"} <= set(params)
    # every keyword parameter is a documented option, except the block factory subclasses pass
    assert set(params) - {"num_classes", "num_frames"} - set(spec.options) <= {"block"}
    for option, help_line in spec.options.items():
        assert params[option].default is not inspect.Parameter.empty, option
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY, option
        assert len(help_line) > 10, option


@pytest.mark.parametrize("name", NAMES)
def test_builds_on_meta_and_runs_a_tiny_input(name):
    with torch.device("meta"):
        model, x = build_with_input(name, **TINY, batch=2)
        out = model.eval()(x)
    assert out.shape == (2, TINY["classes"])
    assert x.shape[0] == 2 and x.shape[1] == model.input_frames


@pytest.mark.parametrize("name", NAMES)
def test_videos_of_a_batch_stay_apart(name):
    """A real forward: finite logits, and each video's logits do not depend on the other videos
    of its batch (time and batch axes never mix), with BN scales and statistics away from their
    defaults so that no module hides behind a zero or an identity. In float64: with random
    eval-mode BN statistics MSTI-Net's logits reach 70-9500 at these sizes, and in float32
    round-off alone moved them by 3-18 % between batch sizes (float64: 5e-11)."""
    torch.manual_seed(0)
    model, x = build_with_input(name, **TINY, batch=3, generator=torch.Generator().manual_seed(1))
    perturb_norms(model)
    model, x = model.double().eval(), x.double()
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert torch.isfinite(together).all()
    assert together.std(0).max() > 1e-4 * together.abs().max()  # the videos score differently
    torch.testing.assert_close(together, alone, rtol=1e-9, atol=1e-9 * together.abs().max())


@pytest.mark.parametrize("name", NAMES)
def test_runs_under_bf16_autocast_as_train_amp_does(name):
    """``runtime.precision`` amp on the CPU: bf16 autocast, channels_last as the engine runs the models, in
    evaluation (no-grad paths such as STM's in-place fused add included) and in training."""
    model, x = build_with_input(name, **TINY, batch=2, generator=torch.Generator().manual_seed(1))
    model = to_channels_last(model).eval()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x).float()
    assert torch.isfinite(out).all() and (out - ref).abs().max() <= 0.1 * ref.abs().max()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.train()(x).float().logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_models_command_lists_every_model_with_its_input_and_options(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    for name, spec in MODELS.items():
        start = lines.index(name)
        block = lines[start + 1 : start + 3 + len(spec.options)]
        assert block[0].strip() == spec.summary
        assert block[1].strip().startswith(f"input: {spec.input}; paper: "
                                           f"{spec.describe_paper_input()}")
        assert spec.paper.source in block[1]
        for (option, default), line in zip(spec.defaults.items(), block[2:], strict=True):
            assert line.strip().startswith(f"{option}={default!r}  ") and spec.options[option] in line


def test_example_input_follows_the_input_kind():
    assert example_input(get_spec("stm"), frames=8, size=64).shape == (1, 8, 3, 64, 64)
    assert example_input(get_spec("stnet"), frames=4, size=32, options={"n": 3}).shape == \
        (1, 12, 3, 32, 32)
    assert example_input(get_spec("lstm"), frames=25, options={"in_features": 1536}).shape == \
        (1, 25, 1536)
    noise = example_input(get_spec("tsn"), frames=2, size=8, generator=torch.Generator())
    assert noise.std() > 0.5 and not example_input(get_spec("tsn"), frames=2, size=8).any()


@pytest.mark.parametrize("name", NAMES)
def test_paper_input_is_a_row_of_the_papers_table(name):
    """The spec's paper input is the input of a whole-model row of that table for this model
    (TSN's, STM Table 1, prints accuracy only: no params/FLOPs row to match)."""
    spec = MODELS[name]
    p = spec.paper
    rows = [r for r in PAPER_ROWS if r.source == p.source and r.model == name and not r.part]
    if name == "tsn":
        assert p.source == "STM Table 1" and not rows
        return
    assert any((r.frames, r.size, r.classes, r.backbone) == (p.frames, p.size, p.classes,
                                                             p.backbone)
               and all(r.options.get(k) == v for k, v in p.options.items()) for r in rows), rows
