"""Synthetic videos with known answers: textured objects over a textured background.

`generate(cfg)` renders a seeded, deterministic clip and its ground truth:

- **background**: a smooth random texture (blurred multi-scale noise plus colour gradients)
  so that interest-point detectors (SURF, Shi-Tomasi) and trackers (KCF) find structure.
  Camera pan/zoom is done by sampling a moving (and scaling) window out of a larger canvas,
  so the background truly translates/scales; it is never just shifted with wrap-around.
- **objects**: rectangles or ellipses with high-contrast textures (noise blocks, checkers,
  stripes) in saturated colours, distinct from the background. Object motion is defined in
  *image* coordinates: the camera moves the background only (as if the camera followed the
  objects' world motion), so an object's box is exactly where it is drawn.
- **shot cuts**: at each frame in `cut_frames` a new shot starts with a new background and
  new objects (new textures, positions, directions); `shot_ids` counts shots from 0.

Ground truth, per frame t:

- `boxes[t, k] = (x, y, w, h)` float32 of object k's drawn extent, **clipped to the frame**
  when the object is partly outside, and all-NaN when it is entirely outside (possible only
  with `bounce=False`). Boxes ignore occlusion between objects (later objects are drawn on
  top; the mask shows who is visible).
- `masks[t]` uint8: 0 background, k + 1 where object k is visible.

Modes:

- `"normal"`: `n_objects` objects moving at `speed` px/frame in random directions, plus
  the configured camera pan/zoom.
- `"static"`: nothing moves: objects stand still, pan and zoom are ignored.
- `"all_moving"`: the frame is tiled with cells of about `object_size` px, each showing its
  own texture scrolling at `speed` px/frame in its own random direction, so every pixel moves
  and no single camera motion explains it. The cells are the "objects": boxes are the fixed
  cell rectangles, masks label cells 1..n_cells, and `n_objects` is ignored.
- `"pan_only"`: camera pan (and zoom), no object (`boxes` has shape (T, 0, 4), masks all 0).
  If `camera_pan` is (0, 0) and `camera_zoom` is 1, the pan defaults to (`speed`, 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Mode = Literal["normal", "static", "all_moving", "pan_only"]
_MODES = ("normal", "static", "all_moving", "pan_only")
_TEXTURES = ("noise", "checker", "stripes")


@dataclass(frozen=True)
class SyntheticConfig:
    height: int = 240  # small enough for fast tests, 4:3 like most web video
    width: int = 320
    n_frames: int = 60  # two 30-frame tracks' worth (DESIGN 4.3 track_length = 30)
    fps: float = 25.0  # a common web-video rate
    n_objects: int = 1
    object_size: int = 64  # px side of an object's box; ~1/4 of the frame height
    speed: float = 2.0  # px/frame: well above the 0.5 px "moving" threshold (DESIGN 4.2)
    camera_pan: tuple[float, float] = (0.0, 0.0)  # background (dx, dy) px/frame
    camera_zoom: float = 1.0  # per-frame scale factor (>1 zooms in); 1 = no zoom
    cut_frames: tuple[int, ...] = ()  # frames where a new shot starts
    mode: Mode = "normal"
    seed: int = 0
    shape: Literal["rect", "ellipse"] = "rect"
    bounce: bool = True  # objects bounce off the frame edges; False lets them leave the frame
    noise_std: float = 0.0  # per-frame sensor noise (grey levels); 0 keeps frames exact
    background_blur: float = 3.0  # sigma of the background texture blur: smooth-ish structure
    object_textures: tuple[str, ...] = field(default=_TEXTURES)  # drawn at random per object
    # share of random blocks blended into checker/stripes objects: a periodic texture lets
    # correlation trackers (KCF) lock onto a shifted period; 0.5 removes that (all textures
    # then track like "noise"). 0 keeps the pure patterns (and earlier outputs) unchanged.
    aperiodic: float = 0.0

    def validate(self) -> None:
        if self.height < 16 or self.width < 16:
            raise ValueError(f"height and width must be >= 16, got {self.height}x{self.width}")
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames}")
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.n_objects < 0:
            raise ValueError(f"n_objects must be >= 0, got {self.n_objects}")
        if not 4 <= self.object_size <= min(self.height, self.width):
            raise ValueError(
                f"object_size must be in [4, min(height, width)], got {self.object_size}"
            )
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        if self.camera_zoom <= 0:
            raise ValueError(f"camera_zoom must be > 0, got {self.camera_zoom}")
        if any(not 0 < c < self.n_frames for c in self.cut_frames):
            raise ValueError(f"cut_frames must lie in (0, n_frames), got {self.cut_frames}")
        if not 0.0 <= self.aperiodic <= 1.0:
            raise ValueError(f"aperiodic must be in [0, 1], got {self.aperiodic}")
        bad = [t for t in self.object_textures if t not in _TEXTURES]
        if bad or not self.object_textures:
            raise ValueError(f"object_textures must be a non-empty subset of {_TEXTURES}")


@dataclass(frozen=True)
class SyntheticVideo:
    frames: NDArray[np.uint8]  # (T, H, W, 3) RGB
    boxes: NDArray[np.float32]  # (T, K, 4) xywh, NaN when the object is out of view
    masks: NDArray[np.uint8]  # (T, H, W): 0 background, k + 1 = object k
    shot_ids: NDArray[np.int32]  # (T,)
    fps: float


def _background(rng: np.random.Generator, h: int, w: int, blur: float) -> NDArray[np.uint8]:
    """(h, w, 3) uint8 smooth texture: blurred noise at two scales plus colour gradients."""
    fine = rng.standard_normal((h, w, 3)).astype(np.float32)
    fine = np.asarray(cv2.GaussianBlur(fine, (0, 0), blur), np.float32)
    coarse = rng.standard_normal((max(h // 16, 2), max(w // 16, 2), 3)).astype(np.float32)
    coarse = np.asarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), np.float32)
    fine /= fine.std() + 1e-6
    coarse /= coarse.std() + 1e-6
    yy = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :, None]
    grad = rng.uniform(-25, 25, size=(2, 3)).astype(np.float32)
    base = rng.uniform(90, 160, size=3).astype(np.float32)
    img = base + 22.0 * fine + 18.0 * coarse + yy * grad[0] + xx * grad[1]
    return np.clip(img, 0, 255).astype(np.uint8)


def _blocks(rng: np.random.Generator, h: int, w: int) -> NDArray[np.float32]:
    """(h, w) float32 random blocks of 3-6 px in [0, 1) (nearest upsampling: sharp edges)."""
    block = int(rng.integers(3, 7))
    small = rng.random((h // block + 1, w // block + 1)).astype(np.float32)
    return np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w]


def _object_texture(
    rng: np.random.Generator,
    h: int,
    w: int,
    kinds: tuple[str, ...],
    aperiodic: float = 0.0,
    noise_rng: np.random.Generator | None = None,
) -> NDArray[np.uint8]:
    """(h, w, 3) uint8 high-contrast texture in two saturated colours. With aperiodic > 0,
    checker/stripes get random blocks (from `noise_rng`, so `rng`'s stream is unchanged)."""
    kind = kinds[int(rng.integers(len(kinds)))]
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "checker":
        cell = int(rng.integers(4, 10))
        pattern = ((yy // cell + xx // cell) % 2).astype(np.float32)
    elif kind == "stripes":
        period = float(rng.uniform(6, 14))
        angle = float(rng.uniform(0, np.pi))
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        pattern = (np.sin(2 * np.pi * phase) > 0).astype(np.float32)
    else:
        pattern = _blocks(rng, h, w)
    if aperiodic > 0 and kind != "noise" and noise_rng is not None:
        pattern = (1 - aperiodic) * pattern + aperiodic * _blocks(noise_rng, h, w)
    c0 = rng.integers(0, 80, size=3)  # dark colour
    c1 = rng.integers(170, 256, size=3)  # bright colour
    c1[int(rng.integers(3))] = int(rng.integers(0, 60))  # saturate: unlike the grey-ish bg
    tex = c0[None, None, :] + pattern[..., None] * (c1 - c0)[None, None, :]
    return np.clip(tex, 0, 255).astype(np.uint8)


def _bounce(
    p0: NDArray[np.float64], v: NDArray[np.float64], t: NDArray[np.float64], hi: float
) -> NDArray[np.float64]:
    """Positions (T, K) of points moving at v inside [0, hi] and reflecting at the walls."""
    if hi <= 0:
        return np.zeros((len(t), len(p0)))
    y = np.mod(p0[None, :] + v[None, :] * t[:, None], 2 * hi)
    return np.where(y <= hi, y, 2 * hi - y)


def _camera_frames(
    rng: np.random.Generator, cfg: SyntheticConfig, t: NDArray[np.float64], pan: tuple[float, float]
) -> NDArray[np.uint8]:
    """(len(t), H, W, 3) background frames seen by a camera panning/zooming over a canvas."""
    h, w = cfg.height, cfg.width
    zoom = cfg.camera_zoom**t  # scale of each frame
    min_zoom = float(zoom.min())
    shift_x, shift_y = pan[0] * t, pan[1] * t
    # Canvas big enough for every window: the window is (w, h) / zoom wide, centred at
    # canvas centre + pan offset.
    half_w = 0.5 * w / min_zoom + np.abs(shift_x).max() + 4
    half_h = 0.5 * h / min_zoom + np.abs(shift_y).max() + 4
    cw, ch = int(np.ceil(2 * half_w)), int(np.ceil(2 * half_h))
    canvas = _background(rng, ch, cw, cfg.background_blur)
    cx, cy = cw / 2.0, ch / 2.0
    out = np.empty((len(t), h, w, 3), np.uint8)
    for i in range(len(t)):
        s = 1.0 / zoom[i]  # canvas px per output px
        # output (u, v) -> canvas (cx + shift + (u - w/2) * s, cy + shift + (v - h/2) * s)
        m = np.array(
            [
                [s, 0.0, cx + shift_x[i] - 0.5 * w * s],
                [0.0, s, cy + shift_y[i] - 0.5 * h * s],
            ],
            np.float64,
        )
        out[i] = cv2.warpAffine(
            canvas,
            m,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
    return out


def _paste(
    frames: NDArray[np.uint8],
    masks: NDArray[np.uint8],
    boxes: NDArray[np.float32],
    k: int,
    tex: NDArray[np.uint8],
    alpha: NDArray[np.bool_],
    xs: NDArray[np.int64],
    ys: NDArray[np.int64],
) -> None:
    """Draw object k (texture + shape alpha) at integer top-left (xs[i], ys[i]) per frame."""
    t_len, h, w = masks.shape
    oh, ow = alpha.shape
    for i in range(t_len):
        x0, y0 = int(xs[i]), int(ys[i])
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + ow, w), min(y0 + oh, h)
        if fx1 <= fx0 or fy1 <= fy0:
            boxes[i, k] = np.nan
            continue
        a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        frames[i, fy0:fy1, fx0:fx1][a] = tex[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0][a]
        masks[i, fy0:fy1, fx0:fx1][a] = k + 1
        boxes[i, k] = (fx0, fy0, fx1 - fx0, fy1 - fy0)


def _shot_objects(
    rng: np.random.Generator, cfg: SyntheticConfig, t: NDArray[np.float64], shot: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
    """Render one shot: (frames, masks, boxes) for the frames at local times t."""
    h, w, s = cfg.height, cfg.width, cfg.object_size
    n = len(t)
    if cfg.mode == "all_moving":
        return _all_moving(rng, cfg, t)
    pan = cfg.camera_pan
    if cfg.mode == "pan_only" and pan == (0.0, 0.0) and cfg.camera_zoom == 1.0:
        pan = (cfg.speed, 0.0)
    if cfg.mode == "static":
        frames = _camera_frames(rng, cfg, np.zeros_like(t), (0.0, 0.0))  # zoom**0 = 1
    else:
        frames = _camera_frames(rng, cfg, t, pan)
    k_obj = 0 if cfg.mode == "pan_only" else cfg.n_objects
    masks = np.zeros((n, h, w), np.uint8)
    boxes = np.full((n, k_obj, 4), np.nan, np.float32)
    if k_obj == 0:
        return frames, masks, boxes
    speed = 0.0 if cfg.mode == "static" else cfg.speed
    angle = rng.uniform(0, 2 * np.pi, size=k_obj)
    vx, vy = speed * np.cos(angle), speed * np.sin(angle)
    px0 = rng.uniform(0, w - s, size=k_obj)
    py0 = rng.uniform(0, h - s, size=k_obj)
    if cfg.bounce:
        px = _bounce(px0, vx, t, float(w - s))
        py = _bounce(py0, vy, t, float(h - s))
    else:
        px = px0[None, :] + vx[None, :] * t[:, None]
        py = py0[None, :] + vy[None, :] * t[:, None]
    yy, xx = np.mgrid[0:s, 0:s]
    r = (s - 1) / 2.0
    ellipse = ((yy - r) ** 2 + (xx - r) ** 2) <= (r + 0.5) ** 2
    alpha = ellipse if cfg.shape == "ellipse" else np.ones((s, s), bool)
    for k in range(k_obj):
        noise_rng = np.random.default_rng([cfg.seed, shot, k])  # own stream: see aperiodic
        tex = _object_texture(rng, s, s, cfg.object_textures, cfg.aperiodic, noise_rng)
        xs = np.round(px[:, k]).astype(np.int64)
        ys = np.round(py[:, k]).astype(np.int64)
        _paste(frames, masks, boxes, k, tex, alpha, xs, ys)
    log.debug("shot %d: %d frames, %d objects", shot, n, k_obj)
    return frames, masks, boxes


def _all_moving(
    rng: np.random.Generator, cfg: SyntheticConfig, t: NDArray[np.float64]
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float32]]:
    """Frame tiled by cells, each scrolling its own texture in its own direction."""
    h, w, n = cfg.height, cfg.width, len(t)
    gy, gx = max(1, round(h / cfg.object_size)), max(1, round(w / cfg.object_size))
    ys_edges = np.linspace(0, h, gy + 1).round().astype(int)
    xs_edges = np.linspace(0, w, gx + 1).round().astype(int)
    frames = np.empty((n, h, w, 3), np.uint8)
    masks = np.zeros((n, h, w), np.uint8)
    boxes = np.zeros((n, gy * gx, 4), np.float32)
    travel = int(np.ceil(cfg.speed * (t.max() if n else 0))) + 2
    k = 0
    for j in range(gy):
        for i in range(gx):
            y0, y1, x0, x1 = ys_edges[j], ys_edges[j + 1], xs_edges[i], xs_edges[i + 1]
            ch, cw = y1 - y0, x1 - x0
            tex = _object_texture(rng, ch + 2 * travel, cw + 2 * travel, cfg.object_textures)
            bg = _background(rng, tex.shape[0], tex.shape[1], 1.5)
            tex = np.asarray(cv2.addWeighted(tex, 0.6, bg, 0.4, 0), np.uint8)
            angle = rng.uniform(0, 2 * np.pi)
            ox = np.round(travel + cfg.speed * np.cos(angle) * t).astype(int)
            oy = np.round(travel + cfg.speed * np.sin(angle) * t).astype(int)
            for f in range(n):
                frames[f, y0:y1, x0:x1] = tex[oy[f] : oy[f] + ch, ox[f] : ox[f] + cw]
            masks[:, y0:y1, x0:x1] = k + 1
            boxes[:, k] = (x0, y0, cw, ch)
            k += 1
    return frames, masks, boxes


def generate(cfg: SyntheticConfig) -> SyntheticVideo:
    """Render the clip described by `cfg` (deterministic for a given cfg, seed included)."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    starts = [0, *sorted(set(cfg.cut_frames))]
    ends = [*starts[1:], cfg.n_frames]
    parts = []
    for shot, (a, b) in enumerate(zip(starts, ends, strict=True)):
        t = np.arange(b - a, dtype=np.float64)
        parts.append(_shot_objects(rng, cfg, t, shot))
    frames = np.concatenate([p[0] for p in parts])
    masks = np.concatenate([p[1] for p in parts])
    k_max = max(p[2].shape[1] for p in parts)
    boxes = np.full((cfg.n_frames, k_max, 4), np.nan, np.float32)
    for (a, b), p in zip(zip(starts, ends, strict=True), parts, strict=True):
        boxes[a:b, : p[2].shape[1]] = p[2]
    shot_ids = np.repeat(np.arange(len(starts), dtype=np.int32), np.diff([*starts, cfg.n_frames]))
    if cfg.noise_std > 0:
        noise = rng.normal(0.0, cfg.noise_std, size=frames.shape).astype(np.float32)
        frames = np.clip(frames + noise, 0, 255).astype(np.uint8)
    return SyntheticVideo(frames=frames, boxes=boxes, masks=masks, shot_ids=shot_ids, fps=cfg.fps)


def generate_subpixel(height: int, width: int, factor: int = 2, **kw: Any) -> SyntheticVideo:
    """A clip rendered at ``factor`` times ``height`` x ``width`` and area-downscaled, so
    objects and the camera move by fractions of a pixel and edges are anti-aliased, as in
    camera footage. ``object_size``, ``speed`` and ``camera_pan`` are given at the output
    scale (the other ``SyntheticConfig`` fields as they are); boxes come at the output scale,
    masks downscaled by nearest neighbour."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    kw = dict(kw)
    if "object_size" in kw:
        kw["object_size"] = int(factor * kw["object_size"])
    if "speed" in kw:
        kw["speed"] = factor * float(kw["speed"])
    if "camera_pan" in kw:
        kw["camera_pan"] = tuple(factor * float(v) for v in kw["camera_pan"])
    v = generate(SyntheticConfig(height=factor * height, width=factor * width, **kw))
    size = (width, height)
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in v.frames])
    masks = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in v.masks])
    return SyntheticVideo(
        frames=frames.astype(np.uint8),
        boxes=(v.boxes / factor).astype(np.float32),
        masks=masks.astype(np.uint8),
        shot_ids=v.shot_ids,
        fps=v.fps,
    )


