"""Metric math against numpy/scipy hand computations and closed forms (no networks)."""
import numpy as np
import pytest
import scipy.signal

from face_aging.metrics import age_identity as ai
from face_aging.metrics import checkerboard as cb
from face_aging.metrics.fid import activation_statistics, fid_from_activations, frechet_distance
from face_aging.metrics.inception_score import inception_score
from face_aging.metrics.kid import kid_from_activations, mmd2_unbiased, polynomial_kernel


# ---------------------------------------------------------------- FID
def test_fid_of_a_set_with_itself_is_zero():
    acts = np.random.default_rng(0).normal(size=(300, 24)) * 3 + 1
    assert abs(fid_from_activations(acts, acts)) < 1e-6


def test_frechet_distance_matches_closed_form_for_full_covariances():
    rng = np.random.default_rng(1)
    d = 6
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # Independent route: Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2), via eigh only.
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_between_gaussian_samples_matches_closed_form_within_sampling_error():
    rng = np.random.default_rng(2)
    n, var1, var2 = 40000, np.array([1.0, 4.0, 0.25, 2.0]), np.array([2.0, 1.0, 1.0, 2.0])
    mu1, mu2 = np.array([0.0, 1.0, 0.0, -1.0]), np.array([0.5, 0.0, 0.0, -1.0])
    x = mu1 + rng.normal(size=(n, 4)) * np.sqrt(var1)
    y = mu2 + rng.normal(size=(n, 4)) * np.sqrt(var2)
    # Diagonal covariances commute: FID = |dmu|^2 + sum (sqrt(v1) - sqrt(v2))^2 = 2.5 here.
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert exact == pytest.approx(1.25 + (np.sqrt(2) - 1) ** 2 + 1 + 0.25 + 0, rel=1e-12)
    assert fid_from_activations(x, y) == pytest.approx(exact, abs=0.05)


def test_fid_statistics_are_the_unbiased_ones_and_need_two_samples():
    acts = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = activation_statistics(acts)
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, [[4.0, 7.0], [7.0, 13.0]])  # divided by N - 1 = 2
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_activations(acts[:1], acts)


# ---------------------------------------------------------------- KID
def _exact_mmd2(points_p, p, points_q, q):
    return (p @ polynomial_kernel(points_p, points_p) @ p + q @ polynomial_kernel(points_q, points_q) @ q
            - 2 * p @ polynomial_kernel(points_p, points_q) @ q)


def test_polynomial_kernel_and_unbiased_mmd_match_hand_loops():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / 12
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / 20
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    # Sets smaller than the subset size: one subset, the whole sets.
    result = kid_from_activations(x, y)
    assert result["kid"] == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert (result["num_subsets"], result["subset_size_1"], result["subset_size_2"]) == (1, 5, 4)


@pytest.mark.parametrize("same", [False, True])
def test_kid_estimator_is_unbiased_on_discrete_distributions(same):
    rng = np.random.default_rng(4)
    points_p = np.array([[0.0, 1.0, 2.0], [1.0, -1.0, 0.0], [2.0, 2.0, 1.0], [-1.0, 0.0, 1.0]])
    p = np.array([0.1, 0.2, 0.3, 0.4])
    points_q, q = (points_p, p) if same else (points_p + [0.5, 0.0, -0.5], np.array([0.4, 0.3, 0.2, 0.1]))
    exact = _exact_mmd2(points_p, p, points_q, q)
    if same:
        assert abs(exact) < 1e-9
    draws, m = 4000, 4
    unbiased, biased = np.empty(draws), np.empty(draws)
    for t in range(draws):
        x = points_p[rng.choice(4, m, p=p)]
        y = points_q[rng.choice(4, m, p=q)]
        unbiased[t] = mmd2_unbiased(x, y)
        biased[t] = (polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean()
                     - 2 * polynomial_kernel(x, y).mean())
    se = unbiased.std() / np.sqrt(draws)
    assert abs(unbiased.mean() - exact) < 4 * se
    # The V-statistic (diagonal kept) is visibly biased at m = 4: the test can tell them apart.
    assert biased.mean() - exact > 10 * se


def test_kid_subsets_average_unbiased_estimates():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 8)), rng.normal(size=(50, 8)) + 0.3
    result = kid_from_activations(x, y, num_subsets=7, max_subset_size=20, seed=11)
    sub = np.random.default_rng(11)
    values = [mmd2_unbiased(x[sub.choice(60, 20, replace=False)], y[sub.choice(50, 20, replace=False)])
              for _ in range(7)]
    assert result["kid"] == pytest.approx(np.mean(values), rel=1e-12)
    assert result["kid_std"] == pytest.approx(np.std(values), rel=1e-12)


