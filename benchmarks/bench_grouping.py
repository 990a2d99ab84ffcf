"""Training throughput of the issue-14 networks: the pixel-embedding (grouping) network and
the edge network, one optimiser step = forward + loss + backward + SGD on an in-memory batch
(the network's own cost; decoding and pair sampling run in loader workers), and the share of
a step the loader's work would take on one core (sampling pixel pairs on the region tree,
cropping, for one image).

Sizes: 224 x 224 crops (the training default), batch 8 (quick: 128 x 128, batch 4). Device:
CUDA with bf16 autocast and channels-last when available (what ``models.train`` does), else
CPU. Timed as the best of ``rounds`` (a shared machine's noise only slows a round down).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from benchmarks.timing import best_of
from models import dist, methods, steps
from models.config import TrainConfig
from models.data_grouping import (
    CropConfig,
    EdgeDataset,
    GroupingDataset,
    collate_edges,
    collate_grouping,
    load_regions,
)
from models.synthetic_regions import write_region_manifest
from models.train import _autocast_dtype, build_model


def _edge_table(regions_table):  # type: ignore[no-untyped-def]
    """Edge targets from the synthetic trees: leaf boundaries are the edges."""
    import cv2
    import numpy as np

    from data_manifests import schema as schemas
    from models.data_grouping import decode_labels
    from models.edge_net import EdgeTargetConfig, edge_target

    rows = []
    for r in regions_table.to_pylist():
        lab = decode_labels(r["leaves_png"]).astype(np.float32)
        edge = cv2.morphologyEx(lab, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        tgt = edge_target(edge.astype(np.float32), EdgeTargetConfig(ignore_radius=1))
        rows.append({"video_id": r["video_id"], "frame": r["frame"], "round": 0,
                     "frame_jpeg": r["frame_jpeg"], "edge_share": float((tgt == 1).mean()),
                     "target_png": cv2.imencode(".png", tgt)[1].tobytes()})  # fmt: skip
    return schemas.table_from_rows(rows, schemas.get("edge_targets"))


def main(quick: bool = False) -> str:
    size, batch, n_steps, rounds = (128, 4, 1, 2) if quick else (224, 8, 2, 2)
    device = dist.pick_device("auto")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_region_manifest(Path(tmp), n=batch, size=int(size * 1.5))
        regions = load_regions([str(data)])
        crop = CropConfig(input_size=size)
        gds = GroupingDataset(regions, crop)
        eds = EdgeDataset(_edge_table(regions), crop)
        load_s = {
            "grouping": best_of(lambda: gds[(0, 1)], 5),
            "edges": best_of(lambda: eds[(0, 1)], 5),
        }
        batches = {
            "grouping": collate_grouping([gds[(i, i)] for i in range(batch)]),
            "edges": collate_edges([eds[(i, i)] for i in range(batch)]),
        }
        for task in ("grouping", "edges"):
            cfg = TrainConfig(task=task, batch_size=batch, crop={"input_size": size})
            model, _ = build_model(cfg)
            model = model.to(device)
            sc = steps.StepContext(
                dist.DistContext(0, 1, 0, device, None), device, device.type == "cuda",
                _autocast_dtype(cfg, device), methods.get(task).loss_config(cfg), 0, False, 0,
            )  # fmt: skip
            if sc.channels_last:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            b = batches[task]

            def run(n: int, model: torch.nn.Module = model, b: dict = b, task: str = task,
                    sc: steps.StepContext = sc, opt: torch.optim.Optimizer = opt) -> None:  # fmt: skip
                for i in range(n):
                    loss, _ = methods.get(task).step(model, b, i, sc)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()

            run(1)  # warm-up
            t = best_of(lambda run=run: run(n_steps), rounds)
            rate = batch * n_steps / t
            share = load_s[task] * rate
            rows.append(
                f"| {task} | {device.type} | {size} | {batch} | {rate:.2f} | "
                f"{1000 * load_s[task]:.1f} | {share:.2f} |"
            )
            print(rows[-1], flush=True)
    head = [
        f"Training step (forward + loss + backward + SGD) on an in-memory batch, best of "
        f"{rounds} rounds of {n_steps} steps after a warm-up; torch threads: "
        f"{torch.get_num_threads()}. 'loader core share': one loader core's time per image "
        "x images/s (< 1: one worker keeps up).",
        "",
        "| network | device | crop | batch | images/s | loader ms/image | loader core share |",
        "|---|---|---|---|---|---|---|",
    ]
    table = "\n".join(head + rows)
    print(table)
    return table


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
