"""``actionrec data prepare``: a benchmark's official annotation files -> our lists and recipe data.

Each reader takes the files exactly as the dataset distributes them and returns the class names
(their order is the class index) and the items of each split. Formats, with their quirks:

- Something-Something V2: ``something-something-v2-labels.json`` maps a class name to its index
  as a string; the train/validation JSON lists hold ``id`` and ``template``, whose class is the
  template with its ``[ ]`` removed; the test JSON holds ids only. Media ``<id>.webm``.
- Something-Something V1, Jester: ``;``-separated CSVs (``id;class name``; names contain commas),
  a labels CSV whose line order is the class index, a test CSV of ids only. Media are frame
  folders ``<id>/00001.jpg ...``.
- Kinetics-400/600/700: CSVs with a header (``label,youtube_id,time_start,time_end,split[,is_cc]``;
  the test CSV has no label; times may be written ``10`` or ``10.0``; names with commas quoted).
  A clip is ``<youtube_id>_<start:06d>_<end:06d>.<ext>``, found anywhere under the media folder
  (flat as the archives unpack, per class as crawlers write). Class index = the official list
  (``classes/kinetics{400,600,700}.txt``, alphabetical), so that a subset of the CSVs (what was
  downloaded) keeps the indices of published checkpoints.
- UCF101: ``classInd.txt`` (``1 ApplyEyeMakeup``, 1-based), ``trainlist0N.txt``
  (``Class/v_x.avi N``), ``testlist0N.txt`` (no label: the class is the folder); CRLF endings.
- HMDB51: ``testTrainMulti_7030_splits/<class>_test_split<N>.txt``, lines ``name.avi F`` with
  trailing spaces, F = 1 train, 2 test, 0 unused; class index = alphabetical (``climb`` before
  ``climb_stairs``, unlike the file names). Some names start with ``#``.
- Diving48 (V2): ``Diving48_V2_train.json`` / ``_test.json`` (``vid_name``, ``label``,
  ``start_frame``, ``end_frame``) and ``Diving48_vocab.json`` (each class a list of four
  attributes; its name here joins them with ``+``). Media ``<vid_name>.mp4``.

The papers report on the official validation split (Something, Jester, Kinetics) or test split
(UCF101, HMDB51, Diving48): that split becomes ``val.txt``. ``prepare`` writes, into ``out``:
``train.txt``, ``val.txt``, ``labels.txt``, ``unlabelled.txt`` (test items without labels, media
paths only, for ``predict``), ``missing.txt`` (annotated items without media: never fatal, never
in a list), ``problems.txt`` (items annotated twice in a split, dropped after the first; items in
two splits, kept but reported, since they inflate every number) and ``data.yaml``, the ``data:``
section of a recipe. List paths are relative to the media folder and stay inside it (an id with
``..`` or an absolute path is refused); frame folders carry their counted frames.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import data_file_text
from ..errors import ActionrecError
from ..files import atomic_write, make_folder
from ..validate import Range, inside, load_json, raised_as, read_text
from .video import count_frames

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".3gp")
CLASS_LISTS = Path(__file__).with_name("classes")  # the official class lists, package data
MAX_ANNOTATION_BYTES = 2**30  # Something-Something V2's train JSON and Kinetics-700's CSV: ~30 MB
SECONDS = Range(0, 10**7)  # a Kinetics clip's time_start / time_end
EXAMPLES = 3  # problems shown per split in the summary (all are in problems.txt)


class PrepareError(ActionrecError):
    """An annotation folder or file that does not follow the dataset's official format."""


@dataclass(frozen=True)
class Item:
    name: str  # media path under the media folder (Kinetics: the clip's file name, no extension)
    label: int | None  # None: an unlabelled test item
    where: str  # "file:line" (or "file: item N") of its annotation


@dataclass
class Annotations:
    classes: list[str]
    splits: dict[str, list[Item]]  # train, val and, where the dataset has one, unlabelled test


@dataclass(frozen=True)
class DatasetSpec:
    read: Callable[[Path, int], Annotations]  # (annotation folder, official split number)
    media_dirs: tuple[str, ...] = ()  # folders the official archives unpack into, tried first
    kind: str = "video"  # video | rawframes
    frame_template: str | None = None  # rawframes: file names inside a frame folder
    anywhere: bool = False  # media found by file name anywhere under --media (Kinetics)
    splits: int = 1  # official train/test splits (UCF101, HMDB51: 3)


