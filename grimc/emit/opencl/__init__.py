"""The OpenCL target: .cl kernel lowerings (templates/opencl) and the host code generator."""
