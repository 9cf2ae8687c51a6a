"""The package's exception types that build on scikit-learn's (estimator floor and up).

Kept apart from :mod:`cohortrec._validation` so that ``import cohortrec`` and
the ops do not import scikit-learn (about a second of start-up).
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = ["NotFittedError", "check_fitted"]


class NotFittedError(_SklearnNotFittedError):
    """A model or estimator was used before ``fit``.

    The one such error of the package: every estimator, recommender and
    :class:`~cohortrec.GroupDiscovery` raises it. A subclass of
    :class:`sklearn.exceptions.NotFittedError` (itself a ``ValueError`` and
    an ``AttributeError``), so scikit-learn's tools and ``except`` clauses
    recognise it.
    """


def check_fitted(estimator: object, attributes: str | tuple[str, ...], action: str = "using it") -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has every fitted attribute in ``attributes``.

    The message names the class and what was attempted, e.g. "This
    GroupDiscovery instance is not fitted yet: call fit(...) before assign".
    """
    names = (attributes,) if isinstance(attributes, str) else attributes
    if not all(getattr(estimator, a, None) is not None for a in names):
        raise NotFittedError(f"This {type(estimator).__name__} instance is not fitted yet: call fit(...) before "
                             f"{action}")
