"""Offline evaluation: train/test splits, top-k ranking metrics, ``evaluate``.

* Splits: :func:`random_holdout` (per-user random), :func:`leave_last_out`
  (per-user temporal), :func:`user_holdout` (held-out users / strong
  generalisation with fold-in).
* Metrics (full ranking, training items excluded): precision, recall,
  recall_capped, NDCG, MAP, hit rate, catalogue coverage, mean popularity
  of the recommended items -- :func:`ranking_metrics`.
* :func:`evaluate` runs a fitted model (cohortrec or implicit) over all test
  users in batches and returns a tidy :class:`pandas.DataFrame`;
  :func:`evaluate_by_group` breaks the metrics down per user group.
"""

from __future__ import annotations

from cohortrec.evaluation._evaluate import evaluate, evaluate_by_group
from cohortrec.evaluation._metrics import (
    METRICS,
    hits_matrix,
    per_user_metrics,
    ranking_metrics,
)
from cohortrec.evaluation._splits import (
    UserHoldout,
    leave_last_out,
    random_holdout,
    user_holdout,
)

__all__ = [
    "METRICS",
    "UserHoldout",
    "evaluate",
    "evaluate_by_group",
    "hits_matrix",
    "leave_last_out",
    "per_user_metrics",
    "random_holdout",
    "ranking_metrics",
    "user_holdout",
]
