import pytest
import torch

from trainables.models import build_model, get_model_info, list_models

# (in_chans, image_size, num_classes) of digits, fashion_mnist, cifar10 and cifar100
SHAPES = {"digits": (1, 8, 10), "fashion_mnist": (1, 28, 10), "cifar10": (3, 32, 10)}
FEATURE_DIM = {"mlp": 1024, "small_cnn": 128, "timm/resnet18": 512}


@pytest.mark.parametrize("dataset", ["digits", "fashion_mnist", "cifar10"])
@pytest.mark.parametrize("name", ["mlp", "small_cnn", "timm/resnet18"])
def test_shapes_and_forward_is_head_of_features(name, dataset):
    in_chans, size, k = SHAPES[dataset]
    torch.manual_seed(0)
    model = build_model(name, in_chans=in_chans, num_classes=k, image_size=size).eval()
    x = torch.randn(3, in_chans, size, size)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        assert logits.shape == (3, k)
        assert feats.shape == (3, FEATURE_DIM[name])
        torch.testing.assert_close(model.head(feats), logits, rtol=0, atol=0)


def test_cifar100_head_and_no_pretrained_weights():
    torch.manual_seed(0)
    a = build_model("timm/resnet18", in_chans=3, num_classes=100, image_size=32)
    torch.manual_seed(1)
    b = build_model("timm/resnet18", in_chans=3, num_classes=100, image_size=32)
    assert a(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    # random initialisation from the seed, not a downloaded checkpoint
    assert not torch.equal(a.model.conv1.weight, b.model.conv1.weight)


def test_timm_vit_takes_the_data_image_size():
    model = build_model("timm/vit_tiny_patch16_224", in_chans=3, num_classes=10, image_size=32).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        assert model.features(torch.zeros(2, 3, 32, 32)).shape == (2, 192)


def test_mlp_is_the_paper_architecture():
    model = build_model("mlp", in_chans=1, num_classes=10, image_size=28)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 1024), (1024, 1024), (1024, 10)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.modules()) == 2


def test_unknown_model_lists_names():
    known = r"known: mlp, small_cnn, timm/<any timm model name>"
    with pytest.raises(ValueError, match=rf"unknown model 'resnet'; {known}"):
        build_model("resnet", in_chans=1, num_classes=10, image_size=8)
    with pytest.raises(ValueError, match=r"model='timm/no_such_net' is not a timm model"):
        get_model_info("timm/no_such_net")
    assert {"mlp", "small_cnn"} <= set(list_models())


def test_model_info():
    assert get_model_info("small_cnn").convolutional and not get_model_info("mlp").convolutional
    assert get_model_info("timm/resnet18").name == "timm/resnet18"
