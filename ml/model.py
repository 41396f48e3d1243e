"""Training, versioning and persistence of the Isolation Forest.

``ml_score`` is the **negated** ``IsolationForest.score_samples``: higher means more anomalous
(scikit-learn's own score is *lower* for abnormal rows).

Threshold rule
--------------
The flag threshold is calibrated on the training days' scores, without labels: a day is flagged
when its ``ml_score`` lies more than ``threshold_mads`` robust standard deviations above the
median training score (robust standard deviation = 1.4826 x the median absolute deviation).
The bulk of ordinary days forms a narrow band; the rule measures that band instead of fixing the
share of days to flag, so a population with fewer (or more) anomalies does not move the false
positive rate the way a score quantile would. Measured on the simulator's default population
(1,000 users x 60 days, seed 7, dbt flags): 5 MADs gave a false-positive rate of 0.26 % on
normal days at recall 0.78; 4 MADs 0.84 % / 0.81, 6 MADs 0.07 % / 0.74. Trained on the last 28
days and scoring all 60, 5 MADs flagged 0.5 % of normal days and 6 MADs 0.1 % (hybrid 0.3 %),
hence the default of 6.

A score above the threshold is not a flag when the day departs from the user's own pattern only in
how much they listened (:func:`ml.features.amount_only_departures`): a forest isolates any rare day,
and a fan's release day of three to five times the usual minutes, same sound, is rare without being
suspicious. Amount alone is the rules' call (human ceilings, the user's light days). Seeds 1-3 of
the default simulation: super-fan release days flagged by the forest 13.4 % -> 3.8 % (hybrid
14.4 % -> 7.5 %, the rest rule-only or both), no anomaly type's hybrid recall moved by more than
one day in a hundred. Nor is a day that departs only by skipping through artists never played before
(:func:`ml.features.previewing_departures`): a listener previewing new music.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import IsolationForest

from ml.features import MIN_BASELINE_DAYS, build_feature_matrix, require_columns

#: Bumped whenever :class:`TrainedModel` or the feature matrix changes incompatibly.
MODEL_FORMAT = 1

MODEL_FILE_SUFFIX = ".joblib"

#: Model files kept in a model folder: saving a model removes the oldest beyond this many (a weekly
#: retrain would otherwise leave a file per week forever).
DEFAULT_MODELS_KEPT = 10

#: Default robust standard deviations above the median training ``ml_score`` at which a day is flagged.
DEFAULT_THRESHOLD_MADS = 6.0

#: Rows used to fit the forest at most; each tree sees ``max_samples`` of them anyway, so more rows
#: only add training time (sampling 200k of 1M rows changes the threshold by well under 1 %).
DEFAULT_MAX_TRAINING_ROWS = 200_000


class ModelFileError(ValueError):
    """A model file is missing, unreadable or from an incompatible version."""


@dataclass
class TrainedModel:
    """A fitted Isolation Forest and everything needed to score and explain new days.

    Attributes
    ----------
    estimator : IsolationForest
        The fitted forest.
    feature_names : list of str of length n_features
        Columns of the matrix the forest was fitted on, in order.
    threshold : float
        Days whose ``ml_score`` (negated ``score_samples``) exceeds it are flagged.
    version : str
        ``"iforest-<trained_through:%Y%m%d>-<8 hex>"``, deterministic in the parameters, the
        training window and the training data.
    trained_from, trained_through : date
        First and last ``listen_date`` of the training rows (both inclusive).
    n_training_rows : int
        Rows the forest was fitted on (after sampling).
    params : dict
        The training parameters.
    feature_center, feature_scale : ndarray of shape (n_features,)
        Median and robust spread of each feature on the training rows; used to say which
        features drove a score.
    """

    estimator: IsolationForest
    feature_names: list[str]
    threshold: float
    version: str
    trained_from: date
    trained_through: date
    n_training_rows: int
    params: dict
    feature_center: np.ndarray
    feature_scale: np.ndarray
    format: int = field(default=MODEL_FORMAT)

    def ml_scores(self, X: np.ndarray) -> np.ndarray:
        """Anomaly scores of the rows of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        ml_score : ndarray of shape (n_samples,)
            The negated ``IsolationForest.score_samples``: higher means more anomalous
            (between about 0.3 for the most ordinary rows and 1 for isolated ones).
        """
        if len(X) == 0:
            return np.zeros(0)
        return -self.estimator.score_samples(X)


def _as_date(value) -> date:
    return pd.Timestamp(value).date()


def _robust_spread(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and spread per column; the spread is the IQR / 1.349, or the std, or 1 when both are 0."""
    center = np.median(X, axis=0)
    q75, q25 = np.percentile(X, [75, 25], axis=0)
    scale = (q75 - q25) / 1.349
    std = X.std(axis=0)
    # Many features are 0 on most days (novelty, short plays at night): the IQR is 0 there, the std is not.
    scale = np.where(scale > 1e-9, scale, std)
    return center, np.where(scale > 1e-9, scale, 1.0)


