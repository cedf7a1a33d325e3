"""The data tools on hostile input: paths that lead out of their folder, lists that would
overwrite each other, outputs made with other settings, items annotated twice, malformed
annotation values, unusable output folders, out-of-range flags, Kinetics subsets. Each is
refused in one line naming where the value came from, or reported, never a traceback or a
silent wrong answer."""

import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from actionrec.data import prepare as preparing
from actionrec.data.datasets import parse_list, read_label_map
from actionrec.data.media import convert
from actionrec.data.prepare import PrepareError, prepare
from actionrec.data.synthetic import write_video
from actionrec.errors import ActionrecError
from tests.conftest import SHARED, index_frames, run
from tests.helpers import kinetics_csv, touch

CLIP = "mmaction2/tests_data_rawvideo_dataset_part_0.mp4"  # 340x256, 32 frames


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def root(tmp_path, shared_data):
    """A data root holding one short real clip, ``a/clip.mp4``."""
    (tmp_path / "R/a").mkdir(parents=True)
    shutil.copy(shared_data / "videos" / CLIP, tmp_path / "R/a/clip.mp4")
    return tmp_path / "R"


def sthv2(ann, train, val=(), names=("Holding something", "Pushing something")):
    ann.mkdir(exist_ok=True)
    (ann / "something-something-v2-labels.json").write_text(
        json.dumps({n: str(i) for i, n in enumerate(names)}))
    (ann / "something-something-v2-train.json").write_text(json.dumps(list(train)))
    (ann / "something-something-v2-validation.json").write_text(json.dumps(list(val)))


def sth(id_, template="Holding [something]"):
    return {"id": id_, "template": template}


# -- 1: every path stays inside its folder ------------------------------------------------------------
@pytest.mark.parametrize("entry", ["../outside.mkv", "a/../../outside.mkv", "/tmp/abs.mkv"])
def test_resize_output_stays_inside_out(tmp_path, root, capsys, entry):
    (tmp_path / "list.txt").write_text(f"a/clip.mp4 0\n{entry} 1\n")
    code, _, err = run(capsys, "data", "resize", tmp_path / "list.txt", "--root", root,
                       "--out", root / "out", "--workers", "1")
    assert code == 2 and "list.txt:2: '" in one_line(err)
    assert "leads outside" in err or "absolute path" in err
    assert not (root / "outside.mp4").exists() and not (root / "out").exists()


@pytest.mark.parametrize("dataset,ids", [("sthv2", ["1", "../../outside"]),
                                         ("sthv2", ["/etc/passwd"]), ("sthv1", ["../x"])])
def test_prepare_ids_stay_inside_the_media(tmp_path, capsys, dataset, ids):
    ann, media = tmp_path / "ann", tmp_path / "media"
    media.mkdir()
    if dataset == "sthv2":
        sthv2(ann, [sth(i) for i in ids])
        where = f"something-something-v2-train.json: item {len(ids) - 1}"
    else:
        ann.mkdir()
        (ann / "something-something-v1-labels.csv").write_text("Holding something\n")
        (ann / "something-something-v1-train.csv").write_text(f"{ids[0]};Holding something\n")
        (ann / "something-something-v1-validation.csv").write_text("")
        where = "something-something-v1-train.csv:1"
    code, _, err = run(capsys, "data", "prepare", dataset, "--annotations", ann, "--media",
                       media, "--out", tmp_path / "out")
    assert code == 2 and where in one_line(err)
    assert "leads outside" in err or "absolute path" in err
    assert not (tmp_path / "out" / "train.txt").exists()


