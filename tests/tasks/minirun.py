"""A tiny real run on the run model: two FetchVideos-like shards and a graph stage.

Uses the test ``videos`` / ``pairs`` definitions (``tests.data_manifests.fakerun``), so the
``test_tables`` fixture must be active while these tasks run.
"""

from __future__ import annotations

import luigi
import numpy as np

from pipeline.imaging import encode_jpeg, encode_png, montage
from tasks import common
from tests.data_manifests.fakerun import PAIR_TYPES, videos_rows


def _patch(i: int) -> bytes:
    rng = np.random.default_rng(i)
    img = np.zeros((96, 96, 3), np.uint8)
    img[:, :] = rng.integers(0, 256, 3, dtype=np.uint8)  # one colour per patch
    img[30:66, 30:66] = 255 - img[0, 0]
    return encode_jpeg(img)


class _Fetch(common.ShardTask):
    def produce(self, out: common.StageOutput) -> None:
        rows = videos_rows(self.shard)
        out.write("videos", rows)
        out.count("ok", sum(r["status"] == "ok" for r in rows))
        out.count("failed", sum(r["status"] != "ok" for r in rows))


class _Graph(common.StageTask):
    n_shards = luigi.IntParameter(default=2)

    def requires(self) -> list[_Fetch]:
        return [_Fetch(shard=s) for s in range(self.n_shards)]

    def produce(self, out: common.StageOutput) -> None:
        rows = [
            {
                "pair_id": i,
                "a": f"n{i}",
                "b": f"n{i + 1}",
                "pair_type": PAIR_TYPES[i],
                "image": _patch(i),
            }
            for i in range(len(PAIR_TYPES))
        ]
        out.write("pairs", rows)
        out.count("pairs", len(rows))
        sheet = montage(
            [[np.full((96, 96, 3), 40 * k, np.uint8) for k in range(4)]], labels=["intra"]
        )
        (out.path / "pairs_montage.png").write_bytes(encode_png(sheet))
