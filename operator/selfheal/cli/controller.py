"""`selfheal operator`: the kopf operator (validate, compile, sync, guard)."""

from __future__ import annotations

import click

from selfheal.cli.logs import log_format_option
from selfheal.cli.options import allowed_hosts_option, database_url_option, guard_config, guard_options, webhook_options
from selfheal.controller.config import WebhookConfig
from selfheal.core.patchlang import AllowedHosts


@click.command()
@database_url_option
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    metavar="NS",
    envvar="SELFHEAL_NAMESPACES",
    help="Watch only these namespaces (repeatable). Default: all namespaces.",
)
@click.option(
    "--registry-poll-interval",
    type=click.FloatRange(0.2, 300),
    default=2.0,
    show_default=True,
    envvar="SELFHEAL_REGISTRY_POLL_INTERVAL",
    metavar="SECONDS",
    help="How often changes made to the registry outside the operator are picked up.",
)
@click.option(
    "--registry-pool-size",
    type=click.IntRange(2, 100),
    default=4,
    show_default=True,
    envvar="SELFHEAL_REGISTRY_POOL_SIZE",
    metavar="N",
    help="Connections to the registry at most. Handlers queue for them (their writes are committed in batches).",
)
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply the registry schema at start.")
@click.option(
    "--liveness-port",
    type=click.IntRange(0, 65535),
    default=0,
    envvar="SELFHEAL_LIVENESS_PORT",
    help="Serve the probes on http://0.0.0.0:PORT: /healthz (200 standing by, or once kopf runs) and /readyz (0: off).",
)
@click.option(
    "--leader-election/--no-leader-election",
    default=False,
    show_default=True,
    envvar="SELFHEAL_LEADER_ELECTION",
    help="Run several replicas: the one holding a coordination.k8s.io Lease syncs and guards, the others "
    "serve the webhook and stand by, taking over within about 10 s of the leader's loss.",
)
@click.option(
    "--leader-election-namespace",
    default=None,
    metavar="NS",
    envvar="SELFHEAL_LEADER_ELECTION_NAMESPACE",
    help="Namespace of the Lease. [default: the pod's namespace, or the kubeconfig context's]",
)
@click.option(
    "--leader-election-lease",
    default="selfheal-operator",
    show_default=True,
    metavar="NAME",
    help="Name of the Lease; replicas sharing it elect one leader.",
)
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
@log_format_option
@allowed_hosts_option
@webhook_options
@guard_options
def operator(
    database_url: str,
    namespaces: tuple[str, ...],
    registry_poll_interval: float,
    registry_pool_size: int,
    migrate: bool,
    liveness_port: int,
    leader_election: bool,
    leader_election_namespace: str | None,
    leader_election_lease: str,
    verbose: bool,
    log_format: str,
    allowed_hosts: AllowedHosts,
    webhook: WebhookConfig | None,
    **guard,
) -> None:
    """Run the operator: validate SelfHealPatch resources and sync them into the registry.

    The cluster comes from the usual kubeconfig rules (KUBECONFIG, ~/.kube/config, then the
    in-cluster service account). Runs until interrupted.
    """
    from selfheal.controller.config import OperatorConfig
    from selfheal.controller.leadership import LeaderElectionConfig
    from selfheal.controller.run import run_operator
    from selfheal.services import kube

    config = OperatorConfig(
        database_url=database_url,
        registry_poll_seconds=registry_poll_interval,
        pool_size=registry_pool_size,
        run_migrations=migrate,
        allowed_hosts=allowed_hosts,
        webhook=webhook,
        guard=guard_config(**guard),
    )
    run_operator(
        config=config,
        namespaces=namespaces,
        liveness_port=liveness_port or None,
        debug=verbose,
        json_logs=log_format == "json",
        leader_election=LeaderElectionConfig(
            namespace=leader_election_namespace or kube.context_namespace(), name=leader_election_lease
        )
        if leader_election
        else None,
    )
