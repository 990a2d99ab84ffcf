"""Two-stage clustering on planted data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline.clustering import (
    ChildConfig,
    ParentConfig,
    assign,
    cluster_children,
    cluster_parents,
    effective_k,
    effective_min_size,
)
from pipeline.synthetic import sphere_blobs

blobs = sphere_blobs  # well-separated planted clusters on the unit sphere


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parents_recover_blobs(seed: int) -> None:
    x, y = blobs(seed=seed)
    r = cluster_parents(x, ParentConfig(k=10, seed=seed))
    assert r.stats["k"] == 10
    assert (r.labels >= 0).all()  # every blob is >= 100 points: nothing dropped
    assert adjusted_rand_score(y, r.labels) >= 0.9
    assert r.stats["iterations_run"] >= 1
    assert r.stats["train_size"] == min(x.shape[0], 10 * 64)
    np.testing.assert_allclose(np.linalg.norm(r.centroids, axis=1), 1.0, atol=1e-5)


def test_projected_seeding_recovers_blobs_in_high_dimension() -> None:
    x, y = blobs(n_blobs=8, per=250, d=768, seed=7)
    r = cluster_parents(x, ParentConfig(k=8, seed=7))
    assert r.stats["init_dim"] == 256  # seeding distances in a 256-d random projection
    assert r.stats["init_sample"] == 8 * 8
    assert adjusted_rand_score(y, r.labels) >= 0.9


def test_children_pure_on_blobs_and_disjoint_option() -> None:
    x, y = blobs(n_blobs=6, per=200, d=16)
    r = cluster_parents(x, ParentConfig(k=6))
    c = cluster_children(x, r.labels)
    assert c.stats["children"] > 20
    assert (y[c.members] == y[c.members[:, :1]]).all()
    assert (r.labels[c.members] == c.parent[:, None]).all()
    d = cluster_children(x, r.labels, ChildConfig(allow_overlap=False))
    assert 0 < d.stats["children"] <= c.stats["children"]
    assert np.unique(d.members).size == d.members.size  # disjoint
    assert d.stats["share_covered_in_several"] == 0.0
    # greedy keeps the best child (highest mean cosine) of the overlapping set
    assert d.score.max() == pytest.approx(c.score.max())


def test_children_all_mutual_top10() -> None:
    x, _ = blobs(n_blobs=3, per=150, d=8, spread=1.0)
    parents = np.zeros(x.shape[0], np.int64)
    c = cluster_children(x, parents)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :10]
    for m in c.members[:200]:
        for i in m:
            for j in m:
                if i != j:
                    assert j in top[i]


def test_dropped_parents_get_no_children() -> None:
    x, y = blobs(n_blobs=4, per=150, d=16)
    x = np.concatenate([x, blobs(n_blobs=1, per=40, d=16, seed=9)[0]])  # a small fifth blob
    r = cluster_parents(x, ParentConfig(k=5, points_per_parent=100, min_parent_size=100))
    assert r.stats["min_parent_size"] == 100
    assert r.stats["parents_kept"] == 4
    assert (r.labels[-40:] == -1).all()
    c = cluster_children(x, r.labels)
    assert not np.isin(c.members, np.arange(x.shape[0] - 40, x.shape[0])).any()


def test_k_and_threshold_scale_with_n() -> None:
    cfg = ParentConfig()
    assert effective_k(1_000_000, cfg) == 5000
    assert effective_min_size(1_000_000, 5000, cfg) == 100
    assert effective_k(10_000_000, cfg) == 5000
    assert effective_min_size(10_000_000, 5000, cfg) == 100
    assert effective_k(20_000, cfg) == 100
    assert effective_k(150, cfg) == 1
    assert effective_min_size(150, 1, cfg) == 75  # half the mean size, as at full scale
    x, _ = blobs(n_blobs=2, per=400, d=8)
    r = cluster_parents(x)
    assert (r.stats["k_requested"], r.stats["k"]) == (5000, 4)


def test_same_seed_same_result_and_assign_reproduces_labels() -> None:
    x, _ = blobs(d=24)
    a = cluster_parents(x, ParentConfig(k=12, seed=5))
    b = cluster_parents(x, ParentConfig(k=12, seed=5))
    assert a.centroids.tobytes() == b.centroids.tobytes()
    assert a.assigned.tobytes() == b.assigned.tobytes()
    lab, sim = assign(a.centroids, x)
    assert (lab == a.assigned).all()
    np.testing.assert_allclose(sim, a.similarity, atol=1e-6)
    ca = cluster_children(x, a.labels)
    cb = cluster_children(x, b.labels)
    assert ca.members.tobytes() == cb.members.tobytes()


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="L2-normalised"):
        cluster_parents(np.full((300, 4), 2.0, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        cluster_parents(np.full((300, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="N, d"):
        cluster_parents(np.zeros(5, np.float32))
    with pytest.raises(KeyError, match="valid"):
        cluster_parents(blobs(2, 100)[0], ParentConfig(init="nope"))
    with pytest.raises(ValueError, match="child_size"):
        cluster_children(blobs(2, 100)[0], np.zeros(200), ChildConfig(child_size=12))


@pytest.mark.gpu
def test_parents_on_gpu_recover_blobs() -> None:
    import faiss

    if faiss.get_num_gpus() == 0:
        pytest.skip("faiss sees no GPU")
    x, y = blobs(seed=4)
    r = cluster_parents(x, ParentConfig(k=10, seed=4, use_gpu=True))
    assert r.stats["gpus"] >= 1
    assert adjusted_rand_score(y, r.labels) >= 0.9
    lab, _ = assign(r.centroids, x)
    assert (lab == r.assigned).all()
