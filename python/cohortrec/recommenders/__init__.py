"""Recommenders with implicit-compatible call conventions.

``fit(user_items)`` on a users x items CSR matrix, then
``recommend(userid, user_items, N=10, filter_already_liked_items=True,
filter_items=None, recalculate_user=False, items=None)``,
``similar_users``, ``similar_items``, ``save``/``load`` (``.npz``, no
pickle). A user of :mod:`implicit` can switch by changing an import.

* :class:`Popularity` -- most popular items.
* :class:`UserKNN` -- cosine user-user neighbours.
* :class:`ItemKNN` -- cosine or BM25-weighted item-item neighbours.
* :class:`EASE` -- Steck (2019) closed-form linear item-item model.
* :class:`RP3beta` -- Paudel et al. (2016) random-walk item-item model with a
  popularity penalty.
* :class:`ALS` -- implicit-feedback matrix factorisation (Hu et al. 2008)
  by alternating least squares with a native conjugate-gradient solver.
* :class:`Blend` -- weighted ensemble of any recommenders (rank- or
  score-normalised), weights chosen on a validation split.
* :class:`GroupRecommender` -- group-aware CF: neighbours searched inside the
  user's group blended with soft group preference profiles.
"""

from __future__ import annotations

from cohortrec.recommenders._als import ALS
from cohortrec.recommenders._base import (
    NotFittedError,
    RecommenderBase,
    RecommenderWarning,
    load_model,
)
from cohortrec.recommenders._blend import Blend
from cohortrec.recommenders._ease import EASE
from cohortrec.recommenders._group import GroupRecommender
from cohortrec.recommenders._knn import ItemKNN, UserKNN
from cohortrec.recommenders._popularity import Popularity
from cohortrec.recommenders._rp3beta import RP3beta

__all__ = [
    "ALS",
    "Blend",
    "EASE",
    "GroupRecommender",
    "ItemKNN",
    "NotFittedError",
    "Popularity",
    "RP3beta",
    "RecommenderBase",
    "RecommenderWarning",
    "UserKNN",
    "load_model",
]
