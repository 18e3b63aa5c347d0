"""`python -m benches.qemu_plugin`: build the plugin and print its path."""

from benches.qemu_plugin import build_plugin

print(build_plugin())
