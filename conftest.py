"""Collection rules for the whole repository: modules that need PyTorch skip without it."""

import importlib.util
import os

from convmat.testing import has_torch

# Keras 3 runs on JAX here (no TensorFlow); set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "jax")

# from_torch's docstring examples build torch modules; without torch they cannot run.
collect_ignore = [] if has_torch() else ["convmat/_torch.py"]
# from_keras's docstring examples build Keras layers; without keras they cannot run.
if importlib.util.find_spec("keras") is None:
    collect_ignore.append("convmat/_keras.py")
