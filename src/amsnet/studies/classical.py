"""BM3D, the classical baseline the demo and the quality study compare against.

BM3D (Dabov et al., TIP 2007) needs the noise standard deviation. Two versions are reported:
the *oracle* sigma, the true standard deviation of ``noisy - clean`` (which a real photo never
gives you), and the *estimated* sigma of scikit-image's ``estimate_sigma`` (a wavelet
median-absolute-deviation estimator that assumes white noise, so it underestimates spatially
correlated camera noise badly: on real PolyU crops it returns 0.2 to 0.6 on the 0-255 scale
where the true standard deviation is 3 to 5).

The ``bm3d`` package (non-commercial licence) is optional: ``pip install 'amsnet[demo]'``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import torch

from amsnet.errors import ConfigError

# BM3D fails on sigma 0; the floor is far below one 8-bit level.
MIN_SIGMA = 1e-4


def require_bm3d() -> ModuleType:
    """The ``bm3d`` module.

    Raises:
        ConfigError: bm3d or scikit-image is not installed (the message says how to install).
    """
    try:
        import bm3d
        import skimage.restoration  # noqa: F401  (estimate_sigma)
    except ImportError:
        raise ConfigError(
            "BM3D needs the packages bm3d (non-commercial licence) and scikit-image: "
            "pip install 'amsnet[demo]'"
        ) from None
    return bm3d


def oracle_sigma(noisy: torch.Tensor, clean: torch.Tensor) -> float:
    """The true noise standard deviation, ``std(noisy - clean)``, on the ``[0, 1]`` scale."""
    return float((noisy.float() - clean.float()).std())


def estimated_sigma(noisy: torch.Tensor) -> float:
    """scikit-image's wavelet estimate of the noise sigma of a ``(3, H, W)`` image in [0, 1],
    averaged over the channels (``[0, 1]`` scale)."""
    require_bm3d()
    from skimage.restoration import estimate_sigma

    array = noisy.permute(1, 2, 0).double().numpy()
    return float(estimate_sigma(array, channel_axis=-1, average_sigmas=True))


def bm3d_denoise(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D of a colour image (``bm3d_rgb``: YCbCr-like opponent colour transform, then BM3D).

    Args:
        noisy: ``(3, H, W)`` in ``[0, 1]``.
        sigma: noise standard deviation on the ``[0, 1]`` scale.

    Returns:
        ``(3, H, W)`` float32 on the CPU (not clamped).
    """
    bm3d = require_bm3d()
    array = noisy.detach().cpu().permute(1, 2, 0).numpy().astype(np.float64)
    denoised = bm3d.bm3d_rgb(array, sigma_psd=max(sigma, MIN_SIGMA))
    return torch.from_numpy(np.ascontiguousarray(denoised)).permute(2, 0, 1).float()
