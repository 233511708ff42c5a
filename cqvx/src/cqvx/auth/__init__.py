"""Request signers: each turns (method, path with query, exact body bytes) into the headers to send."""

from cqvx.auth.base import Clock, PathSigner, Signer, split_path

__all__ = ["Clock", "PathSigner", "Signer", "split_path"]
