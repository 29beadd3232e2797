#!/usr/bin/env python3
"""Writes a container image as a `docker save` archive (manifest.json + image config + one layer),
without Docker: what scripts/build-images pushes to the local registry with skopeo.

Reads a JSON spec on stdin:
  {"tag": "repo/name:tag",
   "config": {"User": "65532:65532", "Entrypoint": [...], "Cmd": [...], "WorkingDir": "/", "Env": [...],
              "ExposedPorts": {"8080/tcp": {}}, "Labels": {...}},
   "entries": [{"path": "/bin/x", "src": "/host/file", "mode": "0755", "uid": 0, "gid": 0},
               {"path": "/tmp", "dir": true, "mode": "1777"},
               {"path": "/etc/passwd", "text": "...", "mode": "0644"},
               {"path": "/bin/sh", "symlink": "bash"}]}
Every entry gets a fixed mtime and numeric owner, so the same inputs give the same image digest.
Parent folders are added (root, 0755) when not listed. Prints the config digest.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

MTIME = 0


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: mkimage.py OUT.tar < spec.json", file=sys.stderr)
        return 2
    out = sys.argv[1]
    spec = json.load(sys.stdin)
    entries = {}
    for e in spec["entries"]:
        entries[e["path"].strip("/")] = e
    # Implicit parent folders.
    for path in list(entries):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            entries.setdefault(parent, {"path": "/" + parent, "dir": True, "mode": "0755"})

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            e = entries[path]
            info = tarfile.TarInfo(path)
            info.mtime = MTIME
            info.uid, info.gid = int(e.get("uid", 0)), int(e.get("gid", 0))
            info.uname = info.gname = ""
            data = None
            if e.get("dir"):
                info.type = tarfile.DIRTYPE
                info.mode = int(e.get("mode", "0755"), 8)
            elif "symlink" in e:
                info.type = tarfile.SYMTYPE
                info.linkname = e["symlink"]
                info.mode = 0o777
            else:
                if "src" in e:
                    with open(e["src"], "rb") as f:
                        data = f.read()
                    default_mode = oct(os.stat(e["src"]).st_mode & 0o7777)[2:]
                else:
                    data = e["text"].encode()
                    default_mode = "0644"
                info.size = len(data)
                info.mode = int(e.get("mode", default_mode), 8)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()

    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": spec.get("config", {}),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "scripts/build-images"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    layer_name = diff_id.split(":")[1] + "/layer.tar"
    manifest = [{"Config": config_hex + ".json", "RepoTags": [spec["tag"]], "Layers": [layer_name]}]

    with tarfile.open(out, mode="w") as tar:
        for name, data in [
            (config_hex + ".json", config_bytes),
            (layer_name, layer_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = MTIME
            tar.addfile(info, io.BytesIO(data))
    print(f"sha256:{config_hex} layer {len(layer_bytes)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
