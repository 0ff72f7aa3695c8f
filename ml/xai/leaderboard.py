"""The explainer leaderboard: every explainer on one model, scored against both ground truths.

Design. :func:`benchmark_explainers` draws, with one seeded generator, the patients to explain
and, disjoint from them, a background sample (the interventional background and the
model-agnostic explainers' reference) and a training sample for the permuted-label floor. Each
explainer runs once on all the patients (timed, under a one-thread limit so that timings are not
thread contention), its attributions are centred across classes, and are then scored:

* against each ground truth (:mod:`ml.xai.ground_truth`) with OpenXAI's FA/RA/SA/SRA at
  k = 3, 5, 10, RC and PRA, Spearman and sign agreement (:func:`ml.xai.metrics.agreement`),
  each with its standard error over patients, its uniform chance level, two permutation nulls
  (the same attributions against other patients' truths, and against the same patient's truths
  for the other classes) and the chance-adjusted agreement beyond the larger of them
  (:mod:`ml.xai.metrics` gives the definitions and why);
* without a truth: the clue-audit pass rate (:func:`ml.audit_clues` on the explainer's values),
  the deletion curve (probability of the predicted class as the top-k columns are blanked) and
  its mean, and seconds per patient (after an untimed warm-up call on two patients, which
  absorbs one-time costs: numba compiling shap's masking code, the floor's null model).

The result is tidy: one row per (model, explainer, ground truth, metric). When the model's
interventional explainer is in the list, its output is reused as the fidelity truth (it *is*
the truth, so it scores 1 there by construction; the leaderboard says so).
"""

from __future__ import annotations

import inspect
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd

from data_gen import LABEL

from .explainers import AdditiveExact, Explainer, TreeInterventional, builtin_explainers, check_attributions
from .ground_truth import GROUND_TRUTHS, centre, model_truth, oracle_truths
from .metrics import KS, deletion_curve, pooled_agreement
from .models import to_codes, view_of

__all__ = ["LEADERBOARD_COLUMNS", "benchmark_explainers"]

LEADERBOARD_COLUMNS = ["model", "explainer", "ground_truth", "metric", "value", "se", "chance", "shuffled",
                       "class_shuffled", "adjusted", "adjusted_se", "n_patients", "budget", "output_scale"]


#: the keys ``budgets`` may set: the built-ins' options
BUDGET_KEYS = tuple(k for k, p in inspect.signature(builtin_explainers).parameters.items() if p.kind is p.KEYWORD_ONLY and k != "random_state")


def _named(explainers, background, train, random_state, budgets) -> dict:
    unknown = sorted(set(budgets or {}) - set(BUDGET_KEYS))
    if unknown:
        raise ValueError(f"budgets: unknown key(s) {unknown}; the built-in explainers take {list(BUDGET_KEYS)}")
    if explainers is None:
        return builtin_explainers(background, train, random_state=random_state, **(budgets or {}))
    if isinstance(explainers, dict):
        items = explainers.items()
    else:
        items = [(getattr(e, "name", None) or getattr(e, "__name__", None) or type(e).__name__, e) for e in explainers]
    out = {}
    for name, e in items:
        if not callable(e):
            raise TypeError(f"explainer {name!r} is a {type(e).__name__}, not a callable (model, X) -> array")
        if name in out:
            raise ValueError(f"two explainers are named {name!r}; give them distinct names (pass a dict)")
        out[str(name)] = e
    return out


def _timed(ex, name: str, model, checked: pd.DataFrame, model_name: str) -> tuple[np.ndarray, float]:
    """One explainer's attributions for every patient and the seconds they took.

    An untimed warm-up on two patients comes first: numba compiles shap's masking code, a floor
    trains its null model; the seconds then measure explaining alone.
    """
    try:
        ex(model, checked.iloc[:2])
        t0 = time.perf_counter()
        a = ex(model, checked)
        return a, time.perf_counter() - t0
    except Exception as exc:  # name the explainer: a bare ZeroDivisionError says nothing of which
        message = f"explainer {name!r} failed on the {model_name}: {type(exc).__name__}: {exc}"
        raise (ValueError if isinstance(exc, ValueError) else RuntimeError)(message) from exc


