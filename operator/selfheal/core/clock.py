"""Timestamps in the format Kubernetes conditions use."""

import datetime


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
