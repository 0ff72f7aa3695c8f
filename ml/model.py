"""The classifier: contract encoding, the gradient-boosted booster, prevalence adjustment.

The model learns only from the observed contract columns of generated cohorts. It never reads
the knowledge base's likelihoods or the oracle to predict: the oracle is the yardstick it is
measured against, and a model built on it would measure nothing. One guard asks the knowledge
base: with a prevalence that sets some classes to 0, a patient whose findings only those
classes allow is refused (:class:`data_gen.PrevalenceError`), as the oracle refuses it, rather
than renormalized into a confident answer for a class the findings rule out.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from data_gen import LABEL, load_knowledge, oracle_log_likelihood, validate_frame
from data_gen.contract_fast import column_arrays, numbers_into
from data_gen.oracle import check_prevalence_fits
from data_gen.knowledge import Knowledge
from data_gen.sampler import resolve_prevalence

from .artifacts import export_skops, save_model
from .config import config_dict
from .fastpath import MAX_ROWS, CompiledForest

__all__ = ["CalcificationModel", "train", "Encoder"]


class Encoder:
    """Turns contract frames into the booster's float matrix (NaN kept as NaN).

    ``sex`` becomes one column (male = 1), ``zone`` one indicator per level; every other
    column passes through. ``sources[i]`` names the contract column of feature ``i``, so that
    attributions can be summed back to the contract's names.
    """

    def __init__(self, knowledge: Knowledge):
        self.columns = tuple(knowledge.column_names)
        self.levels = {c: knowledge.columns[c].levels for c in self.columns if knowledge.columns[c].kind == "categorical"}
        names, sources = [], []
        for c in self.columns:
            lv = self.levels.get(c)
            if lv is None:
                names.append(c)
                sources.append(c)
            elif len(lv) == 2:
                names.append(f"{c}={lv[1]}")
                sources.append(c)
            else:
                for level in lv:
                    names.append(f"{c}={level}")
                    sources.append(c)
        self.feature_names = tuple(names)
        self.sources = tuple(sources)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Encode a validated (canonical) frame: (patients, features) float64, NaN = not recorded.

        Every binary and continuous column is read in one ``to_numpy`` call and each categorical
        one from its codes, so the cost barely depends on the number of columns (one patient
        encodes in tens of microseconds).
        """
        numeric, numeric_pos, categorical = self._plan()
        X = np.empty((len(df), len(self.feature_names)), dtype=np.float64)
        arrays = dict(zip(df.columns, column_arrays(df)))  # the block manager's arrays: no Series per column
        col = np.empty(len(df))
        for c, j in zip(numeric, numeric_pos):
            if numbers_into(arrays[c], col, bool_ok=True):
                X[:, j] = col
            else:  # any other dtype: the public route
                X[:, j] = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
        for c, start, n_levels in categorical:
            a = arrays[c]
            codes = a.codes if isinstance(a, pd.Categorical) else df[c].cat.codes.to_numpy()
            na = codes < 0
            if n_levels == 2:
                X[:, start] = np.where(na, np.nan, codes == 1)
            else:
                X[:, start : start + n_levels] = np.where(na[:, None], np.nan, codes[:, None] == np.arange(n_levels))
        return X

    def _plan(self):
        # computed on first use rather than in __init__, so encoders pickled before it existed work
        plan = self.__dict__.get("_plan_cache")
        if plan is None:
            numeric, numeric_pos, categorical, j = [], [], [], 0
            for c in self.columns:
                lv = self.levels.get(c)
                if lv is None:
                    numeric.append(c)
                    numeric_pos.append(j)
                    j += 1
                else:
                    width = 1 if len(lv) == 2 else len(lv)
                    categorical.append((c, j, len(lv)))
                    j += width
            plan = self.__dict__["_plan_cache"] = (numeric, np.asarray(numeric_pos, dtype=np.intp), tuple(categorical))
        return plan

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_plan_cache", None)
        return state

    def source_matrix(self) -> np.ndarray:
        """(features, contract columns) 0/1 matrix that sums feature attributions per column."""
        M = np.zeros((len(self.feature_names), len(self.columns)))
        pos = {c: i for i, c in enumerate(self.columns)}
        for i, s in enumerate(self.sources):
            M[i, pos[s]] = 1.0
        return M


