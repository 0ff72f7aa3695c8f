"""The exact posterior of the knowledge base: the Bayes-optimal "oracle".

For a patient with observed columns ``x``::

    P(class | x) ∝ prior(class) · Σ_cells P(cell | class) · Π_columns P(x_j | cell)

The sum runs over every latent cell (cause, pattern, visibility, stage, renal status) of the
class, so the latent subtypes are marginalized exactly. Within a cell the columns are
independent, except that a binary column may depend on one parent column (``given``), in which
case its factor is P(x_j | x_parent, cell), or, when the parent is not recorded,
P(x_j | cell) with the parent summed out.

Missing values. With ``missing="model"`` (the default) the posterior is exact for cohorts drawn
by :func:`data_gen.generate_cohort`: a value that is not recorded contributes
P(not recorded | cell), which is the same for every class for most columns (so it carries no
evidence) but not for an SLC34A2 test, a bone scan or a lesion size of a patient without
discrete lesions. With ``missing="ignore"`` a NaN contributes nothing: the value is summed out
and the fact that it was not recorded is taken as uninformative, which suits a user's file
whose recording habits differ from the generator's.

The per-cell machinery is :mod:`data_gen.likelihood`; the explanations built on it are
:mod:`data_gen.evidence` (weight of evidence) and :mod:`data_gen.shapley` (exact Shapley values),
and the class mix is checked in :mod:`data_gen.prevalence`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .likelihood import _CHUNK, _IMPOSSIBLE, _cached_tables, _class_logsumexp, _kb, _log, _numeric, _setup
from .prevalence import PrevalenceError, check_prevalence_fits, resolve_prevalence  # the first two re-exported
from .recording import RecordingMixture

__all__ = ["oracle_proba", "oracle_log_likelihood", "check_prevalence_fits", "PrevalenceError"]


def oracle_log_likelihood(
    df: pd.DataFrame, *, missing: str = "model", recording=None, knowledge=None, measured=None
) -> pd.DataFrame:
    """log P(observed columns | class) under the knowledge base, one column per class.

    Parameters are those of :func:`oracle_proba`, plus:

    measured : pandas.DataFrame of bool or numpy.ndarray of bool, optional
        Per patient, the columns measured on purpose (a hypothetical test result, as in
        :func:`data_gen.next_best_findings`): a DataFrame with contract column names (absent
        columns count as False) or an array of shape (n_patients, n_columns) in
        ``knowledge.column_names`` order. A measured column's missingness and recording rate
        are not evidence: its value contributes P(value | cell) and a blank is summed out, as
        under ``missing="ignore"``, while the other columns keep ``missing=``. Refused with a
        ValueError naming the problem for unknown columns, other shapes or non-bool values.

    Returns an (n_patients, n_classes) frame.
    """
    kb, model_missing, regime = _setup(knowledge, missing, recording, mixture_ok=True)
    # a mixture's component is a latent variable independent of class and cell:
    # P(x | class) = sum_r w_r P_r(x | class)
    components = regime.components if isinstance(regime, RecordingMixture) else (regime,)
    log_w = np.log(regime.weights) if isinstance(regime, RecordingMixture) else np.zeros(1)
    tables = [_cached_tables(kb, model_missing, r) for r in components]
    num = _numeric(df, kb, measured)
    out = np.empty((len(df), len(kb.class_names)))
    for s in range(0, len(df), _CHUNK):
        sl = slice(s, s + _CHUNK)
        chunk = num.rows(sl)
        per = np.stack([_class_logsumexp(tb.cell_loglik(chunk), kb) + lw for tb, lw in zip(tables, log_w)])
        top = per.max(axis=0)
        out[sl] = top + np.log(np.exp(per - top).sum(axis=0))
    return pd.DataFrame(out, index=df.index, columns=list(kb.class_names))


def oracle_proba(
    df: pd.DataFrame, *, prevalence=None, missing: str = "model", recording=None, knowledge=None
) -> pd.DataFrame:
    """The exact posterior P(class | observed columns) under the knowledge base.

    Parameters
    ----------
    df : pandas.DataFrame
        Patients in the input contract, checked by :func:`data_gen.validate_frame` (columns
        outside the contract, such as the label or latent subtypes, are ignored). NaN means
        not recorded.
    prevalence : mapping class -> share, optional
        Class mix of the setting; defaults to the knowledge base's prevalence.
    missing : {"model", "ignore"}
        "model" (exact for generated cohorts) counts the probability of a value not being
        recorded; "ignore" treats NaN as uninformative. See the module docstring.
    recording : None, "complete", float, str or RecordingRegime
        The recording regime the patients were reported under (see
        :mod:`data_gen.recording`): with ``missing="model"`` the posterior is exact for a cohort
        drawn by ``generate_cohort(..., recording=...)`` with the same regime.
    knowledge : Knowledge or path, optional

    Returns
    -------
    pandas.DataFrame
        One column per class, rows sum to 1. A row that is impossible under every class
        (e.g. on dialysis without kidney disease) gets NaN, with a warning.

    Examples
    --------
    >>> from data_gen import generate_cohort, oracle_proba
    >>> df = generate_cohort(500, random_state=1)
    >>> post = oracle_proba(df)
    >>> bool(abs(post.sum(axis=1) - 1).max() < 1e-9)
    True
    """
    kb = _kb(knowledge)
    prior = resolve_prevalence(prevalence, kb)
    ll = oracle_log_likelihood(df, missing=missing, recording=recording, knowledge=kb).to_numpy()
    check_prevalence_fits(ll, prior, df.index, kb)
    return pd.DataFrame(_posterior(ll, prior), index=df.index, columns=list(kb.class_names))



def _posterior(ll: np.ndarray, prior: np.ndarray) -> np.ndarray:
    a = ll + _log(prior)[None, :]
    amax = a.max(axis=1, keepdims=True)
    impossible = amax[:, 0] < _IMPOSSIBLE / 2
    p = np.exp(a - amax)
    p /= p.sum(axis=1, keepdims=True)
    if impossible.any():
        warnings.warn(
            f"{int(impossible.sum())} patient(s) are impossible under every class of the knowledge "
            "base (a declared impossible combination); their posterior is NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        p[impossible] = np.nan
    return p

