"""The installed freqdyn version (the one place it is read)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("freqdyn")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
