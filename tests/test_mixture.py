"""MultinomialMixture and the admixture weights against dense NumPy references, and GroupDiscovery's refine."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from cohortrec import GroupDiscovery
from cohortrec.cluster import MultinomialMixture, admixture_weights, heldout_prior_choice
from cohortrec.datasets import make_shop, make_world


def _planted(n=400, m=60, k=3, events=30, seed=0, mix=None):
    """Users drawing ``events`` items from one of ``k`` item distributions (or a mix of two)."""
    rng = np.random.RandomState(seed)
    theta = rng.dirichlet(np.full(m, 0.2), size=k)
    y = rng.randint(k, size=n)
    w = np.zeros((n, k))
    w[np.arange(n), y] = 1.0
    if mix is not None:
        second = (y + 1) % k
        w[np.arange(n), y] = 1.0 - mix
        w[np.arange(n), second] += mix
    X = np.stack([rng.multinomial(events, w[u] @ theta) for u in range(n)]).astype(np.float64)
    return sp.csr_matrix(X), y, theta, w


def _reference_em(X, k, labels, alpha, n_iter):
    """Dense EM of a multinomial mixture with the background-centred Dirichlet prior (the model's definition)."""
    X = np.asarray(X.todense())
    n, m = X.shape
    total = X.sum(axis=0)
    bg = (total + 1.0) / (total.sum() + m)
    R = np.zeros((n, k))
    R[np.arange(n), labels] = 1.0
    for _ in range(n_iter + 1):
        # a group emptied: the model restarts it (tested apart). The model checks after every E-step, the last
        # one (the last pass here) included: hypothesis found seed=610, k=3, alpha=3.0 emptying a group there
        if len(np.unique(np.argmax(R, axis=1))) < k:
            return None, None
        counts = R.T @ X
        prior = alpha * m
        theta = (counts + prior * bg) / (counts.sum(axis=1, keepdims=True) + prior)
        pi = R.sum(axis=0) + 1e-10
        pi = pi / pi.sum()
        L = X @ np.log(theta).T + np.log(pi)
        L -= L.max(axis=1, keepdims=True)
        R = np.exp(L)
        R /= R.sum(axis=1, keepdims=True)
    if len(np.unique(np.argmax(R, axis=1))) < k:
        return None, None  # the model drops the emptied group (tested apart)
    return theta, np.argmax(R, axis=1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), alpha=st.sampled_from([0.01, 0.5, 3.0]))
@example(seed=610, k=3, alpha=3.0)
def test_em_matches_dense_reference(seed, k, alpha):
    X, y, _, _ = _planted(n=60, m=15, k=k, events=12, seed=seed)
    init = (y + np.arange(60) // 20) % k  # the planted groups with a third of the users moved
    mm = MultinomialMixture(k, alpha=alpha, max_iter=3, tol=0.0).fit(X, init=init)
    theta, labels = _reference_em(X, k, init, alpha, 3)
    if theta is not None and mm.n_iter_ == 3:
        np.testing.assert_allclose(np.exp(mm.log_theta_), theta, rtol=1e-8, atol=1e-12)
        np.testing.assert_array_equal(mm.labels_, labels)
    np.testing.assert_allclose(np.exp(mm.log_theta_).sum(axis=1), 1.0, rtol=1e-10)
    assert mm.labels_.shape == (60,) and mm.labels_.min() >= 0 and mm.labels_.max() < k


def test_recovers_planted_groups_from_a_random_start():
    X, y, _, _ = _planted(n=600, m=80, k=4, events=40, seed=3)
    mm = MultinomialMixture(4, random_state=0).fit(X)
    assert adjusted_rand_score(y, mm.labels_) > 0.9
    np.testing.assert_array_equal(mm.predict(X), mm.labels_)
    P = mm.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.argmax(P, axis=1), mm.labels_)
    for u in (0, 5, 599):
        row = X[u]
        assert mm._predict_row(row.indices, row.data) == mm.labels_[u]


