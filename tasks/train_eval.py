"""Evaluation of the trained networks (DESIGN 4.6), over labelled folders.

    luigi --module tasks EvaluateRetrieval --data-root LABELLED --out-dir OUT \
        [--checkpoint CKPT | --model transitive|tracking|context] --local-scheduler
    luigi --module tasks EvaluateMasks --data-root DAVIS --out-dir OUT \
        [--checkpoint CKPT | --model masks] [--unlc-root UNLC] --local-scheduler

``EvaluateRetrieval``: top-k (20) retrieval by cosine on pool5 (Wang & Gupta 2015) for the
checkpoint, a random-init trunk of the same architecture and HOG, in one run.
``EvaluateMasks``: IoU / precision / recall of the mask network on a DAVIS-layout folder,
beside uNLC masks of the same frames when ``--unlc-root`` is given. Both write
``metrics.json`` (last, atomically: it is the task's output) and ``metrics.md`` into
``--out-dir`` and print where they wrote.
"""

from __future__ import annotations

from pathlib import Path

import luigi

from models.evaluate import evaluate_masks, evaluate_retrieval

MODELS = ("transitive", "tracking", "context", "masks")


def _train_task(model: str) -> luigi.Task:
    from tasks import train

    tasks = {
        "transitive": train.TrainTransitive,
        "tracking": train.TrainTracking,
        "context": train.TrainContext,
        "masks": train.TrainMasks,
    }
    if model not in tasks:
        raise KeyError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    return tasks[model]()


class _Evaluate(luigi.Task):
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

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(Path(str(self.out_dir)) / "metrics.json"))


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
