"""Motion filtering and seed selection on synthetic clips with known answers."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from pipeline.motion import (
    DenseFlow,
    MotionConfig,
    analyse_pair,
    best_box,
    is_cut,
    prefilter_score,
    thumbnail,
    to_grey,
)
from pipeline.seeding import scan, select_seeds
from tests.mining_fixtures import clip, iou, resize_height

TEXTURED = ("noise", "checker")  # blob-rich textures: SURF finds points on the object
SCALE = 448 / 240
CFG = MotionConfig(frame_step=2, track_length=10, min_seed_gap=8)


def _scan(frames: np.ndarray, cfg: MotionConfig = CFG):  # type: ignore[no-untyped-def]
    return scan(enumerate(resize_height(frames, cfg.frame_height)), cfg)


@pytest.mark.parametrize(("seed", "pan"), [(0, (1.0, 0.5)), (1, (0.0, 0.0))])
def test_moving_object_gives_seeds_on_the_object(seed: int, pan: tuple[float, float]) -> None:
    frames, gt, _ = clip(
        n_frames=32, object_size=120, speed=1.0, camera_pan=pan, seed=seed,
        object_textures=TEXTURED,
    )  # fmt: skip
    res = _scan(frames)
    kept = [r for r in res.records if r.kept and r.motion is not None]
    # Pairs within a track of the end are not analysed (they cannot be seeds).
    analysable = [r for r in res.records if r.frame + CFG.track_length < len(frames)]
    assert len(kept) >= 0.75 * len(analysable)
    ious = [iou(r.motion.box, gt[r.frame, 0] * SCALE) for r in kept if r.motion]
    assert np.mean(np.array(ious) >= 0.5) >= 0.9, ious
    for r in kept:
        assert r.motion is not None
        assert CFG.min_moving_fraction <= r.motion.moving_fraction <= CFG.max_moving_fraction
    seeds = select_seeds(res, CFG)
    assert 1 <= len(seeds) <= CFG.max_seeds_per_video
    frames_ = [s.frame for s in seeds]
    assert min(np.diff(sorted(frames_)), default=CFG.min_seed_gap) >= CFG.min_seed_gap
    assert all(f + CFG.track_length < len(frames) for f in frames_)
    assert all(iou(s.box, gt[s.frame, 0] * SCALE) >= 0.5 for s in seeds)


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "pan_only", "camera_pan": (1.5, 0.5)},
        {"mode": "static"},
        {"mode": "all_moving", "object_size": 24, "speed": 1.0},
    ],
    ids=["pan_only", "static", "all_moving"],
)
def test_no_seeds_without_an_independently_moving_object(kw: dict[str, object]) -> None:
    frames, _, _ = clip(n_frames=24, seed=2, **kw)  # type: ignore[arg-type]
    res = _scan(frames)
    assert not any(r.kept for r in res.records)
    assert select_seeds(res, CFG) == []


def test_static_and_pan_are_cheap_prefilter_skips() -> None:
    for kw in ({"mode": "static"}, {"mode": "pan_only", "camera_pan": (1.5, 0.5)}):
        frames, _, _ = clip(n_frames=8, seed=3, **kw)  # type: ignore[arg-type]
        res = _scan(frames)
        assert all(r.skipped == "prefilter_static" for r in res.records), kw


def test_prefilter_sees_an_object() -> None:
    frames, _, _ = clip(n_frames=4, object_size=100, speed=1.5, seed=0, object_textures=TEXTURED)
    g = [thumbnail(to_grey(f), 64) for f in resize_height(frames, 448)]
    score = prefilter_score(g[0], g[1], DenseFlow("dis", "ultrafast"), CFG)
    assert CFG.prefilter_min_fraction < score < CFG.prefilter_max_fraction


def test_cuts_split_shots_and_seeds_keep_a_track_inside_their_shot() -> None:
    frames, _, shots = clip(
        n_frames=40, object_size=120, speed=1.0, cut_frames=(18,), seed=0, object_textures=TEXTURED
    )
    cfg = MotionConfig(frame_step=2, track_length=10, min_seed_gap=4)
    res = _scan(frames, cfg)
    assert res.shot_starts.tolist() == [0, 18]
    assert [r.skipped for r in res.records if r.frame == 17] in ([], ["cut"])
    seeds = select_seeds(res, cfg)
    assert seeds
    for s in seeds:
        end = 18 if s.frame < 18 else 40
        assert s.frame + cfg.track_length < end
        assert s.shot == shots[s.frame]


def test_pairs_within_a_track_of_a_cut_or_the_end_are_not_analysed() -> None:
    """Only pairs with track_length more frames in their shot are analysed, and the seeds are
    the ones analysing every pair would give."""
    frames, _, _ = clip(
        n_frames=40, object_size=120, speed=1.0, cut_frames=(18,), seed=0, object_textures=TEXTURED
    )
    cfg = MotionConfig(frame_step=2, track_length=10, min_seed_gap=4)
    res = _scan(frames, cfg)
    ends = {r.frame: (18 if r.frame < 18 else 40) for r in res.records}
    near = {r.frame for r in res.records if r.skipped == "near_end"}
    # 8..16 end within a track of the cut at 18; 30..38 within a track of the video's end.
    assert near == {f for f in ends if f + cfg.track_length >= ends[f]} - {
        r.frame for r in res.records if r.skipped.startswith("prefilter")
    }
    assert near >= {10, 12, 14, 16, 30, 32, 34, 36, 38}
    assert all(r.motion is None for r in res.records if r.frame in near)
    everything = _scan(frames, dataclasses.replace(cfg, track_length=1))
    assert not any(r.skipped == "near_end" for r in everything.records)
    assert sum(r.motion is not None for r in everything.records) > sum(
        r.motion is not None for r in res.records
    )
    same = [(s.frame, s.box) for s in select_seeds(everything, cfg)]
    assert same and same == [(s.frame, s.box) for s in select_seeds(res, cfg)]


def test_is_cut_on_thumbnails() -> None:
    a, _, _ = clip(n_frames=3, seed=0)
    b, _, _ = clip(n_frames=3, seed=5)
    t = [thumbnail(to_grey(f), 64) for f in (a[0], a[1], b[0])]
    assert not is_cut(t[0], t[1], CFG)
    assert is_cut(t[1], t[2], CFG)


def test_best_box_is_centred_on_the_point_cluster() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform([300, 100], [360, 160], size=(50, 2)).astype(np.float32)
    noise = np.array([[10, 10], [590, 440]], np.float32)
    (x, y, w, h), n = best_box(np.concatenate([pts, noise]), 448, 600, 227)
    assert n == 50 and (w, h) == (227, 227)
    cx, cy = x + w / 2, y + h / 2
    assert abs(cx - 330) < 10 and abs(cy - 130) < 10
    assert 0 <= x and x + w <= 600 and 0 <= y and y + h <= 448


def test_homography_absorbs_pure_camera_motion() -> None:
    frames, _, _ = clip(n_frames=3, mode="pan_only", camera_pan=(2.0, 1.0), seed=4)
    w = resize_height(frames, 448)
    r = analyse_pair(to_grey(w[0]), to_grey(w[1]), DenseFlow(), MotionConfig())
    assert r.n_inliers > MotionConfig().min_inliers
    # The background moves opposite to the camera by ~(2, 1) px at 240 high: (3.7, 1.9) here.
    assert r.homography[:2, 2] == pytest.approx([-2.0 * SCALE, -1.0 * SCALE], abs=0.4)
    assert r.moving_fraction < 0.05 and r.reason == "too_few_moving"


def test_same_input_same_result() -> None:
    frames, _, _ = clip(n_frames=3, object_size=120, seed=0, object_textures=TEXTURED)
    w = resize_height(frames, 448)
    a = analyse_pair(to_grey(w[0]), to_grey(w[1]), DenseFlow(), MotionConfig())
    b = analyse_pair(to_grey(w[0]), to_grey(w[1]), DenseFlow(), MotionConfig())
    assert a.box == b.box and np.array_equal(a.homography, b.homography)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(KeyError, match="valid"):
        MotionConfig(ransac_method="nope")
    with pytest.raises(ValueError, match="box_size"):
        MotionConfig(box_size=500)
    with pytest.raises(ValueError, match="RGB"):
        to_grey(np.zeros((4, 4), np.uint8))


def test_fast_all_moving_is_a_prefilter_skip() -> None:
    # Cells scrolling 5 px/frame in their own directions score 0.7-0.85: the thumbnail test
    # sees it at a 0.7 threshold (the default, 0.95, lets them through to the full analysis:
    # real objects under a moving camera score up to 0.94, docs/mining.md).
    frames, _, _ = clip(n_frames=8, mode="all_moving", object_size=24, speed=5.0, seed=5)
    res = _scan(frames, dataclasses.replace(CFG, prefilter_max_fraction=0.7))
    skipped = [r.skipped == "prefilter_all_moving" for r in res.records]
    assert len(skipped) == 4 and sum(skipped) >= 3
    assert not any(r.kept for r in res.records)
    # With the default the full analysis rejects every pair instead (too many moving).
    full = _scan(frames)
    assert not any(r.kept for r in full.records)
    assert all(r.motion.reason == "too_many_moving" for r in full.records if r.motion)


def test_scan_workers_give_the_same_records() -> None:
    frames, _, _ = clip(n_frames=16, object_size=120, speed=1.0, camera_pan=(1.0, 0.5), seed=0,
                        object_textures=TEXTURED)  # fmt: skip
    w = list(enumerate(resize_height(frames, CFG.frame_height)))
    one, two = scan(iter(w), CFG), scan(iter(w), CFG, workers=2)
    assert len(one.records) == len(two.records) == 8
    for a, b in zip(one.records, two.records, strict=True):
        assert (a.frame, a.skipped, a.kept) == (b.frame, b.skipped, b.kept)
        if a.motion is not None and b.motion is not None:
            assert a.motion.box == b.motion.box
            assert np.array_equal(a.motion.moving, b.motion.moving)
            assert np.array_equal(a.motion.homography, b.motion.homography)
    seeds = [[(s.frame, s.box) for s in select_seeds(r, CFG)] for r in (one, two)]
    assert seeds[0] and seeds[0] == seeds[1]


def _parallax_pair(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Two 448x600 grey frames of a camera translating sideways over two depths: the far
    half of the scene shifts 1 px, the near half 4 px (parallax: no homography maps both),
    and a textured 150 px object moving 2 px down in the far half (off the epipolar lines,
    which are horizontal). Returns the frames and the object's box in the first."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (448, 1200), dtype=np.uint8), (0, 0), 1.5)
    obj = cv2.GaussianBlur(
        np.random.default_rng(seed + 7).integers(0, 256, (150, 150), dtype=np.uint8), (0, 0), 1.0
    )
    frames = []
    for t in (0, 1):
        f = np.empty((448, 600), np.uint8)
        f[:224] = tex[:224, 100 + t : 700 + t]
        f[224:] = tex[224:, 100 + 4 * t : 700 + 4 * t]
        f[60 + 2 * t : 210 + 2 * t, 225:375] = obj
        frames.append(f)
    return frames[0], frames[1], (225.0, 60.0, 150.0, 150.0)


def test_parallax_does_not_pull_the_box_off_the_object() -> None:
    """Plane + parallax: the homography leaves the near half "moving"; the epipolar test
    keeps the box on the object (its centre within a few px), the homography alone does not."""
    errs = {0.5: [], 0.0: []}
    for seed in range(4):
        g0, g1, (x, y, w, h) = _parallax_pair(seed)
        for thr in errs:
            cfg = dataclasses.replace(CFG, epipolar_threshold=thr)
            m = analyse_pair(g0, g1, DenseFlow("dis", "fast"), cfg)
            assert m.kept
            bx, by, bw, bh = m.box
            errs[thr].append(np.hypot(bx + bw / 2 - x - w / 2, by + bh / 2 - y - h / 2))
            assert (m.n_off_epipolar >= 0) == (thr > 0)
    assert max(errs[0.5]) < 12, errs
    assert np.mean(errs[0.0]) > 2 * np.mean(errs[0.5]) and max(errs[0.0]) > 30, errs
