"""Trivial motion-mask baselines that every segmentation evaluation scores beside uNLC.

- **compensated-flow floor** (`flow_floor_masks`): Farneback flow from each frame to the
  next (the last frame to the previous one), minus the camera's motion, a homography fitted
  by RANSAC to the flow sampled on an 8 px grid; the residual magnitude is thresholded per
  frame with Otsu. What one gets from motion alone, without grouping or consensus.
- **centre rectangle** (`centre_mask`): the central 50% x 50% of the frame, what one gets
  from the photographer's habit of framing the subject, without looking at the video.

Both return binary masks at the frames' size, scored by `pipeline.mask_metrics` exactly as
uNLC's masks are.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage.filters import threshold_otsu

from pipeline.saliency import camera_residual


@dataclass(frozen=True)
class FlowFloorConfig:
    grid: int = 8  # issue 11: homography fitted on the flow sampled every 8 px
    ransac_threshold: float = 1.0  # px, IDT's reprojection threshold
    # OpenCV's documented example parameters for calcOpticalFlowFarneback
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    fb_iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2

    def validate(self) -> None:
        if self.grid < 1 or self.ransac_threshold <= 0:
            raise ValueError(
                f"grid >= 1 and ransac_threshold > 0 needed, got {self.grid}, "
                f"{self.ransac_threshold}"
            )


def centre_mask(height: int, width: int, share: float = 0.5) -> NDArray[np.bool_]:
    """(H, W) bool: the central `share` x `share` rectangle of the frame."""
    if height < 1 or width < 1 or not 0 < share <= 1:
        raise ValueError(
            f"need a non-empty frame and share in (0, 1], got {height}x{width}, {share}"
        )
    m = np.zeros((height, width), bool)
    bh, bw = int(round(height * share)), int(round(width * share))
    y0, x0 = (height - bh) // 2, (width - bw) // 2
    m[y0 : y0 + bh, x0 : x0 + bw] = True
    return m


def flow_floor_mask(
    grey0: NDArray[np.uint8], grey1: NDArray[np.uint8], cfg: FlowFloorConfig
) -> NDArray[np.bool_]:
    """(H, W) bool: pixels of grey0 whose flow to grey1 departs from the camera's, by Otsu."""
    flow = cv2.calcOpticalFlowFarneback(
        grey0, grey1, None, cfg.pyr_scale, cfg.levels, cfg.winsize, cfg.fb_iterations,
        cfg.poly_n, cfg.poly_sigma, 0,
    )  # fmt: skip
    res, _ = camera_residual(
        np.asarray(flow, np.float32), grid=cfg.grid, threshold=cfg.ransac_threshold,
        method=cv2.RANSAC,
    )  # fmt: skip
    if float(res.max()) - float(res.min()) < 1e-6:  # nothing departs: an empty mask
        return np.zeros(res.shape, bool)
    return np.asarray(res > threshold_otsu(res))  # type: ignore[no-untyped-call]


def flow_floor_masks(
    frames: NDArray[np.uint8], cfg: FlowFloorConfig = FlowFloorConfig()
) -> NDArray[np.bool_]:
    """(n, H, W) bool floor masks of a sequence of frames (n, H, W, 3) uint8 RGB, n >= 2."""
    cfg.validate()
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be (n, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}"
        )
    if len(frames) < 2:
        raise ValueError(f"the flow floor needs at least 2 frames, got {len(frames)}")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    out = np.zeros(frames.shape[:3], bool)
    for i in range(len(frames)):
        j = i + 1 if i + 1 < len(frames) else i - 1
        out[i] = flow_floor_mask(grey[i], grey[j], cfg)
    return out
