"""A timeline drawn onto its video: each frame labelled with the best class of the window centred
nearest it, re-encoded as H.264."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw

from ..data.video import X264_REPEATABLE, open_video
from .windows import Timeline, decoded_frames, frame_rate, top


def write_overlay(timeline: Timeline, names: list[str], out: str) -> int:
    """Re-encode the video to ``out`` (H.264 MP4, its frame rate and size, even sides) with the
    label and score of the window centred nearest each frame drawn on it; returns the frames
    written. Frames nearest a window without a prediction get no label."""
    centres = np.array([(w.start + w.end) / 2 for w in timeline.windows])
    midpoints = (centres[1:] + centres[:-1]) / 2  # frame time -> nearest centre, by bisection
    labels = []  # each window's best class and score, drawn on its frames
    for w in timeline.windows:
        (name, prob), = top(w.probs, names, 1) if w.probs is not None else ((None, 0.0),)
        labels.append(name and f"{name} {100 * prob:.0f}%")
    written = 0
    with open_video(timeline.path) as src, av.open(str(out), "w", format="mp4") as dst:
        stream = src.streams.video[0]
        rate = frame_rate(stream)
        video = None
        for index, frame in decoded_frames(src, stream, 0, []):
            if video is None:
                h, w = frame.shape[:2]
                video = dst.add_stream("libx264", rate=rate)
                video.height, video.width, video.pix_fmt = h - h % 2, w - w % 2, "yuv420p"
                video.options = {"crf": "20", **X264_REPEATABLE}
            image = Image.fromarray(frame[: video.height, : video.width])
            text = labels[int(np.searchsorted(midpoints, index / timeline.fps))]
            if text is not None:
                draw = ImageDraw.Draw(image)
                box = draw.textbbox((4, 4), text)
                draw.rectangle((0, 0, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
                draw.text((4, 4), text, fill=(255, 255, 255))
            out_frame = av.VideoFrame.from_image(image)
            out_frame.pts, out_frame.time_base = written, 1 / Fraction(rate)
            dst.mux(video.encode(out_frame))
            written += 1
        if video is not None:
            dst.mux(video.encode())
    return written
