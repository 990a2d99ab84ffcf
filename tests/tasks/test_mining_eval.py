"""EvaluateMining on synthetic DAVIS- and OTB-layout folders with known objects."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.imaging import encode_jpeg, encode_png
from tasks.mining_eval import EvaluateMining, centre_seeds, on_object, pool, score
from tests.conftest import build
from tests.mining_fixtures import clip
from tests.tasks.test_tracking_eval import _write_seq

DEV = Path(__file__).resolve().parents[3] / "shared" / "devdata"


def test_on_object_half_of_the_object_or_half_of_the_box() -> None:
    mask = np.zeros((100, 100), bool)
    mask[40:60, 40:60] = True  # a 20x20 object
    assert on_object((30, 40, 20, 20), mask)  # half the object inside (and half the box)
    assert not on_object((29, 40, 20, 20), mask)  # 45% of the object, 45% of the box
    assert on_object((45, 45, 5, 5), mask)  # a small box all object: on it
    assert not on_object((0, 0, 100, 49), mask)  # 45% of the object, 1.8% of the box
    assert on_object((0, 0, 100, 50), mask)  # 50% of the object
    assert not on_object((0, 0, 30, 30), mask)
    truth_box = np.array([40.0, 40.0, 20.0, 20.0])  # the same object as a box
    assert on_object((30, 40, 20, 20), truth_box) and not on_object((29, 40, 20, 20), truth_box)
    assert not on_object((0, 0, 100, 49), truth_box)
    assert not on_object((40, 40, 20, 20), None)  # no object in that frame
    assert not on_object((0, 0, 10, 10), np.zeros((100, 100), bool))


def test_precision_and_yield_from_known_seeds() -> None:
    """4 seeds: 3 on the object; kept: one correct, one ending off the object, one whose seed
    was off the object; one dropped. precision = 1/3, yield = 1/3, seeds_on = 3/4."""

    class Seq:
        frames = [Path(f"{i}.jpg") for i in range(200)]

        @staticmethod
        def truth(k: int) -> np.ndarray:
            return np.array([100.0 + k, 100.0, 50.0, 50.0])

    def seed(f: int, x: float) -> dict[str, object]:
        return {"seed_id": f"s{f}", "frame": f, "x": x, "y": 100.0, "w": 50.0, "h": 50.0}

    def track(f: int, kept: bool, bx: float, reason: str = "ok") -> dict[str, object]:
        return {"seed_id": f"s{f}", "frame_b": f + 30, "kept": kept, "reason": reason,
                "b_x": bx, "b_y": 100.0, "b_w": 50.0, "b_h": 50.0}  # fmt: skip

    seeds = [seed(0, 100), seed(40, 140), seed(80, 180), seed(120, 500)]
    tracks = [track(0, True, 130), track(40, True, 400), track(80, False, 0, "fb_fail"),
              track(120, True, 250)]  # fmt: skip
    counts, rows = score(seeds, tracks, Seq(), 1.0)  # type: ignore[arg-type]
    assert [r["a_on"] for r in rows] == [True, True, True, False]
    m = pool([counts])
    assert (m["seeds"], m["seeds_on"], m["kept"], m["kept_correct"]) == (4, 3, 3, 1)
    assert m["seeds_on_share"] == 0.75 and m["precision"] == pytest.approx(1 / 3)
    assert m["yield"] == pytest.approx(1 / 3) and m["seeds_per_100_frames"] == 2.0
    assert m["reasons"] == {"ok": 3, "fb_fail": 1}


def _davis(root: Path, name: str, frames: np.ndarray, boxes: np.ndarray) -> None:
    img, ann = root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name
    img.mkdir(parents=True)
    ann.mkdir(parents=True)
    for i, (f, b) in enumerate(zip(frames, boxes, strict=True)):
        (img / f"{i:05d}.jpg").write_bytes(encode_jpeg(f, 95))
        m = np.zeros(f.shape[:2], np.uint8)
        x, y, w, h = (int(round(v)) for v in b)
        m[max(y, 0) : y + h, max(x, 0) : x + w] = 255
        (ann / f"{i:05d}.png").write_bytes(encode_png(m))


def test_evaluate_mining_davis_and_otb_layouts(
    tmp_path: Path, luigi_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    luigi_config()
    frames, gt, _ = clip(n_frames=40, object_size=120, speed=1.0, seed=1,
                         object_textures=("noise", "checker"))  # fmt: skip
    # "Away": the same frames with a 30 px truth in the corner farthest from the object, so
    # the same seeds are never on "it".
    cx, cy = gt[:, 0, 0] + gt[:, 0, 2] / 2, gt[:, 0, 1] + gt[:, 0, 3] / 2
    away = np.stack([np.where(cx > 160, 0, 290), np.where(cy > 120, 0, 210),
                     np.full(40, 30), np.full(40, 30)], axis=1).astype(np.float64)  # fmt: skip
    params = dict(frame_step=3, track_length=12, min_seed_gap=8)
    for layout in ("davis", "otb"):
        root = tmp_path / layout
        if layout == "davis":
            _davis(root, "Object", frames, gt[:, 0])
            _davis(root, "Away", frames, away)
        else:
            _write_seq(root, "Object", frames, gt[:, 0], ",")
            _write_seq(root, "Away", frames, away, ",")
        out = tmp_path / f"eval-{layout}"
        task = EvaluateMining(data_root=str(root), out_dir=str(out), **params)
        assert build([task]).scheduling_succeeded
        assert "EvaluateMining wrote" in capsys.readouterr().out
        m = json.loads((out / "metrics.json").read_text())
        obj, aw = m["sequences"]["Object"], m["sequences"]["Away"]
        assert obj["seeds"] >= 2 and obj["seeds_per_100_frames"] == 100 * obj["seeds"] / 40
        assert obj["seeds_on_share"] == 1.0 and obj["kept"] >= 1
        assert obj["precision"] == 1.0 and obj["yield"] == obj["kept"] / obj["seeds"]
        assert aw["seeds"] == obj["seeds"] and aw["seeds_on_share"] == 0.0
        assert np.isnan(aw["yield"]) and aw["precision"] == 0.0
        assert (
            m["overall"]["seeds"] == 2 * obj["seeds"]
            and sum(m["overall"]["reasons"].values()) == 2 * obj["seeds"]
        )
        floor = m["centre_box"]["sequences"]["Object"]
        assert floor["seeds"] == obj["seeds"]  # same frames, same count, scored the same way
        assert (out / "seeds.png").stat().st_size > 0 and (out / "videos" / "Object.mp4").is_file()
        table = (out / "metrics.md").read_text()
        assert "| Object | stage |" in table and "| Object | centre_box |" in table


def test_bad_data_root_names_it(tmp_path: Path, luigi_config: Callable[..., Path]) -> None:
    luigi_config()
    from tasks.mining_eval import find_sequences

    with pytest.raises(FileNotFoundError, match="no such directory"):
        find_sequences(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        find_sequences(tmp_path / "empty")


@pytest.mark.slow
@pytest.mark.skipif(not (DEV / "davis").is_dir(), reason="needs ../shared/devdata")
def test_dev_davis_mining_beats_the_centre_box(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    """Real footage: the first DAVIS dev sequences, mined with the defaults."""
    luigi_config()
    root = tmp_path / "davis"
    for sub in ("JPEGImages/480p", "Annotations/480p"):
        for name in ("goat", "scooter-black"):
            shutil.copytree(DEV / "davis" / sub / name, root / sub / name)
    out = tmp_path / "eval"
    task = EvaluateMining(data_root=str(root), out_dir=str(out), video_dir=str(DEV / "davis"))
    assert build([task]).scheduling_succeeded
    m = json.loads((out / "metrics.json").read_text())
    ours, floor = m["overall"], m["centre_box"]["overall"]
    assert ours["seeds"] >= 2 and ours["seeds_on_share"] >= floor["seeds_on_share"] + 0.3
    assert ours["seeds_on_share"] >= 0.6 and ours["kept_correct"] >= 1


def test_centre_floor_tracks_its_own_box() -> None:
    """The floor's seeds keep no moving-points box (that box is on the object: the floor
    would follow the object and score like the stage)."""
    seed = {"seed_id": "v:f0000000", "x": 0.0, "y": 0.0, "w": 50.0, "h": 40.0,
            "target_x": 5.0, "target_y": 5.0, "target_w": 10.0, "target_h": 10.0}  # fmt: skip
    (c,) = centre_seeds([seed], 200, 100)
    assert (c["x"], c["y"]) == (75.0, 30.0) and c["seed_id"] == "v:f0000000:centre"
    assert all(c[f"target_{k}"] is None for k in "xywh")
