"""The online swaps fail fast offline, naming the offline model; CIFAR-10 reads its own format."""
from __future__ import annotations

import pickle
import socket
import threading
import time

import numpy as np
import pytest
import torch

# Imported here so that import time is not counted as time to fail.
import transformers  # noqa: F401
from transformers import AutoModel, AutoTokenizer, ViTForImageClassification  # noqa: F401

from course_lib.zoo import OfflineError, list_datasets, list_models, load_dataset, load_model
from course_lib.zoo import online

ALTERNATIVES = {
    "resnet18": "load_model('efficientnet_lite0')",
    "resnet50": "load_model('efficientnet_lite0')",
    "vgg16": "load_model('efficientnet_lite0')",
    "cifar10_resnet18": "load_model('shapes_cnn')",
    "vit_b16": "load_model('shapes_vit')",
    "bert_base_uncased": "load_model('minilm')",
}
HUB_MODELS = {"cifar10_resnet18", "vit_b16", "bert_base_uncased"}


@pytest.fixture
def offline_machine(monkeypatch, tmp_path):
    """No usable network and empty caches: connections are refused, the caches point to tmp_path."""

    def refuse(*args, **kwargs):
        raise OSError("the tests do not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))
    for var in ("COURSE_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _load(name, tmp_path):
    options = {"cache_dir": tmp_path / "hf"} if name in HUB_MODELS else {}
    return load_model(name, **options)


def test_online_models_and_cifar10_are_registered_as_online():
    flags = {m["name"]: m["offline"] for m in list_models()}
    assert all(flags[name] is False for name in ALTERNATIVES)
    assert {d["name"]: d["offline"] for d in list_datasets()}["cifar10"] is False


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_course_offline_switch_fails_at_once_naming_the_alternative(name, offline_machine, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="no internet") as err:
        _load(name, offline_machine)
    assert time.perf_counter() - start < 2.0
    assert ALTERNATIVES[name] in str(err.value) and "COURSE_OFFLINE" in str(err.value)


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_a_hanging_connection_still_fails_within_seconds(name, offline_machine, monkeypatch):
    # The worst case: a connection attempt that never returns (a DNS lookup that hangs).
    release = threading.Event()
    monkeypatch.setattr(online, "_connect", lambda host, port, timeout: release.wait(30))
    monkeypatch.setattr(online, "PROBE_TIMEOUT", 0.5)
    start = time.perf_counter()
    try:
        with pytest.raises(OfflineError, match="could not reach") as err:
            _load(name, offline_machine)
    finally:
        release.set()
    assert time.perf_counter() - start < 3.0
    assert ALTERNATIVES[name] in str(err.value)


@pytest.mark.parametrize("name", sorted(HUB_MODELS))
def test_hf_hub_offline_stops_the_hub_models(name, offline_machine, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE") as err:
        _load(name, offline_machine)
    assert time.perf_counter() - start < 2.0 and ALTERNATIVES[name] in str(err.value)


def test_cifar10_without_a_local_copy_fails_fast_offline(offline_machine, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"load_dataset\('shapes'\)"):
        load_dataset("cifar10")
    with pytest.raises(FileNotFoundError):
        load_dataset("cifar10", download=False)


def _write_tiny_cifar(root, per_batch=2, n_test=3):
    """CIFAR-10's python format, a few images: pickled dicts of uint8 rows (R, G, B planes) and labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        n = n_test if name == "test_batch" else per_batch
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)  # H x W x C
        labels = [int((b + i) % 10) for i in range(n)]
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # the file stores C x H x W rows
        batch = {"batch_label": f"batch {b}", "labels": labels, "data": rows, "filenames": [f"{name}_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)  # the original batches are protocol-2 pickles
        written[name] = (images, labels)
    meta = {"label_names": list(online.CIFAR10_CLASSES), "num_cases_per_batch": per_batch, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


def test_cifar10_loader_reads_a_tiny_archive_in_cifar_format(offline_machine):
    written = _write_tiny_cifar(offline_machine)
    train = load_dataset("cifar10", root=offline_machine)
    test = load_dataset("cifar10", root=offline_machine, train=False)
    assert len(train) == 10 and len(test) == 3 and train.classes == online.CIFAR10_CLASSES
    np.testing.assert_array_equal(test.data, written["test_batch"][0])
    np.testing.assert_array_equal(train.data[2:4], written["data_batch_2"][0])
    assert test.targets == written["test_batch"][1]
    image, label = test[1]
    assert image.size == (32, 32) and np.array_equal(np.asarray(image), written["test_batch"][0][1])
    preprocess, denormalize = online.cifar10_preprocess()
    x, _ = load_dataset("cifar10", root=offline_machine, train=False, transform=preprocess)[1]
    assert x.shape == (3, 32, 32)
    torch.testing.assert_close(denormalize(x), torch.from_numpy(written["test_batch"][0][1]).permute(2, 0, 1) / 255.0)


def test_cifar10_loader_refuses_a_pickle_that_would_run_code(offline_machine):
    _write_tiny_cifar(offline_machine)

    class Evil:
        def __reduce__(self):
            return (print, ("this ran",))

    with open(offline_machine / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_dataset("cifar10", root=offline_machine, train=False)


def test_untrained_cifar10_resnet18_works_offline_and_trains_a_step(offline_machine):
    _write_tiny_cifar(offline_machine)
    loaded = load_model("cifar10_resnet18", pretrained=False)
    model = loaded.model
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity) and loaded.labels == online.CIFAR10_CLASSES
    assert loaded.info["trained"] is False
    torch.manual_seed(0)
    train = load_dataset("cifar10", root=offline_machine)
    online.train_cifar10_resnet18(model, train, epochs=1, batch_size=5, device="cpu")
    x = torch.stack([loaded.preprocess(train[i][0]) for i in range(2)])
    with torch.no_grad():
        assert model(x).shape == (2, 10)
    assert 0.0 <= online.cifar10_accuracy(model, train) <= 1.0


def test_cached_torchvision_weights_load_without_the_internet(offline_machine, monkeypatch):
    # Put a (random) ResNet-18 state dict where torchvision caches its download.
    import torchvision

    monkeypatch.setenv("COURSE_OFFLINE", "1")
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    cache = offline_machine / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cache / url.rsplit("/", 1)[1])
    loaded = load_model("resnet18")
    assert len(loaded.labels) == 1000 and loaded.info["last_conv_layer"] == "layer4"
    assert not loaded.model.training
    from course_lib.zoo import load_photo

    x = loaded.preprocess(load_photo("chelsea")).unsqueeze(0)
    assert x.shape == (1, 3, 224, 224) and loaded.model(x).shape == (1, 1000)


def test_cifar10_download_fails_fast_when_the_connection_hangs(offline_machine, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(online, "_connect", lambda host, port, timeout: release.wait(30))
    monkeypatch.setattr(online, "PROBE_TIMEOUT", 0.5)
    start = time.perf_counter()
    try:
        with pytest.raises(OfflineError, match=r"could not reach www.cs.toronto.edu.*load_dataset\('shapes'\)"):
            load_dataset("cifar10")
    finally:
        release.set()
    assert time.perf_counter() - start < 3.0
