"""The run model: hashed output dirs, atomic commit, sidecar, empty-output rule."""

from __future__ import annotations

import json
from pathlib import Path

import luigi
import pyarrow as pa

from data_manifests import schema as S
from tasks import common
from tests.conftest import build

DEMO = S.register(
    S.TableSchema(
        name="_test_rows",
        version=1,
        description="rows for run-model tests",
        fields=pa.schema([pa.field("i", pa.int64(), nullable=False), pa.field("s", pa.string())]),
        key=("i",),
    )
)


class _Rows(common.StageTask):
    n = luigi.IntParameter(default=3)
    label = luigi.Parameter(default="x", significant=False)
    fail = luigi.BoolParameter(default=False, significant=False)

    def produce(self, out: common.StageOutput) -> None:
        w = out.writer("_test_rows", DEMO)
        for i in range(self.n):
            w.write([{"i": i, "s": self.label}])
            if self.fail and i == 1:
                raise RuntimeError("boom mid-write")
        out.count("rows", self.n)


class _After(common.StageTask):
    n = luigi.IntParameter(default=3)

    def requires(self) -> _Rows:
        return _Rows(n=self.n)

    def produce(self, out: common.StageOutput) -> None:
        t = common.read_stage_table(self.requires(), "_test_rows", DEMO)
        out.write("_test_rows", t.set_column(1, "s", pa.array(["after"] * t.num_rows)), DEMO)


def test_output_layout_meta_and_marker(luigi_config):
    root = luigi_config()
    t = _Rows(n=3)
    assert build([t]).scheduling_succeeded
    out = Path(t.output().path)
    assert out.parent == root / "_Rows"
    assert out.name.startswith(t.task_id + "-")
    assert (out / common.SUCCESS).exists()
    meta = json.loads((out / common.META).read_text())
    assert meta["tables"]["_test_rows"]["rows"] == 3
    assert meta["counts"] == {"rows": 3}
    assert meta["significant_params"] == {"n": "3"}
    assert meta["packages"]["pyarrow"] == pa.__version__
    assert meta["wall_time_s"] >= 0
    assert common.read_stage_table(t, "_test_rows", DEMO).column("i").to_pylist() == [0, 1, 2]


def test_failed_run_leaves_nothing_complete(luigi_config):
    root = luigi_config()
    t = _Rows(n=3, fail=True)
    assert not build([t]).scheduling_succeeded
    assert not t.complete()
    assert not (root / "_Rows").exists() or not any(
        (p / common.SUCCESS).exists() for p in (root / "_Rows").iterdir()
    )
    staging = root / "_Rows" / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_significant_parameter_changes_dir_and_keeps_old(luigi_config):
    luigi_config()
    a, b = _After(n=2), _After(n=3)
    assert build([a]).scheduling_succeeded
    before = sorted(p.name for p in Path(a.output().path).iterdir())
    assert build([b]).scheduling_succeeded
    assert a.output().path != b.output().path
    # upstream lineage is part of the downstream directory name
    assert a.lineage() != b.lineage()
    assert sorted(p.name for p in Path(a.output().path).iterdir()) == before
    # an insignificant parameter does not change the output
    assert _Rows(n=2, label="y").output().path == _Rows(n=2).output().path


def test_empty_output_is_an_error_unless_allowed(luigi_config):
    luigi_config()
    assert not build([_Rows(n=0)]).scheduling_succeeded
    luigi_config(allow_empty="true")
    assert build([_Rows(n=0)]).scheduling_succeeded


def test_stage_params_follow_dataclass_defaults():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        size: int = 96
        thresh: float = 0.5
        mode: str = "paper"
        flag: bool = True

    @common.stage_params(Cfg)
    class _T(common.StageTask):
        def produce(self, out: common.StageOutput) -> None:  # pragma: no cover
            pass

    t = _T(size=64)
    cfg = common.config_from_params(t, Cfg)
    assert cfg == Cfg(size=64)
    assert isinstance(_T.thresh, luigi.FloatParameter)


class _Eval(common.EvaluationTask):
    data_root = luigi.Parameter()
    out_dir = luigi.Parameter()
    k = luigi.IntParameter(default=20)

    def run(self) -> None:
        Path(self.out_dir, "metrics.json").write_text(json.dumps({"k": self.k}))


def test_evaluation_rerun_with_other_parameters_is_not_stale(tmp_path):
    out = tmp_path / "eval"
    a = _Eval(data_root="d", out_dir=str(out), k=20)
    assert build([a]).scheduling_succeeded and a.complete()
    # same out dir, another parameter: not complete until evaluated again
    b = _Eval(data_root="d", out_dir=str(out), k=5)
    assert not b.complete()
    assert build([b]).scheduling_succeeded
    assert json.loads((out / "metrics.json").read_text()) == {"k": 5}
    assert b.complete() and not a.complete()


def test_failed_evaluation_is_not_complete(tmp_path):
    class _Broken(_Eval):
        def run(self) -> None:
            Path(self.out_dir, "metrics.json").write_text("{}")
            raise RuntimeError("evaluation failed after writing")

    t = _Broken(data_root="d", out_dir=str(tmp_path / "e"))
    assert not build([t]).scheduling_succeeded
    assert (tmp_path / "e" / "metrics.json").exists() and not t.complete()