def test_no_group_is_left_empty():
    X, _, _, _ = _planted(n=200, m=40, k=2, events=20, seed=1)
    mm = MultinomialMixture(5, random_state=0).fit(X, init=np.zeros(200, dtype=np.int64))  # 4 groups start empty
    # the data hold 2 groups: groups nobody prefers are dropped, and the labels stay compact
    assert 2 <= mm.n_components_ <= 5
    np.testing.assert_array_equal(np.unique(mm.labels_), np.arange(mm.n_components_))
    assert mm.log_theta_.shape[0] == mm.weights_.shape[0] == mm.n_components_


def test_admixture_recovers_mixing_weights():
    X, y, theta, w = _planted(n=300, m=100, k=3, events=400, seed=2, mix=0.3)
    W = admixture_weights(X, np.log(theta), n_iter=200)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert np.abs(W - w).mean() < 0.05  # a dense reference: the planted weights themselves
    # one-group users get one group
    X1, y1, theta1, w1 = _planted(n=100, m=100, k=3, events=400, seed=4)
    W1 = admixture_weights(X1, np.log(theta1), n_iter=100)
    assert (W1[np.arange(100), y1] > 0.9).mean() > 0.95


def test_admixture_rows_without_events_are_uniform_and_chunks_agree():
    X, _, theta, _ = _planted(n=50, m=20, k=3, events=10, seed=5)
    X = sp.vstack([X, sp.csr_matrix((2, 20))], format="csr")
    W = admixture_weights(X, np.log(theta), n_iter=20, tol=0.0)
    np.testing.assert_allclose(W[-2:], 1.0 / 3)
    W_rows = np.vstack([admixture_weights(X[i:i + 1], np.log(theta), n_iter=20, tol=0.0) for i in range(52)])
    np.testing.assert_allclose(W, W_rows, rtol=1e-10, atol=1e-12)


def test_online_update_equals_hard_m_step():
    X, y, _, _ = _planted(n=300, m=50, k=3, events=25, seed=6)
    mm = MultinomialMixture(3, random_state=0).fit(X[:200])
    add = mm.predict(X[200:])
    mm.update(X[200:], add)
    labels = np.r_[mm.labels_, add]
    counts = np.stack([np.asarray(X[labels == g].sum(axis=0)).ravel() for g in range(3)])
    ref = MultinomialMixture(3, alpha=mm.alpha)
    ref.counts_, ref.background_ = counts, mm.background_
    ref._refresh()
    # the fitted counts are soft; the users added are hard: compare the added part only
    before = MultinomialMixture(3, random_state=0).fit(X[:200])
    np.testing.assert_allclose(mm.counts_ - before.counts_,
                               np.stack([np.asarray(X[200:][add == g].sum(axis=0)).ravel() for g in range(3)]))
    mm.update(X_remove=X[200:], labels_remove=add)
    np.testing.assert_allclose(mm.counts_, before.counts_, atol=1e-9)
    np.testing.assert_allclose(mm.log_theta_, before.log_theta_, atol=1e-12)


@pytest.mark.parametrize("kw, match", [
    ({"n_components": 0}, "n_components"), ({"alpha": 0.0}, "alpha"), ({"alpha": float("nan")}, "alpha"),
    ({"max_iter": 0}, "max_iter"), ({"n_components": 2.5}, "n_components")])
def test_bad_parameters_are_named(kw, match):
    X, _, _, _ = _planted(n=20, m=10, k=2, events=5)
    with pytest.raises((ValueError, TypeError), match=match):
        MultinomialMixture(**kw).fit(X)


