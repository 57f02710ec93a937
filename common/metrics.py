"""Evaluation metrics: top-k accuracy, calibration, NLL, entropy and logit-correlation disparity.

Everything here works on raw logits of shape (N, C) and integer class targets of shape (N,).
Probabilities are always computed in float64 so that low-precision (bf16/fp16) logits do not
distort calibration or entropy numbers.

Two forms are provided:

* one-shot functions (`topk_accuracy`, `expected_calibration_error`, `nll`, `mean_entropy`,
  `correlation_disparity`) for a tensor that holds the whole evaluation set;
* streaming accumulators (`CalibrationAccumulator`, `EvalAccumulator`) for evaluation over many
  batches and many processes. Their state is one float64 tensor of *sums*, so a distributed
  evaluation only needs ``dist.all_reduce(t, op=SUM)`` on it before reading the result.

References
----------
* Top-k accuracy: the fraction of samples whose target is among the k largest logits
  (Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks",
  NeurIPS 2012).
* Expected calibration error: Naeini et al., "Obtaining Well Calibrated Probabilities Using
  Bayesian Binning", AAAI 2015; in the equal-width-bin form of Guo et al., "On Calibration of
  Modern Neural Networks", ICML 2017, Eq. (3):
  ``ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|``.
* Correlation disparity: the "difference of correlation matrices of student and teacher
  logits" figures of Tian et al., "Contrastive Representation Distillation", ICLR 2020, and
  Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "topk_correct",
    "topk_correct_tensor",
    "topk_accuracy",
    "expected_calibration_error",
    "CalibrationAccumulator",
    "EvalAccumulator",
    "nll",
    "mean_entropy",
    "correlation_matrix",
    "correlation_disparity",
]


def _check(logits: Tensor, targets: Tensor) -> None:
    """Refuse shapes that are not (N, C) logits with (N,) integer targets."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    if targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"targets must be (N,) with N={logits.shape[0]}, got shape {tuple(targets.shape)}"
        )


# --------------------------------------------------------------------------------------------
# Top-k accuracy
# --------------------------------------------------------------------------------------------