class CalcificationModel:
    """A trained classifier of the five calcification types.

    Attributes
    ----------
    classes_ : tuple of str
        Class order of every probability output.
    booster : sklearn.ensemble.HistGradientBoostingClassifier
    encoder : Encoder
    train_prevalence : dict
        Class shares of the training cohort (the prior the booster learned).
    metadata : dict
        Provenance: versions, knowledge-base hash, seed, size, config, metrics.
    """

    def __init__(self, booster, encoder: Encoder, classes, train_prevalence, metadata, knowledge_path=None):
        self.booster = booster
        self.encoder = encoder
        self.classes_ = tuple(classes)
        self.train_prevalence = dict(train_prevalence)
        self.metadata = dict(metadata)
        self._knowledge_path = knowledge_path

    # ---- input -------------------------------------------------------------------------
    @property
    def knowledge(self) -> Knowledge:
        return load_knowledge(self._knowledge_path)

    def check(self, df: pd.DataFrame, *, id_column: str | None = None) -> pd.DataFrame:
        """Validate patients against the contract (the label column is allowed and ignored)."""
        return validate_frame(df, knowledge=self.knowledge, id_column=id_column)

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        return self.encoder.transform(self.check(df))

    # ---- prediction --------------------------------------------------------------------
    def decision_function(self, df: pd.DataFrame) -> np.ndarray:
        """Raw per-class scores (log-odds up to a per-row constant) of the booster."""
        return self.booster.decision_function(self.encode(df))

    def predict_proba(self, df: pd.DataFrame, *, prevalence: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Posterior class probabilities, one column per class, rows summing to 1.

        Parameters
        ----------
        df : pandas.DataFrame
            Patients in the input contract; checked before anything else.
        prevalence : mapping class -> share, optional
            Class mix of the setting the patients come from. The booster's posterior is
            re-weighted by prevalence / training prevalence (prior-shift correction), which is
            exact when only the class mix differs between training and use.
        """
        checked = self.check(df)
        return self._proba_checked(checked, prevalence)

    def _proba_checked(self, checked: pd.DataFrame, prevalence=None) -> pd.DataFrame:
        p = self._booster_proba(self.encoder.transform(checked))
        if prevalence is not None:
            kb = self.knowledge
            new = resolve_prevalence(prevalence, kb)
            if (new <= 0).any():
                ll = oracle_log_likelihood(checked, knowledge=kb).to_numpy()
                check_prevalence_fits(ll, new, checked.index, kb)
            p = adjust_prevalence(p, self._prior(), new)
        return pd.DataFrame(p, index=checked.index, columns=list(self.classes_))

    def _booster_proba(self, X: np.ndarray) -> np.ndarray:
        """The booster's probabilities; a few rows take the flat-tree walk (:mod:`ml.fastpath`), bit-identical."""
        if len(X) <= MAX_ROWS:
            forest = self.__dict__.get("_forest", False)
            if forest is False:
                forest = self.__dict__["_forest"] = CompiledForest.from_booster(self.booster)
            if forest is not None:
                return forest.predict_proba(X)
        return self.booster.predict_proba(X)

    def predict(self, df: pd.DataFrame, *, prevalence=None) -> pd.Series:
        """The most probable class of each patient."""
        return most_probable(self.predict_proba(df, prevalence=prevalence))

    def _prior(self) -> np.ndarray:
        return np.array([self.train_prevalence[k] for k in self.classes_])

    # ---- persistence -------------------------------------------------------------------
    def __getstate__(self) -> dict:
        # where a model was loaded from is not part of the model: a copy saved elsewhere must not carry it
        state = dict(self.__dict__)
        state.pop("_artifact", None)
        state.pop("_forest", None)  # rebuilt from the booster on first use
        return state

    @property
    def artifact(self) -> dict | None:
        """``{"path", "sha256"}`` of the file this model was loaded from; None for a model trained in this process."""
        return getattr(self, "_artifact", None)

    def save(self, path) -> "Path":  # noqa: F821 - documented in artifacts
        """Write the model with joblib, and its SHA-256 beside it (see :mod:`ml.artifacts`)."""
        return save_model(self, path)

    def export_skops(self, path) -> "Path":  # noqa: F821
        """Write the model without pickle (skops; needs ``pulmocalc[skops]``), see :func:`ml.artifacts.load_skops`."""
        return export_skops(self, path)

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"CalcificationModel(iterations={self.booster.n_iter_}, trees={self.n_trees}, "
            f"trained_on={m.get('train_n')} patients, seed={m.get('train_seed')})"
        )

    @property
    def n_trees(self) -> int:
        return int(self.booster.n_iter_ * len(self.classes_))


class _IterationLog(io.TextIOBase):
    """Reads HistGradientBoosting's verbose log ("[12/200] 5 trees, ... val loss: 0.41, in 0.1s"; verbose=2
    from scikit-learn 1.6, 1 before, and 2 works for both)
    and reports each iteration to ``progress(done, total, label)``."""

    _LINE = re.compile(r"^\[(\d+)/(\d+)\](?:.*?(val [\w ]+: [-\d.]+))?")

    def __init__(self, progress, echo=None):
        self.progress, self.echo, self.pending = progress, echo, ""
        self.stdout = sys.stdout  # the caller's stdout: what the callback itself prints goes there

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.echo is not None:
            self.echo.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            m = self._LINE.match(line.strip())
            if m:
                with contextlib.redirect_stdout(self.stdout):
                    self.progress(int(m.group(1)), int(m.group(2)), m.group(3) or "")
        return len(text)


