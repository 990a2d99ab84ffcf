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
