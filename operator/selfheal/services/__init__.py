"""Services: one implementation of each operation the entry points share (sync, guard cycle,
kill switch, offline check), over the registry and the Kubernetes API."""