def test_bad_inputs():
    X, _, _, _ = _planted(n=20, m=10, k=2, events=5)
    with pytest.raises(ValueError, match="non-negative"):
        MultinomialMixture(2).fit(-X)
    with pytest.raises(ValueError, match="no event"):
        MultinomialMixture(2).fit(sp.csr_matrix((5, 4)))
    with pytest.raises(ValueError, match="larger than the number of users"):
        MultinomialMixture(30).fit(X)
    with pytest.raises(ValueError, match="init"):
        MultinomialMixture(2).fit(X, init=np.zeros(3, dtype=np.int64))
    mm = MultinomialMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="items"):
        mm.predict(sp.csr_matrix((2, 11)))
    with pytest.raises(ValueError):
        MultinomialMixture(2).fit(sp.csr_matrix(np.array([[np.inf, 1.0], [1.0, 0.0]])))


# ---------------------------------------------------------------- the prior centred on item categories
def _category_centre_reference(counts, bg, cats_of, n_cats):
    """Each group's prior centre, item by item (the definition in MultinomialMixture's notes), in loops."""
    k, m = counts.shape
    share = np.zeros(n_cats)
    for i in range(m):
        for c in cats_of[i]:
            share[c] += bg[i] / len(cats_of[i])
    share /= share.sum()
    out = np.zeros((k, m))
    for g in range(k):
        in_cat = np.zeros(n_cats)
        for i in range(m):
            for c in cats_of[i]:
                in_cat[c] += counts[g, i] / len(cats_of[i])
        phi = (in_cat + n_cats * share) / (in_cat.sum() + n_cats)
        for i in range(m):
            factor = np.mean([phi[c] / share[c] for c in cats_of[i]]) if cats_of[i] else 1.0
            out[g, i] = bg[i] * factor
        out[g] /= out[g].sum()
    return out


def _categories(m, n_cats, seed, *, uncategorised=0.1, multi=0.3):
    """Random memberships: most items in one category, some in two, a few in none."""
    rng = np.random.RandomState(seed)
    cats_of = []
    for _ in range(m):
        r = rng.rand()
        cats_of.append([] if r < uncategorised else
                       sorted(rng.choice(n_cats, 2, replace=False).tolist()) if r < uncategorised + multi else
                       [int(rng.randint(n_cats))])
    A = sp.lil_matrix((m, n_cats))
    for i, cs in enumerate(cats_of):
        for c in cs:
            A[i, c] = 1.0
    return sp.csr_matrix(A), cats_of


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), n_cats=st.integers(2, 6),
       alpha=st.sampled_from([0.5, 3.0, 10.0]))
def test_category_prior_matches_dense_reference(seed, k, n_cats, alpha):
    X, y, _, _ = _planted(n=60, m=15, k=k, events=12, seed=seed)
    A, cats_of = _categories(15, n_cats, seed)
    init = (y + np.arange(60) // 20) % k
    mm = MultinomialMixture(k, alpha=alpha, max_iter=1, tol=0.0).fit(X, init=init, item_categories=A)
    # the final M-step's counts are the model's own: its smoothing must be the reference's centre
    centre = _category_centre_reference(mm.counts_, mm.background_, cats_of, n_cats)
    prior = alpha * 15
    theta = (mm.counts_ + prior * centre) / (mm.counts_.sum(axis=1, keepdims=True) + prior)
    np.testing.assert_allclose(np.exp(mm.log_theta_), theta, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(np.exp(mm.log_theta_).sum(axis=1), 1.0, rtol=1e-10)
    # memberships given as weights that do not sum to one are the same memberships
    mm2 = MultinomialMixture(k, alpha=alpha, max_iter=1, tol=0.0).fit(X, init=init, item_categories=3.0 * A)
    np.testing.assert_allclose(mm2.log_theta_, mm.log_theta_, rtol=1e-12)


def test_one_category_for_every_item_is_the_background_prior():
    X, y, _, _ = _planted(n=200, m=30, k=3, events=20, seed=4)
    plain = MultinomialMixture(3, alpha=2.0, random_state=0).fit(X, init=y)
    one = MultinomialMixture(3, alpha=2.0, random_state=0).fit(X, init=y, item_categories=np.ones((30, 1)))
    np.testing.assert_allclose(one.log_theta_, plain.log_theta_, rtol=1e-12)
    np.testing.assert_array_equal(one.labels_, plain.labels_)


def test_category_prior_borrows_strength_from_the_category():
    """An item a group never touched is as likely as its category is for the group (not as the background)."""
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=float))
    A = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=float))
    mm = MultinomialMixture(2, alpha=1.0).fit(X, init=np.array([0, 0, 1, 1]), item_categories=A)
    bg = MultinomialMixture(2, alpha=1.0).fit(X, init=np.array([0, 0, 1, 1]))
    theta, theta_bg = np.exp(mm.log_theta_), np.exp(bg.log_theta_)
    g = int(mm.labels_[0])
    # item 1 (group g's category, seen once) gains over the background prior; items 2-3 (the other category) lose
    assert theta[g, 1] > theta_bg[g, 1] and theta[g, 2] < theta_bg[g, 2]


