"""`actionrec data prepare` on each dataset's official annotation format, quirks included.

UCF101 and HMDB51 run on the real official split files of ../shared/data; the other formats on
fixtures written here as the datasets distribute them, with the real class lists of
../shared/data/labels. Media are placed for a few items only: ``prepare`` finds media by name
(it does not decode; ``data check`` does), so the others are the missing items it must list.
Labels are checked by class name, through labels.txt, never by index alone.
"""

import json
import random
import shutil

import pytest
from PIL import Image

from actionrec.config import read_config
from actionrec.data.build import build_dataset
from actionrec.data.datasets import parse_list, read_label_map
from actionrec.data.prepare import PrepareError, prepare
from actionrec.errors import ActionrecError
from tests.conftest import run
from tests.helpers import kinetics_csv, touch


def frames(folder, n):
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        Image.new("RGB", (8, 8)).save(folder / f"{i:05d}.jpg")


def named(out, split):
    """(path, class name) of a written video list, through labels.txt."""
    classes = read_label_map(out / "labels.txt")
    return [(e.path, classes[e.label]) for e in parse_list(out / f"{split}.txt")]


def missing(out):
    return [line.split("\t")[:2] for line in (out / "missing.txt").read_text().splitlines()
            if not line.startswith("#")]


def test_sthv2(tmp_path, shared_data):
    names = read_label_map(shared_data / "labels/sthv2/label_map_mmaction2.txt")
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "something-something-v2-labels.json").write_text(
        json.dumps({n: str(i) for i, n in enumerate(names)}, indent=4))

    def item(id_, name):  # the template holds [something] where the class name says something
        template = name.replace("something", "[something]")
        return {"id": id_, "label": name.replace("something", "a cup"), "template": template,
                "placeholders": ["a cup"] * template.count("[")}

    comma = next(n for n in names if "," in n)
    (ann / "something-something-v2-train.json").write_text(json.dumps(
        [item("78687", names[5]), item("42326", comma), item("3", names[0])]))
    (ann / "something-something-v2-validation.json").write_text(json.dumps([item("74225", names[7])]))
    (ann / "something-something-v2-test.json").write_text(json.dumps([{"id": "1420"}]))
    media = tmp_path / "media"
    for id_ in ("78687", "42326", "74225", "1420"):
        touch(media / "20bn-something-something-v2" / f"{id_}.webm")
    out = tmp_path / "out"
    summaries = prepare("sthv2", ann, media, out)
    assert [s.line() for s in summaries] == ["train: 3 items, 2 written, 1 missing",
                                             "val: 1 items, 1 written, 0 missing",
                                             "test: 1 items, 1 written, 0 missing"]
    assert read_label_map(out / "labels.txt") == names
    assert named(out, "train") == [("20bn-something-something-v2/78687.webm", names[5]),
                                   ("20bn-something-something-v2/42326.webm", comma)]
    assert named(out, "val") == [("20bn-something-something-v2/74225.webm", names[7])]
    assert (out / "unlabelled.txt").read_text() == "20bn-something-something-v2/1420.webm\n"
    assert missing(out) == [["train", "3.webm"]]

    (ann / "something-something-v2-validation.json").write_text(json.dumps(
        [item("1", names[0]), {"id": "2", "template": "Holding [something] upside"}]))
    with pytest.raises(PrepareError, match=r"validation\.json: item 1: class 'Holding something "
                                           r"upside' is not one of the 174 classes of .*labels.json"):
        prepare("sthv2", ann, media, out)


@pytest.mark.parametrize("dataset,prefix,folder,label_file", [
    ("sthv1", "something-something-v1", "20bn-something-something-v1", "sthv1"),
    ("jester", "jester-v1", "20bn-jester-v1", "jester")])
