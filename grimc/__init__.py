"""grimc: a compiler for Block-based Column-Row (BCR) sparse DNN inference."""

__version__ = "0.1.0"
