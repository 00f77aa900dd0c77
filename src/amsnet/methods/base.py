"""The method contract: one training objective and an explicit inference.

A method never has a ``forward`` that switches on ``self.training``: training calls
``objective`` on a :class:`Batch`, inference calls ``denoise`` (which runs without gradients).
Everything that trains, saves or runs a method (the trainer, the quick fit, the evaluator, the
inference code) relies on the :class:`Method` protocol only, so a new method is one new file
(a module class that follows it) plus its registration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from amsnet.config import Stage, validate
from amsnet.errors import ConfigError

STAGE_NAMES: dict[str, str] = {"B": "training", "P": "fine-tuning"}
"""What each stage of ``train.stage`` optimises, in words (for messages)."""


@dataclass(frozen=True)
class Batch:
    """One batch of training crops.

    Attributes:
        noisy: ``(B, C, H, W)`` noisy crops in ``[0, 1]``.
        target: ``(B, C, H, W)`` image paired with each crop, for a method that declares
            ``needs_target`` (the ground truth of the supervised ceiling, the teacher's output
            for a distilled student); ``None`` for a self-supervised method, which must only
            ever see noisy pixels.
    """

    noisy: torch.Tensor
    target: torch.Tensor | None = None

    def to(self, device: torch.device, *, non_blocking: bool = False) -> Batch:
        """The same batch on ``device``."""
        target = self.target
        return Batch(
            self.noisy.to(device, non_blocking=non_blocking),
            None if target is None else target.to(device, non_blocking=non_blocking),
        )


@dataclass
class LossOutput:
    """A training objective's value.

    Attributes:
        loss: the scalar to minimise.
        terms: its named parts, detached, for logging (for example ``mask_l1``).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


@runtime_checkable
class Method(Protocol):
    """What the trainer, the quick fit, the evaluator and the inference code rely on.

    A method is a :class:`torch.nn.Module` (its parameters, buffers and ``state_dict`` are
    the backbone's) that also has these members.
    """

    backbone: torch.nn.Module
    backbone_dtype: torch.dtype | None
    """The dtype the backbone runs in (``None``: float32; :mod:`amsnet.precision`)."""

    needs_target: ClassVar[bool]
    """The objective needs ``Batch.target``; training code passes a target to such a method
    only, and refuses data without one."""

    stages: ClassVar[tuple[Stage, ...]]
    """The stages ``objective`` accepts (``"B"``: training, ``"P"``: fine-tuning)."""

    def objective(
        self, batch: Batch, stage: Stage = "B", *, generator: torch.Generator
    ) -> LossOutput:
        """The loss of ``batch`` for ``stage`` (one of ``stages``), differentiable."""
        ...

    def denoise(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        refine: bool = False,
        refine_batch: int | None = None,
        pixel_key: Any = None,
    ) -> torch.Tensor:
        """Denoised images, same shape as ``noisy``; no gradients."""
        ...

    def method_config(self) -> dict[str, Any]:
        """The settings that rebuild this method (stored in weights files)."""
        ...


Adaptation = Literal["objective", "teacher"]
"""How :func:`amsnet.adapt` fine-tunes a method on new noisy images: ``"objective"``, with its
own self-supervised objective; ``"teacher"``, by distilling it again from its adapted teacher."""

# Optional declarations, beside the protocol (a method without them still follows it); the
# functions below read them with the defaults that suit a self-supervised method.


def is_refinable(method: object) -> bool:
    """Whether ``method`` (an instance or a class) declares that ``denoise(refine=True)``
    applies R3, i.e. it has masks (class attribute ``refinable``; default True)."""
    kind = method if isinstance(method, type) else type(method)
    return bool(getattr(kind, "refinable", True))


def adaptation_of(method: object) -> Adaptation | None:
    """How ``method`` can be adapted (class attribute ``adaptation``; default ``"objective"``
    for a self-supervised method, ``None``, not at all, for one that ``needs_target``)."""
    kind = type(method)
    default = None if getattr(kind, "needs_target", False) else "objective"
    return getattr(kind, "adaptation", default)


def description_of(method: object) -> str:
    """``method``'s kind in words, for messages (class attribute ``description``)."""
    kind = type(method)
    return str(getattr(kind, "description", f"a {kind.__name__} model"))


def require_stage(method: object, stage: str) -> None:
    """Raise unless ``method`` has an objective for ``stage``.

    Raises:
        ConfigError: naming the method, the stage and the stages it has.
    """
    stages: tuple[str, ...] = getattr(type(method), "stages", ())
    if stage not in stages:
        raise ConfigError(
            f"{type(method).__name__} has no {STAGE_NAMES.get(stage, stage)} objective "
            f"(stage {stage}); its stages: {', '.join(stages) or 'none'}"
        )


def constructor_arguments(local_variables: dict[str, Any]) -> dict[str, Any]:
    """A method's settings from its constructor's ``locals()`` (called first thing).

    The methods take their settings as explicit keyword arguments (readable signatures) and
    validate them all at once with their pydantic config.
    """
    return {
        key: value
        for key, value in local_variables.items()
        if key not in ("self", "backbone", "__class__")
    }


class BackboneMethod(nn.Module):
    """What the shipped methods share: a backbone, settings validated by the method's config
    class (``settings_class``, whose ``stages`` the method takes), and the declarations.

    Subclasses call ``super().__init__(backbone, constructor_arguments(locals()))`` first.
    """

    settings_class: ClassVar[type[Any]]
    """The pydantic model of the settings (:mod:`amsnet.config`); it declares ``stages``."""

    stages: ClassVar[tuple[Stage, ...]] = ()
    """Taken from ``settings_class.stages``."""

    needs_target: ClassVar[bool] = False
    """Self-supervised unless a subclass says otherwise: the objective sees noisy crops only."""

    refinable: ClassVar[bool] = True
    """``denoise(refine=True)`` applies R3 (the method has masks)."""

    adaptation: ClassVar[Adaptation | None] = "objective"
    """How :func:`amsnet.adapt` fine-tunes it (:data:`Adaptation`; ``None``: it cannot)."""

    description: ClassVar[str] = "a model"
    """Its kind in words, for messages."""

    backbone_dtype: torch.dtype | None = None
    """The dtype the backbone runs in (``None``: float32; :mod:`amsnet.precision`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        settings_class = cls.__dict__.get("settings_class")
        if settings_class is not None:
            cls.stages = settings_class.stages

    def __init__(self, backbone: nn.Module, arguments: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        self.settings = validate(self.settings_class, arguments, f"{type(self).__name__} arguments")

    def method_config(self) -> dict[str, Any]:
        """The settings that rebuild this method (``name`` included)."""
        return self.settings.model_dump()

    @property
    def tile_multiple(self) -> int:
        """The multiple every tile's origin and size should have so that no tile needs
        padding: the inference PD factor (1 without PD) times the backbone's size multiple."""
        multiple = int(getattr(self.backbone, "size_multiple", 1))
        return int(getattr(self.settings, "pd_factor_eval", 1)) * multiple

    @property
    def accepts_pixel_key(self) -> bool:
        """``denoise(pixel_key=...)`` keys its random choices to absolute pixel positions, so
        tiles of one image draw what the whole image would (:class:`amsnet.ops.masks.PixelKey`)."""
        return True


def default_generator(device: torch.device, seed: int = 0) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (``denoise`` is deterministic by default)."""
    return torch.Generator(device=device).manual_seed(seed)


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``module`` in eval mode for the block and restore its previous mode after.

    Inference must not update BatchNorm statistics, yet calling ``denoise`` in the middle of
    training must not leave the model in eval mode either.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
