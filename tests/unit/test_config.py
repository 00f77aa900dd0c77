"""Configuration models: typos are errors with suggestions; defaults agree with the methods."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from amsnet.config import AMSNetConfig, APBSNConfig, ModelConfig, validate
from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, APBSN


@pytest.mark.parametrize(("cls", "config"), [(AMSNet, AMSNetConfig), (APBSN, APBSNConfig)])
def test_method_defaults_equal_config_defaults(cls, config):
    signature = inspect.signature(cls).parameters
    fields = {k: v.default for k, v in config.model_fields.items() if k != "name"}
    assert {k: signature[k].default for k in fields} == fields
    assert set(signature) - {"backbone"} == set(fields)


def test_a_typo_is_rejected_with_a_suggestion():
    with pytest.raises(
        ConfigError,
        match=r"method\.amsnet\.num_mask: unknown key 'num_mask'; did you mean 'num_masks'",
    ):
        validate(
            ModelConfig,
            {"method": {"name": "amsnet", "num_mask": 3}, "net": {"name": "unet"}},
            "test.yaml",
        )


def test_the_source_is_named_in_the_error():
    with pytest.raises(ConfigError, match="in my.yaml"):
        validate(AMSNetConfig, {"refine_ratio": 2.0}, "my.yaml")


def test_method_is_chosen_by_name():
    model = validate(
        ModelConfig, {"method": {"name": "apbsn"}, "net": {"name": "dbsnl", "width": 8}}, "x"
    )
    assert isinstance(model.method, APBSNConfig)
    assert model.net.kwargs() == {"width": 8}


def test_importing_the_config_does_not_import_torch():
    code = "import sys, amsnet.config, amsnet; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
