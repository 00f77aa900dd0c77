"""The trainer: an experiment configuration in, a run folder of weights and logs out.

:class:`Trainer` runs one experiment (:class:`amsnet.config.ExperimentConfig`): stage B
(the method's training loss: AMSNet's L_m, AP-BSN's L1, the supervised L1) or stage P
(AMSNet's fine-tuning loss L_t), on one device or on several under ``torchrun``
(:mod:`amsnet.training.distributed`). Each step is a :class:`~amsnet.training.step.TrainStep`
(the one the quick fit runs too) on the method's ``objective``. What it guarantees:

* **Exact resume.** Everything random is a function of the step (crops, masks) or stored in
  the resume state (global generators); the schedule is a function of the step; the optimiser,
  loss scaler, weight average, best score and counters are stored. ``N`` steps in one go and
  ``N/2`` steps, resume, ``N/2`` steps give bit-identical weights (tested on the CPU, with and
  without DataLoader workers).
* **Safe stops.** SIGINT or SIGTERM finishes the current step, writes ``last.safetensors``
  and ``state.pt`` and returns (a second signal stops at once, without saving). All files are
  written atomically.
* **Non-finite losses.** A step whose loss (or gradient norm) is not finite is skipped: the
  weights, the optimiser state and the weight average stay as they were. The step still
  counts toward ``train.steps`` (it consumed its crops). ``max_bad_steps`` non-finite losses
  in a row stop the run with a message saying what to change, after saving a checkpoint.
* **No host sync per step.** Reading a GPU value on the host (``loss.item()``) makes the CPU
  wait for the GPU and stops it from queueing the next step. The loss, its terms, the skip
  count and the run of non-finite losses are accumulated on the device and read once every
  ``log_every`` steps; the skip itself happens on the device through the fused optimiser's
  ``found_inf`` input (the mechanism of PyTorch's own loss scaler). Where no fused optimiser
  exists (PyTorch < 2.4 on the CPU, MPS) the trainer reads one flag per step instead. As a
  consequence ``max_bad_steps`` is checked every ``log_every`` steps, so a run may continue
  up to ``log_every`` skipped steps past the limit before it stops.
* **Mixed precision** on CUDA (bfloat16 where supported, else float16 with loss scaling),
  gradient clipping, optional exponential moving average of the weights (validation and
  saved weights use the average; the resume state keeps both).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from amsnet.build import build_method, build_optimizer, build_schedule
from amsnet.checkpoint import (
    load_state,
    load_weights,
    read_header,
    read_tensors,
    save_pretrained,
    save_state,
)
from amsnet.config import ExperimentConfig, load_config
from amsnet.data.benchmarks import EvalPair
from amsnet.errors import ConfigError, DataError
from amsnet.methods.base import Batch, Method, require_stage
from amsnet.precision import choose_precision, set_precision
from amsnet.runtime import tune_cpu_allocator
from amsnet.training.datasets import build_train_dataset, StepSampler
from amsnet.training.distributed import (
    Distributed,
    fingerprint,
    setup_distributed,
    shutdown_distributed,
)
from amsnet.training.ema import WeightAverage
from amsnet.training.logbook import Logbook
from amsnet.training.run_folder import changed_keys, describe_environment, RunFolder
from amsnet.training.signals import ignore_interrupts, StopSignals
from amsnet.training.state import capture_rng, mask_seed, process_seed, restore_rng
from amsnet.training.statistics import DeviceStatistics
from amsnet.training.step import grad_scaler, ObjectiveModule, TrainStep
from amsnet.training.validation import is_better, load_validation_pairs, run_validation

log = logging.getLogger("amsnet.training")

# Under torchrun, processes agree on a stop request (SIGINT/SIGTERM) every this many steps:
# agreeing takes a collective and a host read, too costly for every step.
DISTRIBUTED_STOP_CHECK_EVERY = 10


@dataclass
class TrainResult:
    """How a call to :meth:`Trainer.fit` ended.

    Attributes:
        run_dir: the run folder.
        step: optimisation steps done (a later ``--resume`` continues from here).
        total_steps: ``train.steps``.
        interrupted: stopped by a signal (or ``until``) before ``total_steps``.
        signal: the signal number that stopped it, if any.
        skipped_steps: steps skipped because the loss or the gradient was not finite.
        best_psnr: best validation PSNR (dB), or None without validation.
        best_step: the step of ``best_psnr``.
        best_path: ``best.safetensors`` if written.
        last_path: ``last.safetensors``.
        final_loss: mean loss of the last logged interval.
        seconds: wall-clock time of this call's training loop.
        fingerprints: SHA-256 of every process's weights at the end (all equal when the
            replicas agree; one entry for a single process).
    """

    run_dir: Path
    step: int
    total_steps: int
    interrupted: bool = False
    signal: int | None = None
    skipped_steps: int = 0
    best_psnr: float | None = None
    best_step: int | None = None
    best_path: Path | None = None
    last_path: Path | None = None
    final_loss: float | None = None
    seconds: float = 0.0
    fingerprints: list[str] = field(default_factory=list)


class Trainer:
    """Train a method as an experiment configuration says (see the module docstring).

    Args:
        config: an :class:`ExperimentConfig`, or the path of a YAML file.
        run_dir: the run folder; default ``experiment.output_dir / experiment.name``.
        resume: continue the run whose ``state.pt`` is in ``run_dir``.
        device: overrides ``train.device``.
        quiet: no progress bar.
        train_data: a dataset to use instead of ``data.train`` (items: ``(3, S, S)`` noisy
            tensors, or ``{"noisy": ..., "clean": ...}`` dicts for the supervised method).
            Its item ``i`` must depend on ``i`` only for an exact resume.
        val_pairs: validation pairs to use instead of ``data.val``.
        overrides: the ``KEY=VALUE`` overrides ``config`` was made with; recorded in the run
            folder (``overrides.json``) so that ``amsnet train CONFIG --resume`` applies them
            again without being told.
        method: a method to train instead of building ``config.method`` (any
            :class:`~amsnet.methods.base.Method`, for example one that is not registered in
            the configuration); ``config.method`` then only shapes the data (crop multiple).
            Its ``stages`` must include ``train.stage``, and its weights files store its own
            ``method_config()``.

    The run folder is locked while :meth:`fit` runs (:meth:`RunFolder.claim`).

    Example:
        >>> from amsnet.training import Trainer  # doctest: +SKIP
        >>> result = Trainer("configs/cpu/amsnet.yaml", run_dir="runs/demo").fit()  # doctest: +SKIP
        >>> result.best_path  # doctest: +SKIP
        PosixPath('runs/demo/best.safetensors')
    """

    def __init__(
        self,
        config: ExperimentConfig | str | os.PathLike[str],
        *,
        run_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        device: str | None = None,
        quiet: bool = False,
        train_data: Dataset | None = None,
        val_pairs: Sequence[EvalPair] | None = None,
        overrides: Sequence[str] = (),
        method: Method | None = None,
    ) -> None:
        self.config = config if isinstance(config, ExperimentConfig) else load_config(config)
        self.overrides = list(overrides)
        experiment = self.config.experiment
        self.run = RunFolder(
            run_dir if run_dir is not None else Path(experiment.output_dir) / experiment.name
        )
        self.resume = resume
        self.device_name = device or self.config.train.device
        self.quiet = quiet
        self.train_data = train_data
        self.val_pairs = list(val_pairs) if val_pairs is not None else None
        self.given_method = method
        if method is not None:
            require_stage(method, self.config.train.stage)
        if self.config.train.stage == "P" and self.config.train.init is None and not resume:
            raise ConfigError(
                "train.stage P fine-tunes existing weights: set train.init to the stage-B "
                "weights (amsnet finetune CONFIG --init WEIGHTS)"
            )

    # -- public ---------------------------------------------------------------------------

    def fit(self, *, until: int | None = None) -> TrainResult:
        """Train up to ``train.steps`` (or stop after step ``until``, saving a checkpoint).

        Returns:
            :class:`TrainResult`.

        Raises:
            ConfigError: inconsistent settings, an existing run without ``resume``, or too
                many non-finite losses in a row (after saving a checkpoint).
            DataError: missing or malformed data.
            CheckpointError: unreadable ``init`` weights or resume state.
        """
        context, device = setup_distributed(self.device_name)
        try:
            claim = self.run.claim() if context.is_main else contextlib.nullcontext()
            with claim:
                return self._fit(context, device, until)
        finally:
            shutdown_distributed(context)

    # -- set-up ---------------------------------------------------------------------------

    def _fit(self, context: Distributed, device: torch.device, until: int | None) -> TrainResult:
        config = self.config
        train = config.train
        self.context, self.device = context, device
        if context.is_main:
            self.run.check_start(self.resume)
        state = load_state(self.run.state) if self.resume else None
        if device.type == "cuda":
            # Fixed crop sizes: let cuDNN pick its fastest kernels once.
            torch.backends.cudnn.benchmark = True
        elif device.type == "cpu":
            # Every step allocates and frees the same large buffers; glibc's default of
            # returning them to the OS each time made CPU training steps up to 10x slower on
            # the project's machines (see amsnet.runtime.tune_cpu_allocator).
            tune_cpu_allocator()

        torch.manual_seed(config.experiment.seed)
        built = self.given_method or build_method(config.weights_config())
        self.method = built.to(device)
        if train.init is not None and state is None:
            self._load_initial_weights(train.init)
        torch.manual_seed(process_seed(config.experiment.seed, context.rank))
        self.optimizer = build_optimizer(self.method.parameters(), train.optimizer, device)
        self.schedule = build_schedule(config)
        # Only the backbone runs in reduced precision (amsnet.precision.run_backbone): the
        # masks, PD, the losses and the optimiser's weights stay float32.
        self.autocast_dtype = choose_precision(
            self.method, train.precision, device, flag="train.precision"
        )
        set_precision(self.method, self.autocast_dtype)
        self.scaler = grad_scaler(device) if self.autocast_dtype == torch.float16 else None
        self.average = (
            WeightAverage(self.method, train.ema_decay) if train.ema_decay is not None else None
        )
        self.best_psnr: float | None = None
        self.best_step: int | None = None
        self.last_metrics: dict[str, float] = {}
        start = 0
        counters = {"skipped_steps": 0, "bad_in_a_row": 0}
        if state is not None:
            start, counters = self._restore(state)
        self.statistics = DeviceStatistics(device, **counters)
        self.mask_generator = torch.Generator(device=device)
        objective: nn.Module = ObjectiveModule(self.method, train.stage)
        if context.enabled:
            from torch.nn.parallel import DistributedDataParallel

            objective = DistributedDataParallel(
                objective, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.step = TrainStep(
            self.method,
            self.optimizer,
            train.stage,
            grad_clip=train.grad_clip,
            scaler=self.scaler,
            average=self.average,
            context=context,
            objective=objective,
        )
        stop = train.steps if until is None else min(until, train.steps)
        if start >= train.steps:
            log.info(
                "the run in %s already reached step %d of %d; to train further, resume with "
                "--set train.steps=N (N > %d)",
                self.run.path,
                start,
                train.steps,
                start,
            )
            return self._result(start, 0.0, None, interrupted=False)
        pairs = self._validation_pairs()
        loader = self._loader(start)
        self._write_run_records(start)  # once the data opened: a failed start leaves no trace
        self.logbook = Logbook(
            self.run,
            total_steps=train.steps,
            start_step=start,
            enabled=context.is_main,
            quiet=self.quiet,
            tensorboard=train.tensorboard,
        )
        try:
            with StopSignals() as signals:
                return self._loop(loader, pairs, start, stop, signals)
        finally:
            self.logbook.close()

    def _load_initial_weights(self, path: str) -> None:
        header = read_header(path)
        stored = header.get("config", {}).get("net", {})
        built = dict(getattr(self.method.backbone, "net_config", {}))
        differences = changed_keys(stored, built)
        if differences:
            raise ConfigError(
                f"train.init {path} holds a {stored.get('name')} backbone that differs from "
                f"the configured {built.get('name')} in {', '.join(differences[:6])}; set the "
                f"net section to the stored one (amsnet info {path} prints it)"
            )
        load_weights(self.method, read_tensors(path), str(path))
        log.info("started from the weights of %s", path)

    def _restore(self, state: dict[str, Any]) -> tuple[int, dict[str, int]]:
        """Put a resume state back; returns the step and the counters."""
        context = self.context
        load_weights(self.method, state["model"], str(self.run.state))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            if state.get("ema") is not None:
                self.average.load_state_dict(state["ema"])
            else:
                log.warning("the resume state has no weight average; starting one from here")
                self.average = WeightAverage(self.method, self.config.train.ema_decay or 0.999)
        best = state.get("best") or {}
        self.best_psnr, self.best_step = best.get("psnr"), best.get("step")
        stored_world = int(state.get("world_size", 1))
        rng = state.get("rng") or []
        if stored_world == context.world_size and context.rank < len(rng):
            restore_rng(rng[context.rank])
        else:
            log.warning(
                "the run was saved by %d process(es) and resumes with %d: the crops and masks "
                "continue, but not bit-exactly as an uninterrupted run",
                stored_world,
                context.world_size,
            )
        if context.is_main:
            saved = state.get("config") or self.run.saved_config() or {}
            changed = [
                k
                for k in changed_keys(saved, self.config.model_dump(mode="json"))
                if k != "train.device"
            ]
            if changed:
                log.warning(
                    "resuming with changed settings (%s): the run is no longer the same as an "
                    "uninterrupted one",
                    ", ".join(changed),
                )
        step = int(state["step"])
        log.info("resuming %s at step %d", self.run.path, step)
        counters = state.get("counters") or {}
        return step, {
            "skipped_steps": int(counters.get("skipped_steps", 0)),
            "bad_in_a_row": int(counters.get("bad_in_a_row", 0)),
        }

    def _write_run_records(self, start: int) -> None:
        if not self.context.is_main:
            return
        self.run.path.mkdir(parents=True, exist_ok=True)
        self.run.write_config(self.config)
        self.run.write_overrides(self.overrides)
        self.run.append_environment(
            describe_environment(self.device, self.context.world_size, start)
        )

    def _validation_pairs(self) -> list[EvalPair]:
        if not self.context.is_main:
            return []
        if self.val_pairs is not None:
            return self.val_pairs
        if self.config.data.val is None:
            log.info("no data.val section: no validation, so no best.safetensors")
            return []
        pairs = load_validation_pairs(self.config.data.val)
        if not pairs:
            raise DataError(f"data.val.root ({self.config.data.val.root}) gave no image pairs")
        log.info("validating on %d %s images", len(pairs), self.config.data.val.dataset)
        return pairs

    def _loader(self, start: int) -> DataLoader:
        data = self.config.data.train
        dataset = self.train_data
        if dataset is None:
            dataset = build_train_dataset(
                data,
                pd_factor=self.config.crop_multiple()[0],
                seed=self.config.experiment.seed,
                with_clean=self.method.needs_target,
                device=str(self.device),
            )
        sampler = StepSampler(
            start,
            self.config.train.steps,
            data.batch_size,
            rank=self.context.rank,
            world_size=self.context.world_size,
        )
        # A generator of its own keeps the DataLoader from drawing its worker base seed from
        # the global generator, whose state must only depend on the training steps.
        loader_seed = mask_seed(self.config.experiment.seed, self.context.rank, start) ^ 1
        return DataLoader(
            dataset,
            batch_size=data.batch_size,
            sampler=sampler,
            num_workers=data.workers,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=ignore_interrupts if data.workers else None,
            generator=torch.Generator().manual_seed(loader_seed),
        )

    # -- the loop -------------------------------------------------------------------------

    def _loop(
        self,
        loader: DataLoader,
        pairs: list[EvalPair],
        start: int,
        stop: int,
        signals: StopSignals,
    ) -> TrainResult:
        train = self.config.train
        batches: Iterator[Any] = iter(loader)
        crops_per_step = self.config.data.train.batch_size * self.context.world_size
        done = start
        last_checkpoint = start if self.resume else None  # a fresh run has none yet
        interval_start, interval_steps = time.perf_counter(), 0
        loop_start = interval_start
        final_loss: float | None = None
        lr = self.schedule(start)
        try:
            while done < stop:
                if self._stop_requested(signals, done):
                    break
                lr = self.schedule(done)
                self._train_step(next(batches), done, lr)
                done += 1
                interval_steps += 1
                self.logbook.advance()
                # Rows fall on the same steps whether or not the run was interrupted.
                if done % train.log_every == 0 or done == train.steps:
                    now = time.perf_counter()
                    rate = interval_steps / max(now - interval_start, 1e-9)
                    final_loss = self._log(done, lr, rate, crops_per_step)
                    interval_start, interval_steps = time.perf_counter(), 0
                paused = time.perf_counter()
                if self._wants_validation(done):
                    self._validate(done, pairs)
                if done % train.checkpoint_every == 0 or done == train.steps:
                    self._checkpoint(done)
                    last_checkpoint = done
                # Validation and checkpoints do not count against the training rate.
                interval_start += time.perf_counter() - paused
        finally:
            del batches  # shuts the DataLoader workers down
        interrupted = done < train.steps
        if interrupted and last_checkpoint != done:
            self._checkpoint(done)
        seconds = time.perf_counter() - loop_start
        result = self._result(done, seconds, final_loss, interrupted, signals.received)
        if interrupted and self.context.is_main:
            log.info(
                "stopped at step %d of %d; continue with --resume (run folder %s)",
                done,
                train.steps,
                self.run.path,
            )
        return result

    def _wants_validation(self, done: int) -> bool:
        has_val = self.val_pairs is not None or self.config.data.val is not None
        return has_val and (
            done % self.config.train.val_every == 0 or done == self.config.train.steps
        )

    def _stop_requested(self, signals: StopSignals, done: int) -> bool:
        if not self.context.enabled:
            return signals.received is not None
        if done % DISTRIBUTED_STOP_CHECK_EVERY:
            return False
        flag = torch.tensor(float(signals.received is not None), device=self.device)
        return bool(self.context.all_reduce(flag, "max").item())

    def _batch(self, items: Any) -> Batch:
        """The DataLoader's ``items`` as a :class:`Batch` on the device; the paired image
        only for a method that needs it."""
        needs_target = self.method.needs_target
        if isinstance(items, dict):
            noisy = items["noisy"]
            target = items.get("clean") if needs_target else None
        else:
            noisy, target = items, None
        if needs_target and target is None:
            raise ConfigError(
                f"method {self.method.method_config().get('name')} needs a target paired "
                "with every noisy crop, but the training data gives noisy images only; use "
                "data.train.kind "
                "sidd_medium, paired_folder or synthetic_camera (supervised) or distillation "
                "(distilled)"
            )
        return Batch(noisy, target).to(self.device, non_blocking=True)

    def _train_step(self, items: Any, step: int, lr: float) -> None:
        batch = self._batch(items)
        self.mask_generator.manual_seed(
            mask_seed(self.config.experiment.seed, self.context.rank, step)
        )
        outcome = self.step(batch, generator=self.mask_generator, lr=lr)
        self.statistics.add(outcome.loss, outcome.terms, outcome.bad_loss, outcome.skipped)

    def _log(self, done: int, lr: float, rate: float, crops_per_step: int) -> float:
        values = self.statistics.read(self.context)
        train = self.config.train
        if values["worst_run"] >= train.max_bad_steps:
            self._checkpoint(done)
            raise ConfigError(
                f"the loss was not finite for {values['worst_run']} steps in a row (checked at "
                f"step {done}); the weights of the last good step are saved in {self.run.path}. "
                f"Lower train.optimizer.lr (now {train.optimizer.lr:g}), set train.grad_clip, "
                "or check the training images for invalid pixels, then continue with --resume"
            )
        epoch = done * crops_per_step // self.config.data.train.crops_per_epoch
        row = {
            "epoch": epoch,
            "loss": values["loss"],
            **{k: v for k, v in values.items() if k not in ("loss", "worst_run", "bad_in_a_row")},
            "lr": lr,
            "steps_per_second": rate,
            "crops_per_second": rate * crops_per_step,
        }
        self.logbook.training(done, row)
        return values["loss"]

    def _model_to_save(self) -> nn.Module:
        return self.average.module if self.average is not None else self.method

    def _validate(self, done: int, pairs: list[EvalPair]) -> None:
        if self.context.is_main:
            val = self.config.data.val
            metrics, sample = run_validation(
                self._model_to_save(),
                pairs,
                device=self.device,
                seed=self.config.experiment.seed,
                dataset=val.dataset if val is not None else "validation",
                samples=val.samples if val is not None else 2,
            )
            improved = is_better(metrics["psnr"], self.best_psnr)
            self.last_metrics = metrics
            self.logbook.validation(done, metrics, improved)
            if sample is not None:
                self.logbook.sample(done, sample)
            if improved:
                self.best_psnr, self.best_step = metrics["psnr"], done
                save_pretrained(
                    self._model_to_save(),
                    self.run.best,
                    metrics=self._weights_metrics(done, metrics),
                    source=f"amsnet train {self.config.experiment.name} (best, step {done})",
                )
        self.context.barrier()

    def _weights_metrics(self, done: int, metrics: dict[str, float]) -> dict[str, Any]:
        val = self.config.data.val
        figures: dict[str, Any] = {
            "step": done,
            "stage": self.config.train.stage,
            "weight_average": self.average is not None,
        }
        if metrics:
            figures.update({k: metrics[k] for k in ("psnr", "ssim_matlab", "ssim_skimage")})
            figures["val_dataset"] = val.dataset if val is not None else "custom"
            figures["val_images"] = val.limit if val is not None else None
        return figures

    def _checkpoint(self, done: int) -> None:
        self.context.broadcast_buffers(self.method)
        counters = self.statistics.counters()
        rng = self.context.gather(capture_rng())
        if self.context.is_main:
            save_pretrained(
                self._model_to_save(),
                self.run.last,
                metrics=self._weights_metrics(done, self.last_metrics),
                source=f"amsnet train {self.config.experiment.name} (step {done})",
            )
            data = self.config.data.train
            save_state(
                {
                    "step": done,
                    "model": self.method.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                    "ema": self.average.state_dict() if self.average is not None else None,
                    "rng": rng,
                    "best": {"psnr": self.best_psnr, "step": self.best_step},
                    "counters": counters,
                    "data": {
                        "next_step": done,
                        "crops_per_step": data.batch_size * self.context.world_size,
                    },
                    "world_size": self.context.world_size,
                    "config": self.config.model_dump(mode="json"),
                },
                self.run.state,
            )
        self.context.barrier()

    def _result(
        self,
        done: int,
        seconds: float,
        final_loss: float | None,
        interrupted: bool,
        signal_number: int | None = None,
    ) -> TrainResult:
        self.context.broadcast_buffers(self.method)
        prints = self.context.gather(fingerprint(self.method))
        counters = self.statistics.counters() if hasattr(self, "statistics") else {}
        result = TrainResult(
            run_dir=self.run.path,
            step=done,
            total_steps=self.config.train.steps,
            interrupted=interrupted,
            signal=signal_number,
            skipped_steps=counters.get("skipped_steps", 0),
            best_psnr=self.best_psnr,
            best_step=self.best_step,
            best_path=self.run.best if self.run.best.exists() else None,
            last_path=self.run.last if self.run.last.exists() else None,
            final_loss=final_loss,
            seconds=seconds,
            fingerprints=prints,
        )
        if self.context.is_main:
            if len(set(prints)) > 1:
                log.error(
                    "the %d processes hold different weights at step %d; report this with "
                    "%s/environment.json",
                    len(prints),
                    done,
                    self.run.path,
                )
            payload = asdict(result)
            for key in ("run_dir", "best_path", "last_path"):
                payload[key] = None if payload[key] is None else str(payload[key])
            self.run.write_result(payload)
        return result