def test_20bn_csv_frames(tmp_path, shared_data, dataset, prefix, folder, label_file):
    names = read_label_map(shared_data / f"labels/{label_file}/label_map_mmaction2.txt")
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / f"{prefix}-labels.csv").write_text("".join(n + "\n" for n in names))
    comma = next((n for n in names if "," in n), names[3])
    (ann / f"{prefix}-train.csv").write_text(f"100218;{names[2]}\n48032;{comma}\n9;{names[1]}\n")
    (ann / f"{prefix}-validation.csv").write_text(f"1;{names[-1]}\n2;{names[0]}\n")
    (ann / f"{prefix}-test.csv").write_text("77\n")
    media = tmp_path / "media"
    frames(media / folder / "100218", 4)
    frames(media / folder / "48032", 3)
    frames(media / folder / "1", 2)
    frames(media / folder / "77", 1)
    (media / folder / "2").mkdir()  # an empty frame folder: missing, not a 0-frame entry
    out = tmp_path / "out"
    lines = [s.line() for s in prepare(dataset, ann, media, out)]
    assert lines == ["train: 3 items, 2 written, 1 missing", "val: 2 items, 1 written, 1 missing",
                     "test: 1 items, 1 written, 0 missing"]
    assert read_label_map(out / "labels.txt") == names  # line order of the labels CSV
    train = parse_list(out / "train.txt", kind="rawframes")
    assert [(e.path, e.num_frames, names[e.label]) for e in train] == [
        (f"{folder}/100218", 4, names[2]), (f"{folder}/48032", 3, comma)]
    assert missing(out) == [["train", "9"], ["val", "2"]]

    # the written data.yaml drives the engine: a frame folder decodes through the recipe's data
    cfg = read_config(None, ["data.size=8", "data.short_side=8", "model.num_frames=2"],
                      data_file=out / "data.yaml")
    assert (cfg.data.kind, cfg.data.frame_template) == ("rawframes", "{:05d}.jpg")
    sample = build_dataset(cfg, "val")[0]
    assert sample["clip"].shape[-2:] == (8, 8) and names[sample["label"]] == names[-1]

    (ann / f"{prefix}-train.csv").write_text(f"100218;{names[2]}\n48032\n")
    with pytest.raises(PrepareError, match=rf"{prefix}-train.csv:2: expected 'id;class name', "
                                           "got '48032'"):
        prepare(dataset, ann, media, out)
    (ann / f"{prefix}-train.csv").write_text(f"100218;{names[2]} (typo)\n")
    with pytest.raises(PrepareError, match=rf"{prefix}-train.csv:1: class .* is not one of the"):
        prepare(dataset, ann, media, out)


@pytest.mark.parametrize("version", [400, 600, 700])
def test_kinetics(tmp_path, shared_data, version):
    names = read_label_map(shared_data / f"labels/kinetics/label_map_k{version}.txt")
    ann = tmp_path / "ann" / f"kinetics{version}"  # as the archive unpacks
    ann.mkdir(parents=True)
    rng = random.Random(version)
    train = [(n, f"yt{i:08d}x", i % 50, i % 50 + 10, "train") for i, n in enumerate(names)]
    rng.shuffle(train)
    train[0] = (train[0][0], "-dash_start", "10.0", "20.0", "train")  # float times, id with -
    labelled_val = [(names[3], "valclip0001", 4, 14, "val"), (names[-1], "valclip0002", 0, 10, "val")]
    (ann / "train.csv").write_text(kinetics_csv(train, is_cc=version == 400))
    (ann / "validate.csv").write_text(kinetics_csv(labelled_val, is_cc=version == 400))
    (ann / "test.csv").write_text(kinetics_csv([("testclip001", 1, 11, "test")], labelled=False,
                                               is_cc=False))
    media = tmp_path / "media"
    touch(media / "-dash_start_000010_000020.mp4")  # flat, as the public archives unpack
    first = train[1]
    touch(media / "train" / first[0].replace(" ", "_") / f"{first[1]}_{first[2]:06d}_{first[3]:06d}.mkv")
    touch(media / "val" / names[3] / "valclip0001_000004_000014.mp4")  # per-class crawler folders
    touch(media / "testclip001_000001_000011.webm")
    out = tmp_path / "out"
    lines = [s.line() for s in prepare(f"kinetics{version}", tmp_path / "ann", media, out)]
    assert lines == [f"train: {version} items, 2 written, {version - 2} missing",
                     "val: 2 items, 1 written, 1 missing", "test: 1 items, 1 written, 0 missing"]
    assert read_label_map(out / "labels.txt") == names  # alphabetical = the official index
    assert named(out, "train") == [
        ("-dash_start_000010_000020.mp4", train[0][0]),
        (f"train/{first[0].replace(' ', '_')}/{first[1]}_{first[2]:06d}_{first[3]:06d}.mkv", first[0])]
    assert named(out, "val") == [(f"val/{names[3]}/valclip0001_000004_000014.mp4", names[3])]
    assert ["val", "valclip0002_000000_000010"] in missing(out)


