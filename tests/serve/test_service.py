"""The server's checks of an upload's length, without the web layer: the length a container
states is checked before a frame is decoded, counting the frames of a container without a count
stops at the request's deadline, and a video with no length at all is refused."""

import time

import pytest

from actionrec.data.synthetic import write_video
from actionrec.serve.service import DeadlinePassed, Limits, Refused, Service, length_s
from tests.helpers import FPS, scenes


@pytest.fixture(scope="module")
def service(trained_tsn):
    return Service(trained_tsn, device="cpu", limits=Limits(max_duration_s=30))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """60 s and 20 s in Matroska (no frame count, no stated length) and 60 s in MP4 (both)."""
    root = tmp_path_factory.mktemp("lengths")
    for name, labels in (("long", list(range(10)) * 3), ("short", list(range(10)))):
        write_video(root / f"{name}.mkv", scenes(labels, 50, size=16), fps=FPS)
    write_video(root / "long.mp4", scenes(list(range(10)) * 3, 50, size=16), fps=FPS)
    return root


def test_a_stated_length_over_the_limit_is_refused_before_any_frame_is_counted(service, videos):
    # the deadline has passed already: only a check made before counting can answer 413
    with pytest.raises(Refused) as refused:
        service.check(str(videos / "long.mp4"), deadline=time.monotonic())
    assert refused.value.status == 413
    assert refused.value.reason.startswith("the video is 60.0 s long; this server takes at most 30")


def test_counting_frames_stops_at_the_deadline_and_at_the_limit(service, videos):
    with pytest.raises(DeadlinePassed):
        service.check(str(videos / "short.mkv"), deadline=time.monotonic())
    video = service.check(str(videos / "short.mkv"))
    assert video["frames"] == 500 and video["duration_s"] == 20.0
    with pytest.raises(Refused) as refused:  # raised by the count, which it stops: 1500 frames
        service.check(str(videos / "long.mkv"))
    assert refused.value.status == 413
    assert "longer than 30 s (more than 750 frames counted)" in refused.value.reason


def test_a_video_without_rate_or_length_has_no_length_a_limit_can_check():
    assert length_s(50, 25.0, None) == 2.0 and length_s(50, 0.0, 3.5) == 3.5
    with pytest.raises(Refused) as refused:
        length_s(50, 0.0, None)
    assert refused.value.status == 422
