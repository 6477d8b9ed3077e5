# An OCI image layout written by /bin/sh with tar and sha256sum: one layer holding /etc/message.
set -eu
mkdir -p root/etc "$out/blobs/sha256"
printf '%s\n' "$message" > root/etc/message
tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -cf layer.tar -C root .
blob() { d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$out/blobs/sha256/$d"; echo "$d"; }
size() { wc -c < "$1" | tr -d ' '; }
layer=$(blob layer.tar); lsize=$(size layer.tar)
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" > config.json
config=$(blob config.json); csize=$(size config.json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$config" "$csize" "$layer" "$lsize" > manifest.json
manifest=$(blob manifest.json); msize=$(size manifest.json)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}]}' "$manifest" "$msize" > "$out/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
