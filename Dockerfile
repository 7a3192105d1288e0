# The selfheal image: one command for every component (`selfheal operator`, `selfheal api`,
# `selfheal migrate`), as the manifests run it. Not built in CI: the development machine has no
# container engine. Build and push:
#   docker build -t ghcr.io/molam/selfheal:0.1.0 . && docker push ghcr.io/molam/selfheal:0.1.0
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.12-slim
COPY --from=build /install /usr/local
# The root filesystem is read-only in the pods: no bytecode files written at run time.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["selfheal"]
