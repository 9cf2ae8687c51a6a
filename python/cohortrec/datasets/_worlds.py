"""``make_world``: a family of planted worlds, one parameter per axis of difficulty.

The defaults of group discovery were tuned on :func:`~cohortrec.datasets.make_shop`,
so scoring them on ``make_shop`` again only says they fit the world they were
tuned on. This module builds *other* worlds, with shapes chosen independently
of ``make_shop`` (no price tiers, no per-group activity or funnel rates, no
user features), in which each thing that makes groups hard to find is a knob
of its own. :func:`world_grid` names a grid of such worlds, each axis pushed
alone to its hard end and a few pushed together, so that defaults can be
chosen by their worst case rather than by their score on one world (issue 15).

The axes
--------
``noise``
    Share of a user's events that ignore the group and follow global item
    popularity (real logs: 10-50%).
``overlap``
    How much the groups' tastes share categories. Each group owns two core
    categories (disjoint between groups at ``overlap=0``); with overlap it
    moves ``0.3 * overlap`` of its taste onto the core of each of its two
    neighbours on a ring of groups, so at ``overlap=1`` a group keeps only 40%
    on its own core and shares 60% with its neighbours. Groups still differ
    in the weights of their categories and in a set of preferred items, so
    they stay identifiable in principle.
``imbalance``
    Ratio of the largest to the smallest group (sizes geometric between 1 and
    ``1 / imbalance``); small groups are the first to be merged away.
``activity_sigma``
    Log-normal spread of the number of events per user, clipped to
    ``[min_events, max_events]``: a few very heavy users and many light ones.
``n_groups``
    From a handful to tens of groups.
``popularity``
    Zipf exponent of global item popularity (0 = uniform), which drives both
    the noise events and the choice of items inside a taste: a steep head
    makes every user look alike.
``taste``
    ``"categories"``: a taste is a distribution over item categories.
    ``"items"``: a taste is over a group's own random subset of items that
    crosses categories, so category counts do not separate the groups.
``mixed``
    Share of users who belong to two groups: a weight in [0.3, 0.5] of their
    taste events follows a second group. Their label is the dominant group;
    the second group and its weight are recorded for soft-membership checks.

Everything is vectorised (no per-event Python loop): 3,000 users take under
0.1 s and 20,000 users about 0.5 s, much of it in building the
:class:`~cohortrec.interactions.Interactions`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from cohortrec.datasets._synthetic import _BRANDS, ShopData, _category_names
from cohortrec.interactions import Interactions
from cohortrec.preprocessing import DEFAULT_EVENT_WEIGHTS

__all__ = ["make_world", "world_grid"]

_TASTES = ("categories", "items")
_EVENT_TYPES = ["view", "cart", "purchase"]
_EVENT_P = np.array([0.86, 0.10, 0.04])  # per event: mostly views
_CORE = 2  # core categories (or item blocks) each group owns
_NEIGHBOUR_SHARE = 0.3  # taste moved onto each neighbour's core at overlap=1
_PREFERRED_SHARE = 0.25  # share of items a group likes more than their popularity says
_PREFERRED_BOOST = 3.0
_MIX_RANGE = (0.3, 0.5)
_DAYS = 90
_START = "2024-01-01"


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _check_float(name: str, v: Any, lo: float, hi: float = np.inf, *, lo_open: bool = False,
                 hi_open: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if isinstance(v, bool) or not np.isfinite(x) or x < lo or (lo_open and x == lo) or x > hi or (hi_open and x == hi):
        span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must lie in {span}, got {v!r}")
    return x


def _group_sizes(n_users: int, n_groups: int, imbalance: float, rng: np.random.RandomState) -> np.ndarray:
    """Sizes geometric from 1 to 1/imbalance (largest remainder rounding), in a random group order."""
    rel = imbalance ** -(np.arange(n_groups) / max(n_groups - 1, 1))
    share = rel / rel.sum()
    raw = share * n_users
    sizes = np.floor(raw).astype(np.int64)
    rest = n_users - sizes.sum()
    sizes[np.argsort(-(raw - sizes), kind="stable")[:rest]] += 1
    if n_users >= n_groups:  # no empty group when there are enough users
        while (sizes == 0).any():
            sizes[np.argmax(sizes)] -= 1
            sizes[np.argmin(sizes)] += 1
    return sizes[rng.permutation(n_groups)]


def make_world(
    n_users: int = 3000,
    n_items: int = 1500,
    n_groups: int = 8,
    seed: int | np.random.RandomState | None = 0,
    *,
    noise: float = 0.25,
    overlap: float = 0.0,
    imbalance: float = 1.0,
    activity_sigma: float = 1.0,
    min_events: int = 3,
    max_events: int = 500,
    mean_events: float = 20.0,
    popularity: float = 1.0,
    taste: str = "categories",
    n_categories: int | None = None,
    mixed: float = 0.0,
) -> ShopData:
    """A planted world of user groups with one parameter per axis of difficulty.

    Each group owns a taste: two core categories (``taste="categories"``) or
    two blocks of items that cross categories (``taste="items"``), weighted
    by a Dirichlet draw, spread onto its neighbours' cores by ``overlap``,
    and sharpened by a set of preferred items (a quarter of all items, 3x
    their popularity). A user's events follow their group's taste, except a
    share ``noise`` that follows global popularity and, for mixed users, a
    share that follows a second group. See the module docstring for why.

    Parameters
    ----------
    n_users, n_items : int
    n_groups : int, default 8
        Planted groups (``>= 1``).
    seed : int, RandomState or None
        The world is a function of the arguments and ``seed``.
    noise : float in [0, 1), default 0.25
        Share of events (Bernoulli per event) that ignore the group and
        follow global item popularity.
    overlap : float in [0, 1], default 0
        0: the groups' core sets are disjoint. A group moves ``0.3 * overlap``
        of its taste onto the core of each neighbour on a ring of groups (one
        neighbour when ``n_groups == 2``).
    imbalance : float >= 1, default 1
        Ratio of the largest to the smallest group size (sizes geometric in
        between, rounded to whole users).
    activity_sigma : float >= 0, default 1
        Log-normal sigma of the number of events per user (mean about
        ``mean_events`` before clipping).
    min_events, max_events : int, default 3 and 500
        Clip of every user's event count (all event types together).
    mean_events : float > 0, default 20
    popularity : float >= 0, default 1
        Zipf exponent of global item popularity (0 = uniform), used for noise
        events and for the choice of items inside a taste.
    taste : {"categories", "items"}, default "categories"
        What a group's taste is over: categories (items inside a category by
        popularity), or its own random blocks of items crossing categories,
        so that category counts do not separate the groups.
    n_categories : int, optional
        Item categories (``1 <= n_categories <= n_items``); default
        ``2 * n_groups + 4`` (capped at ``n_items``), enough for disjoint
        cores. With fewer than ``2 * n_groups`` the cores wrap around and
        overlap whatever ``overlap`` says. With ``taste="items"`` the item
        blocks are as many as the categories.
    mixed : float in [0, 1), default 0
        Share of users (exact, rounded) who mix in a second group with a
        weight drawn from [0.3, 0.5]; needs ``n_groups >= 2`` when > 0.

    Returns
    -------
    ShopData
        Unpacks as ``interactions, labels``. ``interactions`` is
        ``(n_users, n_items)`` in id order, event-type weighted (view 1,
        cart 3, purchase 5) with the item side data and no user features.
        ``events`` has ``user_id, item_id, timestamp, event``; ``items`` has
        ``item_id, title, categories, price, popularity``; ``users`` has
        ``user_id, n_events, second_group, mix_weight`` (-1 and 0 for users
        who do not mix); ``groups`` has ``group, share, size, own_weight,
        neighbours, core_categories, n_taste_items``.
        ``view_probs`` is the generator's distribution of the item of one
        view, for each group's taste and (last row) for a noise view: with
        ``noise`` and ``mixed`` it gives each user's exact posterior over the
        groups, the Bayes-optimal assignment no method can beat on average.

    Examples
    --------
    >>> from cohortrec.datasets import make_world
    >>> w = make_world(n_users=400, n_items=200, n_groups=4, noise=0.4, mixed=0.2, seed=1)
    >>> X, y = w
    >>> X.shape, len(y)
    ((400, 200), 400)
    >>> int((w.users["mix_weight"] > 0).sum())
    80
    """
    n_users = _check_int("n_users", n_users, 1)
    n_items = _check_int("n_items", n_items, 1)
    n_groups = _check_int("n_groups", n_groups, 1)
    min_events = _check_int("min_events", min_events, 1)
    max_events = _check_int("max_events", max_events, min_events)
    noise = _check_float("noise", noise, 0.0, 1.0, hi_open=True)
    overlap = _check_float("overlap", overlap, 0.0, 1.0)
    imbalance = _check_float("imbalance", imbalance, 1.0)
    activity_sigma = _check_float("activity_sigma", activity_sigma, 0.0)
    mean_events = _check_float("mean_events", mean_events, 0.0, lo_open=True)
    popularity = _check_float("popularity", popularity, 0.0)
    mixed = _check_float("mixed", mixed, 0.0, 1.0, hi_open=True)
    if taste not in _TASTES:
        raise ValueError(f"taste must be one of {_TASTES}, got {taste!r}")
    if mixed > 0 and n_groups < 2:
        raise ValueError(f"mixed > 0 needs n_groups >= 2, got mixed={mixed!r} with n_groups={n_groups}")
    if n_categories is None:
        n_cat = min(2 * n_groups + 4, n_items)
    else:
        n_cat = _check_int("n_categories", n_categories, 1)
        if n_cat > n_items:
            raise ValueError(f"n_categories must be <= n_items ({n_items}), got {n_categories!r}")
    rng = check_random_state(seed)

    # ------------------------------------------------------------- items
    cat_names, cat_nouns = _category_names(n_cat, rng)
    item_cat = rng.randint(n_cat, size=n_items)
    item_cat[:n_cat] = np.arange(n_cat)  # every category used
    rng.shuffle(item_cat)
    pop = 1.0 / (rng.permutation(n_items) + 1.0) ** popularity  # Zipf over a random rank order
    p_pop = pop / pop.sum()
    cat_base = np.exp(rng.uniform(np.log(5), np.log(200), size=n_cat))
    price = np.round(cat_base[item_cat] * rng.lognormal(0, 0.4, n_items), 2) + 0.99
    noun_idx = rng.randint(8, size=n_items)
    brand = rng.randint(len(_BRANDS), size=n_items)
    item_ids = np.array([f"i{j:06d}" for j in range(n_items)])
    items = pd.DataFrame({
        "item_id": item_ids,
        "title": [f"{_BRANDS[b]} {cat_nouns[c][k]}" for b, c, k in zip(brand, item_cat, noun_idx)],
        "categories": [cat_names[c] for c in item_cat],
        "price": price,
        "popularity": p_pop,
    })

    # ------------------------------------------------------------- tastes
    # A taste is over "units": the categories, or blocks of items that take every category in turn.
    # Inside a unit an item is picked in two steps: its category (always the unit's own with
    # taste="categories"; with taste="items" the global popularity share of the category, so that
    # the category counts of all groups look alike), then the item by popularity x the group's liking.
    cat_mass = np.bincount(item_cat, weights=p_pop, minlength=n_cat)
    if taste == "categories":
        unit = item_cat
    else:
        unit = np.empty(n_items, np.int64)
        unit[np.lexsort((rng.rand(n_items), item_cat))] = np.arange(n_items) % n_cat
    cell_of = unit * n_cat + item_cat
    cells, cell = np.unique(cell_of, return_inverse=True)
    cell_mass = cat_mass[cells % n_cat]  # step one: share of the cell's category within its unit
    cell_mass /= np.bincount(cells // n_cat, weights=cell_mass, minlength=n_cat)[cells // n_cat]
    order = rng.permutation(n_cat)
    if n_cat >= _CORE * n_groups:  # disjoint cores
        own = [order[_CORE * g: _CORE * (g + 1)] for g in range(n_groups)]
    else:  # too few units: distinct pairs (i, i + d) of a ring, d = 1, 2, ...
        own = [np.unique(order[[g % n_cat, (g % n_cat + 1 + g // n_cat) % n_cat]]) for g in range(n_groups)]
    pref = np.zeros((n_groups, n_cat))
    neighbours: list[list[int]] = []
    for g in range(n_groups):
        nb = sorted({(g - 1) % n_groups, (g + 1) % n_groups} - {g})
        neighbours.append(nb)
        own_w = 1.0 - _NEIGHBOUR_SHARE * overlap * len(nb)
        pref[g, own[g]] += own_w * rng.dirichlet(np.full(own[g].size, 4.0))
        for h in nb:
            pref[g, own[h]] += _NEIGHBOUR_SHARE * overlap * rng.dirichlet(np.full(own[h].size, 4.0))
    boost = np.where(rng.rand(n_groups, n_items) < _PREFERRED_SHARE, _PREFERRED_BOOST, 1.0)
    w = pop[None, :] * boost  # (n_groups, n_items)
    cell_tot = np.stack([np.bincount(cell, weights=w[g], minlength=cells.size) for g in range(n_groups)])
    P = pref[:, unit] * cell_mass[cell] * w / cell_tot[:, cell]
    P /= P.sum(axis=1, keepdims=True)
    # one cumulative table, row g offset by g, so every draw is one searchsorted
    cdf = np.cumsum(np.vstack([P, p_pop[None, :]]), axis=1)
    cdf /= cdf[:, -1:]
    cdf += np.arange(n_groups + 1)[:, None]
    flat = cdf.ravel()

    # ------------------------------------------------------------- users
    sizes = _group_sizes(n_users, n_groups, imbalance, rng)
    labels = rng.permutation(np.repeat(np.arange(n_groups), sizes))
    n_mix = int(round(mixed * n_users))
    second = np.full(n_users, -1, np.int64)
    mix_w = np.zeros(n_users)
    if n_mix:
        who = rng.choice(n_users, size=n_mix, replace=False)
        step = rng.randint(1, n_groups, size=n_mix)  # any group but the label
        second[who] = (labels[who] + step) % n_groups
        mix_w[who] = rng.uniform(*_MIX_RANGE, size=n_mix)
    mu = np.log(mean_events) - activity_sigma**2 / 2
    n_ev = np.clip(np.round(rng.lognormal(mu, activity_sigma, n_users)), min_events, max_events).astype(np.int64)
    user_ids = np.array([f"u{u:07d}" for u in range(n_users)])

    # ------------------------------------------------------------- events
    e_user = np.repeat(np.arange(n_users), n_ev)
    n_e = e_user.size
    span = _DAYS * 86400.0
    u_start = rng.uniform(0, span * 0.6, n_users)
    u_len = np.minimum(span - u_start, rng.uniform(0.1, 1.0, n_users) * span)
    e_time = u_start[e_user] + rng.rand(n_e) * u_len[e_user]
    e_time = e_time[np.lexsort((e_time, e_user))]  # e_user is already sorted: times ascend within a user
    first = np.r_[0, np.cumsum(n_ev)[:-1]]
    e_type = rng.choice(3, size=n_e, p=_EVENT_P).astype(np.int8)
    e_type[first] = 0  # every user starts with a view
    # source of each view: the group's taste, the second group (mixed users) or popularity (noise)
    src = labels[e_user]
    use_second = rng.rand(n_e) < mix_w[e_user]
    src = np.where(use_second, second[e_user], src)
    src = np.where(rng.rand(n_e) < noise, n_groups, src)
    e_item = np.searchsorted(flat, src + rng.rand(n_e), side="right") - src * n_items
    np.minimum(e_item, n_items - 1, out=e_item)  # guards the last float of a row
    # carts and purchases are of the item of the user's latest view
    is_view = e_type == 0
    last_view = np.maximum.accumulate(np.where(is_view, np.arange(n_e), 0))
    e_item = e_item[last_view]
    t0 = pd.Timestamp(_START).value // 10**9
    events = pd.DataFrame({
        "user_id": user_ids[e_user],
        "item_id": item_ids[e_item],
        "timestamp": pd.to_datetime(t0 + np.minimum(e_time, span - 1).astype(np.int64), unit="s"),
        "event": pd.Categorical.from_codes(e_type, _EVENT_TYPES),
    })

    inter = Interactions.from_frame(
        events, user="user_id", item="item_id", time="timestamp", event="event",
        event_weights=DEFAULT_EVENT_WEIGHTS, items=items.set_index("item_id"),
        user_ids=user_ids, item_ids=item_ids,
    )
    lab = pd.Series(labels, index=user_ids).reindex(inter.user_ids).to_numpy(np.int64)
    users = pd.DataFrame({"user_id": user_ids, "n_events": n_ev, "second_group": second, "mix_weight": mix_w})
    taste_items = np.array([(pref[g, unit] > 0).sum() for g in range(n_groups)])
    groups = pd.DataFrame({
        "group": np.arange(n_groups),
        "share": sizes / n_users,
        "size": sizes,
        "own_weight": [float(pref[g, own[g]].sum()) for g in range(n_groups)],
        "neighbours": [", ".join(map(str, nb)) if overlap > 0 else "" for nb in neighbours],
        "core_categories": [", ".join(cat_names[c] for c in np.flatnonzero(pref[g] > 0)) if taste == "categories"
                            else "" for g in range(n_groups)],
        "n_taste_items": taste_items,
    })
    # the generator's truth, for Bayes-optimal ceilings: columns follow the matrix's items (the same ids, in order)
    col = pd.Index(item_ids).get_indexer(inter.item_ids)
    view_probs = np.vstack([P, p_pop[None, :]])[:, col]
    return ShopData(inter, lab, events, items, users, groups, view_probs)


def world_grid(n_users: int = 3000, n_items: int = 1500, seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """A named grid of 27 worlds for :func:`make_world`: each axis alone at its hard end, and combined.

    Parameters
    ----------
    n_users, n_items : int
        Size of every world.
    seed : int
        Seed of every world.

    Returns
    -------
    list of (name, kwargs)
        ``make_world(**kwargs)`` builds the world; every ``kwargs`` holds
        ``n_users, n_items, n_groups, seed`` and the axes that differ from
        the baseline. Names are short and unique; the first is ``"base"``.

    Examples
    --------
    >>> from cohortrec.datasets import make_world, world_grid
    >>> grid = world_grid(n_users=200, n_items=100)
    >>> name, kw = grid[0]
    >>> name, make_world(**kw).interactions.shape
    ('base', (200, 100))
    """
    n_users = _check_int("n_users", n_users, 1)
    n_items = _check_int("n_items", n_items, 1)
    skew = {"activity_sigma": 1.5, "min_events": 3, "max_events": 500}
    realistic = {"noise": 0.4, "overlap": 0.5, "imbalance": 5.0, **skew, "mixed": 0.2}
    worlds: list[tuple[str, dict[str, Any]]] = [
        ("base", {}),
        # one axis at a time
        ("noise10", {"noise": 0.1}),
        ("noise50", {"noise": 0.5}),
        ("overlap50", {"overlap": 0.5}),
        ("overlap100", {"overlap": 1.0}),
        ("imb3", {"imbalance": 3.0}),
        ("imb10", {"imbalance": 10.0}),
        ("skew", dict(skew)),
        ("sparse", {"mean_events": 8.0}),
        ("cold", {"mean_events": 8.0, "min_events": 1, "activity_sigma": 1.2}),
        ("k4", {"n_groups": 4}),
        ("k20", {"n_groups": 20}),
        ("k40", {"n_groups": 40}),
        ("pop0", {"popularity": 0.0}),
        ("pop15", {"popularity": 1.5}),
        ("items", {"taste": "items"}),
        ("fewcats", {"n_categories": min(8, n_items)}),
        ("mixed20", {"mixed": 0.2}),
        ("mixed40", {"mixed": 0.4}),
        # combined
        ("items-ovl", {"taste": "items", "overlap": 0.5}),
        ("noise-ovl", {"noise": 0.5, "overlap": 1.0}),
        ("k20-imb10", {"n_groups": 20, "imbalance": 10.0}),
        ("k40-noise", {"n_groups": 40, "noise": 0.4}),
        ("realistic", dict(realistic)),
        ("real-k20", {**realistic, "n_groups": 20}),
        ("real-items", {**realistic, "taste": "items"}),
        ("hardest", {"noise": 0.5, "overlap": 1.0, "imbalance": 10.0, **skew, "n_groups": 20, "popularity": 1.5,
                     "taste": "items", "mixed": 0.4}),
    ]
    return [(name, {"n_users": n_users, "n_items": n_items, "n_groups": kw.pop("n_groups", 8), "seed": seed, **kw})
            for name, kw in worlds]
