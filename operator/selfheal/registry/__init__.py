"""The PostgreSQL registry: schema migrations and the operator's reads and writes."""
