"""ONNX frontend: `import_onnx` turns an ONNX model into the graph dialect."""

from grimc.frontend.context import FrontendError
from grimc.frontend.onnx_import import import_onnx

__all__ = ["FrontendError", "import_onnx"]