# -- reading the official files ----------------------------------------------------------------------
def _find(folder: Path, *names: str, prefer: str = "", required: bool = True) -> Path | None:
    """The first of ``names`` in ``folder`` or in one of its sub-folders (an unpacked archive);
    ``prefer`` picks among sub-folders that hold the same name (``kinetics400/train.csv``)."""
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    for name in names:
        if (folder / name).is_file():
            return folder / name
        found = [d / name for d in subdirs if (d / name).is_file()]
        if len(found) > 1 and prefer:
            found = [p for p in found if prefer in p.parent.name] or found
        if len(found) > 1:
            raise PrepareError(f"{folder}: {name} is in several folders "
                               f"({', '.join(str(p.parent.name) for p in found)}); give "
                               "the annotation folder as one of them")
        if found:
            return found[0]
    if required:
        raise PrepareError(f"{folder}: annotation file not found: expected "
                           + " or ".join(names) + " (in it or in a folder inside it)")
    return None


def _text(path: Path) -> str:
    return read_text(path, max_bytes=MAX_ANNOTATION_BYTES)


def _lines(path: Path) -> Iterator[tuple[str, str]]:
    """``(where, line)`` of each non-blank line, stripped (CRLF and trailing spaces included)."""
    for number, raw in enumerate(_text(path).splitlines(), start=1):
        if raw.strip():
            yield f"{path}:{number}", raw.strip()


def _json(path: Path):
    return load_json(_text(path), str(path), max_bytes=MAX_ANNOTATION_BYTES)


_TEXT, _ID, _INT = "a string", "a string or an integer", "an integer"


def _is(value, kind: str) -> bool:
    if kind == _INT or (kind == _ID and not isinstance(value, str)):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str) and bool(value)


def _json_items(path: Path, fields: dict[str, str]) -> Iterator[tuple[str, dict]]:
    """``(where, item)`` of a JSON list of objects that each have ``fields`` (name -> kind: a
    non-empty string, a string or an integer id, an integer)."""
    data = _json(path)
    if not isinstance(data, list):
        raise PrepareError(f"{path}: expected a JSON list of items, got {type(data).__name__}")
    for i, item in enumerate(data):
        where = f"{path}: item {i}"
        bad = [f"{k} ({kind})" for k, kind in fields.items()
               if not isinstance(item, dict) or not _is(item.get(k), kind)]
        if bad:
            raise PrepareError(f"{where}: expected an object with {', '.join(bad)}, got "
                               f"{json.dumps(item)[:120]}")
        yield where, item


def _class_names(names: list[str], source: Path) -> list[str]:
    """``names`` as a label map can hold them: at least one, each one non-blank line, none
    twice."""
    if not names:
        raise PrepareError(f"{source}: no classes; expected the dataset's class list")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name.strip() or len(name.splitlines()) != 1 or name != name.strip() or "\0" in name:
            raise PrepareError(f"{source}: class {i} {name!r} is not one non-blank line of text")
        if name in seen:
            raise PrepareError(f"{source}: class {name!r} is given twice (classes {seen[name]} "
                               f"and {i})")
        seen[name] = i
    return names


def official_classes(dataset: str) -> list[str]:
    """The official class list of ``dataset`` (line ``i`` is class ``i``), shipped as package
    data."""
    return _text(CLASS_LISTS / f"{dataset}.txt").splitlines()


def _class_lookup(classes: list[str], source: Path) -> Callable[[str, str], int]:
    index = {name: i for i, name in enumerate(_class_names(classes, source))}

    def lookup(name: str, where: str) -> int:
        if name not in index:
            raise PrepareError(f"{where}: class {name!r} is not one of the {len(classes)} "
                               f"classes of {source}")
        return index[name]

    return lookup


