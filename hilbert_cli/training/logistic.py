"""The one logistic regression of the baselines (training/baselines.py, segment_linear.py):
class-weighted, so a rare class counts as a common one, as the model's class-weighted CE does."""

from __future__ import annotations

__all__ = ["logistic", "standardized_logistic"]


def logistic(c: float, **kw):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000, **kw)


def standardized_logistic(c: float):
    """StandardScaler -> logistic(c): features standardised on the data it is fitted on."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), logistic(c))
