"""Luigi tasks of videomine: ``luigi --module tasks <Task>`` finds every one of them.

Each stage module is imported here and its tasks are exported, so the command line and
``luigid`` see every task without naming its module.
"""

from __future__ import annotations

import importlib
import pkgutil

import luigi

__all__: list[str] = []

for _mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _mod.name.startswith("_") or _mod.name == "demo":
        continue
    _module = importlib.import_module(f"{__name__}.{_mod.name}")
    for _name, _obj in vars(_module).items():
        if (
            isinstance(_obj, type)
            and issubclass(_obj, luigi.Task)
            and _obj.__module__ == _module.__name__
            and not _name.startswith("_")
        ):
            globals()[_name] = _obj
            __all__.append(_name)