def test_category_prior_online_update_round_trips():
    X, y, _, _ = _planted(n=300, m=40, k=3, events=20, seed=5)
    A, _ = _categories(40, 5, 5)
    mm = MultinomialMixture(3, alpha=3.0, random_state=0).fit(X[:200], item_categories=A)
    before = mm.log_theta_.copy()
    add = mm.predict(X[200:])
    mm.update(X[200:], add)
    assert not np.allclose(mm.log_theta_, before)
    mm.update(X_remove=X[200:], labels_remove=add)
    np.testing.assert_allclose(mm.log_theta_, before, atol=1e-10)


def test_item_categories_are_checked():
    X, _, _, _ = _planted(n=20, m=10, k=2, events=5)
    with pytest.raises(ValueError, match="item_categories must have one row per item"):
        MultinomialMixture(2).fit(X, item_categories=np.ones((9, 2)))
    with pytest.raises(ValueError, match="item_categories must be non-negative"):
        MultinomialMixture(2).fit(X, item_categories=-np.ones((10, 2)))
    with pytest.raises(ValueError, match="no item in any category"):
        MultinomialMixture(2).fit(X, item_categories=sp.csr_matrix((10, 3)))
    with pytest.raises(ValueError, match="item_categories"):
        MultinomialMixture(2).fit(X, item_categories=np.full((10, 2), np.nan))


@pytest.mark.parametrize("taste, uses_categories", [("categories", True), ("items", False)])
def test_heldout_prior_choice_uses_categories_only_where_tastes_are_over_them(taste, uses_categories):
    """Overlapping tastes over categories: the category prior predicts held-out events better. Tastes over
    items (categories carry nothing): the background prior is kept."""
    w = make_world(1200, 400, 6, seed=1, overlap=1.0 if taste == "categories" else 0.0, taste=taste)
    X, y = w
    cats, _ = X.item_categories()
    init = np.asarray(GroupDiscovery(n_groups=6, random_state=0, category_prior=None).fit(X).clusterer_.labels_)
    alpha, curve = heldout_prior_choice(X.matrix, init, 6, cats, random_state=0)
    assert list(curve.columns) == ["prior", "alpha", "heldout_loglik", "train_loglik", "se"]
    assert list(curve["prior"]) == ["background", "categories", "categories"]
    assert (alpha is not None) is uses_categories
    best = int(curve["heldout_loglik"].idxmax())
    assert (curve.loc[best, "prior"] == "categories") is uses_categories
    with pytest.raises(ValueError, match="init"):
        heldout_prior_choice(X.matrix, init[:-1], 6, cats)
    with pytest.raises(ValueError, match="item_categories"):
        heldout_prior_choice(X.matrix, init, 6, cats[:-1])
    with pytest.raises(ValueError, match="alphas"):
        heldout_prior_choice(X.matrix, init, 6, cats, alphas=(0.0,))


