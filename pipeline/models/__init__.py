"""Generator/discriminator architectures by name.

Every architecture is a module here with a function `ModelSpec -> (generator, discriminator)`
registered by `@ARCHITECTURES.register("name")`; every module of this package is imported below,
so a new architecture is that one file. A generator maps (z, y) to a batch shaped like the data
(`with_label` conditions it); a discriminator is an architecture's body, how one pack becomes
features, inside `Discriminator`, which adds PacGAN packing, label conditioning and the head. `unet` holds the
image-to-image tasks' networks (pix2pix's U-Net and PatchGAN), which `arch` does not choose.
"""

import importlib
import pkgutil

from pipeline.models.common import ARCHITECTURES, ModelSpec, build_models

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "common"):
    importlib.import_module(f"{__name__}.{_module}")  # registration

__all__ = ["ARCHITECTURES", "ModelSpec", "build_models"]