def read_sthv2(folder: Path, split: int) -> Annotations:
    labels_file = _find(folder, "something-something-v2-labels.json")
    mapping = _json(labels_file)
    if not isinstance(mapping, dict) or not all(
            _is(v, _ID) and re.fullmatch("[0-9]{1,9}", str(v)) for v in mapping.values()):
        raise PrepareError(f"{labels_file}: expected an object of class name -> index string")
    classes = [name for name, _ in sorted(mapping.items(), key=lambda kv: int(kv[1]))]
    if sorted(int(v) for v in mapping.values()) != list(range(len(classes))):
        raise PrepareError(f"{labels_file}: class indices are not 0..{len(classes) - 1}")
    lookup = _class_lookup(classes, labels_file)
    splits = {}
    for split_name, file in (("train", "train"), ("val", "validation")):
        path = _find(folder, f"something-something-v2-{file}.json")
        splits[split_name] = [
            Item(f"{item['id']}.webm",
                 lookup(item["template"].replace("[", "").replace("]", ""), where), where)
            for where, item in _json_items(path, {"id": _ID, "template": _TEXT})]
    test = _find(folder, "something-something-v2-test.json", required=False)
    if test:
        splits["test"] = [Item(f"{item['id']}.webm", None, where)
                          for where, item in _json_items(test, {"id": _ID})]
    return Annotations(classes, splits)


def read_20bn_csv(prefix: str) -> Callable[[Path, int], Annotations]:
    """Something-Something V1 (``something-something-v1``) and Jester (``jester-v1``)."""

    def read(folder: Path, split: int) -> Annotations:
        labels_file = _find(folder, f"{prefix}-labels.csv")
        classes = [line for _, line in _lines(labels_file)]
        lookup = _class_lookup(classes, labels_file)

        def items(path: Path, labelled: bool) -> list[Item]:
            out = []
            for where, line in _lines(path):
                fields = line.split(";")
                if len(fields) != (2 if labelled else 1) or not fields[0]:
                    raise PrepareError(f"{where}: expected '{'id;class name' if labelled else 'id'}'"
                                       f", got {line!r}")
                out.append(Item(fields[0], lookup(fields[1], where) if labelled else None, where))
            return out

        splits = {"train": items(_find(folder, f"{prefix}-train.csv"), True),
                  "val": items(_find(folder, f"{prefix}-validation.csv"), True)}
        test = _find(folder, f"{prefix}-test.csv", required=False)
        if test:
            splits["test"] = items(test, False)
        return Annotations(classes, splits)

    return read


def read_kinetics(version: int) -> Callable[[Path, int], Annotations]:
    def names(kind: str) -> tuple[str, ...]:
        return (f"{kind}.csv", f"kinetics_{version}_{kind}.csv", f"kinetics-{version}_{kind}.csv",
                f"kinetics{version}_{kind}.csv", f"kinetics_{kind}.csv")

    def rows(path: Path, labelled: bool) -> list[tuple[str, str, str | None]]:
        lines = _text(path).splitlines()
        need = ("label",) * labelled + ("youtube_id", "time_start", "time_end")
        reader = csv.DictReader(lines)
        try:
            if reader.fieldnames is None or any(k not in reader.fieldnames for k in need):
                raise PrepareError(f"{path}:1: expected a header with {','.join(need)}, got "
                                   f"{lines[0] if lines else 'an empty file'!r}")
            out = []
            for row in reader:
                where = f"{path}:{reader.line_num}"
                start, end = (int(SECONDS.parse(row[k], f"{where}: {k}"))
                              for k in ("time_start", "time_end"))
                if not row["youtube_id"] or (labelled and not row["label"]):
                    raise PrepareError(f"{where}: empty youtube_id or label")
                out.append((where, f"{row['youtube_id']}_{start:06d}_{end:06d}",
                            row["label"] if labelled else None))
        except csv.Error as e:
            raise PrepareError(f"{path}:{reader.line_num}: not a valid CSV line: {e}") from None
        return out

    def read(folder: Path, split: int) -> Annotations:
        prefer = str(version)
        train = rows(_find(folder, *names("train"), prefer=prefer), True)
        val = rows(_find(folder, *names("validate"), *names("val"), prefer=prefer), True)
        classes = official_classes(f"kinetics{version}")
        lookup = _class_lookup(classes, CLASS_LISTS / f"kinetics{version}.txt")
        splits = {name: [Item(clip, lookup(label, where), where) for where, clip, label in part]
                  for name, part in (("train", train), ("val", val))}
        test = _find(folder, *names("test"), prefer=prefer, required=False)
        if test:
            splits["test"] = [Item(clip, None, where) for where, clip, _ in rows(test, False)]
        return Annotations(classes, splits)

    return read


