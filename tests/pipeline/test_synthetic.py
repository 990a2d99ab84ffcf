from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import decord
import numpy as np
import pytest

from pipeline.synthetic import SyntheticConfig, generate, generate_subpixel, write_video

SMALL = SyntheticConfig(height=120, width=160, n_frames=20, object_size=32, n_objects=2)


def test_shapes_dtypes_and_determinism() -> None:
    a, b = generate(SMALL), generate(SMALL)
    assert a.frames.shape == (20, 120, 160, 3) and a.frames.dtype == np.uint8
    assert a.boxes.shape == (20, 2, 4) and a.boxes.dtype == np.float32
    assert a.masks.shape == (20, 120, 160) and a.masks.dtype == np.uint8
    assert a.shot_ids.dtype == np.int32 and a.fps == SMALL.fps
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.boxes, b.boxes)
    c = generate(replace(SMALL, seed=1))
    assert not np.array_equal(a.frames, c.frames)


def test_boxes_agree_with_masks_and_objects_move() -> None:
    v = generate(replace(SMALL, n_objects=1, speed=3.0))
    for t in range(v.frames.shape[0]):
        ys, xs = np.nonzero(v.masks[t] == 1)
        x, y, w, h = v.boxes[t, 0]
        assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == (
            x,
            y,
            w,
            h,
        )
    step = np.hypot(*(v.boxes[1:, 0, :2] - v.boxes[:-1, 0, :2]).T)
    assert np.all(step > 1.0)  # moves every frame at ~3 px/frame (rounding aside)
    assert np.all(step < 4.5)


def test_subpixel_clip_moves_by_fractions_of_a_pixel_at_the_output_scale() -> None:
    v = generate_subpixel(60, 80, 2, n_frames=12, n_objects=1, object_size=16, speed=0.5,
                          bounce=False, seed=3)  # fmt: skip
    assert v.frames.shape == (12, 60, 80, 3) and v.masks.shape == (12, 60, 80)
    assert v.boxes.dtype == np.float32 and np.allclose(v.boxes[:, 0, 2:], 16.0)
    xy = v.boxes[:, 0, :2]
    assert np.hypot(*(xy[-1] - xy[0])) / 11 == pytest.approx(0.5, abs=0.1)  # px per frame
    assert np.all(np.hypot(*(xy[1:] - xy[:-1]).T) < 1.0)
    assert np.any(xy % 1 == 0.5)  # positions between output pixels
    for t in (0, 11):  # the nearest-neighbour mask covers the box, to a pixel
        ys, xs = np.nonzero(v.masks[t] == 1)
        x, y, _, _ = v.boxes[t, 0]
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
    with pytest.raises(ValueError, match="factor"):
        generate_subpixel(60, 80, 0)


def test_objects_differ_from_background() -> None:
    v = generate(replace(SMALL, n_objects=1))
    obj = v.frames[0][v.masks[0] == 1].astype(float)
    bg = v.frames[0][v.masks[0] == 0].astype(float)
    # object textures are high-contrast and saturated; the background is smooth grey-ish
    assert obj.std() > 1.5 * bg.std()


def test_camera_pan_translates_background() -> None:
    v = generate(replace(SMALL, n_objects=0, camera_pan=(2.0, 1.0)))
    f0, f1 = v.frames[0].astype(int), v.frames[1].astype(int)
    # pan (dx, dy) = the window moves right/down: content moves left/up by (2, 1)
    shifted = np.abs(f1[10:-10, 10:-10] - f0[11:-9, 12:-8]).mean()
    unshifted = np.abs(f1[10:-10, 10:-10] - f0[10:-10, 10:-10]).mean()
    assert shifted < 0.5 and unshifted > 2 * shifted + 1


def test_zoom_changes_scale() -> None:
    v = generate(replace(SMALL, n_objects=0, camera_zoom=1.02))
    assert np.abs(v.frames[-1].astype(int) - v.frames[0].astype(int)).mean() > 2


def test_static_mode_nothing_moves() -> None:
    v = generate(replace(SMALL, mode="static", camera_pan=(3.0, 0.0), camera_zoom=1.05))
    assert np.all(v.frames == v.frames[0])
    assert np.all(v.boxes == v.boxes[0])


def test_pan_only_has_no_objects_but_moves() -> None:
    v = generate(replace(SMALL, mode="pan_only"))
    assert v.boxes.shape == (20, 0, 4) and not v.masks.any()
    assert np.abs(v.frames[1].astype(int) - v.frames[0].astype(int)).mean() > 1


def test_all_moving_every_pixel_belongs_to_a_moving_cell() -> None:
    v = generate(replace(SMALL, mode="all_moving"))
    assert v.masks.min() >= 1
    n_cells = v.boxes.shape[1]
    assert n_cells == v.masks.max() > 4
    diff = np.abs(v.frames[1].astype(int) - v.frames[0].astype(int)).mean(axis=2)
    per_cell = [diff[v.masks[0] == k + 1].mean() for k in range(n_cells)]
    assert min(per_cell) > 5  # every cell's texture moved


