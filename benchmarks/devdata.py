"""Where the benchmarks find the real dev set (``../shared/devdata``), on any checkout.

``devdata()``: ``$VIDEOMINE_DEVDATA``, else ``../shared/devdata`` beside the repository.
``davis_root()``: a DAVIS-layout folder (``JPEGImages[/480p]``, ``Annotations[/480p]``):
``$VIDEOMINE_DAVIS`` when set, else the dev set's own ``davis/`` folder, which is already in
that layout (``expand.py`` is not needed for it); None when neither exists.
"""

from __future__ import annotations

import os
from pathlib import Path


def devdata() -> Path:
    env = os.environ.get("VIDEOMINE_DEVDATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "devdata"


def davis_root() -> Path | None:
    env = os.environ.get("VIDEOMINE_DAVIS")
    for cand in (Path(env) if env else None, devdata() / "davis"):
        if cand is not None and (cand / "JPEGImages").is_dir():
            return cand
    return None