def test_kinetics_header_and_times(tmp_path):
    ann, media = tmp_path / "ann", tmp_path / "media"
    ann.mkdir(), media.mkdir()
    (ann / "train.csv").write_text("youtube_id,time_start\nabc,1\n")
    (ann / "validate.csv").write_text(kinetics_csv([("abseiling", "x", 1, 2, "val")]))
    with pytest.raises(PrepareError, match=r"train.csv:1: expected a header with label,youtube_id,"
                                           r"time_start,time_end, got 'youtube_id,time_start'"):
        prepare("kinetics400", ann, media, tmp_path / "out")
    (ann / "train.csv").write_text(kinetics_csv([("abseiling", "x", 1, 2, "train"),
                                                 ("abseiling", "y", "one", 2, "train")]))
    with pytest.raises(ActionrecError, match=r"train.csv:3: time_start: 'one' is not allowed; "
                                             r"expected a number in \[0, "):
        prepare("kinetics400", ann, media, tmp_path / "out")
    (ann / "train.csv").write_text(kinetics_csv([("abseiling", "x", 1, 2, "train")]))
    (ann / "validate.csv").write_text(kinetics_csv([("b", "x", 1, 2, "val")]))
    with pytest.raises(PrepareError, match=r"validate.csv:2: class 'b' is not one of the 400 "
                                           r"classes of .*classes/kinetics400.txt"):
        prepare("kinetics400", ann, media, tmp_path / "out")


def test_ucf101_official_splits(tmp_path, shared_data):
    official = shared_data / "labels/ucf101"
    classes = [line.split()[1] for line in (official / "classInd.txt").read_text().splitlines()]
    media = tmp_path / "media" / "UCF-101"
    for name in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
                 "YoYo/v_YoYo_g25_c05.avi",  # train, split 1
                 "HandstandPushups/v_HandStandPushups_g01_c01.avi"):  # test, split 1
        touch(media / name)
    out = tmp_path / "out"
    lines = [s.line() for s in prepare("ucf101", official, tmp_path / "media", out, split=1)]
    assert lines == ["train: 9537 items, 2 written, 9535 missing",  # the official sizes
                     "val: 3783 items, 1 written, 3782 missing"]
    assert read_label_map(out / "labels.txt") == classes
    assert named(out, "train") == [("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
                                    "ApplyEyeMakeup"), ("UCF-101/YoYo/v_YoYo_g25_c05.avi", "YoYo")]
    assert named(out, "val") == [("UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi",
                                  "HandstandPushups")]
    assert [s.line() for s in prepare("ucf101", official, tmp_path / "media", out, split=3)][0] \
        .startswith("train: 9624 items")
    with pytest.raises(PrepareError, match="ucf101 has 3 official splits; split 4"):
        prepare("ucf101", official, tmp_path / "media", out, split=4)

    bad = tmp_path / "bad"
    shutil.copytree(official, bad)
    text = (bad / "trainlist01.txt").read_bytes().replace(b"v_ApplyEyeMakeup_g08_c02.avi 1\r\n",
                                                          b"v_ApplyEyeMakeup_g08_c02.avi 2\r\n")
    (bad / "trainlist01.txt").write_bytes(text)
    with pytest.raises(PrepareError, match=r"trainlist01.txt:2: label 2 is not the folder's class "
                                           r"ApplyEyeMakeup \(1 in .*classInd.txt\)"):
        prepare("ucf101", bad, tmp_path / "media", out)


