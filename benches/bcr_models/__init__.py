"""BCR sparsity end to end: whole pruned models, grimc BCR against onnxruntime,
grimc dense and the CSR mode, with an ablation and a per-layer profile.

    python -m benches.bcr_models                       # all models, 1 and 2 threads
    python -m benches.bcr_models --models gru --threads 1
    python -m benches.bcr_models --quick               # small variants, 3 samples (tests)

Models and rates (the issue's "realistic" ones; `benches.bcr_models.cases`):
VGG-16 224x224 at 8x and at 16x, ResNet-18 at ~6x, MobileNet-V2 with only its
pointwise convs pruned ~3x (8x16 blocks), the 2x1024 GRU (100 steps) at ~10x
with 16x32 blocks, all pruned by `grimc.prune.prune_model`. Every engine runs
the same pruned model (`benches.bcr_models.engines`): onnxruntime (dense
kernels, intra-op threads = T, sequential), grimc dense, grimc BCR (the
default pipeline), grimc CSR, and BCR without `bcr-reorder` / without RLE.
Each output is checked against onnxruntime's.

Printed and written (markdown + JSON, `--out`): the machine, the command, a
measured FMA peak (`benches.bcr_layers.fma_peak`), per case and thread count
the median ms of every engine with its ratios to onnxruntime, grimc dense and
CSR, the issue's target (BCR over onnxruntime >= compression / 2, set for
VGG-16 and the GRU), the ablation, and per layer of a profiled build of the
BCR C: ms, share of the model, GFLOP/s on nonzero multiply-adds and % of peak.
Before timing each row it waits (up to --quiet-wait s) for the CPUs to be
quiet and records how busy they were.
"""
