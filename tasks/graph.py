"""Features, two-stage clustering and the transitive graph (DESIGN 4.5) as Luigi stages.

    EmbedPatches(shard) -> ClusterParents -> ChildClusters -> BuildGraph
         ^ TrackObjects(shard)                                  ^ TrackObjects(all shards)

- ``EmbedPatches(shard)``: features of the seed patch A of every kept track of the shard
  (``embeddings``), with the source of ``pipeline.features`` named by ``--source``.
- ``ClusterParents``: spherical K-means over every shard's embeddings (optional global PCA,
  ``pca.npz``), ``parents`` + ``parent_centroids``.
- ``ChildClusters``: child clusters of mutual top-10 neighbours inside each kept parent.
- ``BuildGraph``: ``nodes`` (A and A' patches with JPEG), ``edges``, ``pairs`` and two
  montages: ``clusters.png`` (rows of child clusters, Fig. 4 of Wang et al. 2017) and
  ``pairs.png`` (columns A, B, A', B', Fig. 5). Its ``_meta.json`` notes carry the funnel.

Every numeric default lives in the pipeline dataclasses; override under ``[BuildGraph]``
(etc.) in luigi.cfg. Parameters flow upstream with ``clone``, so ``BuildGraph --k 100``
reclusters with K=100 into new, parameter-hashed directories.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import Any

import luigi
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import features, imaging
from pipeline.clustering import ChildConfig, ParentConfig, cluster_children, cluster_parents
from pipeline.features import FeatureConfig
from pipeline.graph import EDGE_KINDS, PAIR_KINDS, GraphConfig, build_graph
from tasks.common import (
    EmptyOutputError,
    ShardTask,
    StageOutput,
    StageTarget,
    StageTask,
    concat_stage_tables,
    config_from_params,
    read_stage_table,
    shard_count,
    stage_params,
)
from tasks.feature_source import build_source, feature_model_task
from tasks.graph_io import (
    NODE_COLUMNS,
    VIEWS,
    cluster_sheet_rows,
    decode_patches,
    feature_matrix,
    pair_sheet_rows,
    track_nodes,
)

log = logging.getLogger(__name__)


def _tracking_task(shard: int) -> luigi.Task:
    from tasks.mining import TrackObjects  # lazy: `import tasks` must not need mining

    return TrackObjects(shard=shard)


def _jsonable(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if not isinstance(v, np.ndarray)}


@stage_params(FeatureConfig, exclude=("batch_size", "device"))
class EmbedPatches(ShardTask):
    """Seed-patch features of one shard -> ``embeddings`` (float16, L2-normalised)."""

    batch_size = luigi.IntParameter(default=FeatureConfig.batch_size, significant=False)
    device = luigi.Parameter(default=FeatureConfig.device, significant=False)
    may_be_empty = ("embeddings",)  # a shard of static videos has no tracks

    @property
    def resources(self) -> dict[str, int]:  # type: ignore[override]
        import torch

        trunk = self.source not in ("hog",)
        return {"gpu": 1} if trunk and torch.cuda.is_available() else {}

    def requires(self) -> dict[str, luigi.Task]:
        reqs = {"tracks": _tracking_task(self.shard)}
        model = self.model_task()
        if model is not None:
            reqs["model"] = model
        return reqs

    def model_task(self) -> luigi.Task | None:
        """The training task that provides the network of a `context` / `tracking` source
        when no --checkpoint is given (the DAG's "patches + feature model")."""
        if self.checkpoint:
            return None
        return feature_model_task(self.source)

    def produce(self, out: StageOutput) -> None:
        cfg = config_from_params(self, FeatureConfig)
        model = self.model_task()
        if model is not None:
            cfg = dataclasses.replace(cfg, checkpoint=str(model.checkpoint_path()))
        source = build_source(cfg)
        nodes = track_nodes(self.requires()["tracks"].output())
        a = nodes.filter(pc.equal(nodes["view"], "A"))
        feats = np.zeros((a.num_rows, source.dim), np.float16)
        jpegs = a.column("jpeg").to_pylist()
        step = 1024  # decode in slices: memory bounded by one slice of images
        for s in range(0, a.num_rows, step):
            self.progress(s, a.num_rows, "embedding seed patches")
            imgs = decode_patches(jpegs[s : s + step], cfg.patch_size)
            feats[s : s + step] = features.embed(imgs, source, cfg.batch_size)
        valid = np.abs(feats.astype(np.float32)).sum(axis=1) > 0
        if a.num_rows * source.dim >= 2**31:  # list<> offsets are int32
            raise ValueError(f"shard {self.shard}: {a.num_rows} patches; use smaller shards")
        flat = pa.array(feats.reshape(-1), type=pa.float16())
        offsets = pa.array(np.arange(a.num_rows + 1, dtype=np.int32) * source.dim)
        table = pa.table(
            {
                "node_id": a["node_id"],
                "track_id": a["track_id"],
                "video_id": a["video_id"],
                "valid": pa.array(valid),
                "feature": pa.ListArray.from_arrays(offsets, flat),
            }
        )
        out.write("embeddings", table)
        out.note("feature_source", source.spec())
        out.count("patches_embedded", a.num_rows)
        out.count("patches_invalid", int((~valid).sum()))


@stage_params(FeatureConfig, ParentConfig, exclude=("batch_size", "device"))
class ClusterParents(StageTask):
    """Stage 1 over all shards: spherical K-means -> ``parents``, ``parent_centroids``."""

    batch_size = luigi.IntParameter(default=FeatureConfig.batch_size, significant=False)
    device = luigi.Parameter(default=FeatureConfig.device, significant=False)
    pca_dim = luigi.IntParameter(
        default=0, description="project features to this many PCA components first (0: off)"
    )

    def requires(self) -> list[luigi.Task]:
        return [self.clone(EmbedPatches, shard=i) for i in range(shard_count())]

    def produce(self, out: StageOutput) -> None:
        cfg = config_from_params(self, ParentConfig)
        emb = concat_stage_tables(self.requires(), "embeddings")
        emb = emb.filter(emb["valid"])
        if emb.num_rows == 0:
            raise EmptyOutputError(
                f"ClusterParents: no kept track in any of the run's {len(self.requires())} "
                "shard(s), nothing to cluster (see seed_videos of DetectMotion and "
                "track_videos of TrackObjects for each video's counts)"
            )
        x = feature_matrix(emb)
        if self.pca_dim:
            pca = features.fit_pca(x, self.pca_dim, seed=cfg.seed)
            x = features.apply_pca(pca, x)
            buf = io.BytesIO()
            np.savez(buf, **pca.arrays())
            (out.path / "pca.npz").write_bytes(buf.getvalue())
        self.set_status_message(f"K-means of {x.shape[0]} x {x.shape[1]}")
        res = cluster_parents(x, cfg)
        out.write(
            "parents",
            pa.table(
                {
                    "node_id": emb["node_id"],
                    "track_id": emb["track_id"],
                    "video_id": emb["video_id"],
                    "parent_id": pa.array(res.labels),
                    "centroid": pa.array(res.assigned),
                    "similarity": pa.array(res.similarity),
                }
            ),
        )
        k, d = res.centroids.shape
        out.write(
            "parent_centroids",
            pa.table(
                {
                    "parent_id": pa.array(np.arange(k, dtype=np.int32)),
                    "size": pa.array(res.sizes),
                    "kept": pa.array(res.kept),
                    "centroid": pa.ListArray.from_arrays(
                        pa.array(np.arange(k + 1, dtype=np.int32) * d),
                        pa.array(res.centroids.reshape(-1)),
                    ),
                }
            ),
        )
        out.note("parents", _jsonable(res.stats))
        out.note("pca_dim", self.pca_dim)
        out.count("points", x.shape[0])
        out.count("parents_kept", res.stats["parents_kept"])
        out.count("points_in_kept_parents", res.stats["points_kept"])


@stage_params(FeatureConfig, ParentConfig, ChildConfig, exclude=("batch_size", "device"))
class ChildClusters(StageTask):
    """Stage 2: children of ``child_size`` mutual neighbours inside each kept parent."""

    batch_size = luigi.IntParameter(default=FeatureConfig.batch_size, significant=False)
    device = luigi.Parameter(default=FeatureConfig.device, significant=False)
    pca_dim = ClusterParents.pca_dim
    may_be_empty = ("children",)  # tiny runs can have no 4 mutual neighbours

    def requires(self) -> ClusterParents:
        return self.clone(ClusterParents)

    def produce(self, out: StageOutput) -> None:
        cfg = config_from_params(self, ChildConfig)
        parents_task = self.requires()
        parents = read_stage_table(parents_task, "parents")
        emb = concat_stage_tables(parents_task.requires(), "embeddings")
        emb = emb.filter(emb["valid"])
        # Align features to the parents table by node id (never trust row order).
        order = pc.index_in(parents["node_id"], value_set=emb["node_id"]).to_numpy()
        x = feature_matrix(emb)[order]
        target: StageTarget = parents_task.output()
        if target.fs.exists(target.file("pca.npz")):
            with target.open("pca.npz") as f:
                pca = features.Pca.from_arrays(dict(np.load(io.BytesIO(f.read()))))
            x = features.apply_pca(pca, x)
        labels = parents["parent_id"].to_numpy()
        res = cluster_children(x, labels, cfg)
        m = res.members
        s = cfg.child_size
        take = pa.array(m.reshape(-1))
        out.write(
            "children",
            pa.table(
                {
                    "child_id": pa.array(np.repeat(np.arange(m.shape[0], dtype=np.int64), s)),
                    "member": pa.array(np.tile(np.arange(s, dtype=np.int8), m.shape[0])),
                    "node_id": parents["node_id"].take(take),
                    "track_id": parents["track_id"].take(take),
                    "video_id": parents["video_id"].take(take),
                    "parent_id": pa.array(np.repeat(res.parent, s)),
                    "score": pa.array(np.repeat(res.score, s)),
                }
            ),
        )
        out.note("children", _jsonable(res.stats))
        out.count("children", res.stats["children"])
        out.count("points_covered", res.stats["points_covered"])


@stage_params(
    FeatureConfig, ParentConfig, ChildConfig, GraphConfig, exclude=("batch_size", "device")
)
class BuildGraph(StageTask):
    """The graph over every kept track: ``nodes``, ``edges``, ``pairs`` + two montages."""

    batch_size = luigi.IntParameter(default=FeatureConfig.batch_size, significant=False)
    device = luigi.Parameter(default=FeatureConfig.device, significant=False)
    pca_dim = ClusterParents.pca_dim
    montage_rows = luigi.IntParameter(default=12, significant=False, description="rows/sheet")

    def requires(self) -> dict[str, Any]:
        return {
            "children": self.clone(ChildClusters),
            "parents": self.clone(ClusterParents),
            "tracks": [_tracking_task(i) for i in range(shard_count())],
        }

    def produce(self, out: StageOutput) -> None:
        cfg = config_from_params(self, GraphConfig)
        req = self.requires()
        parents = read_stage_table(req["parents"], "parents")
        par_ids = parents["parent_id"].to_numpy()
        # Nodes stream out shard by shard (memory: one shard's patches); node order is shard
        # order, then track id, A before A' within a track: track t owns nodes 2t and 2t+1.
        writer = out.writer("nodes")
        tids, vids, pars, shard_of = [], [], [], []
        for s, t in enumerate(req["tracks"]):
            self.progress(s, len(req["tracks"]), "writing nodes")
            nodes = track_nodes(t.output())
            views = nodes["view"].to_numpy(zero_copy_only=False)
            if nodes.num_rows % 2 or (views[0::2] != "A").any() or (views[1::2] != "A'").any():
                raise ValueError(f"{t.task_id}: every kept track needs one A and one A' patch")
            a = nodes.filter(pc.equal(nodes["view"], "A"))
            idx = pc.index_in(a["track_id"], value_set=parents["track_id"]).to_numpy(
                zero_copy_only=False
            )
            par = np.full(a.num_rows, -1, np.int32)
            has = ~np.isnan(idx.astype(float))
            par[has] = par_ids[idx[has].astype(np.int64)]
            nodes = nodes.append_column("parent_id", pa.array(np.repeat(par, 2)))
            writer.write(nodes.select(list(NODE_COLUMNS[:-1]) + ["parent_id", "jpeg"]))
            tids.append(a["track_id"].combine_chunks())
            vids.append(a["video_id"].combine_chunks())
            pars.append(par)
            shard_of.append(np.full(a.num_rows, s, np.int32))
        tid = pa.concat_arrays(tids) if tids else pa.array([], pa.string())
        vid = pa.concat_arrays(vids) if vids else pa.array([], pa.string())
        par_of_track = np.concatenate(pars) if pars else np.zeros(0, np.int32)
        n_tracks = len(tid)
        if pc.count_distinct(tid).as_py() != n_tracks:
            raise ValueError("track ids repeat across shards: node ids would not be unique")
        # node index i -> its id: A ids first, then A' ids
        ids = pa.concat_arrays(
            [pc.binary_join_element_wise(tid, v, ":") for v in VIEWS]
        )  # fmt: skip

        def node_ids(nodes_idx: np.ndarray) -> pa.Array:
            return ids.take(pa.array((nodes_idx % 2) * n_tracks + nodes_idx // 2))

        children = read_stage_table(req["children"], "children")
        size = self.child_size
        ch_tracks = pc.index_in(children["track_id"], value_set=tid).to_numpy(zero_copy_only=False)
        members = np.asarray(ch_tracks, dtype=np.int64).reshape(-1, size)
        video_codes = pc.dictionary_encode(vid).indices.to_numpy()
        g = build_graph(members, n_tracks, video_codes, cfg)
        out.write(
            "edges",
            pa.table(
                {
                    "src": node_ids(g.edge_a),
                    "dst": node_ids(g.edge_b),
                    "edge_type": pa.array(np.array(EDGE_KINDS)[g.edge_kind]),
                    "n_children": pa.array(g.edge_children.astype(np.int32)),
                }
            ),
        )
        ta, tb = g.pair_a // 2, g.pair_b // 2
        out.write(
            "pairs",
            pa.table(
                {
                    "pair_id": pa.array(np.arange(g.pair_a.size, dtype=np.int64)),
                    "a": node_ids(g.pair_a),
                    "b": node_ids(g.pair_b),
                    "pair_type": pa.array(np.array(PAIR_KINDS)[g.pair_kind]),
                    "a_track": tid.take(pa.array(ta)),
                    "b_track": tid.take(pa.array(tb)),
                    "a_video": vid.take(pa.array(ta)),
                    "b_video": vid.take(pa.array(tb)),
                    "a_parent": pa.array(par_of_track[ta]),
                    "b_parent": pa.array(par_of_track[tb]),
                }
            ),
        )
        shards = np.concatenate(shard_of) if shard_of else np.zeros(0, np.int32)
        self._montages(out, req, children, g, par_of_track, shards, tid, node_ids)
        self._funnel(out, req, g.stats)

    def _montages(
        self,
        out: StageOutput,
        req: dict[str, Any],
        children: pa.Table,
        g: Any,
        parent: np.ndarray,
        shards: np.ndarray,
        tid: pa.Array,
        node_ids: Any,
    ) -> None:
        """clusters.png (rows of child clusters) and pairs.png (columns A, B, A', B')."""
        rows, labels = cluster_sheet_rows(children, self.child_size, self.montage_rows)
        quads, qlabels = pair_sheet_rows(g, parent, self.montage_rows)
        quad_ids = [node_ids(np.asarray(q, dtype=np.int64)).to_pylist() for q in quads]
        wanted = sorted({n for r in rows + quad_ids for n in r})
        jpeg: dict[str, bytes] = {}
        if wanted:
            want_tracks = pa.array(sorted({n.rsplit(":", 1)[0] for n in wanted}))
            where = pc.index_in(want_tracks, value_set=tid).to_numpy(zero_copy_only=False)
            for s in sorted({int(shards[int(i)]) for i in where}):  # only shards shown
                nodes = track_nodes(req["tracks"][s].output())
                sub = nodes.filter(pc.is_in(nodes["track_id"], value_set=want_tracks))
                jpeg.update(zip(sub["node_id"].to_pylist(), sub["jpeg"].to_pylist(), strict=True))
        if rows:
            imgs = [[imaging.decode_jpeg(jpeg[n]) for n in r] for r in rows]
            imaging.save_png(out.path / "clusters.png", imaging.montage(imgs, labels=labels))
        if quads:
            imgs = [[imaging.decode_jpeg(jpeg[n]) for n in q] for q in quad_ids]
            imaging.save_png(out.path / "pairs.png", imaging.montage(imgs, labels=qlabels))

    def _funnel(self, out: StageOutput, req: dict[str, Any], stats: dict[str, Any]) -> None:
        """Counts of every mining stage upstream (summed over shards, per task family) and
        of the graph stages: videos -> frames -> seeds -> tracks -> ... -> pairs by type."""
        upstream: dict[str, dict[str, Any]] = {}
        todo = list(req["tracks"])
        seen: set[str] = set()
        while todo:
            t = todo.pop()
            if t.task_id in seen or not isinstance(t, StageTask) or not t.complete():
                continue
            seen.add(t.task_id)
            fam = upstream.setdefault(t.task_family, {})
            for k, v in t.output().meta().get("counts", {}).items():
                fam[k] = fam.get(k, 0) + v
            todo += luigi.task.flatten(t.requires())
        funnel: dict[str, Any] = {"upstream": upstream}
        pmeta = req["parents"].output().meta().get("notes", {}).get("parents", {})
        cmeta = req["children"].output().meta().get("notes", {}).get("children", {})
        funnel.update(
            {
                "patches": stats["nodes"],
                "kept_tracks": stats["tracks"],
                "k": pmeta.get("k"),
                "parents_kept": pmeta.get("parents_kept"),
                "children": cmeta.get("children"),
                "child_coverage": cmeta.get("coverage"),
            }
        )
        funnel.update({k: v for k, v in stats.items() if k.startswith("pairs")})
        out.note("funnel", funnel)
        out.note("graph", stats)
        for k in ("edges_inter", "pairs", *(f"pairs_{p}" for p in PAIR_KINDS)):
            out.count(k, stats[k])