def test_hmdb51_official_splits(tmp_path, shared_data):
    official = shared_data / "labels/hmdb51"  # holds testTrainMulti_7030_splits/
    media = tmp_path / "media" / "hmdb51_org"
    touch(media / "chew" / "#2_Gum_chew_h_nm_np1_fr_med_0.avi")  # train in split 1
    touch(media / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi")  # train
    touch(media / "chew" / "#2_Gum_chew_h_nm_np1_fr_med_1.avi")  # unused (0) in split 1
    out = tmp_path / "out"
    lines = [s.line() for s in prepare("hmdb51", official, tmp_path / "media", out)]
    assert lines == ["train: 3570 items, 2 written, 3568 missing",
                     "val: 1530 items, 0 written, 1530 missing"]
    assert read_label_map(out / "labels.txt") == read_label_map(
        official / "label_map_mmaction2.txt")  # alphabetical: climb before climb_stairs
    # a file name starting with # (a comment only at the start of a list line) is kept
    assert named(out, "train") == [
        ("hmdb51_org/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "brush_hair"),
        ("hmdb51_org/chew/#2_Gum_chew_h_nm_np1_fr_med_0.avi", "chew")]
    assert ["train", "chew/#2_Gum_chew_h_nm_np1_fr_med_2.avi"] in missing(out)
    assert not [m for m in missing(out) if m[1] == "chew/#2_Gum_chew_h_nm_np1_fr_med_1.avi"]  # F=0

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "chew_test_split1.txt").write_text("a.avi 1 \nb.avi 3 \n")
    with pytest.raises(PrepareError, match=r"chew_test_split1.txt:2: expected 'name.avi F' with F 0"):
        prepare("hmdb51", bad, tmp_path / "media", out)


def test_diving48(tmp_path, shared_data):
    ann = tmp_path / "ann"
    ann.mkdir()
    shutil.copy(shared_data / "labels/diving48/Diving48_vocab.json", ann)
    names = read_label_map(shared_data / "labels/diving48/label_map_mmaction2.txt")
    item = lambda v, label: {"vid_name": v, "label": label, "start_frame": 0, "end_frame": 80}  # noqa: E731
    (ann / "Diving48_V2_train.json").write_text(json.dumps([item("-mmq0PT-u8k_00155", 0),
                                                            item("_8Vy3dlHg2w_00000", 47)]))
    (ann / "Diving48_V2_test.json").write_text(json.dumps([item("LRX5jYzf1dA_00001", 12)]))
    touch(tmp_path / "media/rgb/-mmq0PT-u8k_00155.mp4")
    touch(tmp_path / "media/rgb/LRX5jYzf1dA_00001.mp4")
    out = tmp_path / "out"
    lines = [s.line() for s in prepare("diving48", ann, tmp_path / "media", out)]
    assert lines == ["train: 2 items, 1 written, 1 missing", "val: 1 items, 1 written, 0 missing"]
    assert read_label_map(out / "labels.txt") == names
    assert named(out, "train") == [("rgb/-mmq0PT-u8k_00155.mp4", "Back+15som+05Twis+FREE")]
    assert named(out, "val") == [("rgb/LRX5jYzf1dA_00001.mp4", names[12])]
    (ann / "Diving48_V2_test.json").write_text(json.dumps([item("x", 48)]))
    with pytest.raises(PrepareError, match=r"Diving48_V2_test.json: item 0: expected a label in "
                                           r"\[0, 48\)"):
        prepare("diving48", ann, tmp_path / "media", out)


def test_cli_errors_and_train_with_data(tmp_path, shared_data, capsys):
    """Unknown dataset and a missing annotation file are one line; the written data.yaml
    points a config at real videos that decode."""
    media = tmp_path / "media"
    code, _, err = run(capsys, "data", "prepare", "ucf102", "--annotations", tmp_path,
                       "--media", media)
    assert code == 2 and "unknown dataset 'ucf102'; expected one of sthv1, sthv2" in err
    media.mkdir()
    code, _, err = run(capsys, "data", "prepare", "diving48", "--annotations", tmp_path,
                       "--media", media)
    assert code == 2 and err.strip().endswith(
        "annotation file not found: expected Diving48_vocab.json (in it or in a folder inside it)")

    clip = shared_data / "videos/mmaction2/tests_data_test.avi"
    for name in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "Archery/v_Archery_g01_c01.avi"):
        (media / "UCF-101" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, media / "UCF-101" / name)
    out = tmp_path / "data" / "ucf101"
    code, stdout, _ = run(capsys, "data", "prepare", "ucf101", "--annotations",
                          shared_data / "labels/ucf101", "--media", media, "--out", out)
    assert code == 0 and "train: 9537 items, 1 written, 9536 missing" in stdout
    base = read_config(None, ["data.root=/elsewhere", "data.test_list=/elsewhere/test.txt",
                              "data.size=32", "model.num_frames=2"])
    cfg = read_config(None, ["data.size=32", "model.num_frames=2"],
                      data=base.to_dict(), data_file=out / "data.yaml")
    assert cfg.data.root == str(media.resolve()) and cfg.data.test_list == ""  # nothing stale
    sample = build_dataset(cfg, "test")[0]  # test_list defaults to the official test split
    assert sample["clip"].shape[-3:] == (3, 32, 32) and sample["bad"] == []
