#!/usr/bin/env bash
# Builds Osprey's OCI image (what deploy/kubernetes/Containerfile describes:
# FROM scratch, the static binary as /osprey, ENTRYPOINT ["/osprey"]) as an
# OCI image layout directory, without a container engine or a registry:
#   deploy/kubernetes/build-oci.sh [BINARY] [OUTDIR]
# then e.g. `skopeo copy oci:OUTDIR:latest docker://registry.example/osprey:0.1.0`.
# The layer is reproducible (owner 0, mtime 0, no compression).
set -euo pipefail
bin=${1:-target/x86_64-unknown-linux-gnu/release/osprey}
out=${2:-target/oci/osprey}
[ -x "$bin" ] || { echo "build-oci.sh: $bin: no executable (cargo build --release)" >&2; exit 1; }
if file -L "$bin" | grep -q 'dynamically linked'; then
  echo "build-oci.sh: $bin is dynamically linked: FROM scratch needs the static build" >&2
  exit 1
fi
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
rm -rf "$out"
mkdir -p "$out/blobs/sha256"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$bin" "$stage/osprey"
tar --numeric-owner --owner=0 --group=0 --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$stage" -cf "$stage/layer.tar" osprey
blob() { # file -> "digest size", stored under blobs/
  local d s
  d=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  cp "$1" "$out/blobs/sha256/$d"
  echo "$d $s"
}
read -r layer layer_size < <(blob "$stage/layer.tar")
cat > "$stage/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":{"Entrypoint":["/osprey"],"User":"0:0"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created_by":"COPY osprey /osprey"}]}
JSON
read -r config config_size < <(blob "$stage/config.json")
cat > "$stage/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$layer_size}]}
JSON
read -r manifest manifest_size < <(blob "$stage/manifest.json")
cat > "$out/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$manifest_size,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
echo "build-oci.sh: $out (manifest sha256:$manifest, layer $layer_size bytes)" >&2
