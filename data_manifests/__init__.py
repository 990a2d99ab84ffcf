"""Parquet schemas, and sharing mined datasets: publish, registry, verify, load.

``load("name@version", "pairs")`` gives a pyarrow dataset of a published table; see
docs/datasets.md for the layout, the manifest and the ``python -m data_manifests`` CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["load"]

if TYPE_CHECKING:
    import pyarrow.dataset as pads

    from data_manifests.registry import Registry


def load(
    ref: str,
    table: str,
    registry: Registry | str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pads.Dataset:
    """A pyarrow dataset over ``table`` of the published ``name@version``.

    The registry is ``registry``, else ``$VIDEOMINE_REGISTRY``, else ``[videomine] registry``
    in luigi.cfg. See :func:`data_manifests.loader.load`.
    """
    # Imported here so that ``import data_manifests.schema`` stays light for every stage.
    from data_manifests.loader import load as _load

    return _load(ref, table, registry, storage_options)
