"""DAFA's augmentation policy (SoKD Sec. 3.1, Eqs. 3-10).

The search space: every unordered pair of distinct operations of `sokd.ops.OPS` in list order
(36 sub-policies of k = 2 operations, Eq. 4). Each sub-policy s has a logit alpha_s (equal at
the start) and, for each of its two operations, an application probability beta and a
magnitude m (0.5 at the start).

- An operation fires with a relaxed Bernoulli draw (Eq. 9), b = sigmoid((logit(beta) +
  logit(u)) / lambda), u ~ U(0, 1), and gives b O(F; m) + (1 - b) F (Eqs. 3, 6); m has the
  straight-through gradient of Eq. 10 (`apply_op`).
- The sub-policies are combined by Gumbel-softmax weights at temperature tau (Eq. 8, with
  alpha_s as the logit log alpha_s):
  `weighted` (the paper): s_bar(F) = sum_s w_s s(F);
  `sampled` (the public code's single sub-policy per batch): the same with the weights made
  one-hot by the straight-through Gumbel trick, so the output IS one sub-policy while every
  alpha still gets a gradient (the code estimates it by REINFORCE with a control variate;
  every sub-policy is still computed, which keeps the step free of host reads).
- After the search the policy is fixed (`fix()`): the most likely sub-policy, its operations
  fired by hard Bernoulli(beta) draws at their magnitudes, no gradient.

All random draws of one batch are made once (`draw`), so that the policy step and the
student step of the alternation see the same augmentation (METHODS.md: same batch and sample).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sokd.ops import OPS, op_output

SUB_POLICIES: tuple[tuple[str, str], ...] = tuple(itertools.combinations(OPS, 2))
EPS = 1e-6


class _Blend(torch.autograd.Function):
    """out = b O + (1 - b) F (Eqs. 3, 6) as one `torch.lerp`, F + b (O - F), with Eq. 10's
    straight-through magnitude gradient d out / d m = b at every element folded into the
    backward: the same values (to rounding; exactly F or O at b = 0 or 1) and gradients as
    `b (O + m - sg(m)) + (1 - b) F`, in one pass over the map instead of four."""

    @staticmethod
    def forward(ctx, features: Tensor, op_out: Tensor, b: Tensor, m: Tensor) -> Tensor:
        weight = b.to(features.dtype)
        ctx.save_for_backward(features, op_out, weight)
        ctx.dtypes = (b.dtype, m.dtype)
        return torch.lerp(features, op_out, weight)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        features, op_out, weight = ctx.saved_tensors
        need_f, need_o, need_b, need_m = ctx.needs_input_grad
        g_f = grad * (1 - weight) if need_f else None
        g_o = grad * weight if need_o else None
        g_b = g_m = None
        if need_b:
            diff = (op_out - features).reshape(-1)
            g_b = torch.dot(grad.reshape(-1), diff).to(ctx.dtypes[0])
        if need_m:
            g_m = (grad.sum() * weight).to(ctx.dtypes[1])
        return g_f, g_o, g_b, g_m


def blend(features: Tensor, op_out: Tensor, b: Tensor, m: Tensor) -> Tensor:
    """b O(F; m) + (1 - b) F with O's straight-through magnitude gradient (Eqs. 6, 10);
    `op_out` is O(F; sg(m)) (`sokd.ops.op_output`), b and m 0-d."""
    return _Blend.apply(features, op_out, b, m)


@dataclass
class PolicyDraw:
    """One batch's random draws: Gumbel noise (P,), Bernoulli uniforms (P, 2), and the
    state of the generator the operations draw from (cutout centres, noise, permutations),
    so that a second application of the policy to the batch repeats them exactly."""

    gumbel: Tensor
    uniforms: Tensor
    op_state: Tensor


class DAFAPolicy(nn.Module):
    """The learnable policy gamma = {alpha, beta, m} of Eq. 7 and the augmentation it gives."""

    def __init__(
        self, temperature: float = 0.5, bernoulli_temperature: float = 0.5, sampled: bool = False
    ) -> None:
        super().__init__()
        count = len(SUB_POLICIES)
        self.logits = nn.Parameter(torch.zeros(count))  # alpha (as logits), Eq. 8
        self.probability = nn.Parameter(torch.full((count, 2), 0.5))  # beta, Eq. 9
        self.magnitude = nn.Parameter(torch.full((count, 2), 0.5))  # m, Eq. 10
        self.register_buffer("chosen", torch.tensor(-1))  # the fixed sub-policy after search
        self.temperature = temperature
        self.bernoulli_temperature = bernoulli_temperature
        self.sampled = sampled
        self._fixed: int | None = None  # host copy of `chosen` once fixed (set outside a step)

    @property
    def fixed(self) -> int | None:
        """The sub-policy in use after the search, or None while searching."""
        return self._fixed

    @torch.no_grad()
    def fix(self) -> int:
        """End the search: keep the most likely sub-policy (a host read, between epochs)."""
        if int(self.chosen) < 0:
            self.chosen.fill_(int(self.logits.argmax()))
        self._fixed = int(self.chosen)
        return self._fixed

    def restore_fixed(self) -> None:
        """After loading a checkpoint: pick up a choice made before it (between epochs)."""
        chosen = int(self.chosen)
        self._fixed = chosen if chosen >= 0 else None

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep beta in (0, 1) and m in [0, 1] after an optimiser step."""
        self.probability.clamp_(EPS, 1 - EPS)
        self.magnitude.clamp_(0.0, 1.0)

    def draw(self, generator: torch.Generator, op_generator: torch.Generator) -> PolicyDraw:
        """The batch's random draws from `generator` (on the policy's device) and the start
        of the operations' draws from `op_generator`; the Gumbel-softmax weights keep their
        graph to alpha."""
        device = self.logits.device
        u = torch.rand(self.logits.shape, device=device, generator=generator)
        gumbel = -torch.log(-torch.log(u.clamp(EPS, 1 - EPS)))
        uniforms = torch.rand(self.probability.shape, device=device, generator=generator)
        return PolicyDraw(gumbel, uniforms.clamp(EPS, 1 - EPS), op_generator.get_state())

    def mixing_weights(self, draw: PolicyDraw) -> Tensor:
        """Eq. 8's Gumbel-softmax weights of the sub-policies (one-hot with a straight-through
        gradient when `sampled`)."""
        weights = F.softmax((self.logits + draw.gumbel) / self.temperature, dim=0)
        if self.sampled:  # the code's single sub-policy a batch
            hard = torch.zeros_like(weights).scatter_(0, weights.argmax().view(1), 1.0)
            weights = hard + weights - weights.detach()
        return weights

    def fire(self, probability: Tensor, uniform: Tensor) -> Tensor:
        """Eq. 9: the relaxed Bernoulli b in (0, 1), differentiable in beta."""
        logit_p = torch.log(probability) - torch.log1p(-probability)
        logit_u = torch.log(uniform) - torch.log1p(-uniform)
        return torch.sigmoid((logit_p + logit_u) / self.bernoulli_temperature)

    def sub_policy(
        self,
        index: int,
        features: Tensor,
        draw: PolicyDraw,
        generator: torch.Generator,
        hard: bool,
        rows: tuple[int, int] | None = None,
    ) -> Tensor:
        """Eq. 4: the two operations of sub-policy `index`, each relaxed by Eq. 6 (or fired
        by a hard Bernoulli draw once the policy is fixed)."""
        out = features
        for slot, name in enumerate(SUB_POLICIES[index]):
            p, m = self.probability[index, slot], self.magnitude[index, slot]
            u = draw.uniforms[index, slot]
            b = (u > 1 - p).to(out.dtype) if hard else self.fire(p, u)  # the limit of Eq. 9
            out = blend(out, op_output(name, out, m, generator, rows), b, m)
        return out

    def forward(
        self,
        features: Tensor,
        draw: PolicyDraw,
        generator: torch.Generator,
        rows: tuple[int, int] | None = None,
    ) -> Tensor:
        """s_bar(F) (Eq. 8) while searching; the fixed sub-policy afterwards. The operations'
        randomness restarts from `draw.op_state`, so the same draw gives the same output;
        `rows` places this process's rows in the global batch (see `apply_op`)."""
        generator.set_state(draw.op_state)
        if self._fixed is not None:
            return self.sub_policy(self._fixed, features, draw, generator, True, rows)
        weights = self.mixing_weights(draw).to(features.dtype)
        mixed = None
        for i in range(len(SUB_POLICIES)):  # sum_s w_s s(F), one fused multiply-add each
            out = self.sub_policy(i, features, draw, generator, False, rows)
            mixed = weights[i] * out if mixed is None else torch.addcmul(mixed, weights[i], out)
        return mixed

    @torch.no_grad()
    def summary(self) -> dict[str, object]:
        """The most likely sub-policy and its operations' probabilities and magnitudes."""
        probs = F.softmax(self.logits, dim=0)
        best = self._fixed if self._fixed is not None else int(probs.argmax())
        return {
            "sokd_subpolicy": "+".join(SUB_POLICIES[best]),
            "sokd_subpolicy_prob": float(probs[best]),
            "sokd_op_prob": [round(float(v), 4) for v in self.probability[best]],
            "sokd_magnitude": [round(float(v), 4) for v in self.magnitude[best]],
            "sokd_alpha": [round(float(v), 5) for v in probs],
            "sokd_searching": self._fixed is None,
        }
