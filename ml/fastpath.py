"""Low-latency prediction for a few patients: the booster's trees walked as flat numpy arrays.

scikit-learn's ``HistGradientBoostingClassifier.predict_proba`` calls one compiled routine per
tree from a Python loop, which costs about 10 µs per tree whatever the number of rows: with the
shipped model's 1,000 trees, one patient takes about 10 ms. For a handful of patients that loop
dominates, so :class:`CompiledForest` stacks every tree's nodes into one set of arrays and walks
all trees at once, one numpy step per tree level (at most ``max_depth`` steps). Each row's score
is then summed in scikit-learn's own order (baseline, then iteration by iteration), and the same
loss object turns scores into probabilities, so the result is bit for bit what scikit-learn
returns (tests check it). It reads the fitted predictors' node arrays (``_predictors``,
``_baseline_prediction``, ``_loss``), stable from scikit-learn 1.4 to 1.7; a booster it cannot
read (categorical splits, another layout) is left to scikit-learn. Memory grows as rows × trees,
so large batches go to scikit-learn's parallel routine (:data:`MAX_ROWS`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CompiledForest", "MAX_ROWS"]

#: Up to this many rows the flat walk is used; above it scikit-learn's threaded routine is faster
#: and its memory does not grow with rows × trees.
MAX_ROWS = 64


class CompiledForest:
    """All trees of a fitted ``HistGradientBoostingClassifier`` as flat node arrays.

    Use :meth:`from_booster`, which returns None when the booster cannot be compiled.
    """

    def __init__(self, booster, feature, threshold, missing_left, left, right, is_leaf, value, roots, depth):
        self.booster = booster
        self.feature, self.threshold, self.missing_left = feature, threshold, missing_left
        self.left, self.right, self.is_leaf, self.value = left, right, is_leaf, value
        self.roots = roots  # (n_iter, n_classes) global index of each tree's root
        self.depth = depth
        self.baseline = np.asarray(booster._baseline_prediction, dtype=np.float64).reshape(-1)

    @classmethod
    def from_booster(cls, booster) -> CompiledForest | None:
        """Compile a fitted booster; None when it uses anything the flat walk does not reproduce."""
        try:
            predictors = booster._predictors
            booster._baseline_prediction, booster._loss  # noqa: B018 - both needed at predict time
        except AttributeError:
            return None
        nodes, roots, offset = [], [], 0
        for iteration in predictors:
            row = []
            for predictor in iteration:
                n = predictor.nodes
                if n["is_categorical"].any():
                    return None
                nodes.append(n)
                row.append(offset)
                offset += len(n)
            roots.append(row)
        if not nodes:
            return None
        starts = np.concatenate([[0], np.cumsum([len(n) for n in nodes])[:-1]])
        shift = np.repeat(starts, [len(n) for n in nodes])
        flat = np.concatenate(nodes)
        is_leaf = flat["is_leaf"].astype(bool)
        # a leaf points to itself, so a walk that reached it stays there
        own = np.arange(len(flat))
        left = np.where(is_leaf, own, flat["left"].astype(np.intp) + shift)
        right = np.where(is_leaf, own, flat["right"].astype(np.intp) + shift)
        return cls(
            booster,
            feature=np.where(is_leaf, 0, flat["feature_idx"]).astype(np.intp),
            threshold=flat["num_threshold"].astype(np.float64),
            missing_left=flat["missing_go_to_left"].astype(bool),
            left=left,
            right=right,
            is_leaf=is_leaf,
            value=flat["value"].astype(np.float64),
            roots=np.asarray(roots, dtype=np.intp),
            depth=int(flat["depth"].max()),
        )

    def raw_predict(self, X: np.ndarray) -> np.ndarray:
        """Scores (rows, classes), summed exactly as scikit-learn sums them.

        Parameters
        ----------
        X : ndarray of shape (rows, features), float64, NaN for not recorded
        """
        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        node = np.broadcast_to(self.roots.reshape(1, -1), (n, self.roots.size)).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            x = X[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
        leaf_values = self.value[node].reshape(n, *self.roots.shape)  # (rows, iterations, classes)
        # scikit-learn: raw = 0 + baseline, then += each iteration's leaves in order; cumsum is
        # sequential, so it reproduces those additions exactly
        stacked = np.concatenate([np.broadcast_to(self.baseline, (n, 1, self.baseline.size)), leaf_values], axis=1)
        return np.cumsum(stacked, axis=1)[:, -1, :]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (rows, classes), as ``booster.predict_proba`` gives them."""
        raw = np.asfortranarray(self.raw_predict(X))
        return self.booster._loss.predict_proba(raw)
