"""The files of a training run, in one folder.

==========================  ================================================================
``config.yaml``             the resolved configuration (every default filled in)
``environment.json``        one entry per start or resume: package version, Python, PyTorch,
                            CUDA, device, number of processes, git commit, command line
``log.csv``                 one row every ``log_every`` steps: loss and its terms, learning
                            rate, steps and crops per second, skipped steps
``validation.csv``          one row per validation: PSNR, SSIM (both conventions), seconds
``train.log``               the log messages
``best.safetensors``        the weights with the best validation PSNR so far
``last.safetensors``        the latest weights (every ``checkpoint_every`` steps and at the end)
``state.pt``                what ``--resume`` needs (see :mod:`amsnet.training.state`)
``samples/``                ``noisy | denoised | clean`` crops written at every validation
``tensorboard/``            TensorBoard events (when the package is installed)
``result.json``             how the run ended: steps, best PSNR, paths, skipped steps
``overrides.json``          the ``--set`` overrides of every start (``--resume`` re-applies them)
``.lock``                   held while a process trains in the folder (a second is refused)
==========================  ================================================================

The weights files hold the method and backbone configuration in their header (with the step
and the validation figures as metrics), so ``amsnet denoise --weights RUN/best.safetensors``
needs nothing else. Every file but the logs is written atomically (temporary file, rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from amsnet.atomic import atomic_path
from amsnet.config import dump_config, ExperimentConfig
from amsnet.errors import ConfigError
from amsnet.version import __version__


class RunFolder:
    """Paths of a run's files (see the module docstring) and the writers of its records."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.environment = self.path / "environment.json"
        self.log_csv = self.path / "log.csv"
        self.validation_csv = self.path / "validation.csv"
        self.text_log = self.path / "train.log"
        self.best = self.path / "best.safetensors"
        self.last = self.path / "last.safetensors"
        self.state = self.path / "state.pt"
        self.samples = self.path / "samples"
        self.tensorboard = self.path / "tensorboard"
        self.result = self.path / "result.json"
        self.overrides = self.path / "overrides.json"
        self.lock_file = self.path / ".lock"

    def check_start(self, resume: bool) -> None:
        """Refuse to start a fresh run over an existing one (its state would be lost).

        Raises:
            ConfigError: a fresh start where ``state.pt`` exists.
        """
        if not resume and self.state.exists():
            raise ConfigError(
                f"{self.path} already holds a training run ({self.state.name}); pass --resume "
                "to continue it, or choose another folder with --out (or experiment.name)"
            )

    @contextlib.contextmanager
    def claim(self) -> Iterator[None]:
        """Hold the folder for this process while the block runs: a second run into the same
        folder (another terminal, a second ``amsnet train``) is refused instead of
        interleaving its logs and checkpoints with this one's.

        The lock is an OS file lock (``fcntl.flock``) on ``.lock``, so a killed process never
        leaves a stale one. Where ``fcntl`` is missing (Windows) nothing is locked.

        Raises:
            ConfigError: the folder is a file, or another process holds it (its pid and
                command are named).
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"the run folder {self.path} is a file; choose another --out")
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        handle = open(self.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                owner = handle.read().strip() or "another process"
                raise ConfigError(
                    f"the run folder {self.path} is in use by {owner}; wait for that run to "
                    "end, or choose another --out (or experiment.name)"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})\n")
            handle.flush()
            yield
        finally:
            handle.close()
            if created and {p.name for p in self.path.iterdir()} <= {self.lock_file.name}:
                # A start that failed before writing anything leaves no trace.
                self.lock_file.unlink(missing_ok=True)
                self.path.rmdir()

    def recorded_overrides(self) -> list[str]:
        """The ``--set`` overrides earlier starts were made with (oldest first)."""
        try:
            data = json.loads(self.overrides.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise ConfigError(
                f"{self.overrides} must be a JSON list of KEY=VALUE strings; repair or delete it"
            )
        return data

    def write_overrides(self, overrides: Sequence[str]) -> None:
        """Record the overrides this start was made with (``--resume`` applies them again)."""
        with atomic_path(self.overrides) as tmp:
            tmp.write_text(json.dumps(list(overrides), indent=1), encoding="utf-8")

    def write_config(self, config: ExperimentConfig) -> Path:
        """Write the resolved configuration to ``config.yaml``."""
        return dump_config(config, self.config)

    def saved_config(self) -> dict[str, Any] | None:
        """The configuration a previous start wrote, or ``None``."""
        import yaml

        try:
            data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None
        return data if isinstance(data, dict) else None

    def append_environment(self, entry: dict[str, Any]) -> None:
        """Add one start's description to ``environment.json`` (a list, oldest first)."""
        entries: list[Any] = []
        try:
            entries = json.loads(self.environment.read_text())
            if not isinstance(entries, list):
                entries = [entries]
        except (OSError, ValueError):
            entries = []
        entries.append(entry)
        with atomic_path(self.environment) as tmp:
            tmp.write_text(json.dumps(entries, indent=2))

    def write_result(self, result: dict[str, Any]) -> None:
        """Write ``result.json``."""
        with atomic_path(self.result) as tmp:
            tmp.write_text(json.dumps(result, indent=2, allow_nan=True))


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dictionaries.

    Example:
        >>> changed_keys({"train": {"steps": 5, "amp": "off"}}, {"train": {"steps": 9}})
        ['train.amp', 'train.steps']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        keys = []
        for key in sorted(set(old) | set(new), key=str):
            keys += changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        return keys
    return [] if old == new else [prefix.rstrip(".")]


def _git(*arguments: str) -> str | None:
    source = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", *arguments],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def describe_environment(device: torch.device, world_size: int, start_step: int) -> dict[str, Any]:
    """What ran this start of the run: versions, device, git commit, command line."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or platform.machine()
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "start_step": start_step,
        "amsnet": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "device_name": device_name,
        "cpu_threads": torch.get_num_threads(),
        "processes": world_size,
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "command": sys.argv,
    }
