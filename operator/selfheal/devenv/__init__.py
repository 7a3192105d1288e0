"""Local test world for selfheal: real etcd + kube-apiserver + PostgreSQL.

Entry points live in :mod:`selfheal.devenv.environment` (``up``, ``down``,
``export_lines``). Submodules are imported lazily by callers so that loading the
CLI does not pull in ``cryptography`` or ``psycopg``.
"""
