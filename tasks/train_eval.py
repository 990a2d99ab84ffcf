"""Evaluation of the trained networks (DESIGN 4.6), over labelled folders.

    luigi --module tasks EvaluateRetrieval --data-root LABELLED --out-dir OUT \
        [--checkpoint CKPT | --model transitive|tracking|context] --local-scheduler
    luigi --module tasks EvaluateMasks --data-root DAVIS --out-dir OUT \
        [--checkpoint CKPT | --model masks] [--unlc-root UNLC] --local-scheduler
    luigi --module tasks EvaluateLinear --data-root LABELLED --out-dir OUT \
        [--networks '{"student": CKPT}'] [--models student,context] [--layer pool5] \
        --local-scheduler

``EvaluateRetrieval``: top-k (20) retrieval by cosine on pool5 (Wang & Gupta 2015) for the
checkpoint, a random-init trunk of the same architecture and HOG, in one run.
``EvaluateLinear``: a linear classifier on frozen features (``models.linear_probe``), one
table over the majority-class floor, HOG, random init and every network (those not given
are listed as not available).
``EvaluateMasks``: IoU / precision / recall of the mask network on a DAVIS-layout folder,
beside uNLC masks of the same frames when ``--unlc-root`` is given. Both write
``metrics.json`` (last, atomically: it is the task's output) and ``metrics.md`` into
``--out-dir`` and print where they wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import luigi

from models.evaluate import evaluate_masks, evaluate_retrieval
from models.linear_probe import LinearProbeConfig, evaluate_linear
from tasks.common import EvaluationTask, config_from_params, stage_params

MODELS = ("transitive", "tracking", "context", "masks", "student")
# rows of EvaluateLinear's comparison table, listed as "not available" when not given
COMPARED = ("transitive", "tracking", "context", "counting", "jigsaw", "student")


def _train_task(model: str) -> luigi.Task:
    from tasks import train
    from tasks.train_transitive import TrainTransitive
    from tasks.transfer import TrainStudent

    tasks = {
        "transitive": TrainTransitive,
        "tracking": train.TrainTracking,
        "context": train.TrainContext,
        "masks": train.TrainMasks,
        "student": TrainStudent,
    }
    if model not in tasks:
        raise KeyError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    return tasks[model]()


class _Evaluate(EvaluationTask):
    data_root = luigi.Parameter(description="the labelled input folder")
    out_dir = luigi.Parameter(description="where metrics.json and metrics.md go")
    checkpoint = luigi.Parameter(default="", description="a models.train checkpoint file")
    model = luigi.Parameter(default="", description="or: the training task's network to use")
    device = luigi.Parameter(default="cpu", significant=False)

    def requires(self) -> list[luigi.Task]:
        return [_train_task(str(self.model))] if self.model and not self.checkpoint else []

    def checkpoint_file(self) -> str | None:
        if self.checkpoint:
            return str(self.checkpoint)
        if self.model:
            return str(self.requires()[0].checkpoint_path())
        return None


class EvaluateRetrieval(_Evaluate):
    """Top-k retrieval on a labelled image folder: checkpoint vs random init vs HOG."""

    trunk = luigi.Parameter(default="vgg16", description="random-init trunk without checkpoint")
    k = luigi.IntParameter(default=20, description="retrieved images per query (2015 paper)")

    def run(self) -> None:
        m = evaluate_retrieval(
            str(self.data_root), str(self.out_dir), self.checkpoint_file(), str(self.trunk),
            int(self.k), device=str(self.device),
        )  # fmt: skip
        print(
            f"EvaluateRetrieval: wrote {m['metrics_path']} and {Path(str(self.out_dir)) / 'metrics.md'}"
        )


class EvaluateMasks(_Evaluate):
    """Mask network (and uNLC masks) against DAVIS-layout annotations."""

    unlc_root = luigi.Parameter(default="", description="uNLC masks: <seq>/<frame>.png")

    def run(self) -> None:
        ckpt = self.checkpoint_file()
        if ckpt is None:
            raise ValueError("EvaluateMasks needs --checkpoint or --model masks")
        m = evaluate_masks(
            str(self.data_root), str(self.out_dir), ckpt, str(self.unlc_root) or None,
            str(self.device),
        )  # fmt: skip
        print(
            f"EvaluateMasks: wrote {m['metrics_path']} and {Path(str(self.out_dir)) / 'metrics.md'}"
        )


@stage_params(LinearProbeConfig, exclude=("batch_size",))
class EvaluateLinear(EvaluationTask):
    """Linear classifier on frozen features of ``--layer``, one table over the floor
    (majority class), HOG, random init and every network: ``--networks '{"student": CKPT}'``
    and/or ``--models student,context`` (their training tasks are required)."""

    data_root = luigi.Parameter(description="labelled folder: one sub-folder per class")
    out_dir = luigi.Parameter(description="where metrics.json and metrics.md go")
    networks = luigi.DictParameter(default={}, description="row name -> checkpoint file")
    models = luigi.Parameter(default="", description=f"comma-separated, of {', '.join(MODELS)}")
    random_trunk = luigi.Parameter(default="alexnet", description="random init w/o networks")
    batch_size = luigi.IntParameter(default=LinearProbeConfig.batch_size, significant=False)

    def model_names(self) -> list[str]:
        return [m.strip() for m in str(self.models).split(",") if m.strip()]

    def requires(self) -> list[luigi.Task]:
        return [_train_task(m) for m in self.model_names()]

    def run(self) -> None:
        nets: dict[str, str | None] = {n: None for n in COMPARED}
        for name, task in zip(self.model_names(), self.requires(), strict=True):
            nets[name] = str(task.checkpoint_path())
        nets.update({str(k): str(v) for k, v in dict(self.networks).items()})
        self.set_status_message(f"linear probes of {sum(v is not None for v in nets.values())}")
        m = evaluate_linear(
            str(self.data_root), str(self.out_dir), nets,
            config_from_params(self, LinearProbeConfig), str(self.random_trunk),
        )  # fmt: skip
        print(
            f"EvaluateLinear: wrote {m['metrics_path']} and {Path(str(self.out_dir)) / 'metrics.md'}"
        )


# Demo preset: a small BN-VGG that learns in ~100 CPU steps (docs/training.md, "VGG16 without
# BatchNorm"); the paper's full-size defaults need a GPU.
DEMO_TRAIN: dict[str, Any] = {
    "steps": 150,
    "batch_size": 32,
    "lr": 0.01,  # 0.05 collapsed on the demo data (all cosines 0.999); 0.01 did not
    "loader_workers": 1,
    "options": {
        "trunk_options": {"widths": [16, -1, 32, -1, 64, -1, 64, -1, 64, -1], "batch_norm": True},
        "network": {"hidden": 256, "embed_dim": 128},
        "log_every": 20,
        "val_fraction": 0.0,
        # Random negatives only: measured on the demo data, switching to hard negatives at
        # step 50 collapsed the embedding within 30 steps (pos and neg cosine 0.99); the
        # paper switches only after many epochs of random negatives.
        "hard_after": 150,
        "video_fallback": True,  # the demo's few videos give one or two parent clusters
    },
}


def labelled_folder_from_nodes(
    source: str, out_dir: Path, per_class: int = 20, min_per_class: int = 2
) -> Path:
    """A retrieval folder from a graph's ``nodes``: one class per video (the demo clips show
    one object each), up to ``per_class`` patches each."""
    from models.manifests import read_table
    from tasks.common import videomine

    registry = str(videomine().registry) or None
    nodes = (
        read_table(source, "nodes", registry).select(["node_id", "video_id", "jpeg"]).to_pylist()
    )
    by_video: dict[str, list[bytes]] = {}
    for r in nodes:
        by_video.setdefault(r["video_id"], []).append(r["jpeg"])
    kept = {v: blobs[:per_class] for v, blobs in by_video.items() if len(blobs) >= min_per_class}
    if len(kept) < 2:
        raise ValueError(f"{source}: fewer than 2 videos with {min_per_class}+ patches")
    for v, blobs in kept.items():
        d = out_dir / v
        d.mkdir(parents=True, exist_ok=True)
        for i, b in enumerate(blobs):
            (d / f"{i:04d}.jpg").write_bytes(b)
    return out_dir


def demo_transitive(dataset: str) -> luigi.Task:
    """The demo's TrainTransitive run (``DEMO_TRAIN``) on ``dataset``."""
    from tasks.train_transitive import TrainTransitive

    return TrainTransitive(dataset=dataset, **DEMO_TRAIN)


