#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 from
# Debian bookworm's `kubernetes` source package, once, into a cache directory.
# Later runs find the binaries and return at once. See ../shared/TEST-CLUSTER.md.
#
# The Debian packages it needs (Go 1.19, reflect2, rsync, make, dpkg-dev) are
# installed before it runs by the preflight of every command that starts the
# cluster (packages.ts); controlplane.ts runs it with its output in a log file.
set -euo pipefail

VERSION=v1.20.2
CACHE="${KUBESNAP_TEST_CACHE:-$HOME/.cache/kubesnap-test}/$VERSION"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)

missing=()
for b in "${BINARIES[@]}"; do [ -x "$CACHE/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "control plane $VERSION: cached in $CACHE"
  exit 0
fi

GO=/usr/lib/go-1.19/bin/go
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2

WORK="$CACHE.build"
mkdir -p "$WORK" "$CACHE"

# 1. The orig tarball of Debian's source package, through a private apt
#    configuration so the system's sources stay untouched.
orig=$(ls "$WORK"/kubernetes_*.orig.tar.* 2>/dev/null | head -n1 || true)
if [ -z "$orig" ]; then
  # The machine's own Debian mirror (URIs: lines of deb822 files, or deb lines).
  uris=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -E '^(URIs:|deb )' | grep -oE 'https?://[^ ]+' || true)
  mirror=$(echo "$uris" | grep -E '/debian/?$' | head -n1 || true)
  security=$(echo "$uris" | grep -E '/debian-security/?$' | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${security:-http://deb.debian.org/debian-security}
  apt_dir="$WORK/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  cat > "$apt_dir/sources.list" <<SRC
deb-src $mirror bookworm main
deb-src $mirror bookworm-updates main
deb-src $security bookworm-security main
SRC
  opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives")
  apt-get "${opts[@]}" update -qq
  (cd "$WORK" && apt-get "${opts[@]}" source --download-only -qq kubernetes)
  orig=$(ls "$WORK"/kubernetes_*.orig.tar.* | head -n1)
fi

# 2. The tree in GOPATH mode, as 1.20's own scripts expect it.
export GOPATH="$WORK/gopath"
SRC="$GOPATH/src/k8s.io/kubernetes"
if [ ! -f "$SRC/.kubesnap-prepared" ]; then
  rm -rf "$SRC" && mkdir -p "$SRC"
  tar -xf "$orig" -C "$SRC" --strip-components=1
  # reflect2 1.0.1 crashes at run time with Go >= 1.18; 1.0.2 does not.
  rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
  cp -r "$REFLECT2" "$SRC/vendor/github.com/modern-go/reflect2"
  touch "$SRC/.kubesnap-prepared"
fi

export PATH="$(dirname "$GO"):$PATH" GO111MODULE=off CGO_ENABLED=0 GOPROXY=off GOFLAGS=
export GOCACHE="$WORK/gocache"
if [ ! -f "$SRC/pkg/generated/openapi/zz_generated.openapi.go" ]; then
  (cd "$SRC" && make gen_openapi)
fi

# 3. The binaries, with version information so clients do not see v0.0.0.
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
  ldflags+=" -X $pkg.gitCommit=faecb196815e248d3ecfb03c680a4507229c2a56 -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=2021-01-13T13:20:00Z"
done
for b in "${missing[@]}"; do
  echo "building $b $VERSION (first time only; a few minutes)"
  (cd "$SRC" && go build -trimpath -ldflags "$ldflags" -o "$CACHE/$b.tmp" "k8s.io/kubernetes/cmd/$b")
  mv "$CACHE/$b.tmp" "$CACHE/$b"
done
echo "control plane $VERSION: built into $CACHE"
