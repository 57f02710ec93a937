"""Tests for common.metrics against hand counts and independent numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.metrics import (
    CalibrationAccumulator,
    EvalAccumulator,
    _bin_index,
    correlation_disparity,
    correlation_matrix,
    expected_calibration_error,
    mean_entropy,
    nll,
    topk_accuracy,
    topk_correct,
)


def _random(n: int = 257, c: int = 10, scale: float = 3.0, seed: int = 0):
    """Fixed random logits (float64) and targets."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    targets = torch.randint(0, c, (n,), generator=g)
    return logits, targets


def _ece_reference(logits: np.ndarray, targets: np.ndarray, n_bins: int) -> float:
    """Guo et al. (2017) ECE written independently with numpy and a python loop over bins."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == targets).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.sum() == 0:
            continue
        ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


# ------------------------------------------------------------------------------------ top-k


def test_topk_hand_counts() -> None:
    logits = torch.tensor(
        [
            [0.1, 0.5, 0.2, 0.9],  # ranking 3, 1, 2, 0
            [2.0, 1.0, 0.0, -1.0],  # ranking 0, 1, 2, 3
            [0.0, 0.3, 0.2, 0.1],  # ranking 1, 2, 3, 0
        ]
    )
    targets = torch.tensor([1, 0, 0])  # ranks: 2nd, 1st, 4th
    assert topk_correct(logits, targets, ks=(1, 2, 3, 4)) == [1, 2, 2, 3]
    acc = topk_accuracy(logits, targets, ks=(1, 2))
    assert acc == pytest.approx([100 / 3, 200 / 3])


def test_topk_k_larger_than_classes_clamps() -> None:
    logits, targets = _random(n=50, c=3)
    assert topk_correct(logits, targets, ks=(3, 5, 100)) == [50, 50, 50]
    assert topk_accuracy(logits, targets, ks=(5,)) == [100.0]


def test_topk_returns_ints() -> None:
    logits, targets = _random()
    assert all(isinstance(c, int) for c in topk_correct(logits, targets))


# -------------------------------------------------------------------------------------- ECE


def test_ece_hand_computed_example_with_empty_bins() -> None:
    # Two classes; logits = log(prob) so the softmax gives these probabilities back.
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.55, 0.45]], dtype=torch.float64)
    targets = torch.tensor([0, 1, 1, 1])
    # 5 bins: (0.8, 1] holds conf 0.9 twice (one right) -> 2/4 * |0.5 - 0.9| = 0.2
    #         (0.6, 0.8] holds conf 0.7 (right)          -> 1/4 * |1 - 0.7|   = 0.075
    #         (0.4, 0.6] holds conf 0.55 (wrong)         -> 1/4 * |0 - 0.55|  = 0.1375
    #         (0, 0.2] and (0.2, 0.4] are empty          -> 0
    ece = expected_calibration_error(probs.log(), targets, n_bins=5)
    assert ece == pytest.approx(0.4125, abs=1e-12)
    assert ece == pytest.approx(_ece_reference(probs.log().numpy(), targets.numpy(), 5))


def test_ece_all_correct_confidence_one_is_zero() -> None:
    logits = torch.tensor([[100.0, 0.0], [0.0, 100.0], [100.0, -50.0]], dtype=torch.float64)
    targets = torch.tensor([0, 1, 0])
    assert expected_calibration_error(logits, targets) == 0.0


@pytest.mark.parametrize("n_bins", [1, 5, 15, 20])
@pytest.mark.parametrize("scale", [0.5, 3.0, 10.0])
def test_ece_matches_numpy_reference(n_bins: int, scale: float) -> None:
    logits, targets = _random(scale=scale)
    ours = expected_calibration_error(logits, targets, n_bins=n_bins)
    ref = _ece_reference(logits.numpy(), targets.numpy(), n_bins)
    assert ours == pytest.approx(ref, abs=1e-12)
    assert 0.0 <= ours <= 1.0


def test_ece_float32_input_matches_reference() -> None:
    logits, targets = _random(scale=4.0, seed=3)
    ours = expected_calibration_error(logits.float(), targets)
    ref = _ece_reference(logits.float().double().numpy(), targets.numpy(), 15)
    assert ours == pytest.approx(ref, abs=1e-9)


def test_bins_are_right_closed() -> None:
    conf = torch.tensor([0.25, 0.2500001, 0.5, 0.75, 1.0, 1e-9], dtype=torch.float64)
    # bins (0, .25], (.25, .5], (.5, .75], (.75, 1]
    assert _bin_index(conf, 4).tolist() == [0, 1, 1, 2, 3, 0]


def test_calibration_accumulator_streaming_equals_one_shot() -> None:
    logits, targets = _random(n=300)
    acc = CalibrationAccumulator(15)
    for start in range(0, 300, 64):  # uneven last batch
        acc.update(logits[start : start + 64], targets[start : start + 64])
    assert acc.count == 300
    assert acc.ece() == pytest.approx(expected_calibration_error(logits, targets), abs=1e-12)


def test_calibration_state_summed_over_ranks() -> None:
    logits, targets = _random(n=200)
    ranks = [CalibrationAccumulator(10), CalibrationAccumulator(10)]
    ranks[0].update(logits[:77], targets[:77])
    ranks[1].update(logits[77:], targets[77:])
    state = ranks[0].state() + ranks[1].state()  # what all_reduce(SUM) computes
    assert state.dtype == torch.float64 and state.shape == (3, 10)
    merged = CalibrationAccumulator.from_state(state)
    assert merged.ece() == pytest.approx(
        expected_calibration_error(logits, targets, n_bins=10), abs=1e-12
    )


def test_empty_accumulators() -> None:
    assert CalibrationAccumulator().ece() == 0.0
    res = EvalAccumulator().result()
    assert res["count"] == 0 and res["top1"] == 0.0 and res["ece"] == 0.0


# --------------------------------------------------------------------------- NLL, entropy


def test_nll_equals_cross_entropy() -> None:
    logits, targets = _random()
    assert nll(logits, targets) == pytest.approx(F.cross_entropy(logits, targets).item())
    assert nll(logits.float(), targets) == pytest.approx(
        F.cross_entropy(logits.float(), targets).item(), rel=1e-5
    )


@pytest.mark.parametrize("c", [2, 10, 100])
def test_entropy_of_uniform_logits_is_log_c(c: int) -> None:
    assert mean_entropy(torch.zeros(7, c)) == pytest.approx(math.log(c))
    assert mean_entropy(torch.full((3, c), 5.0)) == pytest.approx(math.log(c))


def test_entropy_matches_numpy_and_handles_saturation() -> None:
    logits, _ = _random()
    z = logits.numpy() - logits.numpy().max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    ref = float((-(p * np.log(p)).sum(axis=1)).mean())
    assert mean_entropy(logits) == pytest.approx(ref)
    saturated = torch.tensor([[1e4, 0.0, -1e4]], dtype=torch.float64)
    assert mean_entropy(saturated) == 0.0


# ------------------------------------------------------------------------- EvalAccumulator


def test_eval_accumulator_over_two_ranks_equals_full() -> None:
    logits, targets = _random(n=400, c=20, seed=1)
    full = {
        "top1": topk_accuracy(logits, targets, (1,))[0],
        "top5": topk_accuracy(logits, targets, (5,))[0],
        "ece": expected_calibration_error(logits, targets),
        "nll": nll(logits, targets),
        "entropy": mean_entropy(logits),
    }
    ranks = [EvalAccumulator(), EvalAccumulator()]
    # rank 0 gets batches 0, 2, ...; rank 1 gets batches 1, 3, ... (as a DistributedSampler)
    for i, start in enumerate(range(0, 400, 48)):
        ranks[i % 2].update(logits[start : start + 48], targets[start : start + 48])
    t = ranks[0].tensor() + ranks[1].tensor()
    assert t.dtype == torch.float64 and t.dim() == 1 and t.shape[0] == 5 + 3 * 15
    merged = EvalAccumulator()
    merged.load_tensor(t)
    res = merged.result()
    assert set(res) == {"top1", "top5", "ece", "nll", "entropy", "count"}
    assert res["count"] == 400
    for key, value in full.items():
        assert res[key] == pytest.approx(value, abs=1e-10), key


def test_eval_accumulator_single_process_matches_one_shot() -> None:
    logits, targets = _random(n=64, c=7, seed=2)
    acc = EvalAccumulator(n_bins=15)
    acc.update(logits, targets)
    res = acc.result()
    assert res["top1"] == pytest.approx(topk_accuracy(logits, targets, (1,))[0])
    assert res["ece"] == pytest.approx(expected_calibration_error(logits, targets))


# ------------------------------------------------------------------------------ correlation


def test_correlation_matrix_matches_numpy() -> None:
    logits, _ = _random(n=50, c=6)
    ours = correlation_matrix(logits)
    assert ours.shape == (6, 6)
    np.testing.assert_allclose(ours.numpy(), np.corrcoef(logits.numpy().T), atol=1e-12)


def test_correlation_matrix_constant_class() -> None:
    logits, _ = _random(n=30, c=4)
    logits[:, 2] = 1.5
    corr = correlation_matrix(logits)
    assert torch.isfinite(corr).all()
    assert corr[2, 2] == 1.0 and corr[2, [0, 1, 3]].abs().sum() == 0.0


def test_correlation_disparity_identical_is_zero() -> None:
    logits, _ = _random(n=100, c=10)
    assert correlation_disparity(logits, logits.clone()) == 0.0
    # Pearson correlation ignores a positive scale and a per-class shift.
    assert correlation_disparity(logits, 2.0 * logits + torch.arange(10.0)) == pytest.approx(
        0.0, abs=1e-12
    )


def test_correlation_disparity_positive_for_different_logits() -> None:
    a, _ = _random(n=200, c=8, seed=4)
    b, _ = _random(n=200, c=8, seed=5)
    ref = np.abs(np.corrcoef(a.numpy().T) - np.corrcoef(b.numpy().T)).mean()
    assert correlation_disparity(a, b) == pytest.approx(ref, abs=1e-12)
    assert correlation_disparity(a, b) > 0.0


def test_evaluation_accumulates_without_reading_values_on_the_host() -> None:
    """One sync per validation pass (in `result`), none per batch."""
    from sync_guard import HostSyncError, forbid_host_syncs

    acc = EvalAccumulator(n_bins=15)
    logits, targets = torch.randn(32, 10), torch.randint(0, 10, (32,))
    with forbid_host_syncs():
        acc.update(logits, targets)
        acc.update(logits, targets)
        with pytest.raises(HostSyncError):
            torch.ones(1).item()
    result = acc.result()
    assert result["count"] == 64
    assert result["top1"] == pytest.approx(topk_accuracy(logits, targets, (1,))[0])