# -- 2: lists of one name -----------------------------------------------------------------------------
def test_lists_of_one_name_refused(tmp_path, root, capsys):
    for folder in ("la", "lb"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.txt").write_text("a/clip.mp4 0\n")
    code, _, err = run(capsys, "data", "resize", tmp_path / "la/train.txt", tmp_path / "lb/train.txt",
                       "--root", root, "--out", tmp_path / "O")
    assert code == 2 and "la/train.txt and " in one_line(err) and "lb/train.txt: two lists" in err
    (tmp_path / "corrupt.txt").write_text("a/clip.mp4 0\n")  # the name of a file written beside
    code, _, err = run(capsys, "data", "resize", tmp_path / "corrupt.txt", "--root", root,
                       "--out", tmp_path / "O")
    assert code == 2 and "a list named corrupt.txt collides" in one_line(err)
    assert not (tmp_path / "O").exists()


@pytest.mark.parametrize("entries, message", [
    (["a.avi", "a/clip.mp4"], "a/clip.mp4 would be written inside a, the output of"),
    (["labels.txt.avi"], "would be written to labels.txt, a file written beside the lists"),
    (["l.txt.avi"], "would be written to l.txt, a file written beside the lists"),
])
def test_extract_frames_refuses_outputs_inside_other_outputs(tmp_path, root, capsys, entries,
                                                              message):
    """A frame folder is replaced whole when it is redone: an output inside another's folder
    (``a.avi`` and ``a/clip.mp4``) would be deleted with it, and one named as a list or a file
    written beside the lists would collide with it after all the work is done."""
    for name in entries:
        if not (root / name).exists():
            shutil.copy(root / "a/clip.mp4", root / name)
    (tmp_path / "l.txt").write_text("".join(f"{name} 0\n" for name in entries))
    code, _, err = run(capsys, "data", "extract-frames", tmp_path / "l.txt", "--root", root,
                       "--out", tmp_path / "O", "--workers", "1")
    assert code == 2 and message in one_line(err)
    assert not (tmp_path / "O").exists()


# -- 3: an output is finished only as its record says -------------------------------------------------
@pytest.mark.parametrize("command", ["resize", "extract-frames"])
def test_rerun_with_other_short_side_redoes(tmp_path, root, capsys, command):
    (tmp_path / "l.txt").write_text("a/clip.mp4 3\n")
    args = ["data", command, tmp_path / "l.txt", "--root", root, "--out", tmp_path / "o",
            "--workers", "1"]

    def short_side():
        if command == "resize":
            with av.open(str(tmp_path / "o/a/clip.mp4")) as c:
                ctx = c.streams.video[0].codec_context
                return min(ctx.width, ctx.height)
        from PIL import Image
        return min(Image.open(tmp_path / "o/a/clip/img_00001.jpg").size)

    code, out, _ = run(capsys, *args, "--short-side", "32")
    assert code == 0 and "1 converted, 0 already done" in out and short_side() == 32
    code, out, _ = run(capsys, *args, "--short-side", "16")
    assert code == 0 and "1 converted (1 replacing outputs made otherwise), 0 already" in out
    assert short_side() == 16
    frames = " 32 3" if command == "extract-frames" else " 3"
    assert (tmp_path / "o/l.txt").read_text().endswith(f"{frames}\n")
    code, out, _ = run(capsys, *args, "--short-side", "16")
    assert "0 converted, 1 already done" in out
    record = next(tmp_path.glob("o/a/.clip*.made.json"))
    record.unlink()  # an output without its record (killed before: made with what?) is redone
    code, out, _ = run(capsys, *args, "--short-side", "16")
    assert "1 converted (1 replacing" in out and record.exists()
    stat = (root / "a/clip.mp4").stat()  # a source replaced by one of its size: newer
    os.utime(root / "a/clip.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    code, out, _ = run(capsys, *args, "--short-side", "16")
    assert "1 converted (1 replacing" in out


# -- 4: items annotated twice -------------------------------------------------------------------------
def test_ucf101_duplicate_and_train_val_overlap(tmp_path, shared_data):
    ann = tmp_path / "ann"
    shutil.copytree(shared_data / "labels/ucf101", ann)
    train = (ann / "trainlist01.txt").read_bytes().splitlines(keepends=True)
    test_video = (ann / "testlist01.txt").read_bytes().splitlines()[0]  # ApplyEyeMakeup/v_..._g01_c01
    (ann / "trainlist01.txt").write_bytes(b"".join(train[:3] + train[1:2] + train[3:])
                                          + test_video + b" 1\r\n")
    media = tmp_path / "media/UCF-101"
    for line in (train[1], test_video):
        touch(media / line.split()[0].decode())
    out = tmp_path / "out"
    summary = prepare("ucf101", ann, tmp_path / "media", out)
    assert [s.line() for s in summary] == [
        "train: 9539 items, 2 written, 9536 missing, 1 annotated twice (dropped)",
        "val: 3783 items, 1 written, 3782 missing; warning: 1 also in train, kept (they inflate "
        "every val number)"]
    name = train[1].split()[0].decode()
    assert [e.path for e in parse_list(out / "train.txt")].count(f"UCF-101/{name}") == 1
    problems = (out / "problems.txt").read_text().splitlines()[1:]
    assert problems == [
        f"duplicate\ttrain\t{name}\t({ann}/trainlist01.txt:4; first in train at "
        f"{ann}/trainlist01.txt:2)",
        f"overlap\tval\t{test_video.decode()}\t({ann}/testlist01.txt:1; first in train at "
        f"{ann}/trainlist01.txt:9539)"]
    assert summary[0].examples == (problems[0],)


def test_sthv2_id_in_train_and_val(tmp_path, capsys):
    ann, media = tmp_path / "ann", tmp_path / "media"
    sthv2(ann, [sth("7"), sth("8"), sth("8", "Pushing [something]")], [sth("7")])
    touch(media / "7.webm")
    code, out, _ = run(capsys, "data", "prepare", "sthv2", "--annotations", ann, "--media", media,
                       "--out", tmp_path / "out")
    assert code == 0 and "train: 3 items, 1 written, 1 missing, 1 annotated twice" in out
    assert "val: 1 items, 1 written, 0 missing; warning: 1 also in train" in out
    assert "  conflict\ttrain\t8.webm" in out and "  overlap\tval\t7.webm" in out
    assert (tmp_path / "out/val.txt").read_text() == "7.webm 0\n"


# -- 5: one line, never a traceback -------------------------------------------------------------------
def test_prepare_unusable_out(tmp_path, capsys):
    ann, media = tmp_path / "ann", tmp_path / "media"
    sthv2(ann, [sth("1")])
    media.mkdir()
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file/sub"):
        code, _, err = run(capsys, "data", "prepare", "sthv2", "--annotations", ann, "--media",
                           media, "--out", out)
        assert code == 2 and f"{out}: " in one_line(err)


@pytest.mark.parametrize("item,expected", [
    ({"id": "1", "template": None}, "item 0: expected an object with template (a string)"),
    ({"id": True, "template": "Holding [something]"}, "with id (a string or an integer)"),
    ({"id": "1"}, "with template (a string)")])
def test_sthv2_bad_values(tmp_path, item, expected):
    sthv2(tmp_path / "ann", [item])
    (tmp_path / "media").mkdir()
    with pytest.raises(PrepareError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        prepare("sthv2", tmp_path / "ann", tmp_path / "media", tmp_path / "out")


def test_sthv2_class_index_of_many_digits(tmp_path):
    sthv2(tmp_path / "ann", [], names=())
    (tmp_path / "ann/something-something-v2-labels.json").write_text(json.dumps({"x": "9" * 5000}))
    (tmp_path / "media").mkdir()
    with pytest.raises(PrepareError, match=r"labels.json: expected an object of class name -> "):
        prepare("sthv2", tmp_path / "ann", tmp_path / "media", tmp_path / "out")


@pytest.mark.parametrize("start", ["inf", "nan", "-1", "1e300"])
def test_kinetics_times_bounded(tmp_path, capsys, start):
    (tmp_path / "ann").mkdir(), (tmp_path / "media").mkdir()
    (tmp_path / "ann/train.csv").write_text(kinetics_csv([("abseiling", "x", start, 10, "train")]))
    (tmp_path / "ann/validate.csv").write_text(kinetics_csv([]))
    code, _, err = run(capsys, "data", "prepare", "kinetics400", "--annotations", tmp_path / "ann",
                       "--media", tmp_path / "media", "--out", tmp_path / "out")
    assert code == 2 and "train.csv:2: time_start: " in one_line(err)
    assert "is not allowed; expected a number in [0, " in err


def test_kinetics_class_folder_not_utf8(tmp_path, capsys):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann/train.csv").write_text(kinetics_csv([("abseiling", "clip", 1, 11, "train")]))
    (tmp_path / "ann/validate.csv").write_text(kinetics_csv([]))
    folder = os.fsencode(tmp_path / "media") + b"/caf\xe9"
    os.makedirs(folder)
    open(folder + b"/clip_000001_000011.mp4", "wb").close()
    code, _, err = run(capsys, "data", "prepare", "kinetics400", "--annotations", tmp_path / "ann",
                       "--media", tmp_path / "media", "--out", tmp_path / "out")
    assert code == 2 and "train.csv:2: 'caf\\\\xe9/clip_000001_000011.mp4' has a name that is " \
                         "not UTF-8" in one_line(err)


@pytest.mark.parametrize("command", ["resize", "extract-frames"])
def test_media_unusable_out(tmp_path, root, capsys, command):
    (tmp_path / "l.txt").write_text("a/clip.mp4 0\n")
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file/sub"):
        code, _, err = run(capsys, "data", command, tmp_path / "l.txt", "--root", root, "--out", out,
                           "--workers", "1")
        assert code == 2 and str(tmp_path / "file") in one_line(err)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_file_where_the_frame_folder_goes(tmp_path, root, capsys, workers):
    (tmp_path / "l.txt").write_text("a/clip.mp4 0\n")
    (tmp_path / "o/a").mkdir(parents=True)
    (tmp_path / "o/a/clip").write_text("mine")
    code, _, err = run(capsys, "data", "extract-frames", tmp_path / "l.txt", "--root", root,
                       "--out", tmp_path / "o", "--short-side", "16", "--workers", workers)
    assert code == 2 and f"{tmp_path}/o/a/clip: a file is where the output" in one_line(err)
    assert (tmp_path / "o/a/clip").read_text() == "mine"
    shutil.rmtree(tmp_path / "o")
    (tmp_path / "o").mkdir()
    (tmp_path / "o/a").write_text("mine")  # a file where the folder of the outputs goes
    code, _, err = run(capsys, "data", "extract-frames", tmp_path / "l.txt", "--root", root,
                       "--out", tmp_path / "o", "--short-side", "16", "--workers", workers)
    assert code == 2 and f"{tmp_path}/o/a" in one_line(err)


# -- 6: numeric flags through validate.Range ----------------------------------------------------------
@pytest.mark.parametrize("argv,flag", [
    (["resize", "l.txt", "--out", "o", "--short-side", "20000"], "--short-side"),
    (["extract-frames", "l.txt", "--out", "o", "--short-side", "8"], "--short-side"),
    (["resize", "l.txt", "--out", "o", "--workers", "0"], "--workers"),
    (["extract-frames", "l.txt", "--out", "o", "--workers", "1.5"], "--workers"),
    (["prepare", "ucf101", "--annotations", "a", "--media", "m", "--split", "nan"], "--split"),
    (["synth", "o", "--videos", "-5"], "--videos"), (["synth", "o", "--frames", "1e9"], "--frames"),
    (["synth", "o", "--size", "99999"], "--size"), (["synth", "o", "--seed", "-1"], "--seed"),
    (["synth", "o", "--pairs", "0", "7"], "--pairs"), (["synth", "o", "--workers", "inf"], "--workers")])
def test_numeric_flags_bounded(capsys, argv, flag):
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "data", *argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}: " in err and "expected an integer" in err


# -- 7: Kinetics: the official class index ------------------------------------------------------------
@pytest.mark.parametrize("version", [400, 600, 700])
def test_official_class_lists_shipped(version):
    shared = SHARED / f"labels/kinetics/label_map_k{version}.txt"
    if not shared.is_file():
        pytest.skip(f"{shared} not here")
    assert (preparing.CLASS_LISTS / f"kinetics{version}.txt").read_bytes() == shared.read_bytes()


def test_kinetics_subset_keeps_official_indices(tmp_path):
    official = read_label_map(preparing.CLASS_LISTS / "kinetics400.txt")
    ann, media = tmp_path / "ann", tmp_path / "media"
    ann.mkdir()
    (ann / "train.csv").write_text(kinetics_csv([("zumba", "z", 1, 11, "train"),
                                                 ("yoga", "y", 1, 11, "train")]))
    (ann / "validate.csv").write_text(kinetics_csv([("abseiling", "v", 1, 11, "val")]))  # not in train
    for clip in ("z", "y", "v"):
        touch(media / f"{clip}_000001_000011.mp4")
    prepare("kinetics400", ann, media, tmp_path / "out")
    assert read_label_map(tmp_path / "out/labels.txt") == official
    labels = {e.path: e.label for split in ("train", "val")
              for e in parse_list(tmp_path / f"out/{split}.txt")}
    assert labels == {"z_000001_000011.mp4": 399, "y_000001_000011.mp4": 398,
                      "v_000001_000011.mp4": 0}
    (ann / "validate.csv").write_text(kinetics_csv([("abseiling", "v", 1, 11, "val"),
                                                    ("moonwalking", "w", 1, 11, "val")]))
    with pytest.raises(ActionrecError, match=r"validate.csv:3: class 'moonwalking' is not one of "
                                             r"the 400 classes of .*kinetics400.txt"):
        prepare("kinetics400", ann, media, tmp_path / "out")


# -- 8: any list or annotation text: entries inside the root, or one line -----------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=5), lambda c: st.lists(c, max_size=3)
                    | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8)
TEXT = st.text("aAB1 ./#;,\"\t\r\n\u2028\x00\xe9[]-", max_size=60)
CLASSES = ("Holding something", "Pushing something")


def mostly(value, *others):
    """``value`` (a strategy) about nine times in ten, else one of ``others``."""
    return st.sampled_from([True] * 9 + [False]).flatmap(
        lambda usual: value if usual else st.one_of(*others))


def name(usual, escape="../a"):
    """A media name: ``usual`` (found in the media), ``escape`` (found outside it), or one that
    leads out, is a comment, spans lines, has spaces, or any short text."""
    return mostly(st.sampled_from([usual] * 3 + [escape] * 3 + [
        "a b", "#a", "../a", "/a", "a/../a", ".", "", " a", "a\u2028b", "caf\xe9", "B/a.avi"]),
        st.text("ab./ #;,\"\t\r\u2028\x00\xe9[]", max_size=8))


NAME = name("a")


def lines(sep, *fields):
    """Text of a few lines of the fields (strategies) joined by ``sep``, mostly; or any text."""
    row = st.tuples(*fields, mostly(st.just(sep), st.sampled_from([";", ",", " ", "\t"]))).map(
        lambda t: t[-1].join(map(str, t[:-1])))
    return mostly(st.lists(row, min_size=1, max_size=4).map(
        lambda rows: "".join(r + "\n" for r in rows)), TEXT)


def json_text(structured):
    return mostly(structured.map(json.dumps), JSON.map(json.dumps), TEXT,
                  st.just("[" * 5000 + "]" * 5000))


sth_item = mostly(st.fixed_dictionaries({
    "id": mostly(NAME, st.integers(), st.booleans(), st.none()),
    "template": mostly(st.sampled_from(["Holding [something]", "Pushing [something]"]),
                       st.just("Holding"), st.none(), st.integers())}), JSON)
TIME = st.sampled_from(["1"] * 4 + ["1.0", "inf", "nan", "-1", "x", "", "1e300"])
ANNOTATIONS = {
    "sthv2": st.fixed_dictionaries({
        "something-something-v2-labels.json": json_text(st.just({n: str(i) for i, n in
                                                                  enumerate(CLASSES)})),
        "something-something-v2-train.json": json_text(st.lists(sth_item, max_size=4)),
        "something-something-v2-validation.json": json_text(st.lists(sth_item, max_size=3)),
        "something-something-v2-test.json": json_text(st.lists(sth_item, max_size=2))}),
    "sthv1": st.fixed_dictionaries({
        "something-something-v1-labels.csv": mostly(st.just("".join(c + "\n" for c in CLASSES)),
                                                    lines("", NAME)),
        "something-something-v1-train.csv": lines(";", name("a", "../../a"), mostly(st.sampled_from(CLASSES),
                                                                     NAME)),
        "something-something-v1-validation.csv": lines(";", name("a", "../../a"), st.sampled_from(CLASSES)),
        "something-something-v1-test.csv": lines(";", NAME)}),
    "kinetics400": st.fixed_dictionaries({
        name: st.tuples(mostly(st.just("label,youtube_id,time_start,time_end,split\n"),
                               st.sampled_from(["youtube_id,time_start,time_end\n", ""])),
                        lines(",", mostly(st.sampled_from(["abseiling", "zumba"]),
                                          st.sampled_from(["x", '"a,b"', ""])), NAME, TIME,
                              mostly(st.just("11"), TIME))).map("".join)
        for name in ("train.csv", "validate.csv", "test.csv")}),
    "ucf101": st.fixed_dictionaries({
        "classInd.txt": mostly(st.just("1 A\n2 B\n"), lines(" ", st.integers(0, 3), NAME)),
        "trainlist01.txt": lines(" ", name("A/a.avi", "A/../../../a.avi"),
                                 mostly(st.just(1), st.integers(-1, 3), NAME)),
        "testlist01.txt": lines(" ", name("A/a.avi", "A/../../../a.avi"))}),
    "hmdb51": st.dictionaries(st.sampled_from(["A", "B", "a b", "#"]).map(
        lambda c: f"{c}_test_split1.txt"), lines(" ", name("a.avi", "../../../a.avi"),
                                        st.sampled_from(["1", "2", "0", "3"])),
        min_size=1, max_size=2),
    "diving48": st.fixed_dictionaries({
        "Diving48_vocab.json": json_text(st.just([["a", "b"], ["c", "d"]])),
        **{f"Diving48_V2_{split}.json": json_text(st.lists(mostly(st.fixed_dictionaries({
            "vid_name": mostly(name("a", "../../a"), st.integers()), "label": mostly(st.integers(0, 1),
                                                                     st.integers(), st.booleans()),
            "start_frame": st.integers(-1, 2), "end_frame": st.integers(0, 3)}), JSON), max_size=3))
           for split in ("train", "test")}}),
}


@pytest.fixture(scope="module")
def hostile_media(tmp_path_factory):
    """Media that some generated names find (videos, a frame folder, a name with a space), and
    the same names outside it, which no entry may reach."""
    base = tmp_path_factory.mktemp("hostile_media")
    for folder in (base / "media", base):
        for name in ("a.webm", "a b.webm", "a.mp4", "a.avi", "a_000001_000011.mp4",
                     "UCF-101/A/a.avi", "hmdb51_org/A/a.avi", "rgb/a.mp4"):
            touch(folder / name)
        for frames in (folder / "a", folder / "20bn-something-something-v1/a"):
            frames.mkdir(parents=True)
            (frames / "00001.jpg").write_bytes(b"")
    return base / "media"


def check_written(out, media, kind):
    """Every written entry parses, names media that exist inside ``media``, and has a class."""
    classes = read_label_map(out / "labels.txt")
    for name in ("train.txt", "val.txt"):
        if (out / name).read_text().strip():
            for e in parse_list(out / name, kind=kind, num_classes=len(classes)):
                assert not os.path.isabs(e.path) and not os.path.normpath(e.path).startswith("..")
                assert os.path.lexists(media / e.path)


@pytest.mark.parametrize("dataset", list(ANNOTATIONS))
def test_any_annotation_text(dataset, hostile_media):
    kind = "rawframes" if dataset == "sthv1" else "video"

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(files=ANNOTATIONS[dataset])
    def check(files):
        with tempfile.TemporaryDirectory() as tmp:
            ann, out = Path(tmp, "ann"), Path(tmp, "out")
            ann.mkdir()
            for name, text in files.items():
                (ann / name).write_text(text, encoding="utf-8", errors="surrogatepass")
            try:
                prepare(dataset, ann, hostile_media, out)
            except ActionrecError as e:
                assert len(str(e).splitlines()) == 1, str(e)
            else:
                check_written(out, hostile_media, kind)

    check()


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "a.mp4"
    write_video(path, index_frames(4, size=32))
    return path


def test_any_list_text(tiny_video):
    """``data resize`` of any list: refused in one line, or every file written inside --out."""
    names = mostly(st.sampled_from(["a", "a", "../R/a", "a/../../R/a", str(tiny_video)]), NAME)

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=lines(" ", names, mostly(st.integers(0, 3), NAME)))
    def check(text):
        resize_list(text, tiny_video)

    check()


