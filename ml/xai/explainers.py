"""The built-in attribution methods of the explainer benchmark, each a callable (model, X) -> array.

Design. An explainer is any callable ``(model, X) -> array`` of shape (patients, contract
columns, classes), where ``X`` is a frame of patients in the input contract; the array holds
attributions of the model's explained output (:class:`ml.xai.models.ModelView`) in the
contract's column and class order. The built-ins wrap well-kept libraries and say their sample
budgets in ``budget``:

* TreeSHAP path-dependent, interventional (against a background sample) and Saabas (shap's
  ``approximate=True``), for tree models, over the encoder's features summed back to contract
  columns with :meth:`ml.Encoder.source_matrix` (as :func:`ml.explain` does);
* KernelSHAP (``shap.KernelExplainer``), the permutation explainer (``shap.PermutationExplainer``)
  and LIME (``lime.lime_tabular``), model-agnostic, over contract columns in code space
  (:func:`ml.xai.models.to_codes`), so a player is a contract column;
* leave-one-column-out occlusion: the output minus the output with the column set to not recorded;
* the exact interventional Shapley values of an additive model (closed form, see
  :func:`additive_shapley`), the logistic regression's counterpart of interventional TreeSHAP;
* two floors: random attributions and a model of the same kind trained on permuted labels,
  explained exactly (TreeSHAP path-dependent, or the closed form for an additive model).

shap's KernelExplainer and PermutationExplainer draw from numpy's legacy global generator; they
run inside :func:`_seeded_global`, which seeds it from the caller's seed and restores it after,
so that the same seed gives the same attributions. LIME takes its own seed.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd

from data_gen import LABEL

from .models import ModelView, refit_permuted, to_codes, view_of

__all__ = ["Explainer", "additive_shapley", "builtin_explainers", "check_attributions"]


@contextmanager
def _seeded_global(seed: int):
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextmanager
def _quiet():
    """Silence the libraries' warnings (LIME warns that log-odds rows do not sum to 1, by design)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _no_progress_bar():
    """Drop the progress bar that shap's C++ interventional TreeSHAP draws on ``sys.stderr`` when
    it runs longer than a few seconds (the library never prints; ``--quiet`` must mean quiet).
    Anything else written meanwhile is passed on."""
    import io
    import re
    import sys
    from contextlib import redirect_stderr

    buf = io.StringIO()
    try:
        with redirect_stderr(buf):
            yield
    finally:
        # a bar is "NN%|====    | done/total [elapsed<remaining]", redrawn after a carriage return
        text = re.sub(r"[ \t]*\d{1,3}%\|[^|\r\n]*\|[^\[\r\n]*\[[^\]\r\n]*\][ \t]*", "", buf.getvalue())
        rest = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
        if rest:
            sys.stderr.write("\n".join(rest) + "\n")


def _per_class(vals) -> np.ndarray:
    """shap's output as (patients, features, classes) floats (older shap: one array per class)."""
    if isinstance(vals, list):
        vals = np.stack(vals, axis=-1)
    return np.asarray(vals, dtype=np.float64)


