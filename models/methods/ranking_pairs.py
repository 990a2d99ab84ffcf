"""Positive pairs over the manifests, for the ranking network.

Two layouts, both explicit (:class:`PairColumns` names every column read):

- ``pairs`` + ``nodes``: BuildGraph's pair manifest (both node ids, the pair type, the parent
  clusters and videos of both ends) joined to the node JPEGs by node id;
- ``tracks`` + ``patches``: TrackObjects' kept tracks (``kept`` and both patch ids set), each an
  ``intra`` pair <A, A'> without a parent (negatives then come from other videos).

:class:`PairData` holds arrays (rows into one JPEG column); :class:`PairDataset` decodes in the
loader workers. A row whose JPEG does not decode is replaced by the next decodable row (the
batch keeps its size, so every rank keeps the same batch) and reported in ``skipped``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset

from models.images import decode_rgb, first_decodable, resize
from models.manifests import has_table, read_table, require_columns
from models.sampling import Item

log = logging.getLogger(__name__)
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PairColumns:
    """Tables and columns read (data_manifests/tables: graph.py, tracks.py, patches.py)."""

    pairs_table: str = "pairs"
    node_a: str = "a"
    node_b: str = "b"
    pair_type: str = "pair_type"
    parent_a: str = "a_parent"  # -1: the parent was dropped
    parent_b: str = "b_parent"
    nodes_table: str = "nodes"  # images of the pairs layout
    tracks_table: str = "tracks"
    track_a: str = "patch_a"  # node id of A in a track row (null unless kept)
    track_b: str = "patch_b"  # node id of A'
    track_kept: str = "kept"
    patches_table: str = "patches"  # images of the tracks layout
    image_id: str = "node_id"
    image_bytes: str = "jpeg"
    video: str = "video_id"  # in the images table


@dataclass
class PairData:
    """B pairs over an image column. a, b: (P,) int64 rows of ``images``; parent: (P,) int64
    (-1 = none); video: (P,) int64 codes of A's video; pair_type: (P,) str."""

    a: I64
    b: I64
    parent: I64
    video: I64
    pair_type: npt.NDArray[np.str_]
    images: pa.Array
    image_ids: pa.Array

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def weights(
        self, type_weights: Mapping[str, float], types: Sequence[str] | None
    ) -> npt.NDArray[np.float64]:
        """Per-row sampling weight: ``type_weights[type]`` (default 1), 0 outside ``types``."""
        unknown = sorted(set(type_weights) - set(np.unique(self.pair_type).tolist()))
        if unknown:
            log.warning("type_weights names pair types absent from the data: %s", unknown)
        w = np.ones(len(self), dtype=np.float64)
        for t, v in type_weights.items():
            w[self.pair_type == t] = float(v)
        if types is not None:
            w[~np.isin(self.pair_type, list(types))] = 0.0
        return w


def _rows_of(ids: pa.Array, index: Mapping[Any, int], what: str) -> I64:
    out = np.empty(len(ids), dtype=np.int64)
    for i, v in enumerate(ids.to_pylist()):
        try:
            out[i] = index[v]
        except KeyError:
            raise ValueError(f"{what} {v!r} has no row in the images table") from None
    return out


def _int_or_minus1(col: pa.ChunkedArray) -> I64:
    return np.asarray(pc.fill_null(col, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def load_pairs(
    sources: str | Path | Sequence[str | Path],
    cols: PairColumns = PairColumns(),
    registry: str | None = None,
) -> PairData:
    """Pairs from ``pairs`` + ``nodes`` when the sources hold a ``pairs`` table, else from
    ``tracks`` + ``patches``."""
    from_tracks = not has_table(sources, cols.pairs_table, registry)
    images_table = cols.patches_table if from_tracks else cols.nodes_table
    images = read_table(sources, images_table, registry)
    require_columns(images, images_table, [cols.image_id, cols.image_bytes, cols.video])
    ids = images.column(cols.image_id).combine_chunks()
    index = {v: i for i, v in enumerate(ids.to_pylist())}
    video_codes = np.asarray(
        pc.dictionary_encode(images.column(cols.video)).combine_chunks().indices, dtype=np.int64
    )
    if from_tracks:
        pairs = read_table(sources, cols.tracks_table, registry)
        require_columns(pairs, cols.tracks_table, [cols.track_a, cols.track_b])
        ok = pc.and_(
            pc.is_valid(pairs.column(cols.track_a)), pc.is_valid(pairs.column(cols.track_b))
        )
        if cols.track_kept in pairs.column_names:
            ok = pc.and_(ok, pc.fill_null(pairs.column(cols.track_kept), False))
        pairs = pairs.filter(ok)
        a = _rows_of(pairs.column(cols.track_a).combine_chunks(), index, "track patch")
        b = _rows_of(pairs.column(cols.track_b).combine_chunks(), index, "track patch")
        parent: I64 = np.full(len(a), -1, dtype=np.int64)
        ptype: npt.NDArray[np.str_] = np.asarray(["intra"] * len(a), dtype=np.str_)
    else:
        pairs = read_table(sources, cols.pairs_table, registry)
        need = [cols.node_a, cols.node_b, cols.pair_type, cols.parent_a, cols.parent_b]
        require_columns(pairs, cols.pairs_table, need)
        a = _rows_of(pairs.column(cols.node_a).combine_chunks(), index, "pair node")
        b = _rows_of(pairs.column(cols.node_b).combine_chunks(), index, "pair node")
        pa_ = _int_or_minus1(pairs.column(cols.parent_a))
        pb = _int_or_minus1(pairs.column(cols.parent_b))
        parent = np.where(pa_ >= 0, pa_, pb)
        ptype = np.asarray(pairs.column(cols.pair_type).to_pylist(), dtype=np.str_)
    if len(a) == 0:
        raise ValueError(f"no pairs to train on in {sources}")
    return PairData(
        a=a,
        b=b,
        parent=parent,
        video=video_codes[a],
        pair_type=ptype,
        images=images.column(cols.image_bytes).combine_chunks(),
        image_ids=ids,
    )


class PairDataset(Dataset[dict[str, Any]]):
    """Item ``(row, sample_seed)`` -> dict of a, b: (S, S, 3) uint8 RGB, parent, video, row,
    skipped (rows passed over because an image did not decode)."""

    def __init__(self, data: PairData, size: int = 96) -> None:
        self.data, self.size = data, size

    def __len__(self) -> int:
        return len(self.data)

    def _image(self, r: int) -> npt.NDArray[np.uint8]:
        return resize(decode_rgb(self.data.images[r].as_py()), self.size)

    def __getitem__(self, item: Item) -> dict[str, Any]:
        row, _seed = item

        def load(i: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
            return self._image(int(self.data.a[i])), self._image(int(self.data.b[i]))

        r, (a, b), skipped = first_decodable(row, len(self.data), load, "pair")
        return {
            "a": a,
            "b": b,
            "parent": int(self.data.parent[r]),
            "video": int(self.data.video[r]),
            "row": r,
            "skipped": skipped,
        }


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack uint8 images (normalised later, on the device) and the integer ids."""
    return {
        "a": torch.from_numpy(np.stack([it["a"] for it in items])),
        "b": torch.from_numpy(np.stack([it["b"] for it in items])),
        "parent": torch.tensor([it["parent"] for it in items], dtype=torch.int64),
        "video": torch.tensor([it["video"] for it in items], dtype=torch.int64),
        "row": torch.tensor([it["row"] for it in items], dtype=torch.int64),
        "skipped": [r for it in items for r in it["skipped"]],
    }
