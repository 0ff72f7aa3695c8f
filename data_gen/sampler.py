"""Vectorized, seeded, chunk-invariant sampling of synthetic patients from the knowledge base.

Patients are generated in fixed blocks of ``BLOCK_SIZE`` rows. Block ``b`` draws from its own
``numpy.random.Generator`` seeded by ``SeedSequence(entropy, spawn_key=(stream, b))``, so any
row range of a cohort can be produced on its own (for parallel or distributed generation) and
is identical to the same rows of the whole cohort. Every block draws its full ``BLOCK_SIZE``
rows whatever part of it is returned. This module holds the public entry points, their
argument checks and the seeding; the block generator, with the list of its draws, is
:mod:`data_gen.sampler_blocks`.

Speed and memory: the knowledge base is compiled once per call into per-cell thresholds, a
draw becomes a value by one or two comparisons, and each column is processed for one block at
a time into preallocated output arrays that the returned frame wraps without copying, so the
peak memory stays close to the size of the frame (``benchmarks/bench_generate.py``).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

from .knowledge import Knowledge, load_knowledge
from .prevalence import resolve_prevalence  # used here, and re-exported: ml imports it from here
from .recording import resolve_recording
from .sampler_blocks import _COUNT_STREAM, BLOCK_SIZE, LATENT_PREFIX, _generate, _rng  # the two constants re-exported

__all__ = ["generate_cohort", "iter_cohort", "BLOCK_SIZE", "resolve_prevalence", "LATENT_PREFIX"]


def _entropy(random_state) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    if isinstance(random_state, np.random.SeedSequence):
        return int(random_state.generate_state(2, np.uint64).astype(object).dot([1, 2**64]))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    raise ValueError(
        f"random_state must be None, a non-negative int, a numpy SeedSequence or Generator; got {random_state!r}"
    )



def _check_n(n, name="n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def generate_cohort(
    n: int | None = None,
    *,
    random_state=None,
    prevalence: Mapping[str, float] | None = None,
    counts: Mapping[str, int] | None = None,
    rows: tuple[int, int] | None = None,
    latent: bool = False,
    recording=None,
    knowledge: Knowledge | str | None = None,
) -> pd.DataFrame:
    """Generate synthetic patients with diffuse pulmonary calcification.

    Parameters
    ----------
    n : int
        Number of patients. Omit it when ``counts`` is given.
    random_state : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Seed. The same seed gives the identical frame on every run and platform.
    prevalence : mapping of class -> share, optional
        Class mix overriding the knowledge base's default prevalence (e.g. a dialysis clinic).
    counts : mapping of class -> int, optional
        Exact number of patients of each class (classes left out get 0); their order is
        shuffled. Mutually exclusive with ``prevalence``.
    rows : (start, stop), optional
        Return only these rows of the ``n``-patient cohort; identical to slicing the whole
        (``whole.iloc[start:stop]``, row labels included).
    latent : bool, default False
        Also return the latent subtypes as ``latent_<factor>`` columns (never model inputs).
    recording : None, "complete", float in (0, 1], str or RecordingRegime
        Which recorded values get reported (:mod:`data_gen.recording`): ``None``/"complete"
        reports all; a number ``q`` reports each value with probability ``q`` (missing
        completely at random); ``"case_report"`` uses the knowledge base's rates estimated from
        published case reports. The values come from the same random streams whatever the
        regime, so a regime only blanks cells of the complete cohort of the same seed.
    knowledge : Knowledge or path, optional
        Knowledge base; defaults to the shipped one.

    Returns
    -------
    pandas.DataFrame
        The input-contract columns (binary as nullable ``Int8``, ``sex`` and ``zone`` as
        categoricals, continuous as ``float64``; missing values are NA), plus
        ``calcification_type`` (categorical) and, with ``latent=True``, the latent columns.

    Examples
    --------
    >>> from data_gen import generate_cohort
    >>> df = generate_cohort(1000, random_state=0)
    >>> df.shape
    (1000, 53)
    >>> df["calcification_type"].value_counts().index[0]
    'dystrophic'
    """
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    regime = resolve_recording(recording, kb)
    if counts is not None:
        if prevalence is not None:
            raise ValueError("give either prevalence or counts, not both")
        if not isinstance(counts, Mapping):
            raise ValueError(f"counts must be a mapping class -> int, got {type(counts).__name__}")
        unknown = [k for k in counts if k not in kb.classes]
        if unknown:
            raise ValueError(f"counts names unknown classes {unknown}; expected some of {list(kb.class_names)}")
        count_arr = np.array([_check_n(counts.get(k, 0), f"counts[{k!r}]") for k in kb.class_names])
        total = int(count_arr.sum())
        if n is not None and _check_n(n) != total:
            raise ValueError(f"n={n} does not equal the sum of counts ({total})")
        n = total
        prev = None
    else:
        if n is None:
            raise ValueError("n is required unless counts is given")
        n = _check_n(n)
        prev = resolve_prevalence(prevalence, kb)
        count_arr = None
    start, stop = (0, n) if rows is None else rows
    if not (isinstance(start, numbers.Integral) and isinstance(stop, numbers.Integral) and 0 <= start <= stop <= n):
        raise ValueError(f"rows must be (start, stop) with 0 <= start <= stop <= n={n}, got {rows!r}")
    entropy = _entropy(random_state)
    labels = None
    if count_arr is not None:
        labels = np.repeat(np.arange(len(count_arr), dtype=np.int8 if len(count_arr) <= 127 else np.intp), count_arr)
        _rng(entropy, _COUNT_STREAM).shuffle(labels)
    return _generate(kb, entropy, prev, labels, int(start), int(stop), latent, None if regime.is_complete else regime)


def iter_cohort(
    n: int,
    *,
    chunk_size: int = 100_000,
    random_state=None,
    prevalence=None,
    counts=None,
    latent: bool = False,
    recording=None,
    knowledge=None,
) -> Iterator[pd.DataFrame]:
    """Yield a cohort in consecutive chunks; their concatenation equals ``generate_cohort``.

    ``random_state`` must be reproducible (an int or SeedSequence) so that every chunk belongs
    to the same cohort; an int seed is drawn once when None or a Generator is given.
    """
    chunk_size = _check_n(chunk_size, "chunk_size")
    if chunk_size == 0:
        raise ValueError("chunk_size must be positive")
    seed = _entropy(random_state)
    if counts is not None:
        n = sum(int(v) for v in counts.values())
    n = _check_n(n)
    for start in range(0, n, chunk_size):
        yield generate_cohort(
            None if counts is not None else n,
            random_state=seed,
            prevalence=prevalence,
            counts=counts,
            rows=(start, min(n, start + chunk_size)),
            latent=latent,
            recording=recording,
            knowledge=knowledge,
        )
