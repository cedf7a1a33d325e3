"""``actionrec convert``: a checkpoint published in another code base's layout, as ours.

The source is read safely (``read_weights``: safetensors, or a pickle of tensors only, with
``weights_only=True``), its keys renamed by its layout (``models/layouts.py``; detected from the
keys with ``--from auto``), its tensors fitted and loaded into the model the config or flags
describe, and the model written as an actionrec checkpoint (weights, config and class names).
Nothing is written when any tensor but the classifier's is missing, left over or of another
shape, unless ``partial``: a conversion either computes what the source computed or says why not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from ..config import Config
from ..data.datasets import read_label_map
from ..errors import CheckpointError
from ..models.layouts import LAYOUTS, detect_layout
from ..models.pretrained import LoadReport, load_pretrained, read_weights
from .build import model_from_config
from .checkpoint import save_weights

log = logging.getLogger(__name__)
HEAD = "fc."  # our classifier's keys


@dataclass
class Conversion:
    layout: str
    report: LoadReport
    dropped: list[str]  # source keys the layout does not map
    differs: str | None = None  # what of the architecture no renaming bridges

    def gaps(self) -> list[str]:
        """What keeps the converted model from computing the source's function: every tensor
        not loaded, left over or mis-shaped (the classifier's aside), and any architectural
        difference."""
        r = self.report
        return ([f"architecture: {self.differs}"] if self.differs else []) + (
                [f"missing {k}" for k in r.missing if not k.startswith(HEAD)]
                + [f"left over {k}" for k in r.unexpected + self.dropped if not k.startswith(HEAD)]
                + [f"shape {k}" for k in r.mismatched if not k.startswith(HEAD)])

    def summary(self) -> str:
        lines = [f"layout {self.layout} ({LAYOUTS[self.layout].source})",
                 f"mapped: {self.report.summary()}"]
        if self.dropped:
            lines.append(f"not in the layout ({len(self.dropped)}): {', '.join(self.dropped[:6])}"
                         + (" ..." if len(self.dropped) > 6 else ""))
        if self.differs:
            lines.append(f"architecture: {self.differs}")
        return "\n".join(lines)


def layout_of(path: str | Path, source: dict, layout: str) -> str:
    """``layout``, or with ``auto`` the one detected from the keys (an error naming the file)."""
    if layout != "auto":
        return layout
    found = detect_layout(set(source))
    if found is None:
        raise CheckpointError(f"{path}: its keys ({', '.join(list(source)[:3])}, ...) are in none "
                              f"of the layouts {', '.join(LAYOUTS)}; name one with {{layout}}",
                              {"layout": "layout="})
    return found


def convert_weights(path: str | Path, source: dict, model: nn.Module, layout: str = "auto", *,
                    backbone: str = "") -> Conversion:
    """Load ``source``, the tensors of ``path`` (in ``layout``), into ``model`` (of trunk
    ``backbone``) in place; what fitted, what did not."""
    name = layout_of(path, source, layout)
    mapped, dropped = {}, []
    for key, value in source.items():
        ours = LAYOUTS[name].rename(key)
        if ours is None:
            dropped.append(key)
        else:
            mapped[ours] = value
    return Conversion(name, load_pretrained(model, mapped, source=str(path)), dropped,
                      LAYOUTS[name].differs(backbone))


def source_classes(path: str | Path, source: dict, layout: str) -> int | None:
    """The row count of the classifier of ``source`` (read from ``path``), if it has one."""
    rename = LAYOUTS[layout_of(path, source, layout)].rename
    weights = [v for k, v in source.items() if rename(k) == HEAD + "weight" and v.dim() == 2]
    return int(weights[0].shape[0]) if weights and weights[0].shape[0] else None


# the options convert_checkpoint's errors name, as a Python caller gives them
OPTIONS = {"layout": "layout=", "classes": "classes=", "labels": "labels=",
           "partial": "partial=True", "model": "cfg.model.name", "backbone": "cfg.model.backbone"}


def convert_checkpoint(src: str | Path, out: str | Path, cfg: Config, *, layout: str = "auto",
                       labels: str | None = None, classes: int | None = None,
                       partial: bool = False) -> Conversion:
    """``src`` as an actionrec checkpoint at ``out`` for ``cfg.model``; the class names come from
    ``labels`` (a label map), else are numbered, their count from ``classes``, else the labels,
    else the source's classifier. ``out`` is checked before ``src`` is read."""
    out = Path(out)
    check_out(out)
    source = read_weights(src)  # once: a checkpoint can be large
    names = read_label_map(labels) if labels else None
    count = classes or (len(names) if names else None) or source_classes(src, source, layout)
    if count is None:
        raise CheckpointError(f"{src}: no classifier found to count the classes; give {{classes}} "
                              "or {labels}", OPTIONS)
    if names is not None and len(names) != count:
        raise CheckpointError(f"{{labels}} {labels} lists {len(names)} classes, {{classes}} "
                              f"{count}", OPTIONS)
    names = names or [str(i) for i in range(count)]
    cfg = replace(cfg, model=replace(cfg.model, pretrained=None))
    model = model_from_config(cfg, count)
    conversion = convert_weights(src, source, model, layout, backbone=cfg.model.backbone)
    gaps = conversion.gaps()
    if gaps and not partial:
        raise CheckpointError(
            f"{src}: not written: {len(gaps)} differences keep {cfg.model.name} from computing "
            "what the source computed "
            f"({'; '.join(gaps[:4])}{' ...' if len(gaps) > 4 else ''}); check {{model}}, "
            "{backbone} and {layout}, or give {partial} to write it anyway", OPTIONS)
    save_weights(out, model, cfg, names)
    return conversion


def check_out(out: Path) -> None:
    """``CheckpointError`` unless ``out`` names a ``.safetensors`` file in a folder that exists."""
    if out.suffix != ".safetensors":
        raise CheckpointError(f"{out}: expected a .safetensors file name (actionrec checkpoints "
                              "are safetensors)")
    if out.is_dir():
        raise CheckpointError(f"{out}: is a folder; expected a .safetensors file name")
    if not out.parent.is_dir():
        raise CheckpointError(f"{out}: the folder {out.parent} does not exist")