def topk_correct(logits: Tensor, targets: Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """Count the samples whose target is among the ``k`` highest logits, for each ``k`` in ``ks``.

    Counts (not rates) are returned so that a distributed evaluation can all-reduce sums. A
    ``k`` larger than the number of classes is clamped to the number of classes (every sample
    is then correct). Ties are broken by ``torch.topk``'s order.

    Args:
        logits: (N, C) scores.
        targets: (N,) integer class indices.
        ks: the values of k.

    Returns:
        One integer count per entry of ``ks``.
    """
    _check(logits, targets)
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {tuple(ks)}")
    if logits.shape[0] == 0:
        return [0 for _ in ks]
    return [int(c) for c in topk_correct_tensor(logits, targets, ks).tolist()]


def topk_correct_tensor(logits: Tensor, targets: Tensor, ks: Sequence[int] = (1, 5)) -> Tensor:
    """`topk_correct` as an int64 tensor on the logits' device, without a host sync."""
    num_classes = logits.shape[1]
    maxk = min(max(ks), num_classes)
    top = logits.topk(maxk, dim=1).indices  # (N, maxk)
    hit = top.eq(targets.view(-1, 1).to(top.device))  # (N, maxk), at most one True per row
    cum = hit.cumsum(dim=1)  # cum[:, j] = 1 if the target is within the first j+1
    return torch.stack([cum[:, min(k, num_classes) - 1].sum() for k in ks])


def topk_accuracy(logits: Tensor, targets: Tensor, ks: Sequence[int] = (1, 5)) -> list[float]:
    """Top-k accuracy in percent for each ``k`` in ``ks`` (see `topk_correct`).

    Returns 0.0 for every k on an empty batch.
    """
    n = logits.shape[0]
    counts = topk_correct(logits, targets, ks)
    return [100.0 * c / n if n else 0.0 for c in counts]


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def _confidence_and_correct(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Max softmax probability (float64) and whether the arg-max equals the target."""
    probs = torch.softmax(logits.detach().double(), dim=1)
    conf, pred = probs.max(dim=1)
    return conf, pred.eq(targets.to(pred.device)).double()


def _bin_index(conf: Tensor, n_bins: int) -> Tensor:
    """Index b of the bin (b/n, (b+1)/n] that holds each confidence (Guo et al. 2017).

    ``torch.bucketize`` with ``right=False`` returns, for each value, the number of inner edges
    strictly below it, which is exactly the index of the half-open bin (lower, upper].
    """
    inner = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=conf.device)[1:-1]
    return torch.bucketize(conf, inner, right=False)


class CalibrationAccumulator:
    """Streaming expected calibration error over equal-width confidence bins.

    Bin b (0-based) holds the samples whose confidence (max softmax probability) lies in
    ``(b/n_bins, (b+1)/n_bins]``. The state is three per-bin sums: the number of samples, the
    number of correct predictions and the sum of confidences. Because these are sums, the state
    of several batches or several processes combines by addition (``all_reduce(SUM)``).

    Example::

        acc = CalibrationAccumulator(15)
        for x, y in loader:
            acc.update(model(x), y)
        state = acc.state()
        dist.all_reduce(state)          # optional, across processes
        ece = CalibrationAccumulator.from_state(state).ece()
    """

    def __init__(self, n_bins: int = 15, device: torch.device | str | None = None) -> None:
        """Create empty bins; ``device`` fixes where the state lives (default: first batch's)."""
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.n_bins = n_bins
        self._state: Tensor = torch.zeros(
            3, n_bins, dtype=torch.float64, device=device if device is not None else "cpu"
        )
        self._device_fixed = device is not None

    def _to(self, device: torch.device) -> None:
        """Move the (still empty) state onto the device of the first batch."""
        if not self._device_fixed:
            self._state = self._state.to(device)
            self._device_fixed = True

    @torch.no_grad()
    def update(self, logits: Tensor, targets: Tensor) -> None:
        """Add one batch of (N, C) logits and (N,) targets to the bins."""
        _check(logits, targets)
        self._to(logits.device)
        conf, correct = _confidence_and_correct(logits, targets)
        idx = _bin_index(conf, self.n_bins).to(self._state.device)
        self._state[0].index_add_(0, idx, torch.ones_like(conf).to(self._state.device))
        self._state[1].index_add_(0, idx, correct.to(self._state.device))
        self._state[2].index_add_(0, idx, conf.to(self._state.device))

    def state(self) -> Tensor:
        """The (3, n_bins) float64 tensor [counts; correct counts; confidence sums] (a copy)."""
        return self._state.clone()

    def load_state(self, state: Tensor) -> None:
        """Replace the sums by ``state`` (e.g. after an all-reduce)."""
        if state.shape != (3, self.n_bins):
            raise ValueError(
                f"expected state of shape (3, {self.n_bins}), got {tuple(state.shape)}"
            )
        self._state = state.detach().to(torch.float64).clone()
        self._device_fixed = True

    @classmethod
    def from_state(cls, state: Tensor) -> CalibrationAccumulator:
        """Build an accumulator whose sums are ``state`` (shape (3, n_bins))."""
        if state.dim() != 2 or state.shape[0] != 3:
            raise ValueError(f"expected state of shape (3, n_bins), got {tuple(state.shape)}")
        acc = cls(state.shape[1], device=state.device)
        acc.load_state(state)
        return acc

    @property
    def count(self) -> int:
        """Number of samples seen."""
        return int(round(self._state[0].sum().item()))

    def ece(self) -> float:
        """ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)| as a fraction in [0, 1].

        Empty bins contribute 0; an accumulator with no samples gives 0.0.
        """
        return _ece_from_sums(self._state)


def _ece_from_sums(state: Tensor) -> float:
    """ECE from (3, n_bins) sums [counts; correct; confidence sums]."""
    counts, correct, conf_sum = state[0], state[1], state[2]
    total = counts.sum()
    if total.item() <= 0:
        return 0.0
    # |B_b|/N * |correct_b/|B_b| - conf_b/|B_b|| = |correct_b - conf_b| / N; empty bins give 0.
    return float(((correct - conf_sum).abs().sum() / total).item())


def expected_calibration_error(logits: Tensor, targets: Tensor, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (Guo et al. 2017).

    Confidence is the maximum softmax probability; bin b holds confidences in
    ``(b/n_bins, (b+1)/n_bins]``; ``ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|`` with empty
    bins contributing 0. Returned as a fraction in [0, 1] (multiply by 100 for percent).
    """
    acc = CalibrationAccumulator(n_bins, device=logits.device)
    acc.update(logits, targets)
    return acc.ece()


# --------------------------------------------------------------------------------------------
# Likelihood and entropy
# --------------------------------------------------------------------------------------------


def _nll_sum(logits: Tensor, targets: Tensor) -> Tensor:
    """Summed cross-entropy (nats) in float64."""
    return F.cross_entropy(logits.detach().double(), targets.to(logits.device), reduction="sum")


def _entropy_sum(logits: Tensor) -> Tensor:
    """Summed predictive entropy H(p) = -sum_c p_c log p_c (nats) in float64."""
    log_p = torch.log_softmax(logits.detach().double(), dim=1)
    # p * log p with the convention 0 * log 0 = 0 (log_p may be -inf for a saturated softmax).
    plogp = torch.where(log_p.isneginf(), torch.zeros_like(log_p), log_p.exp() * log_p)
    return -plogp.sum()


def nll(logits: Tensor, targets: Tensor) -> float:
    """Mean negative log-likelihood of the targets, i.e. mean cross-entropy, in nats."""
    _check(logits, targets)
    if logits.shape[0] == 0:
        return 0.0
    return float(_nll_sum(logits, targets).item()) / logits.shape[0]


def mean_entropy(logits: Tensor) -> float:
    """Mean Shannon entropy of the softmax distribution, in nats (log C for uniform logits)."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        return 0.0
    return float(_entropy_sum(logits).item()) / logits.shape[0]


# --------------------------------------------------------------------------------------------
# One accumulator for a whole validation pass
# --------------------------------------------------------------------------------------------


class EvalAccumulator:
    """All validation metrics of a run, accumulated as summable float64 sums.

    Layout of `tensor()` (length ``5 + 3 * n_bins``)::

        [count, top1 correct, top5 correct, NLL sum, entropy sum,
         bin counts (n_bins), bin correct counts (n_bins), bin confidence sums (n_bins)]

    Every entry is a sum over samples, so the tensors of several processes combine with
    ``dist.all_reduce(t, op=SUM)``; call `load_tensor` with the reduced tensor and then
    `result`. Create the accumulator with ``device=`` the process's CUDA device when using
    NCCL, so that a process that saw no batch still holds a CUDA tensor.
    """

    _HEAD = 5  # count, top1, top5, nll, entropy

    def __init__(self, n_bins: int = 15, device: torch.device | str | None = None) -> None:
        """Create an empty accumulator (``device`` defaults to the first batch's device)."""
        self.n_bins = n_bins
        self._head = torch.zeros(
            self._HEAD, dtype=torch.float64, device=device if device is not None else "cpu"
        )
        self._calib = CalibrationAccumulator(n_bins, device=device)
        self._device_fixed = device is not None

    @torch.no_grad()
    def update(self, logits: Tensor, targets: Tensor) -> None:
        """Add one batch of (N, C) logits and (N,) integer targets."""
        _check(logits, targets)
        if not self._device_fixed:
            self._head = self._head.to(logits.device)
            self._device_fixed = True
        dev = self._head.device
        # Every sum stays on the device: no host sync per batch (one when `result` reads).
        correct = topk_correct_tensor(logits, targets, (1, 5)).to(dev, torch.float64)
        add = torch.cat(
            [
                torch.full((1,), float(logits.shape[0]), dtype=torch.float64, device=dev),
                correct,
                _nll_sum(logits, targets).to(dev).view(1),
                _entropy_sum(logits).to(dev).view(1),
            ]
        )
        self._head += add
        self._calib.update(logits, targets)

    def tensor(self) -> Tensor:
        """Every sum in one float64 vector of length ``5 + 3 * n_bins`` (a copy)."""
        return torch.cat([self._head, self._calib.state().to(self._head.device).flatten()])

    def load_tensor(self, t: Tensor) -> None:
        """Replace the sums by ``t`` (as returned by `tensor`, possibly all-reduced)."""
        expected = self._HEAD + 3 * self.n_bins
        if t.dim() != 1 or t.shape[0] != expected:
            raise ValueError(f"expected a vector of length {expected}, got {tuple(t.shape)}")
        t = t.detach().to(torch.float64)
        self._head = t[: self._HEAD].clone()
        self._calib.load_state(t[self._HEAD :].reshape(3, self.n_bins))
        self._device_fixed = True

    @property
    def count(self) -> int:
        """Number of samples accumulated."""
        return int(round(self._head[0].item()))

    def result(self) -> dict[str, float]:
        """``top1``, ``top5`` (percent), ``ece`` (fraction), ``nll``, ``entropy`` (nats), ``count``.

        Every metric is 0.0 when no sample has been seen.
        """
        count, c1, c5, nll_sum, ent_sum = (float(v) for v in self._head.tolist())
        if count <= 0:
            return {"top1": 0.0, "top5": 0.0, "ece": 0.0, "nll": 0.0, "entropy": 0.0, "count": 0}
        return {
            "top1": 100.0 * c1 / count,
            "top5": 100.0 * c5 / count,
            "ece": self._calib.ece(),
            "nll": nll_sum / count,
            "entropy": ent_sum / count,
            "count": int(round(count)),
        }


# --------------------------------------------------------------------------------------------
# Inter-class correlation of logits
# --------------------------------------------------------------------------------------------


def correlation_matrix(logits: Tensor) -> Tensor:
    """Class-by-class Pearson correlation of logits over samples, a (C, C) float64 tensor.

    Entry (i, j) is the Pearson correlation between the logit of class i and the logit of class
    j across the N samples. A class whose logit is constant over the samples has no defined
    correlation; its off-diagonal entries are set to 0 and its diagonal entry to 1.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    if logits.shape[0] < 2:
        raise ValueError("a correlation needs at least two samples")
    x = logits.detach().double()
    x = x - x.mean(dim=0, keepdim=True)
    cov = x.T @ x  # (C, C); the 1/(N-1) factor cancels
    std = cov.diagonal().clamp_min(0).sqrt()
    denom = torch.outer(std, std)
    defined = denom > 0  # False on the rows and columns of constant classes
    corr = torch.where(defined, cov / torch.where(defined, denom, 1.0), 0.0).clamp(-1.0, 1.0)
    corr.fill_diagonal_(1.0)
    return corr


def correlation_disparity(student_logits: Tensor, teacher_logits: Tensor) -> float:
    """Mean absolute difference of the student's and teacher's logit correlation matrices.

    ``mean_{i,j} |corr_S(i, j) - corr_T(i, j)|`` over all C x C entries (the diagonal is 1 in
    both and contributes 0), with `correlation_matrix` computed over the same N samples. This
    is the scalar summary of the correlation-matrix-difference figures of CRD (Tian et al.,
    ICLR 2020) and DKD (Zhao et al., CVPR 2022); lower means the student reproduces the
    teacher's inter-class structure more closely.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student and teacher logits must have the same shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    cs = correlation_matrix(student_logits)
    ct = correlation_matrix(teacher_logits).to(cs.device)
    return float((cs - ct).abs().mean().item())
