import math

import numpy as np
import pytest

from analysis.metrics.lognorm import DEFAULT_P_GRID, chosen_score, select_lognorm_p
from analysis.metrics.scores import compute_score, get_score_info, list_scores
from analysis.metrics.selective import aurc

LOG3 = math.log(3.0)


def test_registry_lists_scores():
    assert list_scores() == ["lognorm", "max_logit", "msp", "neg_entropy"]
    assert [h.name for h in get_score_info("lognorm").hparams] == ["p"]


def test_msp_max_logit_neg_entropy_hand_computed():
    z = [[0.0, LOG3]]
    assert compute_score("msp", z)[0] == pytest.approx(0.75)
    assert compute_score("max_logit", z)[0] == pytest.approx(LOG3)
    assert compute_score("neg_entropy", z)[0] == pytest.approx(0.75 * math.log(0.75) + 0.25 * math.log(0.25))


def test_msp_saturation_is_kept_apart_in_float64():
    s = compute_score("msp", [[30.0, 0.0], [40.0, 0.0]])
    assert s[0] < s[1] <= 1.0


@pytest.mark.parametrize(("p", "expected"), [(0, 1.0), (1, 0.5), (2, 1 / math.sqrt(2)), (3, 2 ** (-1 / 3))])
def test_lognorm_hand_computed(p, expected):
    # centred logits of [1, 2, 3] are [-1, 0, 1]
    assert compute_score("lognorm", [[1.0, 2.0, 3.0]], p=p)[0] == pytest.approx(expected)


def test_lognorm_all_equal_logits_score_zero():
    np.testing.assert_array_equal(compute_score("lognorm", [[2.0, 2.0, 2.0]], p=2), [0.0])
    np.testing.assert_array_equal(compute_score("lognorm", [[2.0, 2.0, 2.0]], p=0), [0.0])


def test_lognorm_scale_invariant_and_no_overflow_for_large_p():
    z = np.array([[1.0, 0.0, 0.0], [0.3, -2.0, 5.0]])
    for p in (1, 5, 9):
        np.testing.assert_allclose(compute_score("lognorm", z * 1e40, p=p), compute_score("lognorm", z, p=p))


def test_lognorm_p0_is_centred_max_logit_not_raw_max_logit():
    z = [[5.0, 4.0, 4.0], [4.0, 0.0, 0.0]]
    # raw max logit prefers sample 0; centred (5 - 13/3 = 2/3 vs 4 - 4/3 = 8/3) prefers sample 1
    np.testing.assert_allclose(compute_score("lognorm", z, p=0), [2 / 3, 8 / 3])
    assert compute_score("max_logit", z)[0] > compute_score("max_logit", z)[1]


def test_shift_invariance_except_max_logit():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 6))
    for name, kw in (("msp", {}), ("neg_entropy", {}), ("lognorm", {"p": 4})):
        np.testing.assert_allclose(
            compute_score(name, z + 7.0, **kw), compute_score(name, z, **kw), atol=1e-12
        )


def test_score_bad_input():
    with pytest.raises(ValueError, match="unknown confidence score 'foo'; known: lognorm"):
        compute_score("foo", [[0.0, 1.0]])
    with pytest.raises(ValueError, match="lognorm.p"):
        compute_score("lognorm", [[0.0, 1.0]], p=-1)
    with pytest.raises(ValueError, match="lognorm.q"):
        compute_score("lognorm", [[0.0, 1.0]], q=2)
    with pytest.raises(ValueError, match="logits"):
        compute_score("msp", [[0.0, float("nan")]])


def _ls_like_validation(n=400, k=10, seed=0):
    """Wrong predictions have large, two-peaked logits (high MSP); right ones small, one-peaked logits.

    MSP ranks the errors first, the normalised max logit (p >= 1) ranks them last.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 0.05, size=(n, k))
    y = np.zeros(n, dtype=np.int64)
    wrong = np.arange(n) < n // 4
    z[wrong, 1] += 10.0
    z[wrong, 0] += 9.0
    z[~wrong, 0] += 1.5
    return z, y


def test_lognorm_chosen_when_it_beats_msp():
    z, y = _ls_like_validation()
    choice = select_lognorm_p(z, y)
    assert choice.p is not None and choice.p >= 1
    assert set(choice.grid_aurc) == set(DEFAULT_P_GRID)
    assert choice.val_aurc == min(choice.grid_aurc.values()) < choice.msp_val_aurc
    correct = z.argmax(1) == y
    assert choice.val_aurc == pytest.approx(aurc(chosen_score(z, choice.p), correct))
    assert choice.msp_val_aurc == pytest.approx(aurc(compute_score("msp", z), correct))


def test_msp_kept_when_no_p_beats_it():
    # all correct: every score has AURC 0, none strictly better than MSP
    z = np.random.default_rng(0).normal(size=(50, 4))
    y = z.argmax(1)
    choice = select_lognorm_p(z, y)
    assert choice.p is None and choice.fallback
    assert choice.val_aurc == choice.msp_val_aurc == 0.0


def test_msp_kept_when_msp_is_perfect():
    # MSP ranks perfectly; the grid can at best tie
    z = np.array([[4.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.2, 0.0]])
    y = np.array([0, 0, 0, 0])
    assert select_lognorm_p(z, y).p is None


def test_restricted_grid():
    z, y = _ls_like_validation()
    assert select_lognorm_p(z, y, grid=(3.0,)).p == 3.0
    assert select_lognorm_p(z, y, grid=(0.0,)).p is None  # p=0 is not scale-free and loses to MSP here


def test_equal_grid_aurc_picks_smallest_p():
    # two classes: centred logits are [a, -a], so every p >= 1 gives the same constant score (all tied);
    # errors carry the largest margins, so MSP (and p = 0, which ranks like it) does worse than a constant
    margins = np.array([4.0, 3.0, 0.5, 0.4, 0.3, 0.2])
    z = np.stack([margins, np.zeros(6)], axis=1)
    y = np.array([1, 1, 0, 0, 0, 0])
    choice = select_lognorm_p(z, y)
    assert len({choice.grid_aurc[p] for p in DEFAULT_P_GRID if p >= 1}) == 1
    assert choice.p == 1.0
    assert select_lognorm_p(z, y, grid=(5.0, 3.0)).p == 3.0


def test_chosen_score_fallback_accepts_none_and_nan():
    z = [[0.0, 1.0], [2.0, 0.0]]
    np.testing.assert_array_equal(chosen_score(z, None), compute_score("msp", z))
    np.testing.assert_array_equal(chosen_score(z, math.nan), compute_score("msp", z))
    np.testing.assert_array_equal(chosen_score(z, 2.0), compute_score("lognorm", z, p=2.0))


def test_select_bad_input():
    with pytest.raises(ValueError, match="val_labels"):
        select_lognorm_p([[0.0, 1.0]], [5])
    with pytest.raises(ValueError, match="val_logits"):
        select_lognorm_p([[0.0, float("inf")]], [0])
    with pytest.raises(ValueError, match="grid"):
        select_lognorm_p([[0.0, 1.0]], [0], grid=())
    with pytest.raises(ValueError, match="grid"):
        select_lognorm_p([[0.0, 1.0]], [0], grid=(-1.0,))