def most_probable(proba: pd.DataFrame) -> pd.Series:
    """The most probable class of each row of a probability frame (one column per class)."""
    classes = list(proba.columns)
    return pd.Series(
        pd.Categorical(np.asarray(classes)[proba.to_numpy().argmax(axis=1)], categories=classes),
        index=proba.index,
        name="predicted_type",
    )


def adjust_prevalence(p: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Prior-shift correction: p_new(k|x) ∝ p(k|x) · new_k / old_k."""
    w = np.divide(new, old, out=np.zeros_like(new, dtype=float), where=old > 0)
    q = p * w[None, :]
    return q / q.sum(axis=1, keepdims=True)


def train(
    cohort: pd.DataFrame,
    *,
    random_state: int = 0,
    knowledge=None,
    verbose: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    **params,
) -> CalcificationModel:
    """Train the classifier on a labelled cohort.

    Parameters
    ----------
    cohort : pandas.DataFrame
        Contract columns plus ``calcification_type``; typically from
        :func:`data_gen.generate_cohort`. Other columns (e.g. latent subtypes) are refused, so
        that the model cannot learn from anything but observed findings.
    random_state : int
        Seeds the booster's validation split; training is deterministic for a seed.
    knowledge : Knowledge or path, optional
        The knowledge base the cohort was generated from: only its contract and its hash are
        recorded, its likelihoods are never read.
    progress : callable(done, total, label), optional
        Called after each boosting iteration with the iteration, ``max_iter`` and the validation
        loss as text; when early stopping ends sooner, once more with ``done == total`` ==
        the iterations run. The training itself is unchanged: the
        booster's own per-iteration log (``verbose=1``) is read instead of printed.
    **params
        Overrides of :data:`ml.config.BOOSTER_PARAMS`.

    Returns
    -------
    CalcificationModel

    Examples
    --------
    >>> from data_gen import generate_cohort
    >>> from ml import train
    >>> model = train(generate_cohort(3000, random_state=0), random_state=0, max_iter=20)
    >>> model.predict_proba(generate_cohort(5, random_state=1)).shape
    (5, 5)
    """
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable(done, total, label) or None, got {type(progress).__name__}")
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    checked = validate_frame(cohort, knowledge=kb, label="required")
    encoder = Encoder(kb)
    empty = [c for c in kb.column_names if checked[c].isna().all()]
    if empty:
        # the booster cannot bin a column without a single value (scikit-learn fails deep inside)
        raise ValueError(
            f"the training cohort has no recorded value in column{'s' if len(empty) > 1 else ''} "
            f"{', '.join(empty[:5])}{' and more' if len(empty) > 5 else ''}; train on more patients or report more "
            "values (a higher recording rate)"
        )
    X = encoder.transform(checked)
    classes = kb.class_names
    y = checked[LABEL].cat.codes.to_numpy()
    counts = np.bincount(y, minlength=len(classes))
    if (counts == 0).any():
        absent = [classes[i] for i in np.flatnonzero(counts == 0)]
        raise ValueError(f"the training cohort has no patients of class(es) {absent}; every class is needed")
    cfg = config_dict(**params)
    booster = HistGradientBoostingClassifier(random_state=random_state, verbose=max(verbose, 2 if progress is not None else 0), **cfg)
    t0 = time.perf_counter()
    if progress is None:
        booster.fit(X, y)
    else:
        # scikit-learn's booster has no callback; its verbose log has one line per iteration
        with contextlib.redirect_stdout(_IterationLog(progress, echo=sys.stdout if verbose else None)):
            booster.fit(X, y)
        booster.set_params(verbose=verbose)  # the saved model must not depend on whether a bar was shown
        if booster.n_iter_ < booster.max_iter:
            progress(booster.n_iter_, booster.n_iter_, "stopped early: no gain on the validation split")
    seconds = time.perf_counter() - t0
    import sklearn

    metadata = {
        "train_n": int(len(checked)),
        "train_seed": random_state,
        "config": {k: v for k, v in cfg.items()},
        "knowledge_sha256": kb.sha256,
        "train_seconds": round(seconds, 3),
        "n_iter": int(booster.n_iter_),
        "validation_loss": float(-booster.validation_score_[-1]) if booster.do_early_stopping_ else None,
        "sklearn_version": sklearn.__version__,
    }
    prevalence = dict(zip(classes, (counts / counts.sum()).tolist()))
    knowledge_path = None if knowledge is None or isinstance(knowledge, Knowledge) and knowledge.path == load_knowledge().path else kb.path
    return CalcificationModel(booster, encoder, classes, prevalence, metadata, knowledge_path=knowledge_path)
