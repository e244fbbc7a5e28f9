"""Copy the front-end packages' published files from ``web/node_modules`` into ``gql/static/vendor``.

Run by ``make assets`` after ``npm ci`` (which checks each package tarball against the lockfile's
integrity). The copies are byte-for-byte the published files, at ``<name>@<version>/<path>``, and
``gql/static/vendor/manifest.json`` records each file's sha384 next to its package's npm integrity,
so ``tests/gql/test_pages.py`` can tell when a vendored file no longer matches what was published.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
VENDOR = WEB.parent / "gql" / "static" / "vendor"

#: The files each page uses, per package (paths inside the published package).
FILES: dict[str, tuple[str, ...]] = {
    "uplot": ("dist/uPlot.esm.js", "dist/uPlot.min.css", "LICENSE"),
    "swagger-ui-dist": ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"),
}


def sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def main() -> int:
    lock = json.loads((WEB / "package-lock.json").read_text())
    shutil.rmtree(VENDOR, ignore_errors=True)
    manifest: dict[str, dict[str, str]] = {}
    for name, paths in FILES.items():
        entry = lock["packages"][f"node_modules/{name}"]
        installed = json.loads((WEB / "node_modules" / name / "package.json").read_text())
        if installed["version"] != entry["version"]:
            print(f"{name}: node_modules has {installed['version']}, the lockfile {entry['version']}; run npm ci")
            return 1
        for path in paths:
            data = (WEB / "node_modules" / name / path).read_bytes()
            target = f"{name}@{entry['version']}/{path}"
            (VENDOR / target).parent.mkdir(parents=True, exist_ok=True)
            (VENDOR / target).write_bytes(data)
            manifest[target] = {
                "package": name,
                "version": entry["version"],
                "npm_integrity": entry["integrity"],
                "sha384": sha384(data),
            }
    (VENDOR / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"vendored {len(manifest)} files into {VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
