"""chinwag: a peer-to-peer terminal chat client on a Waku-compatible node stack."""

from importlib import metadata

try:
    __version__ = metadata.version("chinwag")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
