"""Knowledge transfer by clustering (Noroozi et al. CVPR 2018; DESIGN 4.7) as Luigi stages.

    SampleFrames(shard) -> ClusterPseudoLabels -> TrainStudent
                           ^ teacher: HOG, a checkpoint, or TrainContext / TrainTracking

- ``ClusterPseudoLabels``: the teacher's features of every sampled frame (a centred square
  crop of ``patch_size``), PCA-whitened to ``pca_dim`` = 256, L2-normalised, K-means into
  k = min(2000, N / points_per_cluster) clusters -> ``pseudo_labels`` (one row per frame)
  and ``clusters.png`` (rows of frames from the largest clusters). The teacher is a
  ``FeatureConfig`` source: ``--source hog`` (no network), ``--source checkpoint
  --checkpoint CKPT`` (any network trained by ``models.train``: counting, Jigsaw++,
  transitive, ...), or ``--source context`` / ``tracking`` (the training task is required
  when no checkpoint is given).
- ``TrainStudent``: the ``student`` method of ``models.methods`` (AlexNet from scratch,
  batches uniform over clusters) on those frames and labels; ``n_classes`` = the table's k.

Frames: ``--frames`` (manifest paths or ``name@version``, comma-separated) or, when empty,
SampleFrames of every shard. Numeric defaults live in ``pipeline.features.FeatureConfig`` and
``pipeline.pseudo_labels.PseudoLabelConfig``; override under ``[ClusterPseudoLabels]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import luigi
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.config import TrainConfig
from models.manifests import has_table, read_table
from pipeline import features, imaging
from pipeline.features import FeatureConfig
from pipeline.pseudo_labels import PseudoLabelConfig, cluster_pseudo_labels
from tasks.common import StageOutput, StageTask, config_from_params, stage_params
from tasks.feature_source import build_source, feature_model_task
from tasks.train import TrainBase

SHEET_CLUSTERS = 12  # rows of clusters.png
SHEET_PER_CLUSTER = 8  # frames per row


def centre_squares(jpegs: list[bytes], size: int) -> np.ndarray:
    """JPEG frames -> (N, size, size, 3) uint8 centred square crops (shorter side)."""
    out = np.empty((len(jpegs), size, size, 3), dtype=np.uint8)
    for i, data in enumerate(jpegs):
        img = imaging.decode_jpeg(data)
        h, w = img.shape[:2]
        s = min(h, w)
        out[i] = imaging.crop_resize(img, ((w - s) / 2, (h - s) / 2, s, s), size)
    return out


def _frame_tasks() -> list[luigi.Task]:
    from tasks.frames import frame_tasks  # lazy: importing tasks.transfer must not need it

    return frame_tasks()


def teacher_name(spec: dict[str, Any]) -> str:
    """``hog`` or ``<source>:<checkpoint>`` (the column; the full spec is in the notes)."""
    ck = spec.get("checkpoint")
    return f"{spec['name']}:{ck}" if ck else str(spec["name"])


@stage_params(FeatureConfig, PseudoLabelConfig, exclude=("batch_size", "device"))
class ClusterPseudoLabels(StageTask):
    """Teacher features of every frame -> PCA-256 whitened, L2, K-means -> ``pseudo_labels``."""

    frames = luigi.Parameter(
        default="", description="frames: name@version or manifest path(s), comma-separated; "
        "'' = SampleFrames of every shard",
    )  # fmt: skip
    batch_size = luigi.IntParameter(default=FeatureConfig.batch_size, significant=False)
    device = luigi.Parameter(default=FeatureConfig.device, significant=False)

    @property
    def resources(self) -> dict[str, int]:  # type: ignore[override]
        import torch

        return {"gpu": 1} if self.source != "hog" and torch.cuda.is_available() else {}

    def model_task(self) -> luigi.Task | None:
        return None if self.checkpoint else feature_model_task(self.source)

    def requires(self) -> list[luigi.Task]:
        model = self.model_task()
        upstream = [] if self.frames else _frame_tasks()
        return upstream + ([model] if model is not None else [])

    def frame_sources(self) -> list[str]:
        if self.frames:
            return [s.strip() for s in str(self.frames).split(",") if s.strip()]
        return [str(t.output().local_path()) for t in _frame_tasks()]

    def produce(self, out: StageOutput) -> None:
        from tasks.common import videomine

        fcfg = config_from_params(self, FeatureConfig)
        model = self.model_task()
        if model is not None:
            fcfg = dataclasses.replace(fcfg, checkpoint=str(model.checkpoint_path()))
        pcfg = config_from_params(self, PseudoLabelConfig)
        source = build_source(fcfg)
        frames = read_table(self.frame_sources(), "frames", str(videomine().registry))
        n = frames.num_rows
        if n < 2:
            raise ValueError(f"ClusterPseudoLabels: {n} frame(s) in {self.frame_sources()}")
        jpegs = frames.column("jpeg")
        feats = np.zeros((n, source.dim), np.float16)
        step = 1024  # decode in slices: memory bounded by one slice of frames
        for s in range(0, n, step):
            self.progress(s, n, "teacher features")
            imgs = centre_squares(jpegs.slice(s, step).to_pylist(), fcfg.patch_size)
            feats[s : s + step] = features.embed(imgs, source, fcfg.batch_size)
        self.set_status_message(f"PCA + K-means of {n} x {source.dim}")
        res = cluster_pseudo_labels(feats, pcfg)
        spec = source.spec()
        video = frames.column("video_id").to_pylist()
        frame = frames.column("frame").to_pylist()
        k = int(res.stats["k"])
        out.write(
            "pseudo_labels",
            pa.table(
                {
                    "item": [f"{v}:{f}" for v, f in zip(video, frame, strict=True)],
                    "video_id": video,
                    "frame": pa.array(frame, pa.int64()),
                    "teacher": [teacher_name(spec)] * n,
                    "layer": ["hog" if spec["name"] == "hog" else "pool5"] * n,
                    "k": pa.array(np.full(n, k, np.int32)),
                    "label": pa.array(res.labels),
                    "distance": pa.array(res.distance),
                    "cluster_size": pa.array(res.cluster_size),
                }
            ),
        )
        self._sheet(out, jpegs, res.labels, res.distance, res.sizes)
        out.note("teacher", spec)
        out.note("pseudo_labels", res.stats)
        out.count("frames", n)
        out.count("clusters", k)

    def _sheet(
        self, out: StageOutput, jpegs: Any, labels: np.ndarray, dist: np.ndarray, sizes: Any
    ) -> None:
        """clusters.png: the frames nearest the centroid of the largest clusters, a row each."""
        rows = []
        for c in np.argsort(-sizes, kind="stable")[:SHEET_CLUSTERS]:
            members = np.flatnonzero(labels == c)
            members = members[np.argsort(dist[members], kind="stable")][:SHEET_PER_CLUSTER]
            if members.size:
                rows.append(list(centre_squares([jpegs[int(i)].as_py() for i in members], 96)))
        if rows:
            imaging.save_png(out.path / "clusters.png", imaging.montage(rows, tile=96))
            out.note("sheet", "clusters.png")


class TrainStudent(TrainBase):
    """Noroozi et al. 2018: a student (AlexNet) from scratch on the teacher's pseudo-labels."""

    kind = "student"

    def labels_task(self) -> ClusterPseudoLabels:
        return ClusterPseudoLabels()

    def upstream(self) -> list[luigi.Task]:
        return [self.labels_task()]

    def sources(self) -> list[str]:
        if self.dataset:
            return super().sources()
        labels = self.labels_task()
        return [str(labels.output().local_path()), *labels.frame_sources()]

    def train_config(self) -> TrainConfig:
        """n_classes = the pseudo-labels' k unless ``--options`` sets it."""
        cfg = super().train_config()
        if "n_classes" not in cfg.network:
            reg = cfg.registry or None
            held = [s for s in cfg.data if has_table(s, "pseudo_labels", reg)]
            if not held:
                raise ValueError(f"TrainStudent: no pseudo_labels table in {cfg.data}")
            labels = read_table(held, "pseudo_labels", reg).column("label")
            cfg.network = {**cfg.network, "n_classes": int(pc.max(labels).as_py()) + 1}
        return cfg
