"""ci-nix: CI/CD for Nix flake repositories."""

__version__ = "0.1.0"