def _runs(ex, name: str) -> list:
    """The runs of one explainer whose scores are pooled: its ``repeats()`` (built-ins), else itself."""
    if not isinstance(ex, Explainer):
        return [ex]
    try:
        runs = ex.repeats()
    except Exception as exc:
        raise (ValueError if isinstance(exc, ValueError) else RuntimeError)(
            f"explainer {name!r}: repeats() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(runs, (list, tuple)) or not runs or not all(callable(r) for r in runs):
        raise ValueError(f"explainer {name!r}: repeats() must return a non-empty list of explainers, got {runs!r}")
    return list(runs)


def _check_arguments(cohort, ground_truth, **ints) -> tuple[str, ...]:
    """The ground truths as a tuple without repeats; every size a whole number in its range."""
    if not isinstance(cohort, pd.DataFrame):
        raise TypeError(f"cohort must be a pandas DataFrame of labelled patients, got {type(cohort).__name__}")
    if isinstance(ground_truth, str):
        ground_truth = (ground_truth,)
    if ground_truth is None or not len(ground_truth):
        raise ValueError(f"ground_truth: give one or more of {list(GROUND_TRUTHS)}, got {ground_truth!r}")
    unknown = sorted(set(ground_truth) - set(GROUND_TRUTHS))
    if unknown:
        raise ValueError(f"unknown ground truth(s) {unknown}; choose from {list(GROUND_TRUTHS)}")
    lowest = {"n_patients": 2, "background_size": 1, "train_size": 0, "n_permutations": 1, "deletion_k": 0, "random_state": 0}
    for name, value in ints.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest[name]:
            raise ValueError(f"{name}={value!r}: give a whole number >= {lowest[name]}")
    return tuple(dict.fromkeys(ground_truth))


def _draw(cohort: pd.DataFrame, n_patients: int, background_size: int, train_size: int, rng):
    need = n_patients + background_size
    if len(cohort) < need:
        raise ValueError(
            f"the cohort has {len(cohort)} patients; n_patients={n_patients} plus a background of "
            f"{background_size} need at least {need}"
        )
    perm = rng.permutation(len(cohort))
    X = cohort.iloc[np.sort(perm[:n_patients])]
    bg = cohort.iloc[perm[n_patients:need]]
    train = cohort.iloc[perm[need : need + train_size]] if train_size else None
    return X, bg, train


def benchmark_explainers(
    model,
    cohort: pd.DataFrame,
    *,
    explainers=None,
    ground_truth=GROUND_TRUTHS,
    n_patients: int = 500,
    random_state: int = 0,
    background_size: int = 1000,
    train_size: int = 20_000,
    n_permutations: int = 64,
    budgets: dict | None = None,
    deletion_k: int = 10,
    audit: bool = True,
    n_threads: int | None = 1,
    progress=None,
) -> pd.DataFrame:
    """Score attribution methods on one model against the exact ground truths.

    Parameters
    ----------
    model : ml.CalcificationModel or ml.xai.ContractClassifier
        Any scikit-learn classifier trained on the contract (see :mod:`ml.xai.models`).
    cohort : pandas.DataFrame
        Labelled patients generated from the model's knowledge base under complete recording
        (the oracle's truths assume it), at least ``n_patients + background_size`` rows.
    explainers : dict name -> callable, sequence of callables, or None
        Each callable ``(model, X) -> array`` of shape (patients, 52 columns, classes) in the
        contract's column and class order. None: the built-ins
        (:func:`ml.xai.explainers.builtin_explainers`); those that do not apply to the model
        (TreeSHAP on a linear model) are skipped.
    ground_truth : sequence of str
        Any of ``"model"``, ``"oracle_shapley"``, ``"weight_of_evidence"``.
    n_patients : int
        Patients explained.
    random_state : int
        Seeds the draw of patients, the background and every sampling explainer.
    background_size, train_size : int
        The background sample and the permuted-label floor's training sample.
    n_permutations : int
        Antithetic permutations of :func:`data_gen.oracle_shapley`.
    budgets : dict, optional
        Overrides of the built-ins' budgets (``kernel_samples``, ``permutation_evals``,
        ``lime_samples``, ``agnostic_background``, ``exact_background``, and ``null_refits`` and
        ``random_draws``: the permuted-label floor's null models and the random floor's draws,
        whose scores are pooled by :func:`ml.xai.metrics.pooled_agreement`).
    deletion_k : int
        The deletion curve blanks k = 0 .. ``deletion_k`` columns.
    audit : bool
        Also run the clue audit on every explainer's values.
    n_threads : int or None
        OpenMP/BLAS threads while explaining (None: the libraries' default).
    progress : callable, optional
        Called with one line of text per step.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LEADERBOARD_COLUMNS`. ``ground_truth`` is "" for truth-free metrics
        (``seconds_per_patient``, ``clue_pass_rate``, ``deletion_mean``, ``deletion@k``), whose
        ``chance``, ``shuffled``, ``class_shuffled``, ``adjusted`` and ``adjusted_se`` are NaN.
        ``adjusted`` is ``(value - null) / (1 - null)`` with ``null`` the larger of ``shuffled``
        (the patient-shuffled null) and ``class_shuffled`` (the class-shuffled null): about 0 for
        attributions with nothing beyond cohort-wide patterns or the patient's unusual values
        (both floors), 1 for perfect agreement.

    Raises
    ------
    ValueError
        For an unknown ground truth, a size or seed that is not a whole number in its range
        (``n_patients`` >= 2, ``deletion_k`` <= 52, ...), a cohort too small or without labels
        where the floor needs them, or an explainer returning the wrong shape or non-finite
        values (naming it).
    TypeError
        For a cohort that is not a pandas DataFrame.
    RuntimeError
        When an explainer raises, naming it (the original exception is chained; a ValueError
        stays a ValueError).
    """
    from threadpoolctl import threadpool_limits

    ground_truth = _check_arguments(cohort, ground_truth, n_patients=n_patients, background_size=background_size,
                                    train_size=train_size, n_permutations=n_permutations, deletion_k=deletion_k,
                                    random_state=random_state)
    say = progress or (lambda s: None)
    view = view_of(model)
    rng = np.random.default_rng(random_state)
    X, bg, train = _draw(cohort, n_patients, background_size, train_size, rng)
    if train is not None and LABEL not in train.columns:
        train = None
    checked = view.check(X)
    cols, classes = list(view.encoder.columns), list(view.classes)
    n, J, K = len(checked), len(cols), len(classes)
    if deletion_k > J:
        raise ValueError(f"deletion_k={deletion_k}: at most the {J} columns can be blanked")
    named = _named(explainers, bg, train, random_state, budgets)
    Z = to_codes(view.encoder, checked)
    rows: list[dict] = []

    def add(explainer, truth, metric, value, se=np.nan, budget="", **null):
        rows.append(dict(model=view.name, explainer=explainer, ground_truth=truth, metric=metric, value=value, se=se,
                         chance=null.get("chance", np.nan), shuffled=null.get("shuffled", np.nan),
                         class_shuffled=null.get("class_shuffled", np.nan),
                         adjusted=null.get("adjusted", np.nan), adjusted_se=null.get("adjusted_se", np.nan),
                         n_patients=n, budget=budget, output_scale=view.output_scale))

    outputs, truths = {}, {}
    with threadpool_limits(limits=n_threads) if n_threads else _null():
        for name, ex in named.items():
            if hasattr(ex, "supports") and not ex.supports(view):
                continue
            say(f"xai: {view.name}: {name} on {n} patients")
            runs = _runs(ex, name)
            arrays, seconds = [], 0.0
            for run in runs:
                a, sec = _timed(run, name, model, checked, view.name)
                arrays.append(check_attributions(a, n, J, K, name))
                seconds += sec / len(runs)
                if not np.any(arrays[-1]):
                    warnings.warn(f"explainer {name!r} gave every patient all-zero attributions on the {view.name} (a null "
                                  "model that learnt nothing, for one): its top-k metrics then rank the columns by their "
                                  "order; give a floor a larger training sample (train_size)", UserWarning, stacklevel=2)
            budget = getattr(ex, "budget", "")
            if len(runs) > 1:
                # only an Explainer has several runs (see _runs)
                budget = f"mean of {len(runs)} {ex.repeat_unit}" + (f"; {budget}" if budget else "")
            outputs[name] = (arrays, seconds, budget)
            if "model" in ground_truth and isinstance(ex, (TreeInterventional, AdditiveExact)) and ex.background is bg:
                truths.setdefault("model", centre(arrays[0]))
        if "model" in ground_truth and "model" not in truths:
            say(f"xai: {view.name}: the model's exact interventional Shapley values")
            t, _ = model_truth(view, checked, bg, background_size=(budgets or {}).get("exact_background", 100))
            if t is not None:
                truths["model"] = t
        oracle = [g for g in ground_truth if g != "model"]
        if oracle:
            say(f"xai: oracle ground truths ({n_permutations} permutations)")
            got = oracle_truths(checked, n_permutations=n_permutations, random_state=random_state, knowledge=view.model.knowledge)
            truths.update({g: got[g] for g in oracle})
        for name, (arrays, seconds, budget) in outputs.items():
            centred = [centre(a) for a in arrays]
            add(name, "", "seconds_per_patient", seconds / n, budget=budget)
            for g in ground_truth:
                if g not in truths:
                    continue
                for metric, d in pooled_agreement(centred, truths[g], KS).items():
                    add(name, g, metric, budget=budget, **d)
            curve = np.mean([deletion_curve(view, Z, ac, deletion_k) for ac in centred], axis=0)
            add(name, "", "deletion_mean", float(curve.mean()), budget=budget)
            for k, p in enumerate(curve):
                add(name, "", f"deletion@{k}", float(p), budget=budget)
            if audit:
                from ..audit import audit_clues

                rates = [audit_clues(view.model, checked, explanation=SimpleNamespace(values=a, feature_names=cols, output_names=classes)).pass_rate
                         for a in arrays]
                add(name, "", "clue_pass_rate", float(np.mean(rates)), budget=budget)
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
