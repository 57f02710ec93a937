"""R2KD's distances against values computed independently in plain Python (no numpy/scipy):
the Eisen (absolute uncentred cosine) distance of rows and columns, Spearman with ordinal and
with average ranks for ties, the soft rank's agreement with the hard value and its gradient."""

from __future__ import annotations

import math

import pytest
import torch

from r2kd.losses import DEFAULT_SHARPNESS, probabilities, rank_distance, value_distance, value_term
from r2kd.soft_rank import _PairwiseSigmoidRank, hard_rank, soft_rank


def py_abs_cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return abs(dot) / (na * nb + 1e-8)


def py_eisen(rows_s: list[list[float]], rows_t: list[list[float]]) -> float:
    sims = [py_abs_cos(a, b) for a, b in zip(rows_s, rows_t)]
    return 1.0 - sum(sims) / len(sims)


def transpose(rows: list[list[float]]) -> list[list[float]]:
    return [list(col) for col in zip(*rows)]


def py_pearson(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    ca, cb = [x - ma for x in a], [y - mb for y in b]
    num = sum(x * y for x, y in zip(ca, cb))
    return num / math.sqrt(sum(x * x for x in ca) * sum(y * y for y in cb))


def py_ordinal_ranks(row: list[float]) -> list[float]:
    """1..n by value, ties in order of position (a stable double argsort)."""
    order = sorted(range(len(row)), key=lambda i: (row[i], i))
    ranks = [0.0] * len(row)
    for rank, i in enumerate(order, start=1):
        ranks[i] = float(rank)
    return ranks


def py_average_ranks(row: list[float]) -> list[float]:
    """1..n by value, tied values share the mean of their ranks (Spearman's convention)."""
    order = sorted(range(len(row)), key=lambda i: row[i])
    ranks = [0.0] * len(row)
    k = 0
    while k < len(order):
        j = k
        while j + 1 < len(order) and row[order[j + 1]] == row[order[k]]:
            j += 1
        for m in range(k, j + 1):
            ranks[order[m]] = (k + j) / 2 + 1
        k = j + 1
    return ranks


def py_spearman_distance(rows_s, rows_t, ranker) -> float:
    corr = [py_pearson(ranker(a), ranker(b)) for a, b in zip(rows_s, rows_t)]
    return 1.0 - sum(corr) / len(corr)


def as_lists(x: torch.Tensor) -> list[list[float]]:
    return x.double().tolist()


@pytest.fixture
def probs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    z_t = torch.randn(6, 10, generator=gen) * 2
    z_s = 0.6 * z_t + torch.randn(6, 10, generator=gen)
    return probabilities(z_s, 4.0), probabilities(z_t, 4.0)


def test_value_distance_of_rows_and_columns(probs) -> None:
    p_s, p_t = probs
    rows = py_eisen(as_lists(p_s), as_lists(p_t))
    cols = py_eisen(transpose(as_lists(p_s)), transpose(as_lists(p_t)))
    assert value_distance(p_s, p_t).item() == pytest.approx(rows, abs=1e-6)
    assert value_term(p_s, p_t, columns=False).item() == pytest.approx(rows, abs=1e-6)
    assert value_term(p_s, p_t).item() == pytest.approx(rows + cols, abs=1e-6)
    assert cols != pytest.approx(rows, abs=1e-4)  # the transposed term is a different number


def test_value_distance_uses_the_absolute_cosine() -> None:
    a = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0]])
    assert value_distance(a, -a).item() == pytest.approx(0.0, abs=1e-6)  # |cos| = 1
    b = torch.tensor([[2.0, -1.0, 0.0], [0.0, 1.0, 0.0]])  # orthogonal rows
    assert value_distance(a, b).item() == pytest.approx(1.0, abs=1e-6)


def test_hard_rank_distance_is_spearman_with_ordinal_ranks(probs) -> None:
    p_s, p_t = probs
    expected = py_spearman_distance(as_lists(p_s), as_lists(p_t), py_ordinal_ranks)
    assert rank_distance(p_s, p_t, "hard").item() == pytest.approx(expected, abs=1e-5)


def test_hard_ranks_with_ties_are_the_stable_double_argsort() -> None:
    row = [0.2, 0.1, 0.2, 0.5, 0.1, 0.2]
    assert hard_rank(torch.tensor([row])).tolist() == [py_ordinal_ranks(row)]
    p_s = torch.tensor([row, [0.3, 0.3, 0.1, 0.1, 0.1, 0.1]])
    p_t = torch.tensor([[0.1, 0.1, 0.3, 0.2, 0.2, 0.1], [0.05, 0.4, 0.05, 0.2, 0.2, 0.1]])
    expected = py_spearman_distance(as_lists(p_s), as_lists(p_t), py_ordinal_ranks)
    assert rank_distance(p_s, p_t, "hard").item() == pytest.approx(expected, abs=1e-5)


