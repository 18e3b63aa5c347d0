"""Training BCR-sparse models with PyTorch (the optional `[train]` extra).

- `BCRPruner` (pruner): masks on a torch.nn model's Conv/Linear/GRU/LSTM/RNN
  weights, a pruning schedule (`OneShot`, `Cubic`) or the regularized `ADMM`,
  masked fine-tuning, ONNX export.
- `onnx_torch`: an ONNX model as torch modules and back, for retraining ONNX models.
- `fit`: the training loop `grimc prune --retrain/--distill` and the accuracy
  benchmark use.
"""

from grimc.train.pruner import BCRPruner, LayerState, TorchLayer, find_torch_layers
from grimc.train.schedule import ADMM, Cubic, OneShot, Schedule

__all__ = ["ADMM", "BCRPruner", "Cubic", "LayerState", "OneShot", "Schedule", "TorchLayer",
           "find_torch_layers"]