def resize_list(text, video):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp, "R")
        (base / "out").mkdir(parents=True)
        shutil.copy(video, base / "a")
        Path(tmp, "list.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
        before = {p for p in Path(tmp).rglob("*")}
        try:
            convert([str(Path(tmp, "list.txt"))], base / "out", "resize", 16, root=str(base),
                    progress=False)
        except ActionrecError as e:
            assert len(str(e).splitlines()) == 1, str(e)
        new = {p for p in Path(tmp).rglob("*")} - before
        assert all(p.is_relative_to(base / "out") for p in new), new
    assert os.listdir(video.parent) == [video.name]


def test_an_item_in_three_splits_is_reported_against_the_first():
    """Overlap names the split an item was first met in, and duplicates are counted per split."""
    from actionrec.data.prepare import Item, _deduplicate

    splits = {s: [Item("a", 0, f"{s}.txt:1"), Item("a", 1, f"{s}.txt:2")] for s in ("train", "val", "test")}
    kept, problems = _deduplicate(splits)
    assert {s: [i.where for i in items] for s, items in kept.items()} == {
        "train": ["train.txt:1"], "val": ["val.txt:1"], "test": ["test.txt:1"]}
    assert [(p.kind, p.split, p.first_split, p.first.where) for p in problems] == [
        ("conflict", "train", "train", "train.txt:1"),
        ("overlap", "val", "train", "train.txt:1"), ("conflict", "val", "val", "val.txt:1"),
        ("overlap", "test", "train", "train.txt:1"), ("conflict", "test", "test", "test.txt:1")]


def test_a_source_of_frames_over_the_pixel_bound_is_corrupt_not_decoded(tmp_path, root, capsys):
    """A 9000x9000 image (81 M pixels, over ``MAX_PIXELS``) is refused from its header."""
    Image.new("RGB", (9000, 9000), (10, 200, 10)).save(root / "a/huge.png")
    (tmp_path / "l.txt").write_text("a/clip.mp4 0\na/huge.png 1\n")
    code, out, _ = run(capsys, "data", "resize", tmp_path / "l.txt", "--root", root, "--out",
                       tmp_path / "o", "--short-side", "16", "--workers", "1")
    assert code == 0 and "1 converted, 0 already done, 1 corrupt" in out, out
    corrupt = (tmp_path / "o/corrupt.txt").read_text()
    assert "huge.png: frames of 9000x9000 pixels; expected at most 67108864" in corrupt


@pytest.mark.parametrize("command", ["resize", "synth"])
def test_a_worker_killed_mid_run_is_one_line(tmp_path, root, capsys, command):
    """A worker SIGKILLed (as the kernel's OOM killer does) is a one-line error, not
    BrokenProcessPool's traceback, nor a hang (Python 3.11's pool waited for the survivors)."""
    (tmp_path / "l.txt").write_text("".join(f"a/c{i}.mp4 0\n" for i in range(6)))
    for i in range(6):
        shutil.copy(root / "a/clip.mp4", root / f"a/c{i}.mp4")
    argv = {"resize": ["resize", tmp_path / "l.txt", "--root", root, "--out", tmp_path / "o",
                       "--short-side", "16"],
            "synth": ["synth", tmp_path / "s", "--videos", "40", "--frames", "8"]}[command]

    def kill_first_worker():
        for _ in range(1000):
            workers = multiprocessing.active_children()
            if workers:
                os.kill(workers[0].pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    code, _, err = run(capsys, "data", *argv, "--workers", "2")
    killer.join()
    assert code == 2 and "a worker process died or could not start (" in one_line(err)
