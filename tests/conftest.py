"""Suite-wide test settings."""

import torch

# The suite runs as two pytest-xdist workers on two cores; a second intra-op thread per
# worker only oversubscribes the cores (tiny tensors pay for waking the pool each op).
torch.set_num_threads(1)
