"""ONNX export and the onnxruntime path: the graph's output against PyTorch's, tiled and not.

Tolerance: both sides compute in float32, and onnxruntime's kernels sum in another order than
oneDNN's, so outputs differ by a few float32 roundings (measured: at most ~1e-6 on outputs of
order 1, docs/onnx.md). ``TOLERANCE`` = 1e-4 is a fortieth of one 8-bit step, yet a single
pixel with another mask than PyTorch's (the failure this guards against) moves by the noise
amplitude, orders of magnitude more.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from amsnet.checkpoint import save_pretrained
from amsnet.cli import main
from amsnet.data.io import read_integer_image, write_image
from amsnet.errors import CheckpointError, ConfigError
from amsnet.methods import AMSNet, APBSN, Distilled
from amsnet.nets import create_net, list_nets
from amsnet.onnx_export import export_onnx
from amsnet.onnx_runtime import OnnxModel
from amsnet.ops.masks import PixelKey
from tests.nets_tiny import TINY

TOLERANCE = 1e-4
SEED = 3


def _tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_net(name, preset=None, **TINY[name])


def _difference(method, graph: OnnxModel, height: int, width: int, top: int, left: int) -> float:
    """Max abs difference of the ONNX graph and PyTorch on a random image at an origin."""
    image = torch.rand(1, 3, height, width)
    refine = graph.variant == "E"
    expected = method.denoise(
        image, refine=refine, refine_batch=1, pixel_key=PixelKey(graph.seed, top, left)
    )
    got = graph.denoise(image, refine=refine, pixel_key=PixelKey(graph.seed, top, left))
    assert got.shape == expected.shape == image.shape
    return float((got - expected).abs().max())


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    """A tiny AMSNet (DnCNN), its weights file and its variant-B export with seed 3."""
    folder = tmp_path_factory.mktemp("onnx")
    method = AMSNet(_tiny("dncnn")).eval()
    weights = save_pretrained(method, folder / "amsnet.safetensors")
    graph_file = export_onnx(weights, folder / "amsnet.onnx", seed=SEED)
    return method, weights, graph_file


def test_amsnet_graph_equals_pytorch_on_odd_sizes_and_tile_origins(masked):
    method, _, graph_file = masked
    graph = OnnxModel(graph_file, device="cpu")
    assert (graph.variant, graph.seed, graph.tile_multiple) == ("B", SEED, 2)
    figures = [_difference(method, graph, *case) for case in [(37, 45, 0, 0), (20, 33, 6, 10)]]
    print(f"AMSNet B (tiny DnCNN) ONNX vs PyTorch max abs difference: {figures}")
    assert max(figures) < TOLERANCE
    metadata = {p.key: p.value for p in onnx.load(str(graph_file)).metadata_props}
    assert metadata["amsnet.name"] == "amsnet" and len(metadata["amsnet.source_sha256"]) == 64


def test_the_masks_inside_the_graph_are_pytorchs(masked):
    # Another seed or origin than PyTorch's must show: the masks are really keyed.
    method, _, graph_file = masked
    graph = OnnxModel(graph_file, device="cpu")
    image = torch.rand(1, 3, 37, 45)
    shifted = graph.denoise(image, pixel_key=PixelKey(SEED, 0, 1))
    expected = method.denoise(image, pixel_key=PixelKey(SEED, 0, 0))
    assert float((shifted - expected).abs().max()) > 100 * TOLERANCE


def test_one_pass_graph_pads_inside_and_equals_pytorch(tmp_path):
    # UNet pads to a multiple of 32: a 37x45 image exercises the in-graph reflection.
    method = Distilled(_tiny("unet")).eval()
    graph = OnnxModel(export_onnx(method, tmp_path / "student.onnx"), device="cpu")
    figures = [_difference(method, graph, *case) for case in [(37, 45, 0, 0), (5, 70, 0, 0)]]
    print(f"one-pass UNet ONNX vs PyTorch max abs difference: {figures}")
    assert max(figures) < TOLERANCE


def test_variant_e_puts_r3_inside_the_graph(tmp_path):
    method = AMSNet(_tiny("dncnn"), refine_passes=2).eval()
    graph = OnnxModel(export_onnx(method, tmp_path / "e.onnx", variant="E"), device="cpu")
    figure = _difference(method, graph, 21, 27, 4, 2)
    print(f"AMSNet E (tiny DnCNN, 2 R3 passes) ONNX vs PyTorch max abs difference: {figure}")
    assert figure < TOLERANCE


def test_tiled_onnx_run_of_amsnet_denoise_equals_the_torch_path(tmp_path, masked):
    _, weights, graph_file = masked
    photo = tmp_path / "photo.png"
    write_image(photo, torch.rand(3, 45, 53))
    common = ["--tile", "32", "--overlap", "8", "--device", "cpu", "--seed", str(SEED)]
    common += ["--precision", "fp32"]  # PyTorch in float32, like the graph
    runs = {
        "torch": ["--weights", str(weights)],
        "onnx": ["--weights", str(graph_file)],
        "exported": ["--runtime", "onnx", "--weights", str(weights)],
    }
    outputs = {}
    for name, source in runs.items():
        assert main(["denoise", str(photo), "-o", str(tmp_path / name), *source, *common]) == 0
        outputs[name] = read_integer_image(tmp_path / name / "photo.png").array.astype(int)
    for name in ("onnx", "exported"):
        steps = np.abs(outputs[name] - outputs["torch"]).max()
        print(f"tiled {name} vs torch: max {steps} 8-bit steps")
        assert steps <= 1  # a float difference of 1e-6 may still round across a step


def test_bad_input_is_refused_with_the_file_and_the_fix(tmp_path, masked, capsys):
    _, weights, graph_file = masked
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf at all")
    with pytest.raises(CheckpointError, match="broken.onnx is not a readable ONNX file"):
        OnnxModel(broken)
    photo = tmp_path / "photo.png"
    write_image(photo, torch.rand(3, 20, 20))
    out = str(tmp_path / "out")
    assert main(["denoise", str(photo), "-o", out, "--weights", str(broken)]) == 1
    assert "broken.onnx" in capsys.readouterr().err
    assert main(["denoise", str(photo), "-o", out, "--weights", str(graph_file), "--seed", "0"])
    assert "seed 3" in capsys.readouterr().err
    assert main(["denoise", str(photo), "-o", out, "--weights", str(graph_file), "--variant", "E"])
    assert "holds variant B" in capsys.readouterr().err
    args = ["denoise", str(photo), "-o", out, "--weights", str(graph_file), "--runtime", "torch"]
    assert main(args) == 1 and "--runtime onnx" in capsys.readouterr().err
    assert main(["export", str(weights), "-o", str(graph_file)]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    student = save_pretrained(Distilled(_tiny("dncnn")), tmp_path / "student.safetensors")
    with pytest.raises(ConfigError, match="variant E"):
        export_onnx(student, tmp_path / "student-e.onnx", variant="E")


def test_damaged_metadata_and_a_missing_onnxruntime_are_named(tmp_path, masked, monkeypatch):
    _, _, graph_file = masked
    proto = onnx.load(str(graph_file))
    for entry in proto.metadata_props:
        if entry.key == "amsnet.tile_multiple":
            entry.value = "0"
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    with pytest.raises(CheckpointError, match="implausible sizes"):
        OnnxModel(tampered)
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(ConfigError, match=r"pip install amsnet\[onnx\]"):
        OnnxModel(graph_file)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_nets())
def test_every_backbone_small_preset_exports_and_matches(tmp_path, name):
    torch.manual_seed(0)
    backbone = create_net(name, preset="small")
    one_pass = Distilled(backbone).eval()
    masked = (APBSN(backbone) if name == "dbsnl" else AMSNet(backbone)).eval()
    figures = {}
    for label, method in (("one-pass", one_pass), ("masked B", masked)):
        graph = OnnxModel(export_onnx(method, tmp_path / f"{label}.onnx", seed=SEED))
        figures[label] = max(
            _difference(method, graph, *case) for case in [(37, 45, 0, 0), (29, 52, 8, 2)]
        )
    print(f"{name} small: ONNX vs PyTorch max abs difference {figures}")
    assert max(figures.values()) < TOLERANCE
