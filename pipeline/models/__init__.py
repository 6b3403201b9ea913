"""Generator/discriminator architectures by name.

Every architecture is a function `ModelSpec -> (generator, discriminator)`; adding one is one
function plus one `@ARCHITECTURES.register` line. Generators map (z, y) to a batch shaped like the
data; discriminators map (x, y) to one output per (packed) sample.
"""

from pipeline.models import dcgan, dcgan4, infogan, mlp, toy, toy_pacgan  # noqa: F401  (registration)
from pipeline.models.common import ARCHITECTURES, ModelSpec, build_models

__all__ = ["ARCHITECTURES", "ModelSpec", "build_models"]