# ---------------------------------------------------------------- IS
def test_inception_score_is_one_for_identical_predictions():
    probs = np.tile([0.2, 0.5, 0.3], (40, 1))
    mean, std = inception_score(probs, splits=4)
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_equals_class_count_for_confident_balanced_predictions():
    classes = 7
    probs = np.tile(np.eye(classes), (10, 1))  # every split of 7 rows holds each class once
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(classes, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    # Unbalanced (two classes, 3:1): exp(entropy of the marginal).
    probs = np.repeat(np.eye(2), [30, 10], axis=0)
    expected = np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    assert inception_score(probs, splits=1)[0] == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- tables
def test_age_to_group_boundaries():
    ages = [0, 20, 20.4, 21, 30, 31, 40, 41, 50, 50.5, 51, 80]
    np.testing.assert_array_equal(ai.age_to_group(ages), [0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 4, 4])
    assert ai.group_names() == ["<=20", "21-30", "31-40", "41-50", "51+"]
    np.testing.assert_array_equal(ai.age_to_group([10, 30, 31], bins=[30]), [0, 0, 1])


def test_age_table_equals_hand_computation():
    generated = np.array([[15.0, 25.0, 35.0, 45.0, 55.0],
                          [25.0, 25.0, 45.0, 45.0, 45.0]])
    inputs = np.array([20.0, 30.0])
    real = [np.array([10.0, 30.0]), np.array([22.0]), np.array([]), np.array([45.0, 52.0, 60.0]),
            np.array([70.0])]
    rows = ai.age_table(generated, inputs, real)
    assert [r["n"] for r in rows] == [2] * 5
    assert [r["mean_age"] for r in rows] == [20.0, 25.0, 40.0, 45.0, 50.0]
    assert [r["in_group"] for r in rows] == [0.5, 1.0, 0.5, 1.0, 0.5]
    assert rows[0]["std_age"] == pytest.approx(5.0)
    # change: mean(output - input) per group
    assert [r["mean_age_change"] for r in rows] == [-5.0, 0.0, 15.0, 20.0, 25.0]
    assert [r["real_n"] for r in rows] == [2, 1, 0, 3, 1]
    assert rows[0]["real_in_group"] == 0.5 and rows[0]["real_mean_age"] == 20.0
    assert rows[2]["real_in_group"] is None and rows[2]["real_mean_age"] is None
    assert rows[3]["real_in_group"] == pytest.approx(1 / 3)
    assert rows[4]["real_in_group"] == 1.0
    with pytest.raises(ValueError, match=r"generated_ages must be \[N, 5\], got \(2, 4\)"):
        ai.age_table(generated[:, :4], inputs, real)


def test_identity_table_equals_hand_computation():
    inp = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = np.stack([inp,                                   # group 0: unchanged
                    np.array([[1.0, 0.5], [0.0, 2.0]]),    # group 1: distances 0.5, 1.0
                    np.array([[0.0, 1.0], [-1.0, 0.0]])],  # group 2: orthogonal, dist sqrt 2
                   axis=1)
    imp_a = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    imp_b = np.array([[0.0, 1.0], [1.0, 0.3], [0.0, 1.0]])
    table = ai.identity_table(inp, out, imp_a, imp_b, threshold=0.6, bins=[20, 40])
    g0, g1, g2 = table["groups"]
    assert (g0["mean_distance"], g0["mean_cosine"], g0["verified"]) == (0.0, 1.0, 1.0)
    assert g1["mean_distance"] == pytest.approx(0.75)
    assert g1["mean_cosine"] == pytest.approx((1 / np.sqrt(1.25) + 1.0) / 2)
    assert g1["verified"] == 0.5
    assert g2["mean_distance"] == pytest.approx(np.sqrt(2)) and g2["verified"] == 0.0
    assert g2["mean_cosine"] == pytest.approx(0.0)
    assert [g["name"] for g in table["groups"]] == ["<=20", "21-40", "41+"]
    imp = table["impostor"]
    assert imp["n"] == 3
    assert imp["mean_distance"] == pytest.approx((np.sqrt(2) + 0.3 + 2.0) / 3)
    assert imp["verified"] == pytest.approx(1 / 3)  # only the 0.3 pair is "the same person"


def test_impostor_pairs_are_distinct_faces():
    pairs = ai.impostor_pairs(6)
    assert len(pairs) == 15 and np.all(pairs[:, 0] < pairs[:, 1])
    sub = ai.impostor_pairs(100, max_pairs=50, seed=3)
    assert len(sub) == 50 and len({tuple(p) for p in sub}) == 50 and np.all(sub[:, 0] != sub[:, 1])


# ---------------------------------------------------------------- checkerboard score
def test_checkerboard_score_of_hand_made_patterns():
    n = 32
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    checker = 100 + 10 * (-1.0) ** (i + j)  # period 2 only, on a grey background (DC ignored)
    square_wave = 100 + 10 * np.where(j % 4 < 2, 1.0, -1.0)  # period 4: harmonics N/4, 3N/4
    # a checkerboard of amplitude 1 plus a slow cosine of amplitude 2: powers (N^2)^2 at one
    # frequency and 2 x (2 N^2 / 2)^2 at two, so the period-2 share is 1 / (1 + 2) = 1/3
    mixed = (-1.0) ** (i + j) + 2 * np.cos(2 * np.pi * 3 * i / n)
    rows = 100 + 10 * (-1.0) ** i  # every other row brighter: horizontal lines, period 2
    shares = cb.periodic_power_shares(np.stack([checker, square_wave, mixed, rows,
                                                np.full((n, n), 7.0)]))
    # [image, period (2, 4), direction (horizontal lines, vertical lines, diagonal)]
    np.testing.assert_allclose(shares, [[[0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]],
                                        [[0, 0, 1 / 3], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]],
                                        [[0, 0, 0], [0, 0, 0]]], atol=1e-12)
    # RGB is scored on its grey mean; the summary is the mean share per 10,000
    rgb = np.stack([np.stack([checker, checker, np.full((n, n), 50.0)], -1),
                    np.stack([square_wave] * 3, -1)])
    scores = cb.checkerboard_scores(rgb)
    assert scores == pytest.approx({"period_2": 5000.0, "period_4": 5000.0,
                                    "period_2_diagonal": 5000.0, "period_4_vertical_lines": 5000.0,
                                    **{f"period_{p}_{d}": 0.0 for p, d in (
                                        (2, "horizontal_lines"), (2, "vertical_lines"),
                                        (4, "horizontal_lines"), (4, "diagonal"))}})