def test_group_discovery_category_prior(tmp_path):
    w = make_world(1200, 400, 6, seed=1, overlap=1.0)
    X, y = w
    gd = GroupDiscovery(n_groups=6, random_state=0).fit(X)
    assert gd.category_prior_ in (3.0, 10.0) and gd.mixture_.item_categories_ is not None
    assert gd.category_curve_ is not None and len(gd.category_curve_) == 3
    fixed = GroupDiscovery(n_groups=6, random_state=0, category_prior=gd.category_prior_).fit(X)
    np.testing.assert_array_equal(fixed.labels_, gd.labels_)
    assert fixed.category_curve_ is None
    plain = GroupDiscovery(n_groups=6, random_state=0, category_prior=None).fit(X)
    assert plain.category_prior_ is None and plain.mixture_.item_categories_ is None
    # saved and loaded: the same mixture, the same assignments and memberships
    gd.save(tmp_path / "m")
    back = GroupDiscovery.load(tmp_path / "m")
    assert back.category_prior_ == gd.category_prior_ and back.get_params()["category_prior"] == "auto"
    np.testing.assert_array_equal(back.mixture_.log_theta_, gd.mixture_.log_theta_)
    np.testing.assert_array_equal(back.assign(X), gd.assign(X))
    np.testing.assert_allclose(back.memberships(X), gd.memberships(X))
    assert back.category_curve_ is not None and list(back.category_curve_["prior"]) == list(gd.category_curve_["prior"])
    # no categories: "auto" keeps the background; a strength asks for them by name
    bare = GroupDiscovery(n_groups=6, random_state=0).fit(X.matrix)
    assert bare.category_prior_ is None and bare.category_curve_ is None
    with pytest.raises(ValueError, match="category_prior=3.0 needs item categories"):
        GroupDiscovery(n_groups=6, random_state=0, category_prior=3.0).fit(X.matrix)
    for bad in ("always", 0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="category_prior"):
            GroupDiscovery(n_groups=6, random_state=0, category_prior=bad).fit(X)
    # refine=None: no mixture, no prior
    assert GroupDiscovery(n_groups=6, random_state=0, refine=None).fit(X).category_prior_ is None


# ---------------------------------------------------------------- GroupDiscovery(refine="multinomial")
@pytest.fixture(scope="module")
def noisy_shop():
    return make_shop(n_users=1500, n_items=600, n_groups=6, seed=2, noise=0.5, mean_events=12)


def test_refine_is_the_default_and_does_not_lose_to_kmeans(noisy_shop):
    X, y = noisy_shop
    refined = GroupDiscovery(n_groups=6, random_state=0).fit(X)
    plain = GroupDiscovery(n_groups=6, refine=None, random_state=0).fit(X)
    assert refined.mixture_ is not None and plain.mixture_ is None
    # half the events are noise here: K-means on the embeddings gets 0.54, the refined groups 0.65 (measured)
    assert adjusted_rand_score(y, refined.labels_) >= adjusted_rand_score(y, plain.labels_) + 0.05


def test_refined_model_assigns_serves_and_weighs_consistently(noisy_shop, tmp_path):
    X, _ = noisy_shop
    gd = GroupDiscovery(n_groups=6, random_state=0).fit(X)
    np.testing.assert_array_equal(gd.assign(X), gd.labels_)
    for u in (0, 7, 1499):
        row = X.matrix[u]
        items = X.item_ids[row.indices]
        assert gd.assign_items(list(items), row.data) == gd.labels_[u]
    W = gd.memberships()
    assert W.shape == (X.n_users, 6)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert (np.argmax(W, axis=1) == gd.labels_).mean() > 0.9
    # a slice of the training users (groups.parquet's row groups): the slice of the whole, up to the early stop
    np.testing.assert_allclose(gd.memberships(rows=slice(100, 400)), W[100:400], atol=1e-3)
    with pytest.raises(ValueError, match="rows"):
        gd.memberships(X, rows=slice(0, 10))
    loaded = GroupDiscovery.load(gd.save(tmp_path / "m"))
    assert loaded.refine == "multinomial"
    np.testing.assert_allclose(loaded.mixture_.log_theta_, gd.mixture_.log_theta_)
    np.testing.assert_array_equal(loaded.assign(X), gd.labels_)
    np.testing.assert_allclose(loaded.memberships(X), W)


