"""The preset table and the device profile."""
import pytest
import torch

from neural_style import nst_settings
from nst_server.device import CPU_WORKING_SIZE, profile_for, select_device
from nst_server.engine import resolve
from nst_server.errors import InputError
from nst_server.presets import PRESETS


def test_paper_preset_is_the_published_recipe():
    paper = PRESETS["paper"]
    assert paper.size == 256 and paper.iterations == 500
    assert (paper.optimizer, paper.lr) == ("adam", 0.003)
    assert (paper.content_weight, paper.style_weight, paper.tv_weight) == (1.0, 1e3, 0.0)
    # conv4_2 and conv1_1..conv5_1, read after their in-place ReLUs as the reference code does
    assert paper.content_layers == {"relu4_2": 1.0}
    assert paper.style_layers == {"relu1_1": 1.0, "relu2_1": 0.75, "relu3_1": 0.2,
                                  "relu4_1": 0.2, "relu5_1": 0.2}
    assert paper.style_term == "paper" and paper.style_shape == "content"
    assert paper.scales == ((1.0, 1.0),) and paper.exact_fp32 and not paper.clamp


def test_preset_names_match_the_shared_settings_table():
    assert set(PRESETS) == set(nst_settings.PRESETS)
    assert nst_settings.DEFAULT_PRESET in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_scale_shares_add_up(name):
    assert sum(share for _, share in PRESETS[name].scales) == pytest.approx(1.0)
    assert PRESETS[name].scales[-1][0] == 1.0


def test_cpu_profile():
    profile = profile_for(torch.device("cpu"))
    native_bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert profile.dtype == (torch.bfloat16 if native_bf16 else torch.float32)
    assert profile.working_size == CPU_WORKING_SIZE
    assert resolve({}, profile.working_size).size == CPU_WORKING_SIZE
    assert resolve({"preset": "paper"}, profile.working_size).size == 256


def test_device_selection_here():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert select_device(None).type == expected
    assert select_device("cpu").type == "cpu"
    with pytest.raises(InputError, match="unknown device"):
        select_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            select_device("cuda")
