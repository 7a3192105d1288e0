"""selfheal: self-healing SDK patches declared as SelfHealPatch resources, synced to a registry.

The package reads top-down in layers, each importing only those below it (checked by
import-linter, see pyproject.toml and CONTRIBUTING.md):

    cli                       the `selfheal` command
    controller | api | devenv the kopf operator, the registry API, the local test world
    services                  sync, guard cycle, kill switch: one implementation each
    registry                  every SQL statement and migration
    core                      pure logic: no I/O import at all
"""