def test_memberships_without_the_mixture_use_the_stored_embeddings(noisy_shop):
    X, _ = noisy_shop
    gd = GroupDiscovery(n_groups=6, refine=None, random_state=0).fit(X)
    W = gd.memberships()
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    np.testing.assert_array_equal(gd.memberships(rows=slice(10, 50)), W[10:50])
    np.testing.assert_allclose(gd.memberships(X), W, atol=1e-6)  # new users: embedded by fold-in


def test_refined_partial_fit_updates_the_mixture(noisy_shop):
    X, _ = noisy_shop
    first = X.matrix[:1000]
    gd = GroupDiscovery(n_groups=6, random_state=0).fit(first)
    before = gd.mixture_.counts_.copy()
    expected = gd.mixture_.predict(X.matrix[1000:])  # partial_fit assigns with the mixture before updating it
    gd.partial_fit(X.matrix[1000:])
    assert len(gd.labels_) == 1500
    np.testing.assert_array_equal(gd.labels_[1000:], expected)
    np.testing.assert_allclose(gd.mixture_.counts_.sum() - before.sum(), X.matrix[1000:].nnz)  # binary counts


def test_refine_is_checked():
    X, _ = make_shop(n_users=100, n_items=50, n_groups=2, seed=0)
    with pytest.raises(ValueError, match="refine"):
        GroupDiscovery(n_groups=2, refine="gmm").fit(X)


# ------------------------------------------------------------ bad input (issue 15): a clear error or a warned result
def test_users_without_items_get_no_group_with_a_warning():
    M = sp.vstack([sp.random(60, 30, density=0.2, random_state=0, format="csr"),
                   sp.csr_matrix((5, 30))]).tocsr()
    with pytest.warns(UserWarning, match="5 user.*no interaction"):
        gd = GroupDiscovery(n_groups=3, random_state=0).fit(M)
    assert (gd.labels_[-5:] == -1).all() and (gd.labels_[:60] >= 0).all()
    np.testing.assert_array_equal(gd.assign(M), gd.labels_)  # fit and assign agree on empty users


@pytest.mark.parametrize("k", [4, "auto"])
def test_identical_users_and_one_item_give_one_warned_group(k):
    from sklearn.exceptions import ConvergenceWarning

    row = (np.random.RandomState(0).rand(1, 30) > 0.5).astype(float)
    for M in (sp.csr_matrix(np.tile(row, (40, 1))), sp.csr_matrix(np.ones((40, 1)))):
        with pytest.warns(ConvergenceWarning, match="distinct clusters") as rec:
            gd = GroupDiscovery(n_groups=k, random_state=0).fit(M)
        assert gd.n_groups_ == 1 and (gd.labels_ == 0).all()
        assert len(rec) <= 2  # one warning from the final fit, not one per k of the search


def test_more_groups_than_distinct_users_warns_and_keeps_the_distinct_ones():
    from sklearn.exceptions import ConvergenceWarning

    M = sp.csr_matrix(np.repeat(np.eye(3), 10, axis=0))  # 3 distinct rows, one item each (nothing to hold out)
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        gd = GroupDiscovery(n_groups=4, random_state=0).fit(M)
    assert gd.n_groups_ == 3 and adjusted_rand_score(np.repeat(np.arange(3), 10), gd.labels_) == 1.0
    gd = GroupDiscovery(n_groups="auto", random_state=0).fit(M)
    assert gd.n_groups_ == 3


def test_groups_the_mixture_empties_are_dropped_with_a_warning():
    X, y, _, _ = _planted(n=300, m=40, k=2, events=30, seed=0)
    with pytest.warns(UserWarning, match="without users"):
        gd = GroupDiscovery(n_groups=12, random_state=0).fit(X)
    assert 2 <= gd.n_groups_ < 12
    np.testing.assert_array_equal(np.unique(gd.labels_), np.arange(gd.n_groups_))
    assert gd.centroids_.shape[0] == gd.n_groups_
