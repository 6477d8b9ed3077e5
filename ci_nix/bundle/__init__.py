"""Airgap bundles: write (make), check (verify), their manifest and signing key."""
