"""The class mix of a setting: checking one, and refusing patients it cannot explain.

Design: a prevalence is a mapping class -> share that every entry point (the sampler, the
oracle, the model's prior-shift correction) resolves the same way, into an array in the
knowledge base's class order (:func:`resolve_prevalence`). A prevalence that sets to 0 every
class a patient's findings allow leaves the posterior undefined; :func:`check_prevalence_fits`
refuses such patients by name (:class:`PrevalenceError`) rather than letting a renormalization
answer confidently for a class the findings rule out.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .contract_messages import _display_index, _rows
from .knowledge import Knowledge
from .likelihood import _IMPOSSIBLE

__all__ = ["resolve_prevalence", "PrevalenceError", "check_prevalence_fits"]


def resolve_prevalence(prevalence, kb: Knowledge) -> np.ndarray:
    """Validate a class mix (mapping class -> share) and return it in class order.

    Classes left out get 0. Shares must be non-negative and sum to 1 (within 1e-6).
    """
    if prevalence is None:
        return np.array([kb.classes[k].prevalence for k in kb.class_names])
    if not isinstance(prevalence, Mapping):
        raise ValueError(f"prevalence must be a mapping class -> share, got {type(prevalence).__name__}")
    unknown = [k for k in prevalence if k not in kb.classes]
    if unknown:
        raise ValueError(f"prevalence names unknown classes {unknown}; expected some of {list(kb.class_names)}")
    out = np.zeros(len(kb.class_names))
    for i, k in enumerate(kb.class_names):
        v = prevalence.get(k, 0.0)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
            raise ValueError(f"prevalence of {k!r} must be a finite number >= 0, got {v!r}")
        out[i] = float(v)
    if abs(out.sum() - 1.0) > 1e-6:
        raise ValueError(f"prevalence shares must sum to 1, got {out.sum():.6g} from {dict(prevalence)}")
    return out


class PrevalenceError(ValueError):
    """A prevalence that gives 0 to every class the patient's findings allow."""


def check_prevalence_fits(ll: np.ndarray, prior: np.ndarray, index: pd.Index, kb: Knowledge) -> None:
    """Refuse patients whom no class allowed by the prevalence can explain.

    A class "allows" a patient when the patient's findings have a non-zero likelihood under it
    (``ll`` from :func:`data_gen.oracle_log_likelihood`). When every allowed class has prevalence 0, the
    posterior is undefined: renormalizing what is left would answer confidently for a class
    the findings rule out. Patients impossible under every class are left to the caller (NaN
    with a warning in the oracle).

    Raises
    ------
    PrevalenceError
        Naming the rows, the classes the findings allow and the classes set to 0.
    """
    zero = prior <= 0
    if not zero.any():
        return
    possible = ll > _IMPOSSIBLE / 2
    unfit = possible.any(axis=1) & ~(possible & ~zero[None, :]).any(axis=1)
    if not unfit.any():
        return
    names = np.asarray(kb.class_names)
    first = np.flatnonzero(unfit)[0]
    allowed = ", ".join(names[possible[first]])
    raise PrevalenceError(
        f"no class allowed by this prevalence fits {_rows(_display_index(index), unfit)}: "
        f"{'its' if unfit.sum() == 1 else 'the first one' + chr(39) + 's'} findings allow only {allowed}, "
        f"and the prevalence sets {', '.join(names[zero])} to 0; give those classes a share > 0, or leave the "
        "prevalence out"
    )
