"""What every command shares: one-line errors with their exit codes, and the common options.

Exit codes: 0 done; 1 refused (bad input, illegal action, bad configuration); 2 usage
error; 3 the node could not be reached. Every error is one line on stderr, never a trace.
A refusal about one request field (the node's status details name it) reads
``govnet: error: INVALID_ARGUMENT: applicant.name: <the node's message>``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar

import click
import grpc

from govnet.node.app.desk import DeskError
from govnet.node.domain.catalog import CatalogError
from govnet.node.process.config import ConfigError
from govnet.node.rpc.client import ClientError
from govnet.node.store.unit import StoreError

DEFAULT_NODE = "127.0.0.1:50051"
EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3

F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """One line on stderr and a non-zero exit."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        # click declares exit_code per class; our one failure class carries any of our exit codes
        self.exit_code = code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(f"govnet: error: {self.format_message()}", err=True)


def friendly(fn: F) -> F:
    """Turn every expected failure into a one-line message and its exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = EXIT_UNREACHABLE if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else EXIT_REFUSED
            raise Failure(f"{exc.code.name}: {exc.line()}", code) from None
        except (ConfigError, CatalogError, StoreError) as exc:
            raise Failure(str(exc)) from None
        except DeskError as exc:  # a command that runs a node's desk in-process (the benchmarks)
            raise Failure(f"{exc.field}: {exc}" if exc.field else str(exc)) from None

    return wrapper  # type: ignore[return-value]


node_option = click.option(
    "--node", "node", default=lambda: os.environ.get("GOVNET_NODE", DEFAULT_NODE), show_default="$GOVNET_NODE or 127.0.0.1:50051",
    metavar="HOST:PORT", help="The node to talk to.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def actor_option(help: str | None = None) -> Callable[[F], F]:
    """``--actor``: deprecated and ignored (kept so old scripts still run): the node records the
    person logged in with ``govnet login``, never a name typed on the command line."""
    return click.option("--actor", default="", hidden=True, help="Deprecated, ignored: the logged-in person acts.")


class OneLineErrors(click.Group):
    """Usage errors too are one line (what is wrong and where to read more), exit code 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "govnet"
            click.echo(f"govnet: error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("govnet: aborted", err=True)
            sys.exit(1)
        except Exception as exc:  # a bug: one line for the person, the trace only when asked for
            if os.environ.get("GOVNET_DEBUG"):
                raise
            click.echo(f"govnet: internal error: {type(exc).__name__}: {str(exc)[:300]} "
                       "(run again with GOVNET_DEBUG=1 for the trace, and report it)", err=True)
            sys.exit(EXIT_REFUSED)


