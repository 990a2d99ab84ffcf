"""EvaluatePropagation: DAVIS mask propagation by feature similarity (Zhang & Maire 2020, 5).

    luigi --module tasks EvaluatePropagation --data-root DIR --out-dir DIR \\
        [--grouping-checkpoint CKPT|task] [--transitive-checkpoint CKPT|task] \\
        [--context-checkpoint CKPT|task] --local-scheduler

Input: the DAVIS layout (``JPEGImages[/480p]/<seq>/*.jpg``, ``Annotations[/480p]/<seq>/*.png``,
palette or grey PNGs; every frame annotated). Given the first frame's mask, each method's
features propagate it through the sequence (``pipeline.propagation``, both protocols) and
J / F are scored on frames 1..T-2 (``pipeline.davis_metrics``), mean over sequences.

Methods, one table: ``copy_first`` (the first mask copied to every frame), ``random`` (the
grouping architecture, random init), ``hog`` (HOG + coordinates), ``transitive`` (the
Triplet-Siamese network's trunk), ``context`` (the context network's trunk) and
``grouping`` (the pixel-embedding network). A network whose checkpoint is not given is
listed as not run. ``task`` as a checkpoint means: the output of that training task.

Output (``--out-dir``): ``metrics.md`` (the table), ``pca/<seq>.png`` (frame | first three
PCA components of the grouping embedding, or the random one's when no grouping network is
given), ``metrics.json`` last (per sequence and overall, timings, what was not run).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import luigi
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from models import dense_features as dfeat
from pipeline import imaging
from pipeline.davis_metrics import score_sequence
from pipeline.propagation import PROTOCOLS, PropagationConfig, propagate
from tasks.common import EvaluationTask
from tasks.segment_eval import find_sequences

NETWORKS = ("transitive", "context", "grouping")
METHODS = ("copy_first", "random", "hog", *NETWORKS)
U8 = NDArray[np.uint8]


def read_labels(path: Path) -> U8:
    """A DAVIS annotation -> (H, W) uint8 labels 0..K: palette PNGs keep their indices,
    grey / RGB ones number their distinct non-zero colours 1..K in sorted order."""
    with Image.open(path) as im:
        if im.mode == "P":
            return np.asarray(im, np.uint8).copy()
        arr = np.asarray(im.convert("RGB"), np.uint8)
    key = arr[..., 0].astype(np.int64) << 16 | arr[..., 1].astype(np.int64) << 8 | arr[..., 2]
    values = np.unique(key)
    if len(values) > 256:
        raise ValueError(f"{path}: {len(values)} colours; not a label image")
    return np.searchsorted(values, key).astype(np.uint8)


def _resize(frames: U8, height: int) -> U8:
    if height <= 0 or frames.shape[1] == height:
        return frames
    w = max(int(round(frames.shape[2] * height / frames.shape[1])), 8)
    return np.stack([cv2.resize(f, (w, height), interpolation=cv2.INTER_AREA) for f in frames])


class EvaluatePropagation(EvaluationTask):
    """Mask propagation J / F: copy-first, random net, HOG + coords, trained networks."""

    data_root = luigi.Parameter(description="DAVIS-layout folder (JPEGImages, Annotations)")
    out_dir = luigi.Parameter(description="where metrics.json, metrics.md and pca/ go")
    grouping_checkpoint = luigi.Parameter(default="", description="CKPT | task | '' (not run)")
    transitive_checkpoint = luigi.Parameter(default="", description="CKPT | task | '' (not run)")
    context_checkpoint = luigi.Parameter(default="", description="CKPT | task | '' (not run)")
    protocols = luigi.Parameter(default="paper,common", description="comma-separated")
    height = luigi.IntParameter(default=480, description="frames resized to this height for "
                                "the features (masks are scored at full size)")  # fmt: skip
    max_frames = luigi.IntParameter(default=0, description="first N frames per sequence; 0 = all")
    sequences = luigi.Parameter(default="", description="comma-separated subset; '' = all")
    hog_cell = luigi.IntParameter(default=8, description="HOG cell side (px)")
    random_seed = luigi.IntParameter(default=0, description="init seed of the random network")

    def _tasks(self) -> dict[str, luigi.Task]:
        from tasks.grouping_train import TrainGrouping
        from tasks.train import TrainContext
        from tasks.train_transitive import TrainTransitive

        classes = {"grouping": TrainGrouping, "transitive": TrainTransitive,
                   "context": TrainContext}  # fmt: skip
        return {
            n: classes[n]() for n in NETWORKS if str(getattr(self, f"{n}_checkpoint")) == "task"
        }

    def requires(self) -> list[luigi.Task]:
        return list(self._tasks().values())

    def checkpoint(self, name: str) -> str | None:
        value = str(getattr(self, f"{name}_checkpoint"))
        if not value:
            return None
        if value == "task":
            return str(self._tasks()[name].checkpoint_path())
        if not Path(value).is_file():
            raise FileNotFoundError(f"--{name}-checkpoint {value}: no such file")
        return value

    def extractors(self) -> tuple[dict[str, Any], dict[str, str]]:
        """name -> frames -> (T, C, h, w) features; and name -> why not run."""
        from models.trunks import load_checkpoint_trunk

        run: dict[str, Any] = {}
        not_run: dict[str, str] = {}
        rnd = dfeat.load_grouping_net(None, int(self.random_seed))
        run["random"] = lambda f: dfeat.grouping_features(rnd, f)
        run["hog"] = lambda f: dfeat.hog_features(f, int(self.hog_cell))
        for name in NETWORKS:
            ckpt = self.checkpoint(name)
            if ckpt is None:
                not_run[name] = f"no --{name}-checkpoint given"
            elif name == "grouping":
                net = dfeat.load_grouping_net(ckpt)
                run[name] = lambda f, net=net: dfeat.grouping_features(net, f)
            else:
                trunk = load_checkpoint_trunk(ckpt)
                run[name] = lambda f, trunk=trunk: dfeat.trunk_features(trunk, f)
        return run, not_run

    def run(self) -> None:
        root, out = Path(str(self.data_root)), Path(str(self.out_dir))
        seqs = find_sequences(root)
        wanted = [s.strip() for s in str(self.sequences).split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(seqs))
        if unknown:
            raise KeyError(f"unknown sequence(s) {unknown}; valid: {sorted(seqs)}")
        protocols = [p.strip() for p in str(self.protocols).split(",") if p.strip()]
        for p in protocols:
            if p not in PROTOCOLS:
                raise KeyError(f"unknown protocol {p!r}; valid: {sorted(PROTOCOLS)}")
        extract, not_run = self.extractors()
        scores: dict[str, dict[str, dict[str, Any]]] = {}
        seconds: dict[str, float] = {}
        names = [s for s in seqs if not wanted or s in wanted]
        for k, name in enumerate(names):
            self.set_status_message(f"{name} ({k + 1}/{len(names)})")
            self.set_progress_percentage(round(100.0 * k / len(names), 1))
            frame_paths, anns = seqs[name]
            if self.max_frames > 0:
                frame_paths = frame_paths[: int(self.max_frames)]
            missing = [p.name for p in frame_paths if p.stem not in anns]
            if missing:
                raise FileNotFoundError(f"{root}/{name}: frames without annotation {missing[:5]}")
            frames = np.stack([imaging.decode_jpeg(p.read_bytes()) for p in frame_paths])
            gt = np.stack([read_labels(anns[p.stem]) for p in frame_paths])
            small = _resize(frames, int(self.height))
            copy = np.repeat(gt[:1], len(gt), axis=0)
            for proto in protocols:
                scores.setdefault("copy_first", {}).setdefault(proto, {})[name] = _score(copy, gt)
            for method, fn in extract.items():
                t0 = time.perf_counter()
                feats = fn(small)
                seconds[f"{method}/features"] = (
                    seconds.get(f"{method}/features", 0.0) + time.perf_counter() - t0
                )
                if method in ("grouping", "random") and k < 3:
                    if method == "grouping" or "grouping" not in extract:
                        pca = cv2.resize(dfeat.pca_colours(feats[0]), (small.shape[2], small.shape[1]),
                                         interpolation=cv2.INTER_NEAREST)  # fmt: skip
                        imaging.save_png(
                            out / "pca" / f"{name}.png", np.concatenate([small[0], pca], 1)
                        )
                for proto in protocols:
                    t0 = time.perf_counter()
                    pred = propagate(feats, gt[0], PropagationConfig(protocol=proto))
                    key = f"{method}/{proto}/propagate"
                    seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t0
                    scores.setdefault(method, {}).setdefault(proto, {})[name] = _score(pred, gt)
        n_frames = sum(min(len(seqs[s][0]), int(self.max_frames) or 10**9) for s in names)
        result = _summarise(scores, not_run, seconds, n_frames, protocols)
        result.update(data_root=str(root), sequences=names, height=int(self.height),
                      params=self.to_str_params(only_significant=True))  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        table = _table(result, protocols)
        (out / "metrics.md").write_text(table)
        with self.output().temporary_path() as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
        print(table)
        print(f"EvaluatePropagation wrote {out / 'metrics.json'} and {out / 'metrics.md'}")


def _score(pred: U8, gt: U8) -> dict[str, float]:
    s = score_sequence(pred, gt)
    return {"J_mean": s.j_mean, "J_recall": s.j_recall, "F_mean": s.f_mean,
            "F_recall": s.f_recall}  # fmt: skip


def _summarise(
    scores: dict[str, dict[str, dict[str, Any]]], not_run: dict[str, str],
    seconds: dict[str, float], n_frames: int, protocols: list[str],
) -> dict[str, Any]:  # fmt: skip
    methods: dict[str, Any] = {}
    for method, by_proto in scores.items():
        methods[method] = {}
        for proto, per_seq in by_proto.items():
            overall = {k: round(float(np.mean([s[k] for s in per_seq.values()])), 4)
                       for k in ("J_mean", "J_recall", "F_mean", "F_recall")}  # fmt: skip
            overall["JF_mean"] = round((overall["J_mean"] + overall["F_mean"]) / 2, 4)
            methods[method][proto] = {"overall": overall, "sequences": per_seq}
    fps = {k: round(n_frames / v, 2) for k, v in seconds.items() if v > 0}
    return {"methods": methods, "not_run": not_run, "frames": n_frames, "frames_per_s": fps}


def _table(result: dict[str, Any], protocols: list[str]) -> str:
    lines = [
        f"Mask propagation on {len(result['sequences'])} sequence(s), {result['frames']} "
        f"frames (J, F on frames 1..T-2; mean over sequences)",
        "",
        "| method | protocol | J mean | J recall | F mean | F recall | J&F |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        if method in result["not_run"]:
            lines.append(f"| {method} | - | not run: {result['not_run'][method]} | | | | |")
            continue
        for proto in protocols:
            o = result["methods"].get(method, {}).get(proto, {}).get("overall")
            if o is None:
                continue
            lines.append(
                f"| {method} | {proto} | {o['J_mean']:.3f} | {o['J_recall']:.3f} "
                f"| {o['F_mean']:.3f} | {o['F_recall']:.3f} | {o['JF_mean']:.3f} |"
            )
    return "\n".join(lines) + "\n"
