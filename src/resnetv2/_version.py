"""The installed package's version (``resnetv2.__version__``), in a module of its own so the
layers that record it (weights files, hub folders) need not import the package's root."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("resnetv2")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
