import os
import signal
import time

import numpy as np
import pytest

from actionrec.data.video import FrameFolderReader, VideoReader, open_clip_source, probe
from actionrec.errors import VideoError
from tests.conftest import SHARED_CLIPS, decode_index


@pytest.mark.parametrize("kind", ["mp4-h264", "mkv-h264", "avi-mpeg4"])
def test_frame_exact_random_access(index_videos, kind):
    path, n = index_videos[kind]
    reader = VideoReader(path)
    assert reader.num_frames == n
    rng = np.random.default_rng(0)
    requests = [
        list(range(n)),
        [n - 1, 0, n // 2],  # unsorted
        [5, 5, 5, 90, 5],  # repeats
        sorted(rng.choice(n, 12, replace=False).tolist()),
        rng.integers(0, n, 30).tolist(),
        [n - 1],
    ]
    for idx in requests:
        frames = reader.read(idx)
        assert frames.shape == (len(idx), 64, 64, 3) and frames.dtype == np.uint8
        assert [decode_index(f) for f in frames] == idx


def test_sequential_pass_and_seeking(index_videos):
    # mp4: keyframes every 10 frames, so a late frame costs a seek and a few decodes.
    mp4 = VideoReader(index_videos["mp4-h264"][0])
    assert decode_index(mp4.read([141])[0]) == 141
    assert mp4.frames_decoded <= 10
    # dense sorted indices: one pass, each frame decoded once
    mp4.read(list(range(0, 40, 2)))
    assert mp4.frames_decoded == 39
    # AVI timestamps are not trusted: one sequential pass up to the last wanted frame
    avi = VideoReader(index_videos["avi-mpeg4"][0])
    assert decode_index(avi.read([141, 3])[0]) == 141
    assert avi.frames_decoded == 142


def test_mkv_frame_count_by_decoding(index_videos):
    reader = VideoReader(index_videos["mkv-h264"][0])
    assert reader.reported_frames is None
    assert reader.num_frames == 150


@pytest.mark.parametrize("name,frames", sorted(SHARED_CLIPS.items()))
def test_shared_clips_frame_counts(shared_data, name, frames):
    info = probe(shared_data / "videos" / name)
    assert info.num_frames == frames
    assert info.fps > 0 and info.width > 0 and info.codec in ("h264", "mpeg4")


@pytest.mark.parametrize("name", ["mmaction2/demo_demo.mp4", "decord/flipping_a_pancake.mkv",
                                  "mmaction2/tests_data_test.mp4"])
def test_shared_clips_seeking_matches_sequential(shared_data, name):
    reader = VideoReader(shared_data / "videos" / name)
    n = reader.num_frames
    everything = reader.read(range(n))
    idx = [n - 1, 3, n // 2, n - 40, 200 % n]
    np.testing.assert_array_equal(reader.read(idx), everything[idx])


def test_decode_time_resize_of_1080p(shared_data):
    reader = VideoReader(shared_data / "videos/mmaction2/demo_demo_skeleton.mp4")
    assert (reader.info.width, reader.info.height) == (1920, 1080)
    frames = reader.read([0, 71], short_side=256)
    assert frames.shape == (2, 256, 455, 3)


def test_raw_frame_folder(shared_data):
    folder = shared_data / "rawframes/mmaction2"
    reader = open_clip_source(folder)
    assert isinstance(reader, FrameFolderReader) and reader.num_frames == 10
    frames = reader.read([9, 0, 9])
    assert frames.shape == (3, 240, 320, 3)
    np.testing.assert_array_equal(frames[0], frames[2])
    flow = FrameFolderReader(folder, template="x_{:05d}.jpg")
    assert flow.num_frames == 5 and flow.read([4]).shape == (1, 240, 320, 3)


def test_bad_inputs_name_the_file(tmp_path, index_videos, shared_data):
    with pytest.raises(VideoError, match="missing.mp4: file not found"):
        VideoReader(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4: empty file"):
        VideoReader(tmp_path / "empty.mp4")
    (tmp_path / "text.mp4").write_text("not a video\n" * 100)
    with pytest.raises(VideoError, match="text.mp4: cannot open"):
        VideoReader(tmp_path / "text.mp4")
    reader = VideoReader(index_videos["mp4-h264"][0])
    with pytest.raises(IndexError, match=r"frame index 150 is outside \[0, 150\)"):
        reader.read([0, 150])
    with pytest.raises(VideoError, match="frame folder not found"):
        FrameFolderReader(tmp_path / "nope")
    with pytest.raises(VideoError, match="no frame named img_00001.jpg"):
        FrameFolderReader(tmp_path)
    too_long = FrameFolderReader(shared_data / "rawframes/mmaction2", num_frames=11)
    with pytest.raises(VideoError, match="img_00011.jpg: cannot read frame 10"):
        too_long.read([10])


def test_a_forked_process_reads_frames_after_its_parent_did(shared_data):
    """PyAV keeps one scaler per thread: a process forked after its parent converted frames (a
    DataLoader worker) must not inherit a multi-threaded one, whose threads it lacks."""
    path = shared_data / "videos/mmaction2/tests_data_rawvideo_dataset_part_0.mp4"
    expected = VideoReader(path).read([0, 5], short_side=64)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only with the parent's frames
        try:
            os._exit(0 if np.array_equal(VideoReader(path).read([0, 5], short_side=64), expected)
                     else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked process waited 30 s on its reader")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(done[1]) == 0
