"""The one training loop every method runs through.

Each epoch the method's `start_epoch(epoch)` is called; each step its `forward_train(batch)`
returns (logits, {name: loss}); the engine sums the losses, back-propagates (with a GradScaler
under fp16), steps the optimiser and the per-iteration schedule. After each epoch: evaluation,
one record to the writers (`metrics.jsonl`, the console, ...; `common.engine.writers`),
`last.pt` (atomic) and `best.pt`; at the end the summary (`summary.json`, reusing the last
epoch's evaluation) and `final.pt`, the last epoch's student (what distillation recipes load as
their teacher, as the papers' protocol distils from the last epoch). SIGTERM/SIGINT save the
exact position (mid-epoch included) and exit; `--resume` continues from it bit-exactly on the
CPU. A non-finite loss stops with the step and the losses, leaving the last good checkpoint
untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common.batch import Batch
from common.config.schema import RunConfig
from common.data import DataBundle
from common.engine.checkpoint import BackgroundWriter, capture_rng, restore_rng
from common.engine.ddp import convert_sync_batchnorm, wrap_for_training
from common.engine.device_policy import DevicePolicy, resolve_policy
from common.engine.distributed import DistInfo, all_reduce_max, all_reduce_sum
from common.engine.evaluate import evaluate, module_logits
from common.engine.graphs import CapturedStep
from common.engine.guards import NonFiniteGuard, SignalCatcher, TrainingInterrupted
from common.engine.model_checks import OutputChecks
from common.engine.optim import (
    build_optimizer,
    build_scheduler,
    current_lr,
    scalars_to_parameters_device,
)
from common.engine.progress import ProgressBar, want_bar
from common.engine.state import TrainState
from common.engine.writers import EpochRecord, Writers, console_logger, writer_class
from common.errors import ConfigError, DataError, NonFiniteLossError
from common.methods.base import Distiller

__all__ = ["NonFiniteLossError", "Trainer", "TrainingInterrupted"]

# On a GPU, the NaN check and the distributed stop flag cost a host sync: do both this rarely.
SYNC_EVERY = 50
# What is logged of every other trained network (`extra_eval_models`, e.g. DML's peers).
EXTRA_METRICS = ("top1", "top5", "ece", "nll", "entropy")


class Trainer:
    """Trains a Distiller on a DataBundle according to a RunConfig, writing `run_dir`; a run
    (`common.engine.run_builder`) hands it the device policy it resolved."""

    def __init__(
        self,
        cfg: RunConfig,
        distiller: Distiller,
        data: DataBundle,
        run_dir: Path,
        dist_info: DistInfo,
        device: torch.device,
        policy: DevicePolicy | None = None,
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.run_dir = Path(run_dir)
        self.info = dist_info
        self.device = device
        self.logger = console_logger(dist_info.is_main)
        self.policy = policy or resolve_policy(cfg.train, device)  # a run's: run_builder's
        self.method = distiller.to(device)
        if self.policy.channels_last:
            self.method = self.method.to(memory_format=torch.channels_last)
        if self.policy.teacher_bf16 and self.method.teacher is not None:
            self.method.teacher.to(torch.bfloat16)  # frozen: no per-step recast under autocast
        if cfg.train.sync_bn and dist_info.distributed:
            if device.type != "cuda":
                raise ConfigError(
                    "train.sync_bn=true needs CUDA (SyncBatchNorm runs on GPUs only); "
                    "set train.sync_bn=false for CPU runs"
                )
            convert_sync_batchnorm(self.method)
        self.model = wrap_for_training(self.method, device, dist_info.distributed)
        self.optimizer = build_optimizer(
            self.method.trainable_parameters(),
            cfg.optim,
            capturable=self.policy.graph == "cudagraph",
        )
        self.compile_mode = "reduce-overhead" if device.type == "cuda" else "default"
        if self.policy.graph == "compile":
            for module in self.method.compile_targets():
                module.compile(mode=self.compile_mode)  # in place: state-dict keys stay
        self.captured = CapturedStep(self) if self.policy.graph == "cudagraph" else None
        self.steps_per_epoch = len(data.train)
        self.max_steps: int | None = None  # fit(max_steps=): stop (and save) after this many
        self.step_sizes = list(getattr(data.train, "step_sizes", []))
        self.scheduler = build_scheduler(
            self.optimizer, cfg.optim, self.steps_per_epoch, cfg.train.epochs
        )
        self.optimizer_step = self.optimizer.step  # as the schedule wrapped it
        if self.policy.graph == "compile":
            self.optimizer_step = torch.compile(self.optimizer.step, mode=self.compile_mode)
        self.amp_dtype = self.policy.amp_dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.policy.amp == "fp16")
        self.checkpoints = BackgroundWriter()
        self.state = TrainState()
        self.checks = OutputChecks({})
        for name in cfg.log.writers:
            writer_class(name)  # an unknown writer is refused before anything is written
        self.writers = Writers([])  # built when training starts, in the run folder

    # ----------------------------------------------------------------- helpers
    def autocast(self) -> contextlib.AbstractContextManager:
        """The recipe's mixed precision (`train.amp`), or nothing. Inside a CUDA-graph capture
        the cast cache is off, as PyTorch requires (a cached cast would outlive the graph)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        capturing = self.device.type == "cuda" and torch.cuda.is_current_stream_capturing()
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=not capturing)

    def _to_input(self, images: torch.Tensor) -> torch.Tensor:
        if self.policy.channels_last:  # the resolved choice (null: on CUDA), as the weights
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def evaluate(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """`fn` (images -> logits) over the whole validation set (every process's shard)."""
        return evaluate(
            lambda images: fn(self._to_input(images)), self.data.val, self.autocast, self.device
        )

    def evaluate_all(self) -> dict[str, float]:
        """The student's metrics, and those of every other trained network
        (`extra_eval_models`, e.g. DML's peers) as `top1_<name>`, `ece_<name>`, ..."""
        self.method.eval()
        metrics = self.evaluate(self.method.forward_eval)
        metrics.pop("count", None)
        for name, module in self.method.extra_eval_models().items():
            extra = self.evaluate(module_logits(module))
            for key in EXTRA_METRICS:
                metrics[f"{key}_{name}"] = extra[key]
        return metrics

    # ------------------------------------------------------------- checkpoint
    def checkpoint(self) -> dict[str, Any]:
        """Everything `--resume` needs to continue bit-exactly (last.pt)."""
        return {
            "model": self.method.student.state_dict(),
            "method": self.method.trainable_state_dict(),
            "method_extra": self.method.extra_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": vars(self.state).copy(),
            "rng": capture_rng(),
            "arch": self.cfg.student.name,
            "num_classes": self.data.spec.num_classes,
        }

    def student_file(self, top1: float) -> dict[str, Any]:
        """best.pt / final.pt: the bare student under `model` (loadable as a teacher)."""
        return {
            "model": self.method.student.state_dict(),
            "epoch": self.state.epoch,
            "top1": top1,
            "arch": self.cfg.student.name,
            "num_classes": self.data.spec.num_classes,
        }

    def save_last(self, wait: bool = False) -> None:
        """last.pt, written in the background (atomically); `wait` until it is on disk."""
        if self.info.is_main:
            self.checkpoints.save(self.checkpoint(), self.run_dir / "last.pt")
            if wait:
                self.checkpoints.wait()

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Load a last.pt written by `checkpoint()`."""
        self.method.load_trainable_state_dict(ckpt["method"])
        self.method.load_extra_state(ckpt.get("method_extra", {}))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        scalars_to_parameters_device(self.optimizer)  # last.pt is read on the CPU
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(**ckpt["state"])
        restore_rng(ckpt["rng"])

    # ------------------------------------------------------------------- train
    def measure_references(self) -> None:
        """Accuracy of the fixed networks (the teacher) before training, logged once."""
        for name, module in self.method.reference_models().items():
            result = self.evaluate(module_logits(module))
            self.state.reference[name] = result["top1"]
            self.logger.info(f"{name}: top1 {result['top1']:.2f}  top5 {result['top5']:.2f} (val)")

    def output_checks(self) -> OutputChecks:
        """Hooks refusing a network that does not return the zoo's `(logits, features)` (a
        bare tensor would be mis-read); active until the first training step is done."""
        networks = {"student": self.method.student, **self.method.reference_models()}
        networks.update(self.method.extra_eval_models())
        return OutputChecks(networks)

    def gradient_weight(self, local_images: int, step: int) -> float:
        """The factor that makes the processes' averaged gradient equal one process's on a
        step whose images do not split evenly (only the partial last batch): a process's
        mean loss counts by its share of the step's images, not as 1 / world size."""
        if not self.info.distributed or step >= len(self.step_sizes):
            return 1.0
        return local_images * self.info.world_size / self.step_sizes[step]

    def train_step(
        self, batch: Batch, step: int = 0, schedule: bool = True
    ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Forward, backward, optimiser and (unless `schedule` is false: a captured step)
        schedule step; returns the loss names, the summed loss and the per-name losses
        stacked (all detached, still on the device)."""
        # a new Batch, not batch.images rebound: under capture the static input must stay the
        # tensor the next replay's copy_in writes into
        batch = dataclasses.replace(batch, images=self._to_input(batch.images))
        with self.autocast():
            _, losses = self.model(batch)
            total = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        weight = self.gradient_weight(batch.size, step)
        self.scaler.scale(total * weight if weight != 1.0 else total).backward()
        if self.cfg.train.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                self.method.trainable_parameters(), self.cfg.train.grad_clip
            )
        if self.scaler.is_enabled():
            self.scaler.step(self.optimizer)  # fp16: reads the inf check on the host
            self.scaler.update()
        else:
            self.optimizer_step()
        if schedule:
            self.scheduler.step()
        # Weighted like the gradient, so the processes' logged means equal one process's.
        stacked = torch.stack([v.detach().float() for v in losses.values()]) * weight
        return list(losses), total.detach(), stacked

    def check_batch(self, batch: Batch) -> None:
        """Refuse a data path that lacks a field the method needs (`batch_fields`)."""
        missing = [name for name in self.method.batch_fields if not batch.has(name)]
        if missing:
            raise DataError(
                f"method '{self.cfg.method.name}' needs each batch's {', '.join(missing)}: "
                "make the DataLoader yield (images, targets, indices), e.g. with "
                "common.batch.IndexedDataset(dataset)"
            )

    def train_epoch(self, epoch: int, catcher: SignalCatcher) -> tuple[list[str], torch.Tensor]:
        """One epoch from `state.step_in_epoch`; returns loss names and their sums."""
        self.method.train()
        self.method.start_epoch(epoch)
        start_step = self.state.step_in_epoch
        if start_step == 0:
            self.state.epoch_lr = current_lr(self.optimizer)
            self.state.epoch_images = 0
        self.data.train.set_epoch(epoch, start_step=start_step)
        names: list[str] = []
        sums = (
            torch.tensor(self.state.epoch_loss_sums, device=self.device)
            if self.state.epoch_loss_sums
            else None
        )
        guard = NonFiniteGuard(self.device)
        bar = ProgressBar(
            self.steps_per_epoch,
            f"epoch {epoch + 1}/{self.cfg.train.epochs}",
            want_bar(self.cfg.train.progress, self.info.is_main),
        )
        check_every = 1 if self.device.type == "cpu" else SYNC_EVERY
        step = start_step
        for batch in self.data.train:
            if step == start_step:
                self.check_batch(batch)
            self.state.epoch_images += batch.size
            run = self.captured if self.captured is not None else self.train_step
            names, total, stacked = run(batch, step)
            self.checks.remove()
            sums = stacked.clone() if sums is None else sums.add_(stacked)
            guard.update(self.state.global_step, total, stacked)
            step += 1
            self.state.global_step += 1
            if step % check_every == 0 or step == self.steps_per_epoch:
                guard.check(names, epoch)
            bar.update(step)
            if self._should_stop(catcher, step):
                guard.check(names, epoch)
                bar.close()
                self.state.step_in_epoch = step
                self.state.epoch_loss_sums = sums.tolist()
                self.state.epoch_seconds += time.perf_counter() - self.epoch_tic
                self.save_last(wait=True)
                raise TrainingInterrupted(step, epoch + 1)
        bar.close()
        guard.check(names, epoch)
        assert sums is not None
        return names, sums

    def _max_steps_reached(self) -> bool:
        return self.max_steps is not None and self.state.global_step >= self.max_steps

    def _should_stop(self, catcher: SignalCatcher, step: int) -> bool:
        if step == self.steps_per_epoch:
            return False  # the epoch's own checkpoint follows
        if self._max_steps_reached():
            return True
        if not self.info.distributed:
            return catcher.received != 0
        if step % SYNC_EVERY:
            return False
        flag = torch.tensor(float(catcher.received != 0), device=self.device)
        return bool(all_reduce_max(flag).item())

    def fit(self, resume_ckpt: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train to `train.epochs`; returns the summary also written to summary.json."""
        cfg = self.cfg
        self.checks = self.output_checks()
        self.writers = Writers.build(
            cfg.log.writers, self.run_dir, cfg.train.epochs, self.info.is_main
        )
        if resume_ckpt is not None:
            self.restore(resume_ckpt)
            self.logger.info(
                f"resumed {self.run_dir} at epoch {self.state.epoch + 1}"
                + (f" step {self.state.step_in_epoch}" if self.state.step_in_epoch else "")
            )
        else:
            self.measure_references()
        try:
            with SignalCatcher() as catcher:
                for epoch in range(self.state.epoch, cfg.train.epochs):
                    self.run_epoch(epoch, catcher)
                    if self._max_steps_reached() and epoch + 1 < cfg.train.epochs:
                        raise TrainingInterrupted(0, epoch + 1)  # last.pt: the epoch's own
            return self.finish()
        finally:
            self.checks.remove()
            self.checkpoints.wait()
            self.writers.close()

    def run_epoch(self, epoch: int, catcher: SignalCatcher) -> None:
        """Train one epoch (from where the state stands), then evaluate, record and save."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        tic = self.epoch_tic = time.perf_counter()
        try:
            names, sums = self.train_epoch(epoch, catcher)
        except TrainingInterrupted as stop:
            self.logger.info(
                f"interrupted at epoch {epoch + 1} step {stop.args[0]}: saved "
                f"{self.run_dir / 'last.pt'}; continue with --resume {self.run_dir}"
            )
            raise
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - tic + self.state.epoch_seconds  # before a resume too
        images_here = torch.tensor([float(self.state.epoch_images)], device=sums.device)
        totals = torch.cat([sums, images_here])
        all_reduce_sum(totals)
        images = int(totals[-1].item())
        losses = {
            n: v / (self.steps_per_epoch * self.info.world_size)
            for n, v in zip(names, totals[:-1].tolist())
        }
        self.state.train_seconds += seconds
        self.state.images_seen += images
        self.state.epoch = epoch + 1
        self.state.step_in_epoch = 0
        self.state.epoch_loss_sums = []
        self.state.epoch_seconds = 0.0
        self.end_epoch(epoch, losses, seconds, images / max(seconds, 1e-9))

    def end_epoch(
        self, epoch: int, losses: dict[str, float], seconds: float, throughput: float
    ) -> None:
        """Evaluate, record, checkpoint."""
        cfg = self.cfg
        last = epoch + 1 == cfg.train.epochs
        metrics: dict[str, float] = {}
        if last or (epoch + 1) % max(cfg.train.eval_every, 1) == 0:
            metrics = self.evaluate_all()
            for name in self.method.extra_eval_models():
                best = max(metrics[f"top1_{name}"], self.state.extra_best.get(name, -1.0))
                self.state.extra_best[name] = metrics[f"top1_best_{name}"] = best
            self.state.last_metrics = dict(metrics)
            if metrics["top1"] > self.state.best_top1:
                self.state.best_top1 = metrics["top1"]
                self.state.best_epoch = epoch + 1
                if self.info.is_main:
                    self.checkpoints.save(
                        self.student_file(metrics["top1"]), self.run_dir / "best.pt"
                    )
            metrics["top1_best"] = self.state.best_top1
        record = EpochRecord(
            epoch=epoch + 1,
            lr=self.state.epoch_lr,  # the rate the epoch trained with (the schedule moved on)
            losses=losses,
            metrics=metrics,
            seconds=seconds,
            images_per_second=throughput,
            extra=self.method.epoch_metrics(),
        )
        self.writers.write_epoch(record)
        self.save_last()

    def finish(self) -> dict[str, Any]:
        """Final metrics of the last epoch's student (its evaluation at the end of the last
        epoch, not a second pass); written to summary.json."""
        final = self.state.last_metrics or self.evaluate_all()
        n_params = sum(p.numel() for p in self.method.student.parameters())
        summary = {
            "name": self.cfg.name,
            "method": self.cfg.method.name,
            "epochs": self.state.epoch,
            "top1": final["top1"],
            "top5": final["top5"],
            "top1_best": self.state.best_top1,
            "best_epoch": self.state.best_epoch,
            "ece": final["ece"],
            "nll": final["nll"],
            "entropy": final["entropy"],
            "train_seconds": self.state.train_seconds,
            "images_per_second": self.state.images_seen / max(self.state.train_seconds, 1e-9),
            "student_params": n_params,
            **{f"{k}_top1": v for k, v in self.state.reference.items()},
        }
        for name in self.method.extra_eval_models():
            for key in ("top1_best", *EXTRA_METRICS):
                summary[f"{key}_{name}"] = final.get(f"{key}_{name}")
        if self.info.is_main:
            self.checkpoints.save(self.student_file(final["top1"]), self.run_dir / "final.pt")
            self.checkpoints.wait()
        self.writers.write_summary(summary)
        return summary
