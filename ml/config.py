"""The one documented configuration of the shipped classifier.

Every hyperparameter of the booster and of the training run lives here; ``pulmocalc train``
and :func:`ml.train` read it, and the artifact records it. Why these values:

* ``max_leaf_nodes=7``: SHAP time grows with trees × leaves × depth². The cohort's log-odds are
  close to additive in the findings (the logistic baseline is within ~1 pp of the oracle), so
  small trees lose nothing: on 300k patients 7-leaf trees came within 0.23 pp / 0.006 nats of
  the oracle with 720 trees and explained ~2.4× faster than 15-leaf trees (460 trees, 0.28 pp)
  and ~20× faster than 31-leaf trees (660 trees, 0.27 pp); depth-3 trees needed more of them
  (770 trees, 0.24 pp) and were no faster. ``benchmarks/bench_tradeoff.py`` prints the table.
* ``learning_rate=0.4``: the shipped point of the gap-vs-SHAP-speed trade-off on the shipped
  cohort (300k, seed 20211; gaps on a fresh 100k cohort): 0.3 gave 0.21 pp / 0.007 nats with
  865 trees (~1,100 SHAP rows/s per process); 0.4 gave 0.23 pp / 0.008 nats with 500 trees
  (~1,800 rows/s); 0.5 gave 0.35 pp / 0.016 nats with 360 trees (~2,900 rows/s).
* ``min_samples_leaf``, ``l2_regularization``: regularize the leaves so
  that the rare classes' probabilities stay calibrated; chosen by the trade-off benchmark
  (accuracy and log-loss gap to the oracle against SHAP rows/s), not by the oracle itself.
* early stopping on a held-out validation split (``validation_fraction``) on the log loss.
* ``TRAINING["n"] = 800_000`` under the recording mixture ``TRAINING_RECORDING``: trained on
  complete records only (300k), the model was within 0.22 pp of the oracle on complete records
  but 4-17 pp behind it on sparse ones, and ranked the authors' diagnosis first in fewer
  published cases than the oracle. On the mixture, 300k patients (lr 0.4, 151 iterations) left
  gaps of 0.3-1.0 pp; 800k (lr 0.3, 230 iterations) 0.11-0.56 pp; 800k at lr 0.4 (the shipped
  point, 197 iterations, 985 trees) 0.26 pp / 0.006 nats on complete records and at most
  0.52 pp / 0.016 nats under MCAR 50/30/15% and the case-report regime
  (``benchmarks/bench_gap.py --n 20000``), at about 1,100 SHAP rows/s per process
  (``benchmarks/bench_explain.py``). The test suite retrains the first trees exactly.
* ``categorical_features=None`` with our own encoding of ``sex`` and ``zone``: shap's
  TreeExplainer misreads the booster's native categorical splits (shap issue #3436).
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["BOOSTER_PARAMS", "TRAINING", "TRAINING_RECORDING", "config_dict", "recording_from_metadata"]

#: Parameters of sklearn.ensemble.HistGradientBoostingClassifier.
BOOSTER_PARAMS = MappingProxyType(
    {
        "learning_rate": 0.4,
        "max_iter": 1000,
        "max_leaf_nodes": 7,
        "max_depth": None,
        "min_samples_leaf": 200,
        "l2_regularization": 1.0,
        "max_bins": 255,
        "early_stopping": True,
        "scoring": "loss",
        "validation_fraction": 0.1,
        "n_iter_no_change": 20,
        "tol": 1e-7,
        "categorical_features": None,
    }
)

#: How the shipped model's training patients are reported: a mixture of recording regimes
#: (:mod:`data_gen.recording`), each patient under one component. Complete records keep the
#: full-record gap small; the case-report regime and MCAR keep-rates from 0.7 down to 0.08 teach
#: the booster to reason from a handful of findings, as real reports give. The booster only
#: sees the resulting blanks, never the rates.
TRAINING_RECORDING = (
    ("complete", 0.25),
    ("case_report", 0.25),
    (0.7, 0.1),
    (0.5, 0.1),
    (0.3, 0.1),
    (0.15, 0.1),
    (0.08, 0.1),
)

#: The training run that produces the shipped model (``pulmocalc train`` defaults).
TRAINING = MappingProxyType(
    {
        "n": 800_000,
        "seed": 20211,
        "recording": TRAINING_RECORDING,
    }
)


def recording_from_metadata(training: dict):
    """The ``recording=`` a model's training cohort was drawn with (None: complete records).

    Models written before recording regimes existed have no ``recording`` entry: complete.
    """
    rec = training.get("recording")
    if rec is None:
        return None
    if isinstance(rec, (list, tuple)) and rec and isinstance(rec[0], (list, tuple)):
        return [tuple(pair) for pair in rec]
    return rec


def config_dict(**overrides) -> dict:
    """The booster parameters with ``overrides`` applied (unknown names are refused)."""
    unknown = sorted(set(overrides) - set(BOOSTER_PARAMS))
    if unknown:
        raise ValueError(f"unknown booster parameter(s) {unknown}; known: {sorted(BOOSTER_PARAMS)}")
    return {**BOOSTER_PARAMS, **overrides}