def test_soft_ranks_give_ties_their_average_rank() -> None:
    row = [0.2, 0.1, 0.2, 0.5, 0.1, 0.2]
    soft = soft_rank(torch.tensor([row]), sharpness=1e4)
    assert soft[0].tolist() == pytest.approx(py_average_ranks(row), abs=1e-4)
    p_s = torch.tensor([row, [0.3, 0.3, 0.1, 0.1, 0.1, 0.1]])
    p_t = torch.tensor([[0.1, 0.1, 0.3, 0.2, 0.2, 0.1], [0.05, 0.4, 0.05, 0.2, 0.2, 0.1]])
    expected = py_spearman_distance(as_lists(p_s), as_lists(p_t), py_average_ranks)
    assert rank_distance(p_s, p_t, "soft", 1e4).item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("classes", "tol"), [(10, 1e-2), (100, 1e-3), (400, 1e-3)])
def test_soft_matches_hard_at_the_default_sharpness(classes: int, tol: float) -> None:
    """The gap comes from near-tied pairs, so it shrinks with the number of classes."""
    gen = torch.Generator().manual_seed(classes)
    z_t = torch.randn(32, classes, generator=gen) * 2
    z_t[torch.arange(32), torch.randint(0, classes, (32,), generator=gen)] += 8
    for noise in (0.1, 0.3, 1.0, 3.0):  # close to poor students
        z_s = 0.7 * z_t + noise * torch.randn(32, classes, generator=gen)
        p_s, p_t = probabilities(z_s, 4.0), probabilities(z_t, 4.0)
        hard = rank_distance(p_s, p_t, "hard").item()
        soft = rank_distance(p_s, p_t, "soft").item()
        assert abs(soft - hard) < tol, (noise, soft, hard)


def test_soft_rank_distance_passes_gradient_to_the_student_only(probs) -> None:
    p_s, p_t = probs
    p_s = p_s.clone().requires_grad_(True)
    loss = rank_distance(p_s, p_t, "soft")
    loss.backward()
    assert p_s.grad is not None and torch.isfinite(p_s.grad).all()
    assert p_s.grad.abs().sum() > 0
    hard = rank_distance(p_s, p_t, "hard")
    assert not hard.requires_grad  # the released value carries no gradient


def test_pairwise_sigmoid_rank_gradient_is_exact() -> None:
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    for chunk in (1, 2, 5):  # chunks of rows must not change the result
        assert torch.autograd.gradcheck(
            lambda v, c=chunk: _PairwiseSigmoidRank.apply(v, 3.0, c), (x,)
        )
    full = _PairwiseSigmoidRank.apply(x, 3.0, 5)
    naive = torch.sigmoid(3.0 * (x.unsqueeze(2) - x.unsqueeze(1))).sum(2) + 0.5
    assert torch.allclose(full, naive)


def test_descending_the_soft_rank_raises_the_hard_spearman() -> None:
    gen = torch.Generator().manual_seed(1)
    p_t = probabilities(torch.randn(8, 50, generator=gen) * 3, 4.0)
    logits = torch.randn(8, 50, generator=gen).requires_grad_(True)
    before = rank_distance(probabilities(logits, 4.0), p_t, "hard").item()
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(60):
        opt.zero_grad()
        rank_distance(probabilities(logits, 4.0), p_t, "soft", DEFAULT_SHARPNESS).backward()
        opt.step()
    after = rank_distance(probabilities(logits, 4.0), p_t, "hard").item()
    assert before > 0.6 and after < 0.1 * before, (before, after)


def test_soft_rank_chunks_bound_memory_and_agree() -> None:
    x = torch.randn(33, 20)
    whole = soft_rank(x, 50.0)
    chunked = soft_rank(x, 50.0, chunk_elements=400)  # one row at a time
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_unknown_rank_mode_is_refused(probs) -> None:
    with pytest.raises(ValueError, match="rank mode 'fast'"):
        rank_distance(*probs, mode="fast")


def test_the_soft_distance_is_not_always_the_smaller() -> None:
    """README (soft rank): the soft-hard gap has no fixed sign. On the `soft_rank` bench's
    (64, 100) pair the soft distance is the larger, by less than 1e-3."""
    gen = torch.Generator().manual_seed(0)
    z_t = torch.randn(64, 100, generator=gen) * 2
    z_s = 0.7 * z_t + torch.randn(64, 100, generator=gen)
    p_s, p_t = probabilities(z_s, 4.0), probabilities(z_t, 4.0)
    gap = (rank_distance(p_s, p_t, "soft") - rank_distance(p_s, p_t, "hard")).item()
    assert 0 < gap < 1e-3
