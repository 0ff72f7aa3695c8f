"""ml.xai.explainers and ml.xai.models: each built-in explainer against an exact identity it must satisfy."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from data_gen import generate_cohort
from ml.xai import benchmark_explainers, logistic_regression, view_of
from ml.xai.explainers import (
    AdditiveExact,
    Kernel,
    Lime,
    Occlusion,
    Permutation,
    TreeInterventional,
    TreePath,
    additive_shapley,
)
from ml.xai.models import codes_to_encoded, to_codes


@pytest.fixture(scope="module")
def data():
    return generate_cohort(3_000, random_state=41), generate_cohort(200, random_state=42), generate_cohort(6, random_state=43)


@pytest.fixture(scope="module")
def lr(data):
    with threadpool_limits(limits=1):
        return logistic_regression().fit(data[0])


def test_code_space_round_trips_to_the_encoder(small_model, data):
    view = view_of(small_model)
    checked = view.check(data[1])
    np.testing.assert_array_equal(codes_to_encoded(view.encoder, to_codes(view.encoder, checked)), view.encoder.transform(checked))


def test_permutation_explainer_equals_the_closed_form_on_an_additive_model(lr, data):
    """On an additive model every order gives the same marginal contributions: shap's permutation
    explainer must return exactly the closed-form interventional Shapley values."""
    _, bg, X = data
    view = view_of(lr)
    perm = Permutation(bg, max_evals=210, background_size=10)(lr, X)
    closed = additive_shapley(view, to_codes(view.encoder, view.check(X)), to_codes(view.encoder, view.check(bg.iloc[:10])))
    np.testing.assert_allclose(perm, closed, atol=1e-8)
    assert np.abs(closed).max() > 0.5


def test_kernel_shap_equals_the_closed_form_on_an_additive_model(lr, data):
    """An additive game lies in KernelSHAP's linear model: its weighted regression recovers the exact
    values from any 256 coalitions of 52 players, so it must equal the closed form too."""
    _, bg, X = data
    view = view_of(lr)
    vals = Kernel(bg, nsamples=256, background_size=10)(lr, X)
    closed = additive_shapley(view, to_codes(view.encoder, view.check(X)), to_codes(view.encoder, view.check(bg.iloc[:10])))
    np.testing.assert_allclose(vals, closed, atol=1e-6)


def test_exact_additive_is_efficient_against_its_background(lr, data):
    _, bg, X = data
    view = view_of(lr)
    vals = AdditiveExact(bg, background_size=50)(lr, X)
    fx = view.output_codes(to_codes(view.encoder, view.check(X)))
    base = view.output_codes(to_codes(view.encoder, view.check(bg.iloc[:50]))).mean(axis=0)
    np.testing.assert_allclose(vals.sum(axis=1), fx - base, atol=1e-8)


def test_interventional_treeshap_summed_to_contract_columns_is_efficient(small_model, data):
    _, bg, X = data
    vals = TreeInterventional(bg, background_size=50)(small_model, X)
    assert vals.shape == (len(X), 52, 5)
    fx = small_model.decision_function(X)
    base = small_model.decision_function(bg.iloc[:50]).mean(axis=0)
    np.testing.assert_allclose(vals.sum(axis=1), fx - base, atol=1e-6)


def test_path_dependent_treeshap_is_mlexplain(small_model, data):
    from ml import explain

    X = data[2]
    np.testing.assert_allclose(TreePath()(small_model, X), explain(small_model, X).values, atol=1e-9)


def test_occlusion_is_zero_on_blank_columns_and_the_drop_elsewhere(lr, data):
    X = data[2]
    view = view_of(lr)
    vals = Occlusion()(lr, X)
    Z = to_codes(view.encoder, view.check(X))
    assert np.all(vals[np.isnan(Z)] == 0)
    i, j = np.argwhere(~np.isnan(Z))[0]
    z = Z[[i]].copy()
    z[0, j] = np.nan
    np.testing.assert_allclose(vals[i, j], view.output_codes(Z[[i]])[0] - view.output_codes(z)[0])


def test_lime_is_seeded(lr, data):
    _, bg, X = data
    a = Lime(bg, random_state=1, num_samples=200)(lr, X.iloc[:3])
    b = Lime(bg, random_state=1, num_samples=200)(lr, X.iloc[:3])
    c = Lime(bg, random_state=2, num_samples=200)(lr, X.iloc[:3])
    assert a.shape == (3, 52, 5) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_users_callable_is_scored_and_a_wrong_shape_is_named(lr, data):
    cohort = generate_cohort(400, random_state=44)

    def ones(model, X):
        return np.ones((len(X), 52, 5)) * np.arange(52)[None, :, None] * np.arange(5)[None, None, :]

    lb = benchmark_explainers(lr, cohort, explainers=[ones], ground_truth=("weight_of_evidence",), n_patients=20,
                              background_size=100, train_size=0, audit=False)
    assert set(lb.explainer) == {"ones"} and set(lb.n_patients) == {20}
    assert {"seconds_per_patient", "deletion_mean", "FA@10", "PRA"} <= set(lb.metric)
    with pytest.raises(ValueError, match="explainer 'bad' returned shape"):
        benchmark_explainers(lr, cohort, explainers={"bad": lambda m, X: np.zeros((len(X), 3))}, n_patients=20,
                             background_size=100, train_size=0, audit=False)
    with pytest.raises(ValueError, match="unknown ground truth"):
        benchmark_explainers(lr, cohort, explainers=[ones], ground_truth=("nope",), n_patients=20, background_size=100)
    with pytest.raises(ValueError, match="need at least 600"):
        benchmark_explainers(lr, cohort, explainers=[ones], n_patients=500, background_size=100)
    with pytest.raises(TypeError, match="ContractClassifier"):
        view_of(object())


def test_shaps_progress_bar_is_dropped_and_other_stderr_passes(capsys):
    import sys

    from ml.xai.explainers import _no_progress_bar

    # what shap's C++ interventional TreeSHAP writes when it runs > 10 s (seen in the 500-patient run)
    with _no_progress_bar():
        sys.stderr.write("\r 34%|=======             | 861/2500 [00:11<00:20]       ")
        sys.stderr.write("\r 96%|=================== | 2405/2500 [00:29<00:01]       ")
        sys.stderr.write("a real message\n")
    err = capsys.readouterr().err
    assert err == "a real message\n"


@pytest.mark.filterwarnings("ignore:explainer 'zero' gave every patient all-zero attributions")
def test_benchmark_arguments_are_checked_and_a_failing_explainer_is_named(small_model):
    cohort = generate_cohort(60, random_state=9)
    kw = dict(n_patients=4, background_size=10, train_size=0, n_permutations=2, audit=False)
    for bad, message in [({"n_patients": 0}, r"n_patients=0: give a whole number >= 2"),
                         ({"n_patients": 2.5}, r"n_patients=2.5"),
                         ({"random_state": -1}, r"random_state=-1"),
                         ({"deletion_k": 100}, r"deletion_k=100: at most the 52 columns"),
                         ({"ground_truth": None}, r"ground_truth: give one or more")]:
        with pytest.raises(ValueError, match=message):
            benchmark_explainers(small_model, cohort, explainers={"random": lambda m, X: np.zeros((len(X), 52, 5))}, **{**kw, **bad})
    with pytest.raises(TypeError, match="cohort must be a pandas DataFrame"):
        benchmark_explainers(small_model, cohort.to_numpy(), **kw)
    with pytest.raises(RuntimeError, match=r"explainer 'boom' failed on the booster: ZeroDivisionError"):
        benchmark_explainers(small_model, cohort, explainers={"boom": lambda m, X: 1 / 0}, **kw)
    # a single name is one ground truth, not its letters; a repeat is dropped
    lb = benchmark_explainers(small_model, cohort, explainers={"zero": lambda m, X: np.zeros((len(X), 52, 5))},
                              ground_truth="model", **kw)
    assert set(lb.ground_truth) == {"", "model"}
    lb2 = benchmark_explainers(small_model, cohort, explainers={"zero": lambda m, X: np.zeros((len(X), 52, 5))},
                               ground_truth=["model", "model"], **kw)
    assert len(lb2) == len(lb)


def test_repeats_budgets_and_all_zero_attributions_are_checked(small_model):
    from ml.xai.explainers import RandomFloor

    cohort = generate_cohort(60, random_state=10)
    kw = dict(n_patients=4, background_size=10, train_size=0, n_permutations=2, audit=False, ground_truth="model",
              budgets={"exact_background": 5})

    class NoRuns(RandomFloor):
        def repeats(self):
            return []

    class BadRuns(RandomFloor):
        def repeats(self):
            raise KeyError("seed")

    with pytest.raises(ValueError, match=r"explainer 'none': repeats\(\) must return a non-empty list of explainers, got \[\]"):
        benchmark_explainers(small_model, cohort, explainers={"none": NoRuns()}, **kw)
    with pytest.raises(RuntimeError, match=r"explainer 'bad': repeats\(\) failed: KeyError"):
        benchmark_explainers(small_model, cohort, explainers={"bad": BadRuns()}, **kw)
    with pytest.raises(ValueError, match=r"budgets: unknown key\(s\) \['kernel_sample'\]; the built-in explainers take"):
        benchmark_explainers(small_model, cohort, **{**kw, "budgets": {"kernel_sample": 10}})
    # a floor whose null model learnt nothing explains every patient with zeros: said, not hidden
    with pytest.warns(UserWarning, match=r"explainer 'zero' gave every patient all-zero attributions on the booster"):
        benchmark_explainers(small_model, cohort, explainers={"zero": lambda m, X: np.zeros((len(X), 52, 5))}, **kw)