def read_ucf101(folder: Path, split: int) -> Annotations:
    class_file = _find(folder, "classInd.txt")
    classes = []
    for where, line in _lines(class_file):
        fields = line.split()
        if len(fields) != 2 or fields[0] != str(len(classes) + 1):
            raise PrepareError(f"{where}: expected '{len(classes) + 1} ClassName', got {line!r}")
        classes.append(fields[1])

    lookup = _class_lookup(classes, class_file)

    def items(path: Path, labelled: bool) -> list[Item]:
        out = []
        for where, line in _lines(path):
            fields = line.split()
            if len(fields) != (2 if labelled else 1) or "/" not in fields[0]:
                form = "Class/v_name.avi" + " N" * labelled
                raise PrepareError(f"{where}: expected '{form}', got {line!r}")
            label = lookup(fields[0].split("/")[0], where)
            if labelled and fields[1] != str(label + 1):
                raise PrepareError(f"{where}: label {fields[1]} is not the folder's class "
                                   f"{fields[0].split('/')[0]} ({label + 1} in {class_file})")
            out.append(Item(fields[0], label, where))
        return out

    return Annotations(classes, {
        "train": items(_find(folder, f"trainlist{split:02d}.txt"), True),
        "val": items(_find(folder, f"testlist{split:02d}.txt"), False)})


def read_hmdb51(folder: Path, split: int) -> Annotations:
    suffix = f"_test_split{split}.txt"
    split_dir = folder / "testTrainMulti_7030_splits"
    split_dir = split_dir if split_dir.is_dir() else folder
    files = {f.name[: -len(suffix)]: f for f in split_dir.glob(f"*{suffix}")}
    if not files:
        raise PrepareError(f"{split_dir}: no <class>{suffix} files (the official "
                           "testTrainMulti_7030_splits)")
    classes = _class_names(sorted(files), split_dir)  # climb before climb_stairs, unlike the files
    splits: dict[str, list[Item]] = {"train": [], "val": []}
    for label, name in enumerate(classes):
        for where, line in _lines(files[name]):
            fields = line.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise PrepareError(f"{where}: expected 'name.avi F' with F 0 (unused), 1 (train) "
                                   f"or 2 (test), got {line!r}")
            if fields[1] != "0":
                splits["train" if fields[1] == "1" else "val"].append(
                    Item(f"{name}/{fields[0]}", label, where))
    return Annotations(classes, splits)


def read_diving48(folder: Path, split: int) -> Annotations:
    vocab_file = _find(folder, "Diving48_vocab.json")
    vocab = _json(vocab_file)
    if not isinstance(vocab, list) or not all(
            isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in vocab):
        raise PrepareError(f"{vocab_file}: expected a list of classes, each a list of attributes")
    classes = _class_names(["+".join(c) for c in vocab], vocab_file)

    def items(path: Path) -> list[Item]:
        out = []
        fields = {"vid_name": _TEXT, "label": _INT, "start_frame": _INT, "end_frame": _INT}
        for where, item in _json_items(path, fields):
            label, start, end = item["label"], item["start_frame"], item["end_frame"]
            if not (0 <= label < len(classes) and 0 <= start < end):
                raise PrepareError(f"{where}: expected a label in [0, {len(classes)}) and "
                                   f"0 <= start_frame < end_frame, got {json.dumps(item)}")
            out.append(Item(f"{item['vid_name']}.mp4", label, where))
        return out

    return Annotations(classes, {"train": items(_find(folder, "Diving48_V2_train.json")),
                                 "val": items(_find(folder, "Diving48_V2_test.json"))})