def check_attributions(a, n: int, J: int, K: int, name: str) -> np.ndarray:
    """An explainer's result as a float (n, J, K) array, or a ValueError naming the explainer."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (n, J, K):
        raise ValueError(
            f"explainer {name!r} returned shape {a.shape}; expected (patients, columns, classes) = {(n, J, K)}"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"explainer {name!r} returned {int((~np.isfinite(a)).sum())} non-finite attribution(s)")
    return a


class Explainer:
    """A built-in attribution method: ``explainer(model, X)`` -> (patients, columns, classes).

    Attributes
    ----------
    name : str
    budget : str
        Its sample budget in words ("" when it has none).
    """

    name = ""
    budget = ""
    #: what the leaderboard calls its repeats ("mean of 10 null models")
    repeat_unit = "runs"

    def __init__(self, background: pd.DataFrame | None = None, *, random_state: int = 0, **opts):
        self.background = background
        self.random_state = int(random_state)
        self.opts = opts
        self._bg_cache: dict = {}

    def supports(self, view: ModelView) -> bool:
        return True

    def repeats(self) -> list["Explainer"]:
        """The independent runs whose scores :func:`ml.benchmark_explainers` averages (itself, once).

        A floor built on a random null model overrides this, so that its score is a mean over
        null models whose standard error counts the spread between them, not one draw
        (:func:`ml.xai.metrics.pooled_agreement`).
        """
        return [self]

    def _seeded_copies(self, n: int, **kwargs) -> list["Explainer"]:
        """Itself and ``n - 1`` copies of its class (``kwargs`` passed on) with seeds derived from its own."""
        if n > 1 and self.random_state < 0:
            raise ValueError(f"random_state must be >= 0 to seed {n} runs of {self.name!r}, got {self.random_state}")
        seeds = [int(np.random.SeedSequence([self.random_state, r]).generate_state(1)[0]) for r in range(1, n)]
        # type(self): a subclass's own explain applies to every run, not only the first
        return [self] + [type(self)(self.background, random_state=seed, **kwargs, **self.opts) for seed in seeds]

    def __call__(self, model, X: pd.DataFrame) -> np.ndarray:
        view = view_of(model)
        if not self.supports(view):
            raise ValueError(f"explainer {self.name!r} does not apply to model {view.name!r}")
        checked = view.check(X)
        return self.explain(view, checked)

    def explain(self, view: ModelView, checked: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _background(self, view: ModelView, size: int | None = None):
        """(encoded, code-space) background matrices, the first ``size`` rows."""
        if self.background is None:
            raise ValueError(f"explainer {self.name!r} needs a background sample of patients")
        key = (id(view.encoder), size)
        if key not in self._bg_cache:
            bg = view.check(self.background)
            if size is not None:
                bg = bg.iloc[:size]
            self._bg_cache[key] = (view.encoder.transform(bg), to_codes(view.encoder, bg))
        return self._bg_cache[key]


def _to_contract(view: ModelView, raw: np.ndarray) -> np.ndarray:
    return np.einsum("nfk,fj->njk", raw, view.encoder.source_matrix())


class TreePath(Explainer):
    name = "treeshap_path"

    def supports(self, view):
        return view.tree is not None

    def explain(self, view, checked):
        import shap

        with _quiet():
            ex = shap.TreeExplainer(view.tree, feature_perturbation="tree_path_dependent", model_output="raw")
            X = view.encoder.transform(checked)
            raw = _per_class(ex.shap_values(X, check_additivity=False, approximate=bool(self.opts.get("approximate"))))
        return _to_contract(view, raw)


class Saabas(TreePath):
    name = "saabas"

    def __init__(self, *args, **opts):
        super().__init__(*args, approximate=True, **opts)


class TreeInterventional(Explainer):
    name = "treeshap_interventional"

    def supports(self, view):
        return view.tree is not None

    def explain(self, view, checked):
        import shap

        size = self.opts.get("background_size", 100)
        self.budget = f"{size} background patients"
        bg, _ = self._background(view, size)
        with _quiet(), _no_progress_bar():
            ex = shap.TreeExplainer(view.tree, data=bg, feature_perturbation="interventional", model_output="raw")
            raw = _per_class(ex.shap_values(view.encoder.transform(checked), check_additivity=False))
        return _to_contract(view, raw)


def additive_shapley(view: ModelView, Z: np.ndarray, background_codes: np.ndarray, chunk: int = 20) -> np.ndarray:
    """Exact interventional Shapley values of a model whose output is additive over columns.

    For ``f(x) = b + Σ_j g_j(x_j)`` the interventional Shapley value of column j against a
    background B is ``g_j(x_j) - mean_B g_j(b_j) = mean_B [f(x) - f(x with column j := b_j)]``,
    whatever the other columns (Lundberg & Lee 2017; Janzing et al. 2020). Cost: patients ×
    columns × background evaluations of the model, in chunks of ``chunk`` patients.
    Returns (patients, columns, classes).
    """
    n, J = Z.shape
    B = len(background_codes)
    out = np.empty((n, J, len(view.classes)))
    fx = view.output_codes(Z)
    for s in range(0, n, chunk):
        z = Z[s : s + chunk]
        m = len(z)
        rows = np.repeat(np.repeat(z[:, None, :], J, axis=1)[:, :, None, :], B, axis=2)  # (m, J, B, J)
        jj = np.arange(J)
        rows[:, jj, :, jj] = background_codes.T[:, None, :]
        f = view.output_codes(rows.reshape(-1, J)).reshape(m, J, B, -1).mean(axis=2)
        out[s : s + m] = fx[s : s + m, None, :] - f
    return out


class AdditiveExact(Explainer):
    name = "exact_additive"

    def supports(self, view):
        return view.additive

    def explain(self, view, checked):
        size = self.opts.get("background_size", 100)
        self.budget = f"{size} background patients"
        _, bgz = self._background(view, size)
        return additive_shapley(view, to_codes(view.encoder, checked), bgz)


class Kernel(Explainer):
    name = "kernelshap"

    def explain(self, view, checked):
        import shap

        nsamples, size = self.opts.get("nsamples", 256), self.opts.get("background_size", 10)
        self.budget = f"{nsamples} coalitions x {size} background patients"
        _, bgz = self._background(view, size)
        with _quiet():
            with _seeded_global(self.random_state):
                ex = shap.KernelExplainer(view.output_codes, bgz)
                vals = ex.shap_values(to_codes(view.encoder, checked), nsamples=nsamples, l1_reg=False, silent=True)
        return _per_class(vals)


class Permutation(Explainer):
    name = "permutation"

    def explain(self, view, checked):
        import shap

        max_evals, size = self.opts.get("max_evals", 210), self.opts.get("background_size", 10)
        self.budget = f"{max_evals} evaluations x {size} background patients"
        _, bgz = self._background(view, size)
        with _quiet():
            with _seeded_global(self.random_state):
                ex = shap.PermutationExplainer(view.output_codes, shap.maskers.Independent(bgz, max_samples=size))
                # one model call per permutation (2 x columns + 1 rows): the booster has a fixed cost per call
                vals = ex(to_codes(view.encoder, checked), max_evals=max_evals, batch_size=2 * len(view.encoder.columns) + 1,
                          silent=True).values
        return _per_class(vals)


class Lime(Explainer):
    """LIME over contract columns, every column a categorical feature of LIME.

    Continuous columns are cut at the background's quartiles and "not recorded" is a level of
    its own, so LIME never sees a NaN; a perturbed row keeps the patient's own value where its
    level is the patient's, and otherwise takes the median of the background within the drawn
    level (NaN for "not recorded"). The per-class weights of LIME's ridge surrogate (all 52
    features, ``feature_selection="none"``) are the attributions.
    """

    name = "lime"

    def _levels(self, view):
        _, bgz = self._background(view, self.opts.get("background_size", 1000))
        kinds, edges, reps = [], {}, {}
        for j, c in enumerate(view.encoder.columns):
            col = bgz[:, j]
            rec = col[~np.isnan(col)]
            if c in view.encoder.levels or np.isin(rec, (0.0, 1.0)).all():
                kinds.append("code")
            else:
                kinds.append("bin")
                e = np.unique(np.quantile(rec, [0.25, 0.5, 0.75])) if len(rec) else np.array([])
                edges[j] = e
                b = np.digitize(rec, e)
                reps[j] = np.array([np.median(rec[b == i]) if (b == i).any() else np.nan for i in range(len(e) + 1)])
        return bgz, kinds, edges, reps

    def _to_lime(self, Z, kinds, edges):
        L = np.empty_like(Z)
        for j, kind in enumerate(kinds):
            z = Z[:, j]
            if kind == "code":
                L[:, j] = np.where(np.isnan(z), -1, z)
            else:
                L[:, j] = np.where(np.isnan(z), -1, np.digitize(np.nan_to_num(z), edges[j]))
        return L

    def _from_lime(self, L, z_row, l_row, kinds, reps):
        Z = np.empty_like(L)
        for j, kind in enumerate(kinds):
            lv = L[:, j]
            if kind == "code":
                other = np.where(lv < 0, np.nan, lv)
            else:
                other = np.where(lv < 0, np.nan, reps[j][np.clip(lv, 0, len(reps[j]) - 1).astype(int)])
            Z[:, j] = np.where(lv == l_row[j], z_row[j], other)
        return Z

    def explain(self, view, checked):
        from lime.lime_tabular import LimeTabularExplainer

        n_samples = self.opts.get("num_samples", 1000)
        self.budget = f"{n_samples} samples"
        bgz, kinds, edges, reps = self._levels(view)
        J, K = bgz.shape[1], len(view.classes)
        lime = LimeTabularExplainer(
            self._to_lime(bgz, kinds, edges), mode="classification", categorical_features=list(range(J)),
            feature_names=list(view.encoder.columns), discretize_continuous=False, random_state=self.random_state,
        )
        Z = to_codes(view.encoder, checked)
        L = self._to_lime(Z, kinds, edges)
        out = np.zeros((len(Z), J, K))
        with _quiet():
            # LIME explains one patient per call: this loop is the library's interface, not a hot path of ours
            for i in range(len(Z)):
                fn = lambda rows, i=i: view.output_codes(self._from_lime(rows, Z[i], L[i], kinds, reps))  # noqa: E731
                ex = lime.explain_instance(L[i], fn, labels=range(K), num_features=J, num_samples=n_samples)
                for k in range(K):
                    for j, wgt in ex.as_map()[k]:
                        out[i, j, k] = wgt
        return out


class Occlusion(Explainer):
    name = "occlusion"
    budget = "1 evaluation per column"

    def explain(self, view, checked):
        Z = to_codes(view.encoder, checked)
        n, J = Z.shape
        fx = view.output_codes(Z)
        rows = np.repeat(Z[:, None, :], J, axis=1)
        rows[:, np.arange(J), np.arange(J)] = np.nan
        return fx[:, None, :] - view.output_codes(rows.reshape(n * J, J)).reshape(n, J, -1)


class RandomFloor(Explainer):
    """Independent standard-normal attributions for every patient, column and class.

    With ``draws`` R > 1, :meth:`repeats` gives R floors with derived seeds (the first is this
    one), pooled by the leaderboard as the permuted-label floor's null models are.
    """

    name = "random"
    repeat_unit = "draws"

    def __init__(self, background=None, *, draws: int = 1, **kw):
        super().__init__(background, **kw)
        self.draws = check_repeats(draws, "draws", self.repeat_unit)

    def repeats(self):
        return self._seeded_copies(self.draws)

    def explain(self, view, checked):
        rng = np.random.default_rng(self.random_state)
        return rng.standard_normal((len(checked), len(view.encoder.columns), len(view.classes)))


class PermutedLabelFloor(Explainer):
    """A model of the same kind trained on ``train`` with permuted labels, explained exactly.

    With ``refits`` R > 1, :meth:`repeats` gives R floors, each on its own permutation and seed
    (the first is this one), and the leaderboard reports the mean of their scores with a
    standard error that adds the spread between null models to the error over patients
    (:func:`ml.xai.metrics.pooled_agreement`): one null model's agreement moves by a few
    hundredths from one permutation to the next, more than its standard error over patients.
    """

    name = "permuted_label"
    repeat_unit = "null models"

    def __init__(self, background=None, *, train: pd.DataFrame | None = None, refits: int = 1, **kw):
        super().__init__(background, **kw)
        self.train = train
        self.refits = check_repeats(refits, "refits", self.repeat_unit)
        self._null: dict = {}

    def repeats(self):
        return self._seeded_copies(self.refits, train=self.train)

    def explain(self, view, checked):
        if self.train is None or LABEL not in self.train.columns:
            raise ValueError("the permuted-label floor needs a labelled training cohort: PermutedLabelFloor(train=...), or "
                             "train_size > 0 in ml.benchmark_explainers (its patients are drawn from the cohort)")
        if view.name not in self._null:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="openmp"):
                self._null[view.name] = refit_permuted(view, self.train, np.random.default_rng(self.random_state))
        null = self._null[view.name]
        if null.tree is not None:
            self.budget = "TreeSHAP path-dependent of the null model"
            return TreePath().explain(null, checked)
        if null.additive:
            self.budget = "exact additive Shapley of the null model"
            return AdditiveExact(self.background, **self.opts).explain(null, checked)
        self.budget = "occlusion of the null model"
        return Occlusion().explain(null, checked)


#: the most null models a floor may average (each trains a model)
MAX_REFITS = 100


def check_repeats(value, name: str, unit: str) -> int:
    """A number of runs of a floor (its ``unit``: null models, draws), from 1 to :data:`MAX_REFITS`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_REFITS:
        raise ValueError(f"{name} must be a whole number of {unit} from 1 to {MAX_REFITS}, got {value!r}")
    return int(value)