def sphere_blobs(
    n_blobs: int = 10, per: int = 250, d: int = 32, spread: float = 0.3, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Planted clusters with known labels: ``n_blobs`` Gaussian blobs of ``per`` points
    around random unit centres in ``d`` dimensions, noise ``spread / sqrt(d)`` per
    coordinate, every point projected back to the unit sphere (as L2-normalised features
    are), rows shuffled. Returns (float32 rows, int64 labels)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_blobs, d))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_blobs), per)
    x = centers[y] + spread * rng.normal(size=(y.size, d)) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(y.size)
    return x[perm].astype(np.float32), y[perm].astype(np.int64)


def write_video(
    path: str | Path,
    frames: NDArray[np.uint8],
    fps: float,
    codec: Literal["h264", "mpeg4", "ffv1"] = "h264",
    crf: int = 18,
) -> Path:
    """Encode frames to a video file with PyAV and return its path.

    frames: (T, H, W, 3) uint8 RGB, or (T, H, W) uint8 grey (stored with a grey pixel
    format where the codec has one, so the file is a real grayscale video).
    codec "h264" (libx264, yuv420p, the codec decord and every reader handle best; default),
    "mpeg4" (MPEG-4 Part 2, what cv2.VideoWriter's 'mp4v' writes) or "ffv1" (lossless;
    use an .mkv path). h264/mpeg4 need even height and width (4:2:0 chroma).
    crf: x264 quality (18 ~ visually lossless); ignored for other codecs.
    The file is a function of the frames and arguments only (single-threaded encoder, no
    x264 mbtree, bitexact muxer), not of the core count, the x86 SIMD level (SSSE3 and up)
    or a random ID.
    """
    import av  # local import: only writing needs it

    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[3] != 3):
        raise ValueError(f"frames must be (T,H,W,3) or (T,H,W) uint8, got {arr.shape} {arr.dtype}")
    if len(arr) == 0:
        raise ValueError("frames is empty: a video needs at least one frame")
    gray = arr.ndim == 3
    h, w = arr.shape[1:3]
    if codec in ("h264", "mpeg4") and (h % 2 or w % 2):
        raise ValueError(f"{codec} needs even height and width, got {h}x{w}")
    path = Path(path)
    pix_fmt = {"h264": "yuv420p", "mpeg4": "yuv420p", "ffv1": "gray" if gray else "yuv444p"}[codec]
    if codec == "h264" and gray:
        pix_fmt = "gray"  # libx264 encodes 4:0:0 (High profile) directly
    encoder = {"h264": "libx264", "mpeg4": "mpeg4", "ffv1": "ffv1"}[codec]
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    # Same frames -> same bytes on every run and machine (the demo's figures depend on it).
    # - Encoder threads default to the core count, and libx264 (PyAV asks for slice
    #   threads), mpeg4 and ffv1 cut each frame into one slice per thread: a 1-core and a
    #   2-core run wrote different files.
    # - x264's macroblock-tree rate control (mbtree) is float SIMD code: its AVX-512
    #   version wrote different files for the same frames within one process (5 distinct
    #   in 8 encodes), and its C, SSE2 and SSSE3-AVX2 versions three different files.
    #   Without it, x264 capped at SSSE3, AVX2 or AVX-512 wrote the same file for every
    #   demo clip (measured); the price is files ~2x larger at the same crf.
    # - bitexact leaves out the libav* version strings and, in Matroska, the random
    #   segment and track UIDs (two .mkv files of the same frames always differed).
    with av.open(str(path), mode="w", container_options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(encoder, rate=rate)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.codec_context.thread_count = 1
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        if codec == "h264":
            stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0"}
        elif codec == "mpeg4":
            stream.options = {"qscale": "3"}
            stream.codec_context.qmax = 3
        fmt = "gray" if gray else "rgb24"
        for img in arr:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=fmt)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
