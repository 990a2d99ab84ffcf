"""Training stages on the ``frames`` table: TrainCounting and TrainJigsaw (DESIGN 4.7).

| task | method | paper | upstream (every shard) |
|---|---|---|---|
| TrainCounting | ``counting`` | Noroozi, Pirsiavash & Favaro, ICCV 2017 | SampleFrames: frames |
| TrainJigsaw | ``jigsaw`` (Jigsaw++) | Noroozi, Vinjimoor, Favaro & Pirsiavash, CVPR 2018 | SampleFrames |

Both run ``python -m models.train`` like every training stage (``tasks.train.TrainBase``:
``--nproc`` > 1 runs torchrun, a killed run resumes, a non-finite loss stops it) and then
commit, beside the checkpoint, ``pretext.json``: the method's pretext checks on the frames
held back from training (Jigsaw++: accuracy by number of replaced tiles, beside chance;
counting: the counting error for each downsampling method, beside the same error on another
image, and the count units that are ever non-zero). Method settings go in ``--options``,
e.g. ``--options '{"crop": {"gray_share": 0.7}, "network": {"n_permutations": 100}}'``.
"""

from __future__ import annotations

import json

import luigi

from tasks.common import StageOutput
from tasks.train import TrainBase


class _TrainOnFrames(TrainBase):
    def upstream(self) -> list[luigi.Task]:
        from tasks.frames import frame_tasks  # lazy: importing tasks.train_frames stays light

        return frame_tasks()

    def produce(self, out: StageOutput) -> None:
        super().produce(out)
        summary = json.loads((out.path / "summary.json").read_text())
        pretext = summary.get("pretext") or {}
        (out.path / "pretext.json").write_text(json.dumps(pretext, indent=1, sort_keys=True))
        out.note("pretext", pretext)


class TrainCounting(_TrainOnFrames):
    """Noroozi et al. 2017: the counting network (AlexNet, 1000 counts) on sampled frames."""

    kind = "counting"


class TrainJigsaw(_TrainOnFrames):
    """Noroozi et al. 2018: the Jigsaw++ network (VGG16 towers, 701 orderings) on frames."""

    kind = "jigsaw"


DEMO_STEPS = 10  # a few CPU steps: shows the methods run end to end, not what they learn


def demo_frame_runs() -> list[TrainBase]:
    """The demo's runs on the sampled frames, a few CPU steps each (AlexNet, the papers'
    geometry): TrainCounting, TrainJigsaw and TrainStudent (on ClusterPseudoLabels' HOG
    pseudo-labels, its default teacher)."""
    from tasks.transfer import TrainStudent  # lazy: importing tasks.train_frames stays light

    common = {"steps": DEMO_STEPS, "batch_size": 8, "trunk": "alexnet", "loader_workers": 0}
    opts = {"val_fraction": 0.25, "log_every": 2}
    return [cls(options=opts, **common) for cls in (TrainCounting, TrainJigsaw, TrainStudent)]


def demo_frames_training(workers: int = 1) -> tuple[bool, str]:
    """``make demo``: SampleFrames of every shard, then ``demo_frame_runs`` on them; returns
    a small table of the losses and the pretext checks (and whether every task succeeded).
    CPU runs this short say nothing about quality."""
    from tasks.frames import frame_tasks
    from tasks.transfer import TrainStudent

    runs = demo_frame_runs()
    if not luigi.build([*frame_tasks(), *runs], local_scheduler=True, workers=workers,
                       log_level="WARNING"):  # fmt: skip
        return False, "frames training: a task failed (see the log above)"
    n_frames = sum(t.output().meta()["counts"].get("frames", 0) for t in frame_tasks())
    lines = [f"frames training ({n_frames} sampled frames, {DEMO_STEPS} CPU steps, batch 8):"]
    lines.append("| method | loss first -> last | pretext check on held-back frames |")
    lines.append("|---|---|---|")
    for t in runs:
        out = t.output().local_path()
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        loss = [r["loss"] for r in rows if "loss" in r]
        if isinstance(t, TrainStudent):  # its pretext is its teacher's pseudo-labels
            notes = t.labels_task().output().meta()["notes"]
            lines.append(f"| {t.kind} | {loss[0]:.3f} -> {loss[-1]:.3f} | none: trained on "
                         f"{notes['teacher']['name']} pseudo-labels, k = "
                         f"{notes['pseudo_labels']['k']} clusters |")  # fmt: skip
            continue
        pre = json.loads((out / "pretext.json").read_text())
        if t.kind == "jigsaw":
            check = (f"accuracy {pre.get('accuracy')} (chance {pre.get('chance')}), by "
                     f"replaced tiles {pre.get('accuracy_by_replaced')}")  # fmt: skip
        else:
            check = (f"count error by interpolation {pre.get('count_error_by_interpolation')}"
                     f" vs another image {pre.get('count_error_other_image')}; units ever "
                     f"non-zero {pre.get('units_ever_nonzero')}/{pre.get('units')}")  # fmt: skip
        lines.append(f"| {t.kind} | {loss[0]:.3f} -> {loss[-1]:.3f} | {check} |")
    return True, "\n".join(lines)
