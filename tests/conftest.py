"""Suite-wide test settings."""

import torch

# The suite runs as two pytest-xdist workers on two cores; a second intra-op thread per
# worker only oversubscribes the cores (tiny tensors pay for waking the pool each op).
torch.set_num_threads(1)

import importlib.util  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402

# Tests of an optional extra: the marker, the modules it needs, and how a user installs them.
_EXTRAS = {
    "clients": (("lightning", "skorch"), 'pip install -e ".[clients]"'),
    "curvlinops": (("curvlinops",), 'pip install -e ".[curvature-peers]" && pip install --no-deps '
                                    '"curvlinops-for-pytorch>=3,<4" "backpack-for-pytorch>=1.7,<2"'),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside CI, tests of an extra that is not installed are skipped with the install command.

    Under ``CI=true`` (``.ci/run`` installs every extra) nothing is skipped: a missing extra fails
    loudly, so a broken install can never pass as a green run.
    """
    if os.environ.get("CI") == "true":
        return
    for marker, (modules, install) in _EXTRAS.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if not missing:
            continue
        skip = pytest.mark.skip(reason=f"extra not installed ({', '.join(missing)}): {install}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