_SOMETHING_FRAMES = dict(kind="rawframes", frame_template="{:05d}.jpg")
DATASETS: dict[str, DatasetSpec] = {
    "sthv1": DatasetSpec(read_20bn_csv("something-something-v1"),
                         ("20bn-something-something-v1",), **_SOMETHING_FRAMES),
    "sthv2": DatasetSpec(read_sthv2, ("20bn-something-something-v2",)),
    "kinetics400": DatasetSpec(read_kinetics(400), anywhere=True),
    "kinetics600": DatasetSpec(read_kinetics(600), anywhere=True),
    "kinetics700": DatasetSpec(read_kinetics(700), anywhere=True),
    "jester": DatasetSpec(read_20bn_csv("jester-v1"), ("20bn-jester-v1",), **_SOMETHING_FRAMES),
    "ucf101": DatasetSpec(read_ucf101, ("UCF-101",), splits=3),
    "hmdb51": DatasetSpec(read_hmdb51, ("hmdb51_org", "hmdb51"), splits=3),
    "diving48": DatasetSpec(read_diving48, ("rgb",)),
}


# -- finding the media --------------------------------------------------------------------------------
def _index_by_stem(media: Path) -> dict[str, str]:
    """Video file name without extension -> path relative to ``media``, for every video under it
    (sorted walk: a clip stored twice resolves to the same copy every run)."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(media):
        dirnames.sort()
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                found.setdefault(stem, os.path.relpath(os.path.join(dirpath, name), media))
    return found


def _shown(path: str) -> str:
    """``path`` printable: bytes that are not UTF-8 as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _utf8(path: str, where: str) -> str:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise PrepareError(f"{where}: {_shown(path)!r} has a name that is not UTF-8; rename it "
                           "to UTF-8 (lists and data.yaml are UTF-8 text)") from None
    return path


def _entry(rel: str, where: str) -> str:
    """``rel`` if a list line can hold it as a path: UTF-8, one line, no surrounding spaces, not
    read as a comment, no NUL."""
    _utf8(rel, where)
    if len(rel.splitlines()) != 1 or rel != rel.strip() or rel.startswith("#") or "\0" in rel:
        raise PrepareError(f"{where}: {rel!r} cannot be a list entry; expected a path of one "
                           "line, without surrounding spaces, not starting with #")
    return rel


def _locator(spec: DatasetSpec, media: Path) -> Callable[[Item], tuple[str | None, int | None, str]]:
    """``item -> (path relative to media or None, frame count for rawframes, why missing)``; an
    item whose path would leave ``media`` or cannot be written into a list is a PrepareError."""
    if spec.anywhere:
        index = _index_by_stem(media)

        def find(item: Item):
            rel = index.get(item.name)
            return (_entry(rel, item.where) if rel is not None else None, None,
                    "no video of that name in the media folder")

        return find
    base = next((media / d for d in spec.media_dirs if (media / d).is_dir()), media)

    def locate(item: Item):
        with raised_as(PrepareError):
            path = inside(base, item.name, item.where, resolve=False)
        rel = _entry(os.path.relpath(path, media), item.where)
        if spec.kind == "video":
            return (rel, None, "") if path.is_file() else (None, None, f"{rel} not found")
        if not path.is_dir():
            return None, None, f"{rel}/ not found"
        frames = count_frames(str(path), spec.frame_template)
        if not frames:
            return None, None, f"{rel}/ has no {spec.frame_template.format(1)}"
        return rel, frames, ""

    return locate


# -- items annotated twice ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    kind: str  # duplicate (dropped) | conflict (another label; dropped) | overlap (kept)
    split: str
    item: Item
    first: Item  # the occurrence that came before, in ``first_split``
    first_split: str

    def line(self) -> str:
        return (f"{self.kind}\t{self.split}\t{self.item.name}\t({self.item.where}; first in "
                f"{self.first_split} at {self.first.where})")


def _deduplicate(splits: dict[str, list[Item]]) -> tuple[dict[str, list[Item]], list[Problem]]:
    """Each split without its repeated items (the first kept), and every item met before: in the
    same split (duplicate, or conflict where the label differs) or in an earlier split
    (overlap, kept)."""
    first: dict[str, tuple[str, Item]] = {}  # name -> the split and item it was first met in
    kept: dict[str, list[Item]] = {}
    problems = []
    for split, items in splits.items():
        here: dict[str, Item] = {}
        kept[split] = []
        for item in items:
            if item.name in here:
                other = here[item.name]
                kind = "duplicate" if other.label == item.label else "conflict"
                problems.append(Problem(kind, split, item, other, split))
                continue
            here[item.name] = item
            kept[split].append(item)
            first_split, earlier = first.setdefault(item.name, (split, item))
            if first_split != split:
                problems.append(Problem("overlap", split, item, earlier, first_split))
    return kept, problems


