"""The `selfheal` command: one entry point for people and pipelines."""

from __future__ import annotations

from typing import Any

import click

from selfheal.cli.api import api, keygen, token
from selfheal.cli.controller import operator
from selfheal.cli.dev import dev
from selfheal.cli.errors import explain
from selfheal.cli.kill_switch import disable, enable
from selfheal.cli.patchlang import check_command, compile_command
from selfheal.cli.registry import migrate
from selfheal.cli.report import report


class SelfhealGroup(click.Group):
    """Failures a user can fix (database away or never migrated, no cluster, no such resource)
    come out as one line, `Error: <what> (hint: …)`, exit 2: never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as error:
            friendly = explain(error)
            if friendly is None:
                raise
            raise friendly from None


@click.group(cls=SelfhealGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="selfheal")
def main() -> None:
    """Self-healing SDK patches: SelfHealPatch resources, their operator and their registry.

    \b
    Quick start on a fresh machine:
      eval "$(selfheal dev up)"      # API server, etcd, PostgreSQL, CRD installed
      selfheal operator              # validate and sync SelfHealPatch resources
      kubectl get shp

    Every command runs from the installed package, except `selfheal dev`, which builds the
    local control plane from a source checkout (SELFHEAL_SOURCE_DIR) and needs the [dev] extra.
    Settings come from flags or the environment variables each --help names.
    """


def _show_environment_variables(command: click.Command) -> None:
    """Every option backed by an environment variable says so in --help: [env var: NAME]."""
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar:
            param.show_envvar = True
    for child in getattr(command, "commands", {}).values():
        _show_environment_variables(child)


for command in (migrate, operator, dev, api, keygen, token, compile_command, check_command, disable, enable, report):
    main.add_command(command)
_show_environment_variables(main)
