"""``make_shop``: a synthetic e-commerce event log with planted user groups.

The generator is the default data of every example and of the CLI, and the
ground truth of the discovery-quality tests. Each planted group has

* a taste over item categories (two or three core categories, with a
  little mass on the rest; no two groups share the same core set),
* a preferred price tier (bargain, mainstream or premium shoppers),
* a liking for its own subset of items inside its categories,
* its own activity level, cart and purchase rates and dwell times, and
* a skewed distribution of user features (age band, country, device).

Every user browses items (``view`` events with a dwell time); some views go
on to ``cart`` and then ``purchase`` (with a quantity). A share ``noise`` of
views ignore the group and follow global popularity, and activity is heavy
tailed, so some users have only a handful of events. Items have a category,
a price tier and price, and a short generated title and description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from cohortrec.interactions import Interactions
from cohortrec.preprocessing import DEFAULT_EVENT_WEIGHTS

__all__ = ["ShopData", "make_shop"]

_CATEGORIES: dict[str, list[str]] = {
    "electronics": ["headphones", "charger", "speaker", "cable", "tablet", "smartwatch", "earbuds", "keyboard"],
    "books": ["novel", "cookbook", "biography", "atlas", "anthology", "thriller", "memoir", "comic"],
    "toys": ["puzzle", "doll", "blocks", "robot kit", "plush bear", "train set", "kite", "yo-yo"],
    "beauty": ["lipstick", "serum", "face cream", "mascara", "perfume", "nail polish", "cleanser", "toner"],
    "sports": ["yoga mat", "dumbbells", "tennis racket", "football", "jump rope", "resistance band", "gym bag",
               "water bottle"],
    "garden": ["hose", "shovel", "planter", "seeds", "pruner", "watering can", "compost bin", "garden gloves"],
    "kitchen": ["skillet", "knife set", "blender", "kettle", "cutting board", "saucepan", "coffee grinder",
                "mixing bowl"],
    "fashion": ["jacket", "scarf", "dress", "jeans", "t-shirt", "sweater", "belt", "hat"],
    "pets": ["dog leash", "cat tree", "pet bed", "chew toy", "aquarium", "bird feeder", "litter box",
             "pet shampoo"],
    "music": ["guitar strings", "vinyl record", "ukulele", "drumsticks", "microphone", "metronome", "capo",
              "sheet music"],
    "gaming": ["controller", "gaming mouse", "gaming headset", "console", "game card", "joystick", "mouse pad",
               "racing wheel"],
    "baby": ["stroller", "diapers", "baby monitor", "baby bottle", "crib sheet", "teether", "car seat", "bib"],
    "outdoor": ["tent", "sleeping bag", "backpack", "headlamp", "camping stove", "hiking poles", "compass",
                "hammock"],
    "office": ["notebook", "stapler", "desk lamp", "fountain pen", "planner", "file folder", "desk chair",
               "whiteboard"],
    "health": ["vitamins", "thermometer", "first aid kit", "massage gun", "protein powder", "pill organizer",
               "heating pad", "bathroom scale"],
    "automotive": ["dash cam", "tire gauge", "seat cover", "wiper blades", "car wax", "jump starter",
                   "floor mats", "car charger"],
    "jewelry": ["necklace", "earrings", "bracelet", "ring", "pendant", "brooch", "anklet", "cufflinks"],
    "shoes": ["sneakers", "boots", "sandals", "loafers", "running shoes", "slippers", "heels", "hiking boots"],
    "crafts": ["yarn", "paint set", "sketchbook", "glue gun", "sewing kit", "beads", "canvas",
               "embroidery hoop"],
    "travel": ["suitcase", "travel pillow", "packing cubes", "passport holder", "luggage tag",
               "travel adapter", "duffel bag", "toiletry bag"],
    "grocery": ["coffee beans", "green tea", "olive oil", "dark chocolate", "pasta", "honey", "granola",
                "spice mix"],
    "home decor": ["candle", "throw pillow", "wall art", "vase", "rug", "mirror", "curtains", "photo frame"],
    "cycling": ["bike helmet", "bike lights", "bike lock", "cycling gloves", "saddle", "bike pump",
                "bottle cage", "cycling jersey"],
    "photography": ["tripod", "camera bag", "lens", "memory card", "flash", "camera strap", "lens filter",
                    "ring light"],
}
_TIERS = ("budget", "standard", "premium")
_TIER_ADJ = {
    "budget": ["basic", "value", "everyday", "compact", "simple"],
    "standard": ["smart", "modern", "sturdy", "classic", "popular"],
    "premium": ["premium", "luxury", "professional", "handcrafted", "signature"],
}
_TIER_PRICE = np.array([0.55, 1.0, 2.6])
_BRANDS = ["Norda", "Velto", "Kimba", "Ardent", "Lumo", "Brisk", "Oakline", "Zephyr", "Corvo", "Halden",
           "Miravo", "Pellet", "Quanta", "Rook", "Sable", "Tundra", "Umbra", "Vesper", "Wren", "Yarrow"]
_STYLES = {  # price-tier preference of the group archetypes
    "bargain": np.array([0.72, 0.23, 0.05]),
    "mainstream": np.array([0.25, 0.55, 0.20]),
    "premium": np.array([0.07, 0.28, 0.65]),
}
_AGES = ["18-24", "25-34", "35-44", "45-54", "55+"]
_COUNTRIES = ["UK", "DE", "FR", "ES", "IT", "NL", "PL", "SE"]
_DEVICES = ["mobile", "desktop", "tablet"]


@dataclass
class ShopData:
    """What :func:`make_shop` returns (unpacks as ``interactions, labels``).

    Attributes
    ----------
    interactions : Interactions
        Cleaned events, the user x item matrix (event-type weighted:
        view 1, cart 3, purchase 5), item side data and user features.
    labels : ndarray of int64, shape (n_users,)
        Planted group of every user, in the row order of ``interactions``.
    events : pandas.DataFrame
        The raw event log (``user_id, item_id, timestamp, event, dwell,
        quantity, price``), before cleaning.
    items : pandas.DataFrame
        ``item_id, title, description, categories, tier, price``.
    users : pandas.DataFrame
        ``user_id, age_band, country, device`` (no group column).
    groups : pandas.DataFrame
        The planted groups: share, core categories, price style, rates.
    view_probs : ndarray of float64, shape (n_groups + 1, n_items), or None
        :func:`~cohortrec.datasets.make_world` only: the generator's own
        distribution of the item of one view, for each group's taste (rows
        ``0 .. n_groups - 1``) and for a noise view (the last row: global
        popularity), columns in the item order of ``interactions``. With the
        world's ``noise`` and ``mixed`` it gives every user's exact posterior
        over the groups: the Bayes-optimal assignment, which no method that
        sees the events can beat on average. ``None`` from
        :func:`~cohortrec.datasets.make_shop`.
    """

    interactions: Interactions
    labels: np.ndarray
    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    groups: pd.DataFrame
    view_probs: np.ndarray | None = None

    def __iter__(self) -> Iterator[object]:
        yield self.interactions
        yield self.labels


def _category_names(n: int, rng: np.random.RandomState) -> tuple[list[str], list[list[str]]]:
    names = list(_CATEGORIES)[:n]
    nouns = [list(_CATEGORIES[c]) for c in names]
    syll = ["ka", "lo", "mi", "ter", "van", "so", "ri", "pel", "dun", "ax", "or", "bel"]
    for j in range(len(names), n):
        names.append(f"category {j}")
        nouns.append(["".join(rng.choice(syll, 3)) for _ in range(8)])
    return names, nouns


def make_shop(
    n_users: int = 10_000,
    n_items: int = 2_000,
    n_groups: int = 8,
    seed: int | np.random.RandomState | None = 0,
    *,
    n_categories: int | None = None,
    mean_events: float = 30.0,
    min_events: int = 5,
    noise: float = 0.25,
    group_balance: float = 4.0,
    days: int = 90,
    start: str = "2024-01-01",
    dirty: bool = False,
    event_weights: Mapping[str, float] | None = None,
) -> ShopData:
    """Synthetic e-commerce events with planted user groups.

    Parameters
    ----------
    n_users, n_items : int
    n_groups : int
        Planted groups (``>= 1``).
    seed : int, RandomState or None
    n_categories : int, optional
        Item categories; default ``max(8, 2 * n_groups)`` capped at 24 named
        categories (more get generated names).
    mean_events : float, default 30
        Mean number of browsing sessions (views) per user; counts are
        log-normal (heavy tailed) and scaled by the group's activity level.
    min_events : int, default 5
        Fewest views a user has (use 1 to include cold-start users).
    noise : float in [0, 1], default 0.25
        Share of views that ignore the user's group and follow global
        popularity.
    group_balance : float, default 4
        Dirichlet concentration of the group sizes (large = equal sizes).
    days : int, default 90
        Length of the event log.
    start : str
        First day of the log.
    dirty : bool, default False
        Add the defects real logs have, for the cleaning steps to remove:
        duplicated events (1%), events without a user id (0.5%), negative
        quantities (returns, 0.3% of purchases), negative and missing dwell
        times.
    event_weights : mapping, optional
        Matrix weight per event type; default view 1, cart 3, purchase 5.

    Returns
    -------
    ShopData
        Unpacks as ``interactions, labels``.

    Examples
    --------
    >>> from cohortrec.datasets import make_shop
    >>> X, y = make_shop(n_users=500, n_items=200, n_groups=4, seed=1)
    >>> X.shape[0] == len(y) == 500
    True
    """
    for name, v, lo in (("n_users", n_users, 1), ("n_items", n_items, 1), ("n_groups", n_groups, 1),
                        ("min_events", min_events, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"noise must lie in [0, 1], got {noise!r}")
    if not float(mean_events) > 0:
        raise ValueError(f"mean_events must be > 0, got {mean_events!r}")
    if not float(group_balance) > 0:
        raise ValueError(f"group_balance must be > 0, got {group_balance!r}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days!r}")
    rng = check_random_state(seed)
    n_cat = max(8, 2 * n_groups) if n_categories is None else int(n_categories)
    if n_categories is None:
        n_cat = min(n_cat, len(_CATEGORIES)) if n_groups <= 12 else n_cat
    if n_cat < 2:
        raise ValueError(f"n_categories must be >= 2, got {n_categories!r}")
    cat_names, cat_nouns = _category_names(n_cat, rng)

    # ------------------------------------------------------------- items
    item_cat = rng.randint(n_cat, size=n_items)
    item_cat[: min(n_cat, n_items)] = np.arange(min(n_cat, n_items))  # every category used
    rng.shuffle(item_cat)
    item_tier = rng.choice(3, size=n_items, p=[0.4, 0.4, 0.2])
    cat_base = np.exp(rng.uniform(np.log(6), np.log(150), size=n_cat))
    price = np.round(cat_base[item_cat] * _TIER_PRICE[item_tier] * rng.lognormal(0, 0.25, n_items), 2) + 0.99
    pop = np.empty(n_items)
    for c in range(n_cat):
        idx = np.flatnonzero(item_cat == c)
        pop[idx] = 1.0 / (rng.permutation(idx.size) + 3.0) ** 0.8
    noun_idx = rng.randint(8, size=n_items)
    adj_idx = rng.randint(5, size=n_items)
    brand = rng.randint(len(_BRANDS), size=n_items)
    titles, descs = [], []
    for j in range(n_items):
        tier = _TIERS[item_tier[j]]
        noun = cat_nouns[item_cat[j]][noun_idx[j]]
        adj = _TIER_ADJ[tier][adj_idx[j]]
        adj2 = _TIER_ADJ[tier][(adj_idx[j] + 2) % 5]
        titles.append(f"{_BRANDS[brand[j]]} {adj} {noun}")
        descs.append(f"A {adj2} {noun} for {cat_names[item_cat[j]]}, {tier} range.")
    item_ids = np.array([f"i{j:06d}" for j in range(n_items)])
    items = pd.DataFrame({
        "item_id": item_ids, "title": titles, "description": descs,
        "categories": [cat_names[c] for c in item_cat], "tier": [_TIERS[t] for t in item_tier],
        "price": price,
    })

    # ------------------------------------------------------------- groups
    core_sets: list[tuple[int, ...]] = []
    tries = 0
    while len(core_sets) < n_groups:
        size = 2 if rng.rand() < 0.6 else 3
        s = tuple(sorted(rng.choice(n_cat, size=min(size, n_cat), replace=False)))
        tries += 1
        if s not in core_sets or tries > 1000:
            core_sets.append(s)
    styles = list(_STYLES)
    g_style = [styles[g % 3] for g in rng.permutation(n_groups)]
    cat_pref = np.full((n_groups, n_cat), 0.12 / n_cat)
    for g, s in enumerate(core_sets):
        cat_pref[g, list(s)] += 0.88 * rng.dirichlet(np.full(len(s), 4.0))
    activity = rng.lognormal(0, 0.35, n_groups)
    cart_rate = rng.uniform(0.05, 0.35, n_groups)
    buy_rate = rng.uniform(0.2, 0.7, n_groups)
    dwell_mean = rng.uniform(15, 120, n_groups)
    shares = rng.dirichlet(np.full(n_groups, float(group_balance)))
    shares = np.maximum(shares, 0.25 / n_groups)
    shares /= shares.sum()
    taste = np.where(rng.rand(n_groups, n_items) < 0.3, 4.0, 1.0)  # each group's favourite items
    # P(item | group): category taste x popularity x tier preference x own favourites
    P = np.empty((n_groups, n_items))
    for g in range(n_groups):
        w = pop * _STYLES[g_style[g]][item_tier] * taste[g]
        tot = np.bincount(item_cat, weights=w, minlength=n_cat)
        P[g] = cat_pref[g, item_cat] * w / tot[item_cat]
        P[g] /= P[g].sum()
    p_pop = pop / pop.sum()

    # ------------------------------------------------------------- users
    labels = rng.choice(n_groups, size=n_users, p=shares)
    sigma = 0.8
    n_view = rng.lognormal(np.log(mean_events) - sigma**2 / 2, sigma, n_users) * activity[labels]
    n_view = np.clip(np.round(n_view), min_events, max(min_events, 25 * mean_events)).astype(np.int64)
    user_ids = np.array([f"u{u:07d}" for u in range(n_users)])
    ages = np.empty(n_users, dtype=object)
    countries = np.empty(n_users, dtype=object)
    devices = np.empty(n_users, dtype=object)
    for g in range(n_groups):
        m = labels == g
        ages[m] = rng.choice(_AGES, size=m.sum(), p=rng.dirichlet(np.full(len(_AGES), 0.8)))
        countries[m] = rng.choice(_COUNTRIES, size=m.sum(), p=rng.dirichlet(np.full(len(_COUNTRIES), 2.0)))
        devices[m] = rng.choice(_DEVICES, size=m.sum(), p=rng.dirichlet(np.full(3, 2.0)))
    users = pd.DataFrame({"user_id": user_ids, "age_band": ages, "country": countries, "device": devices})

    # ------------------------------------------------------------- views
    v_user = np.repeat(np.arange(n_users), n_view)
    v_group = labels[v_user]
    v_item = np.empty(v_user.size, dtype=np.int64)
    explore = rng.rand(v_user.size) < noise
    for g in range(n_groups):
        sel = np.flatnonzero((v_group == g) & ~explore)
        v_item[sel] = rng.choice(n_items, size=sel.size, p=P[g])
    sel = np.flatnonzero(explore)
    v_item[sel] = rng.choice(n_items, size=sel.size, p=p_pop)
    t0 = pd.Timestamp(start).value // 10**9
    span = days * 86400.0
    u_start = rng.uniform(0, span * 0.6, n_users)
    u_len = np.minimum(span - u_start, rng.uniform(0.2, 1.0, n_users) * span)
    v_time = u_start[v_user] + rng.rand(v_user.size) * u_len[v_user]
    v_dwell = np.round(rng.lognormal(np.log(dwell_mean[v_group]), 0.6), 1)
    # cart / purchase funnel
    c_mask = rng.rand(v_user.size) < cart_rate[v_group]
    c_idx = np.flatnonzero(c_mask)
    c_time = v_time[c_idx] + rng.exponential(300.0, c_idx.size)
    b_mask = rng.rand(c_idx.size) < buy_rate[v_group[c_idx]]
    b_idx = c_idx[b_mask]
    b_time = c_time[b_mask] + rng.exponential(900.0, b_idx.size)
    qty = 1 + rng.poisson(0.3, b_idx.size)

    ev_user = np.concatenate([v_user, v_user[c_idx], v_user[b_idx]])
    ev_item = np.concatenate([v_item, v_item[c_idx], v_item[b_idx]])
    ev_time = np.concatenate([v_time, c_time, b_time])
    ev_type = np.concatenate([np.zeros(v_user.size, np.int8), np.ones(c_idx.size, np.int8),
                              np.full(b_idx.size, 2, np.int8)])
    ev_dwell = np.concatenate([v_dwell, np.full(c_idx.size + b_idx.size, np.nan)])
    ev_qty = np.concatenate([np.full(v_user.size, np.nan), np.ones(c_idx.size), qty.astype(float)])
    ev_price = np.round(price[ev_item] * rng.lognormal(0, 0.03, ev_item.size), 2)
    ev_time = np.minimum(ev_time, span - 1)
    order = np.lexsort((ev_time, ev_user))
    events = pd.DataFrame({
        "user_id": user_ids[ev_user[order]],
        "item_id": item_ids[ev_item[order]],
        "timestamp": pd.to_datetime((t0 + ev_time[order]).astype(np.int64), unit="s"),
        "event": pd.Categorical.from_codes(ev_type[order], ["view", "cart", "purchase"]),
        "dwell": ev_dwell[order],
        "quantity": ev_qty[order],
        "price": ev_price[order],
    })
    if dirty:
        events = _make_dirty(events, rng)

    inter = Interactions.from_frame(
        events, user="user_id", item="item_id", time="timestamp", event="event", dwell="dwell",
        quantity="quantity", price="price",
        event_weights=DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights,
        users=users.set_index("user_id"), items=items.set_index("item_id"),
    )
    lab = pd.Series(labels, index=user_ids).reindex(inter.user_ids).to_numpy(np.int64)
    groups = pd.DataFrame({
        "group": np.arange(n_groups),
        "share": shares,
        "core_categories": [", ".join(cat_names[c] for c in s) for s in core_sets],
        "style": g_style,
        "activity": activity,
        "cart_rate": cart_rate,
        "purchase_rate": buy_rate,
        "dwell_mean": dwell_mean,
    })
    return ShopData(inter, lab, events, items, users, groups)


def _make_dirty(events: pd.DataFrame, rng: np.random.RandomState) -> pd.DataFrame:
    n = len(events)
    dup = events.iloc[rng.choice(n, size=max(1, n // 100), replace=False)]
    out = pd.concat([events, dup], ignore_index=True)
    out["user_id"] = out["user_id"].astype(object)
    miss = rng.choice(len(out), size=max(1, len(out) // 200), replace=False)
    out.loc[miss, "user_id"] = None
    buys = np.flatnonzero((out["event"] == "purchase").to_numpy())
    if buys.size:
        ret = rng.choice(buys, size=max(1, buys.size * 3 // 1000), replace=False)
        out.loc[ret, "quantity"] = -out.loc[ret, "quantity"]
    views = np.flatnonzero((out["event"] == "view").to_numpy())
    bad = rng.choice(views, size=max(1, views.size // 500), replace=False)
    out.loc[bad[: bad.size // 2], "dwell"] = -1.0
    out.loc[bad[bad.size // 2:], "dwell"] = np.nan
    return out.sort_values(["timestamp"], kind="stable").reset_index(drop=True)
