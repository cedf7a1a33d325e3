"""A timeline as files and rows: ``<video>.timeline.json`` and ``.csv``, the rows the live output
and the server give, and times as ``h:mm:ss.sss``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .windows import TOPK, Timeline, Window, top


def seconds(t: float) -> str:
    """``t`` seconds as ``h:mm:ss.sss`` (``-`` when not finite)."""
    return f"{int(t // 3600):d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}" if math.isfinite(t) else "-"


def window_row(w: Window, names: list[str], k: int) -> dict:
    """A window as the timeline files and live output give it: start, end, top-k (or None and
    why it is missing)."""
    return {"start": round(w.start, 3), "end": round(w.end, 3),
            "top": [{"class": c, "prob": p} for c, p in top(w.probs, names, k)]
            if w.probs is not None else None, **({"missing": w.missing} if w.missing else {})}


def timeline_report(timeline: Timeline, names: list[str], k: int) -> dict:
    """The timeline as ``<video>.timeline.json`` and the server give it: rate, window, stride,
    the whole-video top-k (mean over windows), gaps and a row per window."""
    probs = timeline.video_probs()
    return {"video": timeline.path, "fps": timeline.fps, "window_s": timeline.window,
            "stride_s": timeline.stride,
            "video_top": [{"class": c, "prob": p} for c, p in top(probs, names, k)]
            if probs is not None else [],
            "gaps": [{"start": round(a, 3), "end": round(b, 3), "reason": r}
                     for a, b, r in timeline.gaps],
            "windows": [window_row(w, names, k) for w in timeline.windows]}


def write_timeline(timeline: Timeline, names: list[str], k: int, stem: Path) -> dict:
    """``<stem>.json`` (``timeline_report``) and ``<stem>.csv`` (a row per window: start, end,
    then class and score of each of the top ``k``, at most the classes there are; ``missing`` when
    none)."""
    k = min(TOPK.check(k, "topk"), len(names))
    report = timeline_report(timeline, names, k)
    stem.parent.mkdir(parents=True, exist_ok=True)
    report["files"] = [str(stem.with_name(f"{stem.name}.{ext}")) for ext in ("json", "csv")]
    with open(report["files"][1], "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["start", "end", *[f"{x}{i + 1}" for i in range(k) for x in ("class", "score")],
                      "missing"])
        for row in report["windows"]:
            cells = [c for t in row["top"] or [] for c in (t["class"], f"{t['prob']:.6f}")]
            out.writerow([row["start"], row["end"], *cells, *[""] * (2 * k - len(cells)),
                          row.get("missing", "")])
    Path(report["files"][0]).write_text(json.dumps(report, indent=2) + "\n")
    return report
