# The selfheal image: one command for every component (`selfheal operator`, `selfheal api`,
# `selfheal migrate`), as the manifests run it. Build and push:
#   docker build -t ghcr.io/molam/selfheal:0.1.0 . && docker push ghcr.io/molam/selfheal:0.1.0
# Where python:3.12-slim cannot be pulled, hack/image/build.py passes a Debian base as BASE.
# Only production dependencies, pinned and hash-checked from requirements.lock (hack/image/lock.sh
# regenerates it from pyproject.toml): no test, dev or bench extra, no embedded PostgreSQL.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# pip and the build backend stay in /opt/build; /opt/selfheal gets the lock and selfheal, nothing else.
RUN python3 -m venv /opt/build && python3 -m venv --without-pip /opt/selfheal
COPY requirements-build.lock requirements.lock /tmp/
RUN /opt/build/bin/pip install --require-hashes --no-deps -r /tmp/requirements-build.lock
RUN /opt/build/bin/pip --python /opt/selfheal/bin/python install --require-hashes --no-deps -r /tmp/requirements.lock
# kubernetes ships an asyncio copy of its whole client (kubernetes/aio, about 70 MB) that nothing here imports.
RUN rm -r /opt/selfheal/lib/python3*/site-packages/kubernetes/aio
# The source last: a code change rebuilds only this layer.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
 && /opt/build/bin/pip --python /opt/selfheal/bin/python install --no-deps /tmp/dist/*.whl

FROM ${BASE}
COPY --from=build /opt/selfheal /opt/selfheal
# The root filesystem is read-only in the pods: bytecode was compiled at install, none is written at run time.
ENV PATH=/opt/selfheal/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# A name for the uid: kopf looks the user up (getpwuid), and a kubelet, unlike podman, adds none.
RUN echo 'selfheal:x:65532:65532:selfheal:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'selfheal:x:65532:' >> /etc/group
USER 65532:65532
ENTRYPOINT ["selfheal"]
