"""The `selfheal` command: one entry point for people and pipelines."""

from __future__ import annotations

import click

from selfheal.cli.api import api, keygen, token
from selfheal.cli.controller import operator
from selfheal.cli.dev import dev
from selfheal.cli.kill_switch import disable, enable
from selfheal.cli.patchlang import check_command, compile_command
from selfheal.cli.registry import migrate
from selfheal.cli.report import report


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="selfheal")
def main() -> None:
    """Self-healing SDK patches: SelfHealPatch resources, their operator and their registry.

    \b
    Quick start on a fresh machine:
      eval "$(selfheal dev up)"      # API server, etcd, PostgreSQL, CRD installed
      selfheal operator              # validate and sync SelfHealPatch resources
      kubectl get shp
    """


for command in (migrate, operator, dev, api, keygen, token, compile_command, check_command, disable, enable, report):
    main.add_command(command)
