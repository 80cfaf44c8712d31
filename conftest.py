"""Collection rules for the whole repository: modules that need PyTorch skip without it."""

from convmat.testing import has_torch

# from_torch's docstring examples build torch modules; without torch they cannot run.
collect_ignore = [] if has_torch() else ["convmat/_torch.py"]