def demo_retrieval(dataset: str, out_dir: Path, workers: int = 1) -> str:
    """Train the demo preset on ``dataset`` (TrainTransitive) and evaluate retrieval by video
    against random init and HOG; returns the lines to print. The labelled folder (one class
    per video) goes to ``out_dir / "labelled"``."""
    labelled = labelled_folder_from_nodes(dataset, out_dir / "labelled")
    train = demo_transitive(dataset)
    ev = EvaluateRetrieval(
        data_root=str(labelled), out_dir=str(out_dir / "retrieval"),
        checkpoint=str(train.checkpoint_path()),
        # The demo's videos give ~8 patches each: precision@20 (the 2015 paper's k, for
        # classes of hundreds) would be capped near 0.35 whatever the network; k=5 fits.
        k=5,
    )  # fmt: skip
    if not luigi.build([train], local_scheduler=True, workers=workers, log_level="WARNING"):
        raise RuntimeError(f"demo training failed; see {train.work_dir() / 'train.log'}")
    if not luigi.build([ev], local_scheduler=True, workers=1, log_level="WARNING"):
        raise RuntimeError("demo retrieval evaluation failed")
    m = json.loads(Path(ev.output().path).read_text())["methods"]
    k = m["hog"]["k"]
    return (
        f"retrieval precision@{k} by video on {labelled}: trained "
        f"{m['checkpoint']['precision_at_k']:.3f} vs random init "
        f"{m['random_init']['precision_at_k']:.3f} (HOG {m['hog']['precision_at_k']:.3f}); "
        f"model {train.checkpoint_path()}"
    )