def test_shot_cuts_change_content() -> None:
    v = generate(replace(SMALL, cut_frames=(7, 14)))
    assert v.shot_ids.tolist() == [0] * 7 + [1] * 7 + [2] * 6
    within = np.abs(v.frames[6].astype(int) - v.frames[5].astype(int)).mean()
    across = np.abs(v.frames[7].astype(int) - v.frames[6].astype(int)).mean()
    assert across > 3 * within


def test_objects_leave_the_frame_without_bounce() -> None:
    v = generate(replace(SMALL, n_objects=3, speed=12.0, bounce=False, n_frames=30))
    gone = np.isnan(v.boxes[..., 0])
    assert gone[-1].all() and not gone[0].any()
    assert np.all(np.isnan(v.boxes[gone]))  # all four coordinates NaN together
    vis = v.boxes[~gone]
    assert (vis[:, 0] >= 0).all() and (vis[:, 0] + vis[:, 2] <= 160).all()  # clipped
    assert not (v.masks[-1] > 0).any()


def test_ellipse_shape_mask_is_smaller_than_box() -> None:
    v = generate(replace(SMALL, n_objects=1, shape="ellipse"))
    area = (v.masks[0] == 1).sum()
    assert 0.7 * 32 * 32 < area < 0.85 * 32 * 32


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "wobble"},
        {"n_frames": 0},
        {"object_size": 500},
        {"cut_frames": (20,)},
        {"camera_zoom": 0.0},
        {"object_textures": ("plaid",)},
        {"aperiodic": 1.5},
    ],
)
def test_invalid_config_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate(replace(SMALL, **bad))  # type: ignore[arg-type]


@pytest.mark.parametrize("codec,ext", [("h264", "mp4"), ("mpeg4", "mp4"), ("ffv1", "mkv")])
def test_write_video_roundtrip_with_decord(tmp_path: Path, codec: str, ext: str) -> None:
    v = generate(SMALL)
    path = write_video(tmp_path / f"v.{ext}", v.frames, 25.0, codec=codec)  # type: ignore[arg-type]
    vr = decord.VideoReader(str(path))
    assert len(vr) == 20 and vr.get_avg_fps() == pytest.approx(25.0)
    got = vr.get_batch([0, 19]).asnumpy()
    err = np.abs(got.astype(int) - v.frames[[0, 19]].astype(int)).mean()
    assert err < (1 if codec == "ffv1" else 8)


def test_write_video_grayscale_and_validation(tmp_path: Path) -> None:
    v = generate(SMALL)
    path = write_video(tmp_path / "g.mkv", v.frames[..., 1], 10.0, codec="ffv1")
    frame = decord.VideoReader(str(path))[0].asnumpy()
    assert frame.shape == (120, 160, 3) and np.array_equal(frame[..., 0], v.frames[0, ..., 1])
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", v.frames[:, :119], 10.0)
    with pytest.raises(ValueError, match="empty"):
        write_video(tmp_path / "e.mp4", v.frames[:0], 10.0)


def test_aperiodic_textures_keep_the_scene_and_track_with_kcf() -> None:
    import cv2

    base = SyntheticConfig(
        n_frames=31, n_objects=1, camera_pan=(1.0, 0.5), object_textures=("stripes",)
    )
    for seed in (1, 6):
        plain = generate(replace(base, seed=seed))
        mixed = generate(replace(base, seed=seed, aperiodic=0.5))
        # same positions, boxes, background: only the object's pixels change
        assert np.array_equal(plain.boxes, mixed.boxes) and np.array_equal(plain.masks, mixed.masks)
        bg = mixed.masks[0] == 0
        assert np.array_equal(plain.frames[0][bg], mixed.frames[0][bg])
        assert not np.array_equal(plain.frames[0], mixed.frames[0])
        tracker = cv2.TrackerKCF_create()
        tracker.init(
            cv2.cvtColor(mixed.frames[0], cv2.COLOR_RGB2BGR),
            tuple(int(v) for v in mixed.boxes[0, 0]),
        )
        for t in range(1, 31):
            ok, (x, y, w, h) = tracker.update(cv2.cvtColor(mixed.frames[t], cv2.COLOR_RGB2BGR))
            assert ok, (seed, t)
        gx, gy, gw, gh = mixed.boxes[30, 0]
        inter = max(0, min(x + w, gx + gw) - max(x, gx)) * max(0, min(y + h, gy + gh) - max(y, gy))
        assert inter / (w * h + gw * gh - inter) > 0.7


def test_background_has_corner_structure() -> None:
    import cv2

    v = generate(replace(SMALL, mode="pan_only", n_frames=2))
    grey = cv2.cvtColor(v.frames[0], cv2.COLOR_RGB2GRAY)
    corners = cv2.goodFeaturesToTrack(grey, 1000, 0.01, 5)
    assert corners is not None and len(corners) > 100  # Shi-Tomasi finds structure everywhere
