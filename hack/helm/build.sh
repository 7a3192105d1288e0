#!/usr/bin/env bash
# Builds helm from the Go module pinned in go.mod (checked by go.sum) into the control plane's
# binary cache ($SELFHEAL_CACHE_DIR/bin, by default ~/.cache/selfheal/bin) and prints its path.
# A cached binary whose version matches go.mod is reused: a rerun costs well under a second; a
# cold build takes a few minutes on 2 cores (Go's build cache makes later ones faster).
set -euo pipefail
module_dir="$(cd "$(dirname "$0")" && pwd)"
bin_dir="${SELFHEAL_CACHE_DIR:-$HOME/.cache/selfheal}/bin"
helm="$bin_dir/helm"
version="$(sed -nE 's#^[[:space:]]*(require[[:space:]]+)?helm\.sh/helm/v4[[:space:]]+(v[^[:space:]]+).*#\2#p' "$module_dir/go.mod")"
[ -n "$version" ] || { echo "hack/helm/build.sh: $module_dir/go.mod does not require helm.sh/helm/v4" >&2; exit 1; }

current() { [ -x "$helm" ] && "$helm" version --template '{{.Version}}' 2>/dev/null; }

mkdir -p "$bin_dir"
exec 9>"$bin_dir/../.helm-build.lock"
flock 9  # one build at a time (tests in parallel, make and a test run)
if [ "$(current || true)" != "$version" ]; then
  command -v go >/dev/null || { echo "hack/helm/build.sh: the Go toolchain ('go') is needed to build helm $version" >&2; exit 1; }
  echo "building helm $version into $bin_dir (a cold build takes a few minutes)" >&2
  scratch="$(mktemp -d "$bin_dir/.build-helm-XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  # -mod=readonly: versions come from go.mod/go.sum only. The version is stamped as helm's own
  # Makefile does, so `helm version` names it and the cache check above works.
  (cd "$module_dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
      -o "$scratch/helm" helm.sh/helm/v4/cmd/helm)
  mv "$scratch/helm" "$helm"  # a rename: an interrupted build never leaves a truncated binary
fi
echo "$helm"
