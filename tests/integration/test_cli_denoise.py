"""``amsnet denoise`` and ``amsnet.denoise`` on real files: formats, folders, failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import amsnet
from amsnet.checkpoint import save_pretrained
from amsnet.cli import main
from amsnet.data.io import read_image, read_integer_image, write_image
from amsnet.methods import AMSNet
from amsnet.nets import create_net
from tests.nets_tiny import TINY


@pytest.fixture
def weights(tmp_path):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    return save_pretrained(method, tmp_path / "model.safetensors")


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "in"
    write_image(root / "a.png", torch.rand(3, 40, 48))
    write_image(root / "sub" / "b16.png", rng.integers(0, 65535, (30, 36, 3), dtype=np.uint16))
    write_image(root / "gray.png", rng.integers(0, 255, (32, 32, 1), dtype=np.uint8))
    write_image(root / "alpha.png", torch.rand(3, 20, 24), alpha=torch.rand(1, 20, 24))
    write_image(root / "c.jpg", torch.rand(3, 40, 40))
    return root


def test_a_folder_keeps_paths_format_depth_alpha_and_channels(tmp_path, weights, photos):
    out = tmp_path / "out"
    assert (
        main(["denoise", str(photos), "-o", str(out), "--weights", str(weights), "--device", "cpu"])
        == 0
    )
    deep = read_integer_image(out / "sub" / "b16.png")
    assert deep.array.dtype == np.uint16 and deep.array.shape == (30, 36, 3)
    assert read_image(out / "gray.png").channels == 1
    alpha_in = read_integer_image(photos / "alpha.png").alpha
    assert np.array_equal(read_integer_image(out / "alpha.png").alpha, alpha_in)
    assert read_image(out / "c.jpg").format == "JPEG"
    assert read_image(out / "a.png").pixels.shape == (3, 40, 48)


def test_globs_tiles_variant_and_format(tmp_path, weights, photos):
    out = tmp_path / "out"
    args = ["denoise", str(photos / "**" / "*.png"), "-o", str(out), "--weights", str(weights)]
    assert main([*args, "--variant", "E", "--tile", "16", "--overlap", "8", "--format", "tif"]) == 0
    assert (out / "sub" / "b16.tif").is_file() and (out / "a.tif").is_file()


def test_the_self_ensemble_from_the_cli_and_the_api(tmp_path, weights, photos, capsys):
    out = tmp_path / "out"
    base = ["denoise", str(photos / "a.png"), "-o", str(out), "--weights", str(weights)]
    assert main([*base, "--ensemble", "9"]) == 1
    assert "--ensemble must be a whole number from 1" in capsys.readouterr().err
    assert not out.exists()  # refused before any work
    assert main([*base, "--ensemble", "8", "--format", "tif", "--bit-depth", "16"]) == 0
    noisy = read_image(photos / "a.png").rgb
    method = amsnet.load(weights, device="cpu")
    expected = amsnet.denoise(noisy, method, ensemble=8)
    written = read_image(out / "a.tif").rgb
    assert (written - expected.clamp(0, 1)).abs().max() < 1 / 65535 + 1e-6
    assert not torch.allclose(expected, amsnet.denoise(noisy, method))
    with pytest.raises(amsnet.ConfigError, match="ensemble must be a whole number"):
        amsnet.denoise(noisy, method, ensemble=0)


def test_strength_from_the_cli_and_the_api(tmp_path, weights, photos, capsys):
    out = tmp_path / "out"
    base = ["denoise", str(photos / "a.png"), "-o", str(out), "--weights", str(weights)]
    assert main([*base, "--strength", "1.2"]) == 1
    assert "--strength must lie in 0..1" in capsys.readouterr().err
    assert not out.exists()  # refused before any work
    assert main([*base, "--strength", "0.4", "--format", "tif", "--bit-depth", "16"]) == 0
    noisy = read_image(photos / "a.png").rgb
    method = amsnet.load(weights, device="cpu")
    full = amsnet.denoise(noisy, method)
    expected = amsnet.denoise(noisy, method, strength=0.4)
    # The blend is of the model's raw output, clipped after: compare where none was clipped.
    inside = (full > 0) & (full < 1)
    assert inside.float().mean() > 0.5
    blended = noisy + 0.4 * (full - noisy)
    assert torch.allclose(expected[inside], blended[inside], atol=1e-5)
    written = read_image(out / "a.tif").rgb
    assert (written - expected).abs().max() < 1 / 65535 + 1e-6
    with pytest.raises(amsnet.ConfigError, match="strength must lie in 0..1"):
        amsnet.denoise(noisy, method, strength=-1)


def test_bad_files_are_reported_skipped_and_make_the_exit_code_nonzero(
    tmp_path, weights, photos, capsys
):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code = main(
        [
            "denoise",
            str(photos),
            str(photos / "notes.txt"),
            "-o",
            str(out),
            "--weights",
            str(weights),
        ]
    )
    assert code == 1
    assert (out / "a.png").is_file()  # the others were done
    err = capsys.readouterr().err
    assert "broken.png" in err and "notes.txt" in err


def test_inputs_are_never_overwritten_and_outputs_only_with_overwrite(tmp_path, weights, photos):
    before = (photos / "a.png").read_bytes()
    assert (
        main(["denoise", str(photos / "a.png"), "-o", str(photos), "--weights", str(weights)]) == 1
    )
    assert (photos / "a.png").read_bytes() == before
    out = tmp_path / "out"
    args = ["denoise", str(photos / "a.png"), "-o", str(out), "--weights", str(weights)]
    assert main(args) == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    assert main(args) == 0 and (out / "a.png").stat().st_mtime_ns == stamp  # skipped
    assert main([*args, "--overwrite"]) == 0


def test_missing_inputs_and_weights_are_clear_errors(tmp_path, weights, capsys):
    assert main(["denoise", str(tmp_path / "nope.png"), "-o", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err
    write_image(tmp_path / "x.png", torch.rand(3, 16, 16))
    assert (
        main(
            [
                "denoise",
                str(tmp_path / "x.png"),
                "-o",
                str(tmp_path / "o"),
                "--weights",
                str(tmp_path / "w.safetensors"),
            ]
        )
        == 1
    )


def test_zero_shot_fits_on_the_inputs_and_saves_the_model(tmp_path, photos):
    out = tmp_path / "out"
    saved = tmp_path / "fitted.safetensors"
    args = [
        "denoise",
        str(photos / "a.png"),
        "-o",
        str(out),
        "--zero-shot",
        "--fit-steps",
        "5",
        "--save-weights",
        str(saved),
    ]
    assert main(args) == 0
    assert (out / "a.png").is_file()
    assert amsnet.load(saved).settings.mask_fill == "neighbour_mean"


def test_python_api_returns_the_kind_it_was_given():
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    rgb = np.zeros((20, 24, 3), np.uint8)
    assert amsnet.denoise(rgb, method).dtype == np.uint8
    assert amsnet.denoise(rgb[..., 0], method).shape == (20, 24)
    assert amsnet.denoise(np.zeros((20, 24, 3), np.uint16), method).dtype == np.uint16
    rgba = np.random.default_rng(0).random((20, 24, 4)).astype(np.float32)
    assert np.array_equal(amsnet.denoise(rgba, method)[..., 3], rgba[..., 3])
    assert amsnet.denoise(torch.rand(2, 3, 20, 24), method).shape == (2, 3, 20, 24)
    assert amsnet.denoise(torch.rand(3, 20, 24), method).shape == (3, 20, 24)
    assert amsnet.denoise(PILImage.fromarray(rgb), method).size == (24, 20)
    with pytest.raises(amsnet.ShapeError):
        amsnet.denoise([[1, 2]], method)
