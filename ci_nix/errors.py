"""The one error hierarchy: the CLI prints a CiNixError as a single line and exits 2."""

from __future__ import annotations


class CiNixError(Exception):
    """ci-nix could not do its job; the message names the thing and what to do."""

    exit_code = 2


class ConfigError(CiNixError):
    """ci-nix.yaml (or a flag) is wrong."""


class WorkspaceError(CiNixError):
    """PATH is not a workspace, or a repo in it is unusable."""


class ToolError(CiNixError):
    """An external program is missing, too old, or failed in a way ci-nix cannot attribute."""


class ToolTimeout(ToolError):
    """An external program gave no answer within its time (a server that hangs)."""


class SelectionError(CiNixError):
    """--only, --base or --head names something that does not exist."""


class ForgeError(CiNixError):
    """A forge (GitHub, GitLab) call failed for good."""


class Cancelled(CiNixError):
    """SIGINT/SIGTERM arrived; exit code follows the signal (130/143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"cancelled by signal {signum}")
        self.signum = signum
        self.exit_code = 128 + signum


def internal_error(err: BaseException) -> str:
    """The one-line message for an exception that is a bug in ci-nix (mask it before showing)."""
    lines = str(err).strip().splitlines()
    detail = f": {lines[0][:200]}" if lines else ""
    return (f"internal error ({type(err).__name__}{detail}); this is a bug in ci-nix: please "
            "report it with the traceback above")
