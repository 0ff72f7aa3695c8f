"""Compiling the knowledge base into per-cell parameter arrays, and checking its constraints.

Design: a *cell* is one class with one level of each of its latent factors; within a cell the
columns are independent but for a binary column conditioned on one binary parent. The
compiler walks every (column, cell) pair once and writes read-only numpy arrays (a
:class:`~data_gen.knowledge_types.CellTable`) that the sampler and the oracle both read, so the
two cannot drift apart. The declared impossible combinations (``[[constraints]]``) are then
checked exactly on those arrays: in every cell where the ``if`` part can occur, each ``then``
part must be certain.
"""

from __future__ import annotations

import itertools
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .knowledge_types import CellTable, ClassSpec, ColumnSpec, Constraint, Knowledge, KnowledgeError, _fail

def _compile_cells(classes: Mapping[str, ClassSpec], columns: Mapping[str, ColumnSpec]) -> CellTable:
    cell_class, cell_prob, cell_levels, cell_models = [], [], [], []
    for k, cls in enumerate(classes.values()):
        for levels, prob in cls.cells():
            cell_class.append(k)
            cell_prob.append(prob)
            cell_levels.append(MappingProxyType(levels))
            cell_models.append(cls.columns)
    C = len(cell_class)
    binary = tuple(c for c, s in columns.items() if s.kind == "binary")
    bidx = {c: i for i, c in enumerate(binary)}
    p1 = np.zeros((len(binary), C))
    parent = np.full(len(binary), -1, dtype=np.int64)
    p_given = np.zeros((len(binary), 2, C))
    bmiss = np.zeros((len(binary), C))
    for j, col in enumerate(binary):
        for c in range(C):
            m = cell_models[c][col]
            lv = cell_levels[c]
            gate = all(lv.get(f) in allowed for f, allowed in m.requires.items())
            pp = m.params["p"]
            if pp.given is not None:
                par = bidx[pp.given]
                if parent[j] not in (-1, par):
                    _fail(f"[*.{col}].p", "every class must condition a column on the same parent")
                parent[j] = par
                p_given[j, 1, c] = pp.values["1"] * gate
                p_given[j, 0, c] = pp.values["0"] * gate
            else:
                p1[j, c] = pp.at(lv) * gate
            bmiss[j, c] = m.missing.at(lv)
    # a parent-conditioned column must be so in every class (checked above for the parent);
    # where one class gives a plain probability, treat it as equal under both parent values
    for j in np.flatnonzero(parent >= 0):
        for c in range(C):
            if cell_models[c][binary[j]].params["p"].given is None:
                p_given[j, :, c] = p1[j, c]
        if parent[parent[j]] >= 0:
            _fail(f"[*.{binary[j]}].p", "a parent column may not itself be conditioned on another column")

    categorical = tuple(c for c, s in columns.items() if s.kind == "categorical")
    cat_probs, cat_missing = [], np.zeros((len(categorical), C))
    for j, col in enumerate(categorical):
        levels = columns[col].levels
        arr = np.zeros((C, len(levels)))
        for c in range(C):
            m = cell_models[c][col]
            probs = m.params["probs"].at(cell_levels[c])
            arr[c] = [probs[x] for x in levels]
            cat_missing[j, c] = m.missing.at(cell_levels[c])
        cat_probs.append(arr)

    continuous = tuple(c for c, s in columns.items() if s.kind == "continuous")
    cont_dist, cont_params, cont_bounds = [], [], []
    cont_missing = np.zeros((len(continuous), C))
    for j, col in enumerate(continuous):
        spec = columns[col]
        dist = cell_models[0][col].dist
        names = ("mean", "sd") if dist == "normal" else ("median", "gsd", "zero")
        arrs = {n: np.zeros(C) for n in names}
        for c in range(C):
            m = cell_models[c][col]
            for n in names:
                arrs[n][c] = m.params[n].at(cell_levels[c]) if n in m.params else 0.0
            cont_missing[j, c] = m.missing.at(cell_levels[c])
        cont_dist.append(dist)
        cont_params.append(MappingProxyType(arrs))
        # sampled values stay within what the contract accepts: its range and its plausible range
        lo = max(-np.inf if spec.min is None else float(spec.min), -np.inf if spec.plausible_min is None else spec.plausible_min)
        hi = min(np.inf if spec.max is None else float(spec.max), np.inf if spec.plausible_max is None else spec.plausible_max)
        cont_bounds.append((lo, hi))

    for arr in (p1, p_given, bmiss, cat_missing, cont_missing):
        arr.setflags(write=False)
    return CellTable(
        cell_class=np.asarray(cell_class),
        cell_prob=np.asarray(cell_prob),
        cell_levels=tuple(cell_levels),
        binary=binary,
        p1=p1,
        parent=parent,
        p_given=p_given,
        binary_missing=bmiss,
        categorical=categorical,
        cat_levels=tuple(columns[c].levels for c in categorical),
        cat_probs=tuple(cat_probs),
        cat_missing=cat_missing,
        continuous=continuous,
        cont_dist=tuple(cont_dist),
        cont_params=tuple(cont_params),
        cont_bounds=tuple(cont_bounds),
        cont_missing=cont_missing,
    )


def _check_constraint(kb: Knowledge, con: Constraint) -> None:
    """Every cell where the ``if`` part can occur must make each ``then`` part certain."""
    t = kb.cells
    bidx = {c: i for i, c in enumerate(t.binary)}
    names = kb.class_names
    for c in range(t.n_cells):
        joint = _joint_binary(t, c, bidx, {**con.if_, **con.then})
        p_if = _prob_of(joint, con.if_)
        if p_if == 0:
            continue
        for col, val in con.then.items():
            bad = _prob_of(joint, {**con.if_, col: 1 - val})
            if bad > 0:
                lv = dict(t.cell_levels[c])
                raise KnowledgeError(
                    f"knowledge base violates constraint {con.name!r}: in class "
                    f"{names[t.cell_class[c]]!r} with latent levels {lv}, {col} = {1 - val} can "
                    f"occur together with {dict(con.if_)} (probability {bad:.3g}); expected 0"
                )


def _joint_binary(t: CellTable, c: int, bidx, cols) -> dict[tuple, float]:
    """Joint distribution of a few binary columns (values, not missingness) within one cell."""
    names = list(cols)
    # add parents so that conditioned columns can be evaluated
    for col in list(names):
        par = t.parent[bidx[col]]
        if par >= 0 and t.binary[par] not in names:
            names.append(t.binary[par])
    out = {}
    for vals in itertools.product((0, 1), repeat=len(names)):
        assign = dict(zip(names, vals))
        prob = 1.0
        for col, v in assign.items():
            j = bidx[col]
            par = t.parent[j]
            if par >= 0:
                p = t.p_given[j, assign[t.binary[par]], c]
            else:
                p = t.p1[j, c]
            prob *= p if v == 1 else 1 - p
        out[tuple(sorted(assign.items()))] = prob
    return out


def _prob_of(joint, event: Mapping[str, int]) -> float:
    return sum(p for key, p in joint.items() if all(dict(key)[k] == v for k, v in event.items()))
