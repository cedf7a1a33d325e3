"""The recipes of configs/: each loads, validates and builds its model at its input (on the meta
device, through `actionrec zoo`), and follows its paper's protocol."""

from pathlib import Path

import pytest

from actionrec.analysis.zoo import recipe_paths
from actionrec.config import read_config
from actionrec.data.build import build_transform, resolve
from actionrec.data.transforms import MultiScaleCrop, RandomCrop, ThreeCrop
from actionrec.errors import ActionrecError
from tests.conftest import REPO, run

RECIPES = recipe_paths(REPO / "configs")
PAPER_CROP = {"STM": MultiScaleCrop, "GST": RandomCrop, "MSTI-Net": RandomCrop, "StNet": RandomCrop}


def test_zoo_lists_every_recipe_with_its_paper_row(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, _ = run(capsys, "zoo")
    assert code == 0
    rows = [line for line in out.splitlines() if "actionrec train configs/" in line]
    assert sorted(line.split("actionrec train ")[1].split()[0] for line in rows) == \
        sorted(str(p.relative_to(REPO)) for p in RECIPES)
    stm = next(line for line in rows if "configs/stm/stm_r50_8f_sthv1.yaml" in line)
    assert "49.2" in stm and "24.04 (24)" in stm and "33.08 (33.3)" in stm  # Table 1, Table 9
    assert "StNet InceptionResNet-V2" in out and "8-conv-layer" in out  # rows we cannot build
    assert "estimate" in out and "multiply-accumulates" in out


def test_headline_rows_have_recipes():
    have = {(c.recipe.paper, c.model.name, c.model.backbone, c.model.num_frames, c.recipe.dataset)
            for c in map(read_config, RECIPES)}
    wanted = [("STM", "stm", "resnet50", f, d) for f in (8, 16) for d in ("sthv1", "sthv2", "jester")]
    wanted += [("STM", "stm", "resnet50", 16, d) for d in ("kinetics400", "ucf101", "hmdb51")]
    wanted += [("GST", m, "resnet50", 8, "sthv1") for m in ("gst", "gst_large", "c2d", "c3d", "p3d")]
    wanted += [("GST", "gst", "resnet50", 16, d) for d in ("sthv1", "sthv2", "diving48")]
    wanted += [("GST", "gst", "resnet18", 16, "diving48")]
    wanted += [("StNet", "stnet", b, 25, "kinetics400") for b in ("resnet50", "resnet101")]
    wanted += [("StNet", "stnet", "resnet50", 7, "ucf101")]
    wanted += [("MSTI-Net", "msti", "resnet50", 16, d) for d in ("kinetics400", "ucf101", "hmdb51")]
    wanted += [("STM", m, "resnet50", 8, "sthv1") for m in ("tsn", "tsm")]
    assert [w for w in wanted if w not in have] == []


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_follows_its_papers_protocol(path):
    cfg = read_config(path)
    r = cfg.recipe
    assert r.paper and r.table and r.section and r.views, f"{path}: recipe header incomplete"
    assert cfg.data.prepared == f"data/{r.dataset}/data.yaml"
    assert cfg.work_dir == f"work_dirs/{path.stem}"
    # (without the class list a left/right swap cannot be built: the crop is what is checked)
    train = build_transform(read_config(path, ["data.mirror_swap=false"]), train=True)
    assert isinstance(train.transforms[1], PAPER_CROP[r.paper]), f"{path}: training crop"
    if r.paper == "STM" and cfg.test.crops == 3:  # Sec. 4.2: 3 squares of a 256 short side
        test = build_transform(cfg, train=False, crops=3)
        assert test.transforms[0].size == 256 and isinstance(test.transforms[1], ThreeCrop)
        assert cfg.test.clip_offsets == "random"
    if r.paper == "MSTI-Net":  # Sec. 4.1's two optimiser settings, one per initialisation
        scratch = cfg.model.pretrained is None
        assert (cfg.train.optimizer, cfg.train.lr, cfg.model.dropout, cfg.train.weight_decay) == (
            ("adam", 1e-4, 0.5, 5e-5) if scratch else ("sgd", 1e-5, 0.9, 5e-4))
        assert not cfg.data.flip  # the paper mentions no flip
    if r.paper == "StNet":
        assert cfg.model.dropout == 0.0  # neither the paper nor the reference code has one
    if r.paper == "GST":
        assert cfg.model.dropout == 0.3 and (cfg.test.clips, cfg.test.crops) == (1, 1)


def test_a_recipe_reads_its_prepared_dataset(tmp_path, monkeypatch):
    """Where data/<dataset>/data.yaml exists (as `data prepare` writes it), a recipe trains on it
    unchanged; where it does not, the missing list names the file to prepare."""
    monkeypatch.chdir(tmp_path)
    recipe = REPO / "configs/gst/gst_r18_16f_diving48.yaml"
    cfg = read_config(recipe)
    with pytest.raises(ActionrecError, match=r"data.train_list is not set and data/diving48/data.yaml "
                                         r"does not exist: run `actionrec data prepare`"):
        resolve(cfg, cfg.data.train_list, "train_list")
    Path("data/diving48").mkdir(parents=True)
    Path("data/diving48/data.yaml").write_text(
        "data:\n  root: /media/diving48\n  train_list: train.txt\n  val_list: val.txt\n"
        "  label_map: labels.txt\n  kind: video\n")
    cfg = read_config(recipe)
    assert (cfg.data.root, cfg.data.train_list) == ("/media/diving48", "data/diving48/train.txt")
    assert cfg.data.crop == "random" and cfg.model.backbone == "resnet18"  # the recipe's own keys
