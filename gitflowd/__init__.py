"""gitflowd: a Git-backed, GitOps workflow daemon."""

__version__ = "0.1.0"