# -- writing ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitSummary:
    name: str  # train | val | test (unlabelled)
    items: int  # annotated
    written: int  # with media, in the list
    dropped: int = 0  # annotated again in this split (problems.txt)
    overlap: tuple[tuple[str, int], ...] = ()  # (earlier split, items also in it), kept
    examples: tuple[str, ...] = ()  # the first few problems, each one line

    def line(self) -> str:
        text = (f"{self.name}: {self.items} items, {self.written} written, "
                f"{self.items - self.dropped - self.written} missing")
        if self.dropped:
            text += f", {self.dropped} annotated twice (dropped)"
        for other, count in self.overlap:
            text += (f"; warning: {count} also in {other}, kept (they inflate every {self.name} "
                     "number)")
        return text


def _write(path: str | os.PathLike, lines: list[str]) -> None:
    atomic_write(path, "".join(line + "\n" for line in lines).encode(), error=PrepareError)


def prepare(dataset: str, annotations: str | os.PathLike, media: str | os.PathLike,
            out: str | os.PathLike, *, split: int = 1) -> list[SplitSummary]:
    """Convert ``dataset``'s official annotations into lists under ``out`` (module docstring);
    one SplitSummary per split written."""
    if dataset not in DATASETS:
        raise PrepareError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    if not 1 <= split <= spec.splits:
        raise PrepareError(f"{dataset} has {spec.splits} official split"
                           f"{'s' if spec.splits > 1 else ''}; split {split} is not one of them")
    annotations, media, out = Path(annotations), Path(media), Path(out)
    for what, folder in (("annotation", annotations), ("media", media)):
        if not folder.is_dir():
            raise PrepareError(f"{folder}: {what} folder not found")
    _utf8(str(media.resolve()), "the media folder")
    if out.exists() and not out.is_dir():
        raise PrepareError(f"{out}: a file; expected a folder to write into")
    ann = spec.read(annotations, split)
    splits, problems = _deduplicate(ann.splits)
    locate = _locator(spec, media)
    make_folder(out, error=PrepareError)
    summaries, missing_lines = [], []
    files = {"train": "train.txt", "val": "val.txt", "test": "unlabelled.txt"}
    for name, items in splits.items():
        lines = []
        for item in items:
            rel, frames, why = locate(item)
            if rel is None:
                missing_lines.append(f"{name}\t{item.name}\t{why}\t({item.where})")
                continue
            fields = [rel] + ([str(frames)] if frames is not None else [])
            lines.append(" ".join(fields + ([str(item.label)] if item.label is not None else [])))
        _write(out / files[name], lines)
        mine = [p for p in problems if p.split == name]
        overlap = tuple((other, sum(p.first_split == other for p in mine if p.kind == "overlap"))
                        for other in splits if other != name)
        summaries.append(SplitSummary(
            name, len(ann.splits[name]), len(lines), sum(p.kind != "overlap" for p in mine),
            tuple(o for o in overlap if o[1]), tuple(p.line() for p in mine[:EXAMPLES])))
    _write(out / "labels.txt", ann.classes)
    _write(out / "missing.txt", ["# split\titem\twhy\t(annotation)", *missing_lines])
    _write(out / "problems.txt", ["# kind\tsplit\titem\t(annotation; first occurrence)",
                                  *(p.line() for p in problems)])
    _write(out / "data.yaml", data_yaml(dataset, spec, media).splitlines())
    return summaries


def data_yaml(dataset: str, spec: DatasetSpec, media: Path) -> str:
    """The ``data:`` section a recipe needs (``actionrec train CONFIG --data data.yaml``)."""
    data = {"root": str(media.resolve()), "train_list": "train.txt", "val_list": "val.txt",
            "label_map": "labels.txt", "kind": spec.kind}
    if spec.frame_template:
        data["frame_template"] = spec.frame_template
    return data_file_text(data, f"written by `actionrec data prepare {dataset}`: use it with "
                                "`actionrec train CONFIG --data <this file>`;\nrelative paths "
                                "are relative to this file's folder")