def demo_networks(transitive: luigi.Task, runs: list[luigi.Task]) -> dict[str, str]:
    """EvaluateLinear's ``networks`` for the demo: its TrainTransitive run and its runs on
    the frames (``tasks.train_frames.demo_frame_runs``), each under its COMPARED row name."""
    nets = {"transitive": str(transitive.checkpoint_path())}
    nets.update({str(t.kind): str(t.checkpoint_path()) for t in runs})
    unknown = sorted(set(nets) - set(COMPARED))
    if unknown:
        raise KeyError(f"demo networks {unknown} are not rows of EvaluateLinear: {COMPARED}")
    return nets


def demo_linear(out_dir: Path, networks: dict[str, str]) -> str:
    """EvaluateLinear of ``networks`` on the labelled folder ``demo_retrieval`` wrote into
    ``out_dir`` (one class per video), into ``out_dir / "linear"``; returns its table."""
    ev = EvaluateLinear(
        data_root=str(out_dir / "labelled"), out_dir=str(out_dir / "linear"), networks=networks
    )
    if not luigi.build([ev], local_scheduler=True, workers=1, log_level="WARNING"):
        raise RuntimeError("demo linear evaluation failed")
    m = json.loads(Path(ev.output().path).read_text())
    return (
        f"linear probe ({m['config']['layer']}, frozen) by video on {m['data_root']}: "
        f"{m['n_train']} train / {m['n_test']} test images; CPU runs this short say nothing "
        f"about the methods' quality\n{(out_dir / 'linear' / 'metrics.md').read_text()}"
    )