def builtin_explainers(
    background: pd.DataFrame,
    train: pd.DataFrame | None = None,
    *,
    random_state: int = 0,
    kernel_samples: int = 256,
    permutation_evals: int = 210,
    lime_samples: int = 1000,
    agnostic_background: int = 10,
    exact_background: int = 100,
    null_refits: int = 1,
    random_draws: int = 1,
) -> dict[str, Explainer]:
    """The built-in explainers, by name, sharing one background sample.

    Parameters
    ----------
    background : pandas.DataFrame
        Patients (contract columns) drawn apart from those explained: the interventional
        background (first ``exact_background`` rows), the model-agnostic explainers' background
        (first ``agnostic_background`` rows) and LIME's level frequencies (up to 1,000 rows).
    train : pandas.DataFrame, optional
        Labelled patients for the permuted-label floor's null model.
    kernel_samples, permutation_evals, lime_samples : int
        Sample budgets: KernelSHAP's coalitions, the permutation explainer's model evaluations
        (``max_evals``; one antithetic permutation of 52 columns costs 2 × 52 + 1), LIME's
        perturbed samples; each model evaluation of the first two averages over the
        ``agnostic_background`` patients.
    null_refits : int
        Null models of the permuted-label floor whose scores are averaged (see
        :class:`PermutedLabelFloor`).
    random_draws : int
        Draws of the random floor whose scores are averaged (see :class:`RandomFloor`).
    random_state : int
        Seeds every sampling explainer and the floors.
    """
    s = random_state
    null_refits = check_repeats(null_refits, "null_refits", PermutedLabelFloor.repeat_unit)
    random_draws = check_repeats(random_draws, "random_draws", RandomFloor.repeat_unit)
    out = [
        TreePath(background, random_state=s),
        TreeInterventional(background, random_state=s, background_size=exact_background),
        Saabas(background, random_state=s),
        AdditiveExact(background, random_state=s, background_size=exact_background),
        Kernel(background, random_state=s, nsamples=kernel_samples, background_size=agnostic_background),
        Permutation(background, random_state=s, max_evals=permutation_evals, background_size=agnostic_background),
        Lime(background, random_state=s, num_samples=lime_samples),
        Occlusion(background, random_state=s),
        RandomFloor(background, random_state=s, draws=random_draws),
        PermutedLabelFloor(background, train=train, random_state=s, refits=null_refits, background_size=exact_background),
    ]
    return {e.name: e for e in out}