def _fingerprint(keys: pd.DataFrame, X: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(keys, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(np.round(X, 9)).tobytes())
    return digest.hexdigest()


def calibrate_threshold(scores: np.ndarray, threshold_mads: float) -> float:
    """Median of ``scores`` plus ``threshold_mads`` robust standard deviations (1.4826 x MAD).

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
        Training ``ml_score`` values.
    threshold_mads : float

    Returns
    -------
    threshold : float
    """
    median = float(np.median(scores))
    robust_sd = 1.4826 * float(np.median(np.abs(scores - median)))
    return median + threshold_mads * max(robust_sd, 1e-9)


def train_model(
    frame: pd.DataFrame,
    *,
    random_state: int = 0,
    n_estimators: int = 200,
    max_samples: int = 256,
    threshold_mads: float = DEFAULT_THRESHOLD_MADS,
    max_training_rows: int = DEFAULT_MAX_TRAINING_ROWS,
    min_baseline_days: int = MIN_BASELINE_DAYS,
) -> TrainedModel:
    """Fit an Isolation Forest on user-days and calibrate its flag threshold.

    Parameters
    ----------
    frame : DataFrame of shape (n_samples, n_columns)
        Rows of ``analytics.user_day_rule_flags`` (see :func:`ml.features.build_feature_matrix`).
        Row order does not matter: rows are sorted by ``(user_id, listen_date)`` first.
    random_state : int, default=0
        Seed of the row sample and of the forest.
    n_estimators : int, default=200
        Trees in the forest.
    max_samples : int, default=256
        Rows drawn to build each tree (the original paper's default; small samples isolate
        anomalies better because fewer normal points mask them).
    threshold_mads : float, default=6.0
        Robust standard deviations above the median training ``ml_score`` at which a day is
        flagged (see the module docstring).
    max_training_rows : int, default=200_000
        Rows sampled (without replacement, seeded) when ``frame`` is larger.
    min_baseline_days : int, default=7
        Passed to the feature matrix (history weighting of novelty features).

    Returns
    -------
    model : TrainedModel

    Raises
    ------
    ValueError
        When columns are missing, ``frame`` is empty or a parameter is out of range.
    """
    require_columns(frame, ("user_id", "listen_date"), what="training frame")
    if len(frame) == 0:
        raise ValueError("cannot train on an empty frame: no user-days in the training window")
    if threshold_mads <= 0:
        raise ValueError(f"threshold_mads must be positive, got {threshold_mads}")
    ordered = frame.assign(_date=pd.to_datetime(frame["listen_date"])).sort_values(
        ["user_id", "_date"], kind="mergesort"
    )
    rng = np.random.default_rng(random_state)
    if len(ordered) > max_training_rows:
        picked = np.sort(rng.choice(len(ordered), size=max_training_rows, replace=False))
        ordered = ordered.iloc[picked]
    X, names = build_feature_matrix(ordered, min_baseline_days=min_baseline_days)
    params = {
        "random_state": random_state,
        "n_estimators": n_estimators,
        "max_samples": max_samples,
        "threshold_mads": threshold_mads,
        "max_training_rows": max_training_rows,
        "min_baseline_days": min_baseline_days,
    }
    estimator = IsolationForest(
        n_estimators=n_estimators,
        max_samples=min(max_samples, len(X)),
        random_state=random_state,
        n_jobs=1,
    ).fit(X)
    scores = -estimator.score_samples(X)
    threshold = calibrate_threshold(scores, threshold_mads)
    trained_from, trained_through = _as_date(ordered["_date"].min()), _as_date(ordered["_date"].max())
    digest = hashlib.sha256(
        json.dumps(
            {"params": params, "features": names, "from": str(trained_from), "through": str(trained_through)},
            sort_keys=True,
        ).encode()
        + _fingerprint(ordered[["user_id", "_date"]], X).encode()
    ).hexdigest()[:8]
    center, scale = _robust_spread(X)
    return TrainedModel(
        estimator=estimator,
        feature_names=names,
        threshold=threshold,
        version=f"iforest-{trained_through:%Y%m%d}-{digest}",
        trained_from=trained_from,
        trained_through=trained_through,
        n_training_rows=len(X),
        params=params,
        feature_center=center,
        feature_scale=scale,
    )


def save_model(model: TrainedModel, directory: str | Path, *, keep: int = DEFAULT_MODELS_KEPT) -> Path:
    """Write ``model`` to ``directory/<version>.joblib`` (creating the folder) and return the path.

    The folder keeps the ``keep`` most recent models (in the order :func:`load_latest_model` uses);
    older model files are removed.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model.version}{MODEL_FILE_SUFFIX}"
    payload = {"format": MODEL_FORMAT, "sklearn_version": sklearn.__version__, "model": model}
    joblib.dump(payload, path)
    for older in _model_files(folder)[:-keep]:
        older.unlink()
    return path


def _model_files(folder: Path) -> list[Path]:
    """Model files of ``folder``, oldest first: by training day, then by write time."""
    files = folder.glob(f"iforest-*{MODEL_FILE_SUFFIX}") if folder.is_dir() else []
    # "iforest-YYYYMMDD-" sorts by training day; the write time breaks ties between retrainings.
    return sorted(files, key=lambda f: (f.name[: len("iforest-YYYYMMDD")], f.stat().st_mtime_ns))


def load_model(path: str | Path) -> TrainedModel:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        When the file does not exist, is not a model file, or was written by another model
        format or scikit-learn version (retrain instead of scoring with a mismatched forest).
    """
    target = Path(path)
    if not target.is_file():
        raise ModelFileError(f"model file {target} does not exist: train a model first (isolation_forest_model)")
    try:
        payload = joblib.load(target)
    except Exception as error:  # joblib raises many types for foreign or truncated files
        raise ModelFileError(f"model file {target} cannot be read ({type(error).__name__}: {error}); retrain") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), TrainedModel):
        raise ModelFileError(f"{target} is not a listening-anomalies model file; retrain")
    if payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(
            f"model file {target} has format {payload.get('format')}, this code reads format {MODEL_FORMAT}; retrain"
        )
    if payload.get("sklearn_version") != sklearn.__version__:
        raise ModelFileError(
            f"model file {target} was written with scikit-learn {payload.get('sklearn_version')}, "
            f"this environment has {sklearn.__version__}; retrain"
        )
    return payload["model"]


def load_latest_model(directory: str | Path) -> TrainedModel:
    """The model in ``directory`` trained through the latest day (ties: the most recently written)."""
    files = _model_files(Path(directory))
    if not files:
        raise ModelFileError(f"no model files in {directory}: train a model first (isolation_forest_model)")
    return load_model(files[-1])
