"""grimc against peer inference engines (`python -m benches.peers`).

Modules: cli (entry point, orchestration, progress), cases (models and their
dense / BCR-pruned variants), engines (one loader per engine), worker (one
case in its own process), grimc.train.onnx_torch (ONNX -> torch.nn for the PyTorch row),
litert (LiteRT in its own virtualenv), machine (machine description),
report (report.json / report.md / chart.png).
"""
