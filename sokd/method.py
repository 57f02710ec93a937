"""SoKD (Shen et al., "Student-Oriented Teacher Knowledge Refinement for Knowledge
Distillation", ACM MM 2024; its tables call it DFKD) as a plug-in over a feature method.

Per step, on the maps the base distils (`sokd.maps`):

    policy step (while searching):  gamma <- Adam step on L_aug = 1/2 ||s(F_t) - Phi_s(F_s)||^2
                                    (Eq. 14; or on the student's loss: `policy_objective`)
    student step (the engine's):    L_task + base losses + alpha L_D + beta L_DA      (Eq. 15)

with s the DAFA policy (`sokd.policy`, Eq. 8) applied to the teacher's maps, L_D the MSE of the
shared DAM head's outputs on Phi_s(F_s) and on s(F_t) (Eq. 12) and L_DA the MSE of the two maps
inside the boxes decoded from the student's heatmap (Eq. 13, `sokd.dam`). The bi-level problem
(Eq. 15) is solved by the first-order alternation (one policy step, then one student step, on
the same batch and the same random draws); `policy_order: second` uses DARTS' unrolled
estimate with a virtual student SGD step of `unroll_lr`. The student's step sees the policy
after its step (the public code's order), which applies the 36 sub-policies twice a step;
`shared_search_forward` applies them once and gives the student the policy before its step
(simultaneous first-order updates: the policy's step is unchanged, the student's target lags
it by one Adam step; README "Deviations"). After `search_epochs` the policy is fixed to its
most likely sub-policy. L_DA replaces FitNet's unmasked loss and sits beside
AT's, CRD's and ReviewKD's own losses (`replace_base_loss`).

The method is the base method's class extended (`SoKD` + `FitNet`, ...): the student,
teacher and the base's own modules are trained, saved and resumed as the base does; the
policy, its Adam state and the search phase are in every checkpoint. The policy is not trained
by the engine's optimiser and stays outside DistributedDataParallel; its gradients are
averaged over the processes, and every process draws the same augmentation, so the policy
stays identical everywhere.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import build_dataclass
from common.errors import ConfigError
from common.methods.base import Distiller
from common.methods.feature_base import FeatureDistiller
from common.methods.registry import get_method, register_method
from common.world import is_distributed
from sokd.dam import DAMHead, box_mask, decode_boxes, head_loss, masked_loss
from sokd.maps import MapPair, build_maps
from sokd.ops import apply_op
from sokd.options import SoKDOptions, feature_methods
from sokd.policy import DAFAPolicy, PolicyDraw


def batch_rows(batch: Batch) -> tuple[int, int] | None:
    """(this process's first row, the global batch) under torchrun; None for one process."""
    if not is_distributed() or batch.rank_sizes is None:
        return None
    rank = dist.get_rank()
    return sum(batch.rank_sizes[:rank]), sum(batch.rank_sizes)


class SoKDPlugin:
    """What SoKD adds to a base feature method (mixed in before the base's class)."""

    sokd: SoKDOptions
    maps: nn.Module
    heads: nn.ModuleDict
    policy: DAFAPolicy | None

    def setup_sokd(
        self, options: SoKDOptions, image_size: int, train_seed: int | None = None
    ) -> None:
        """Build the maps, the DAM heads and the policy (after the base's own __init__).
        The draws' seed: `options.seed`, else `train_seed` (the recipe's train.seed), else
        the seed of torch's global generator at the first step (`fit` seeds it with its
        train.seed before that step)."""
        self.sokd = options
        self._sokd_seed = options.seed if options.seed is not None else train_seed
        self.maps = build_maps(options.base, self, image_size)
        shapes = {f"{c}x{h}x{w}": c for c, h, w in self.maps.shapes}
        self.heads = nn.ModuleDict(
            {key: DAMHead(c, options.heat_channels) for key, c in shapes.items()}
        )
        self.policy = None
        if options.dafa and not options.manual_augment:
            self.policy = DAFAPolicy(
                options.temperature, options.bernoulli_temperature, options.relaxation == "sampled"
            )
            self.policy_optimizer = torch.optim.Adam(
                self.policy.parameters(),
                lr=options.policy_lr,
                betas=tuple(options.policy_betas),
                weight_decay=options.policy_weight_decay,
                fused=True,  # its step counter stays in the kernel: no host read a step
            )
        if options.shared_search_forward and options.policy_order == "second":
            raise ConfigError(
                "method.shared_search_forward: the unrolled estimate (policy_order: second) "
                "applies the policy in its own virtual steps, so there is no forward to share; "
                "use policy_order: first or leave shared_search_forward false"
            )
        replace = options.replace_base_loss
        self.replaced = set(self.maps.replaces) if replace is None or replace else set()
        if replace and not self.maps.replaces:
            raise ConfigError(
                f"method.replace_base_loss: the {options.base} base keeps its own loss beside "
                "L_DA (only fitnet's hint loss is replaced); leave the key unset"
            )
        # the epoch's summed mask coverage and count of masks (`sokd_mask_coverage`)
        self.register_buffer("_one", torch.ones(()), persistent=False)
        self.register_buffer("_sokd_coverage", torch.zeros(2), persistent=False)
        self._sokd_generator: torch.Generator | None = None
        self._sokd_op_generator: torch.Generator | None = None
        self._sokd_generator_state: dict[str, torch.Tensor] = {}

    # -------------------------------------------------------------- phases
    @property
    def searching(self) -> bool:
        """Whether this epoch's steps train the policy (epochs 0 .. search_epochs - 1)."""
        return (
            self.policy is not None
            and self.policy.fixed is None
            and self.epoch < self.sokd.search_epochs
        )

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)  # type: ignore[misc]
        if getattr(self, "policy", None) is None:  # no policy (or not built yet)
            return
        self.policy.restore_fixed()
        done = epoch >= self.sokd.search_epochs
        if done and self.sokd.after_search == "argmax" and self.policy.fixed is None:
            self.policy.fix()  # a host read between epochs, never inside a step

    # ------------------------------------------------------------ randomness
    def generators(self, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
        """(policy draws, operations' draws) on `device`: seeded, or restored on resume."""
        if self._sokd_generator is None or self._sokd_generator.device != device:
            if self._sokd_seed is None:  # built outside a recipe: the engine's train.seed
                self._sokd_seed = torch.initial_seed() % 2**62
            self._sokd_generator = torch.Generator(device=device)
            self._sokd_generator.manual_seed(self._sokd_seed)
            self._sokd_op_generator = torch.Generator(device=device)
            self._sokd_op_generator.manual_seed(self._sokd_seed + 1)
            for name, gen in (("policy", self._sokd_generator), ("ops", self._sokd_op_generator)):
                if name in self._sokd_generator_state:
                    gen.set_state(self._sokd_generator_state[name])
        assert self._sokd_op_generator is not None
        return self._sokd_generator, self._sokd_op_generator

    # ------------------------------------------------------------ augmentation
    def augment(
        self, maps: list[torch.Tensor], draw: PolicyDraw | None, rows: tuple[int, int] | None
    ) -> list[torch.Tensor]:
        """s(F_t) of each teacher map: the policy, a fixed manual operation, or none."""
        o = self.sokd
        if o.manual_augment and o.manual_target == "features":
            _, gen = self.generators(maps[0].device)
            return [apply_op(o.manual_augment, m, o.manual_magnitude, gen, rows) for m in maps]
        if self.policy is None or draw is None:
            return maps
        _, gen = self.generators(maps[0].device)
        return [self.policy(m, draw, gen, rows) for m in maps]

    def aug_loss(
        self, students: list[torch.Tensor], augmented: list[torch.Tensor], detach: bool = True
    ) -> torch.Tensor:
        """L_aug (Eq. 14): 1/2 the mean squared distance, summed over the maps; the student side
        detached where only the policy's gradient is taken (`detach=False` in the unrolled
        estimate, whose Hessian term needs the gradient with respect to the student)."""
        return sum(
            0.5 * F.mse_loss(a, s.detach() if detach else s) for s, a in zip(students, augmented)
        )

    def dam_losses(
        self, pairs: list[MapPair], augmented: list[torch.Tensor], record: bool = False
    ) -> dict[str, torch.Tensor]:
        """{"dam": alpha L_D, "da": beta L_DA} over the maps (L_DA unmasked without DAM);
        `record` adds the masks' coverage to the epoch's `sokd_mask_coverage`."""
        o = self.sokd
        if not o.dam:
            plain = sum(F.mse_loss(p.student, a) for p, a in zip(pairs, augmented))
            return {"da": o.beta * plain}
        head_total, masked_total = 0.0, 0.0
        for pair, target in zip(pairs, augmented):
            head = self.heads[pair.head]
            out_s, out_t = head(pair.student), head(target)
            head_total = head_total + head_loss(out_s, out_t)
            boxes = decode_boxes(*(t.detach() for t in out_s), top_n=o.top_n, min_box=o.min_box)
            mask = box_mask(boxes, *pair.student.shape[-2:]).to(pair.student.dtype)
            masked_total = masked_total + masked_loss(pair.student, target, mask)
            if record:  # on the device: no host read inside the step
                self._sokd_coverage += torch.stack([mask.detach().float().mean(), self._one])
        return {"dam": o.alpha * head_total, "da": o.beta * masked_total}

    # ----------------------------------------------------------- policy step
    def policy_grads(
        self,
        batch: Batch,
        pairs: list[MapPair],
        draw: PolicyDraw,
        rows: tuple[int, int] | None,
        augmented: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """This process's gradient of the policy's objective, one tensor per policy parameter:
        first order, or the unrolled estimate (`policy_order`); `augmented`: s_bar(F_t) (Eq. 8)
        already applied with its graph to the policy (first order), else applied here."""
        assert self.policy is not None
        params = list(self.policy.parameters())
        if self.sokd.policy_order == "second":
            grads = self.unrolled_policy_grads(batch, draw, rows)
        else:
            loss = self.policy_objective(pairs, draw, rows, augmented)
            grads = list(torch.autograd.grad(loss, params, allow_unused=True))
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    def policy_step(
        self,
        batch: Batch,
        pairs: list[MapPair],
        draw: PolicyDraw,
        rows: tuple[int, int] | None,
        augmented: list[torch.Tensor] | None = None,
    ) -> None:
        """One Adam step of the policy on `policy_grads`, averaged over the processes."""
        assert self.policy is not None
        params = list(self.policy.parameters())
        grads = self.policy_grads(batch, pairs, draw, rows, augmented)
        weight = 1.0
        if is_distributed():  # equal policies everywhere: average, by each process's share
            weight = batch.size * dist.get_world_size() / (rows[1] if rows else batch.size)
        for p, g in zip(params, grads):
            g = g * weight
            if is_distributed():
                dist.all_reduce(g)
                g = g / dist.get_world_size()
            p.grad = g
        self.policy_optimizer.step()
        self.policy_optimizer.zero_grad(set_to_none=True)
        self.policy.clamp_()

    def policy_objective(
        self,
        pairs: list[MapPair],
        draw: PolicyDraw,
        rows: tuple[int, int] | None,
        augmented: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The first-order outer loss, with the student side detached: L_aug (Eq. 14), or the
        student's DAM losses on the augmented maps (`train`; with `dam: false` that is
        beta MSE = 2 beta L_aug, the same direction as `aug`: Table 5's "w/o L_con" row
        therefore takes `policy_order: second`, the public code's estimator). `augmented`:
        s_bar(F_t) of Eq. 8 with its graph, when already applied (`shared_search_forward`)."""
        if augmented is None:
            augmented = self.augment([p.teacher for p in pairs], draw, rows)
        if self.sokd.policy_objective == "aug":
            return self.aug_loss([p.student for p in pairs], augmented)
        detached = [MapPair(p.student.detach(), p.teacher, p.head) for p in pairs]
        return sum(self.dam_losses(detached, augmented).values())

    def unrolled_policy_grads(
        self, batch: Batch, draw: PolicyDraw, rows: tuple[int, int] | None
    ) -> list[torch.Tensor]:
        """DARTS' second-order estimate (Liu et al. 2019, Eqs. 7-8): the direct and the
        implicit terms of `unrolled_policy_terms`, summed."""
        direct, implicit = self.unrolled_policy_terms(batch, draw, rows)
        return [d + i for d, i in zip(direct, implicit)]

    def unrolled_policy_terms(
        self, batch: Batch, draw: PolicyDraw, rows: tuple[int, int] | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """d L_outer(w', gamma) / d gamma with w' = w - xi (grad_w L_train(w, gamma) + wd w), as
        (direct, implicit): the direct gradient at w', and the Hessian term
        -xi (grad_gamma L_train(w+) - grad_gamma L_train(w-)) / 2 eps, w+- = w +- eps dw'
        with dw' = grad_w' L_outer(w', gamma) (Eq. 8's finite difference).

        L_outer is L_aug (Eq. 14) with the student side attached (`aug`), or the public code's
        outer loss (`train`): the student's training loss at w' with the teacher's maps NOT
        augmented (its `set_augmenting(False)`), so the direct term is zero and the policy
        learns only through the virtual step."""
        from torch.func import functional_call

        o = self.sokd
        student_side = tuple(f"{name}." for name in self.trained_modules())
        weights = {
            n: p
            for n, p in self.named_parameters()
            if p.requires_grad and n.startswith(student_side)
        }
        buffers = {n: b.clone() for n, b in self.named_buffers()}  # running stats untouched
        policy = list(self.policy.parameters())

        def objective(params: dict[str, torch.Tensor], which: str) -> torch.Tensor:
            keywords = {"objective": which, "draw": draw, "rows": rows}
            return functional_call(self, {**buffers, **params}, (batch,), keywords)

        train = objective(weights, "train")
        g_w = torch.autograd.grad(train, list(weights.values()), allow_unused=True)
        virtual = {}
        for (n, p), g in zip(weights.items(), g_w):
            step = (0 if g is None else g) + o.unroll_weight_decay * p
            virtual[n] = (p - o.unroll_lr * step).detach().requires_grad_(True)
        outer = objective(virtual, "outer")
        grads = torch.autograd.grad(outer, [*policy, *virtual.values()], allow_unused=True)
        d_gamma, d_w = grads[: len(policy)], grads[len(policy) :]
        d_w = [torch.zeros_like(v) if g is None else g for v, g in zip(virtual.values(), d_w)]
        eps = 0.01 / torch.sqrt(sum(g.pow(2).sum() for g in d_w)).clamp_min(1e-12)
        hessian = []
        for sign in (1.0, -1.0):
            moved = {n: (p + sign * eps * g).detach() for (n, p), g in zip(weights.items(), d_w)}
            hessian.append(
                torch.autograd.grad(objective(moved, "train"), policy, allow_unused=True)
            )

        def dense(grads: tuple[torch.Tensor | None, ...]) -> list[torch.Tensor]:
            return [torch.zeros_like(p) if g is None else g for p, g in zip(policy, grads)]

        plus, minus = dense(hessian[0]), dense(hessian[1])
        implicit = [-o.unroll_lr * (hp - hm) / (2 * eps) for hp, hm in zip(plus, minus)]
        return dense(d_gamma), implicit

    # ------------------------------------------------------------------ step
    def forward(self, batch: Batch, objective: str = "", **kwargs: Any) -> Any:
        if objective:  # the unrolled estimate's functional calls
            return self.objective_value(batch, objective, **kwargs)
        return self.forward_train(batch)

    def objective_value(
        self, batch: Batch, which: str, draw: PolicyDraw, rows: tuple[int, int] | None
    ) -> torch.Tensor:
        """The student's training loss (`train`) or the policy's outer loss (`outer`) with
        the current (functional) weights and the policy's graph."""
        logits, features, teacher_features = self.student_and_teacher(batch.images)
        feature_pairs = self.feature_pairs(features, teacher_features)  # type: ignore[attr-defined]
        pairs = self.maps.pairs(feature_pairs)
        outer = which == "outer"
        if outer and self.sokd.policy_objective == "train":  # the code's un-augmented outer loss
            augmented = [p.teacher for p in pairs]
        else:
            augmented = self.augment([p.teacher for p in pairs], draw, rows)
        if outer and self.sokd.policy_objective == "aug":
            return self.aug_loss([p.student for p in pairs], augmented, detach=False)
        base = super().losses(batch, logits, features, teacher_features, feature_pairs)  # type: ignore[misc]
        losses = {k: v for k, v in base.items() if k not in self.replaced}
        return sum([*losses.values(), *self.dam_losses(pairs, augmented).values()])

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images = batch.images
        o = self.sokd
        rows = batch_rows(batch)
        if o.manual_augment and o.manual_target == "images":  # Table 7: input augmentation
            _, gen = self.generators(images.device)
            teacher_images = apply_op(o.manual_augment, images, o.manual_magnitude, gen, rows)
            logits, features = self.student(images)
            _, teacher_features = self.teacher_outputs(teacher_images.detach())
        else:
            logits, features, teacher_features = self.student_and_teacher(images)
        feature_pairs = self.feature_pairs(features, teacher_features)  # type: ignore[attr-defined]
        pairs = self.maps.pairs(feature_pairs)
        teachers = [p.teacher for p in pairs]
        draw, augmented = None, None
        if self.policy is not None:
            draw = self.policy.draw(*self.generators(images.device))
            if self.searching and o.shared_search_forward:  # one s_bar(F_t) for both steps
                shared = self.augment(teachers, draw, rows)  # Eq. 8 with its graph to gamma
                self.policy_step(batch, pairs, draw, rows, shared)
                augmented = [a.detach() for a in shared]  # gamma before the step: the lag
            elif self.searching:
                self.policy_step(batch, pairs, draw, rows)
        if augmented is None:
            with torch.no_grad():  # the student step sees the updated policy, same draws
                augmented = self.augment(teachers, draw, rows)
        base = super().losses(batch, logits, features, teacher_features, feature_pairs)  # type: ignore[misc]
        losses = {k: v for k, v in base.items() if k not in self.replaced}
        losses.update(self.dam_losses(pairs, augmented, record=True))
        return logits, losses

    # ------------------------------------------------------- engine hooks
    def trained_modules(self) -> dict[str, nn.Module]:
        """The engine's networks and the base's, DAM and adapters; not the policy."""
        modules = super().trained_modules()  # type: ignore[misc]
        modules.pop("policy", None)
        return modules

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the engine's optimiser updates: everything but the teacher and the policy."""
        policy = {id(p) for p in self.policy.parameters()} if self.policy is not None else set()
        return [p for p in self.parameters() if p.requires_grad and id(p) not in policy]

    def capturable(self) -> str:
        return (
            "restarts its generators and steps its policy's optimiser inside the step: use "
            "train.graph=compile or none"
        )

    def epoch_metrics(self) -> dict[str, Any]:
        """The policy's most likely sub-policy, its probabilities and magnitudes, and the
        epoch's mean fraction of a map inside DAM's mask (`sokd_mask_coverage`, this process's
        steps; with DAM). Reading the coverage restarts its sums for the next epoch (the engine
        calls this once an epoch, before the epoch's checkpoint; a checkpoint inside an epoch
        keeps the sums so far)."""
        metrics = self.policy.summary() if self.policy is not None else {}
        total, count = (float(v) for v in self._sokd_coverage)  # between epochs
        self._sokd_coverage.zero_()
        if count:
            metrics["sokd_mask_coverage"] = round(total / count, 5)
        return metrics

    def extra_state(self) -> dict[str, Any]:
        state = dict(super().extra_state())  # type: ignore[misc]
        state["sokd_mask_coverage"] = self._sokd_coverage.detach().cpu().clone()
        if self.policy is not None:
            state["sokd_policy_optimizer"] = self.policy_optimizer.state_dict()
        if self._sokd_generator is not None:
            state["sokd_generators"] = {
                "policy": self._sokd_generator.get_state(),
                "ops": self._sokd_op_generator.get_state(),
            }
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)  # type: ignore[misc]
        if "sokd_mask_coverage" in state:  # a resume inside an epoch keeps its sums
            self._sokd_coverage.copy_(state["sokd_mask_coverage"])
        if self.policy is not None and "sokd_policy_optimizer" in state:
            self.policy_optimizer.load_state_dict(state["sokd_policy_optimizer"])
        if "sokd_generators" in state:
            self._sokd_generator_state = dict(state["sokd_generators"])
            self._sokd_generator = None  # re-created from the saved states on the next step


_CLASSES: dict[type, type] = {}


def sokd_class(base_cls: type[Distiller]) -> type[Distiller]:
    """SoKD over `base_cls` (one class per base, made once)."""
    if base_cls not in _CLASSES:
        _CLASSES[base_cls] = type(f"SoKD{base_cls.__name__}", (SoKDPlugin, base_cls), {})
    return _CLASSES[base_cls]


@register_method("sokd")
class SoKD(Distiller):
    """The registered entry: builds SoKD over `method.base` (see the module docstring)."""

    Options = SoKDOptions

    @classmethod
    def build(
        cls,
        student: nn.Module,
        teacher: nn.Module,
        options: SoKDOptions | None = None,
        spec: Any = None,
        train_seed: int | None = None,
        **data: Any,
    ) -> Distiller:
        """SoKD over its base; `spec` (a DataSpec) or the base's own keywords (`image_size`,
        CRD's `train_targets`) give what the base needs of the data; `train_seed` seeds the
        draws unless `options.seed` does (see `setup_sokd`)."""
        options = options or SoKDOptions()
        base_cls = get_method(options.base)
        if not issubclass(base_cls, FeatureDistiller):
            raise ConfigError(
                f"method.base '{options.base}' is not a feature method: SoKD plugs into one of "
                f"{', '.join(feature_methods())}"
            )
        base_options = build_dataclass(
            base_cls.Options, dict(options.base_options), "method.base_options"
        )
        kwargs = base_cls.data_kwargs(spec) if spec is not None else data
        method = sokd_class(base_cls)(student, teacher, base_options, **kwargs)
        method.setup_sokd(options, kwargs.get("image_size", 32), train_seed)
        method.method_name = "sokd"
        return method

    @classmethod
    def from_config(cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any):
        return cls.build(student, teacher, cfg.method.options, spec, cfg.train.seed)