def test_checkerboard_score_of_white_noise_is_the_share_of_frequencies():
    noise = np.random.default_rng(0).normal(size=(200, 64, 64))
    # flat spectrum: 3 of the 64^2 - 1 non-DC frequencies have period 2, 12 period 4
    expected = np.array([3, 12]) / (64 * 64 - 1)
    np.testing.assert_allclose(cb.periodic_power_shares(noise).sum(-1).mean(0), expected,
                               rtol=0.15)


def test_transposed_convolution_grid_scores_far_above_its_input():
    """A stride-2 3x3 transposed convolution of a smooth image prints the 1/2/4-tap grid; the
    nearest-neighbour upsampling + convolution (``--upsample=resize_conv``) does not."""
    rng = np.random.default_rng(1)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(4, 32, 32)), 1), 2)  # a random-walk surface
    kernel = np.ones((3, 3)) / 9
    deconv = np.zeros((4, 65, 65))
    for di in range(3):
        for dj in range(3):
            deconv[:, di:di + 64:2, dj:dj + 64:2] += kernel[di, dj] * smooth
    deconv = deconv[:, 1:65, 1:65]
    upsampled = smooth.repeat(2, 1).repeat(2, 2)
    resized = np.stack([scipy.signal.correlate2d(u, kernel, mode="same", boundary="symm")
                        for u in upsampled])
    # measured: 501 vs 4.4 per 10,000 (nearest-neighbour repetition alone has none at N/2)
    assert cb.checkerboard_scores(upsampled)["period_2"] == pytest.approx(0, abs=1e-9)
    assert cb.checkerboard_scores(deconv)["period_2"] > 50 * cb.checkerboard_scores(resized)[
        "period_2"] > 0
    # the transposed convolution's grid is a product of a pattern down and across, so it has a
    # diagonal part too (measured: 26 vs 0.001 per 10,000)
    assert cb.checkerboard_scores(deconv)["period_2_diagonal"] > 1e3 * cb.checkerboard_scores(
        resized)["period_2_diagonal"]


def test_checkerboard_score_refuses_sides_the_periods_do_not_divide():
    with pytest.raises(ValueError, match="not a multiple of the period 4"):
        cb.periodic_power_shares(np.zeros((1, 30, 30)))
    with pytest.raises(ValueError, match="square images"):
        cb.periodic_power_shares(np.zeros((1, 32, 16)))


def test_checkerboard_table_leaves_sides_the_periods_do_not_divide_blank():
    from face_aging.metrics.evaluation import checkerboard_table

    odd = checkerboard_table(np.zeros((2, 30, 30, 3), np.uint8), [np.zeros((2, 30, 30, 3))],
                             ["old"])
    assert list(odd["inputs"]) == cb.score_names()
    assert set(odd["inputs"].values()) == {None} and odd["groups"][0]["period_4_diagonal"] is None
    assert odd["groups"][0]["name"] == "old" and odd["groups"][0]["group"] == 0
    assert "30 px" in odd["note"]
    faces = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    table = checkerboard_table(faces, [faces, 255 - faces], ["a", "b"])
    assert table["inputs"] == cb.checkerboard_scores(faces)
    assert table["groups"][1]["period_2"] == pytest.approx(cb.checkerboard_scores(255 - faces)[
        "period_2"]) and table["groups"][1]["name"] == "b"
