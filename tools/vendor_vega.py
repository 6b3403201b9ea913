"""Write .dvc/plots/offline.html: the page template `dvc plots show` fills (.dvc/config: plots.html_template), with
Vega, Vega-Lite and vega-embed inlined, so the plots render without a network (DVC's own template loads them from a
CDN, and the page stays blank offline).

The three packages come from the npm registry at the versions below, checked against their SHA-256; they are BSD-3-
Clause licensed (the University of Washington Interactive Data Lab), and their licence travels in the page.

    python tools/vendor_vega.py        # needs npm; rewrites .dvc/plots/offline.html
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".dvc" / "plots" / "offline.html"
# package, version, SHA-256 of its npm tarball, the browser build inside it
PACKAGES = (
    ("vega", "5.33.1", "1b8504b6731c5311be3269c4d84ca996a5cc293bc772283293ede20c490e16c3", "build/vega.min.js"),
    ("vega-lite", "5.23.0", "e4cbfdd8f6f1abe381c59cd558fd6a559c12b1496bfdf2e0c3295263a40fe4da", "build/vega-lite.min.js"),
    ("vega-embed", "6.29.0", "ecf1ee709c2bac9e0a4ead6908114b05b62c71493e10a8a4308109bb070f8eb1",
     "build/vega-embed.min.js"),
)
LICENSE_FROM = "vega-lite"  # vega's tarball carries no LICENSE file; the three share this one (BSD-3-Clause, UW IDL)
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # what DVC replaces in the template

PAGE = """<!DOCTYPE html>
<html>
<head>
{{refresh_tag}}
<meta charset="utf-8">
<title>GAN Lab: dvc plots</title>
<!--
Written by tools/vendor_vega.py: {versions}, inlined so that
`dvc plots show` works without a network. Their licence:

{license}
-->
{scripts}
<style>
  body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
  div.vega-embed {{ margin: 0.5rem 1rem 1.5rem 0; }}
</style>
</head>
<body>
<h1>GAN Lab: curves per metric, a line per run (colour: variant)</h1>
{{plot_divs}}
</body>
</html>
"""


def fetch(name: str, version: str, sha256: str, member: str, workdir: Path) -> tuple[str, str | None]:
    """(the browser build's text, the package's LICENSE text or None), from the npm registry's tarball."""
    subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=workdir, check=True, capture_output=True)
    tarball = workdir / f"{name}-{version}.tgz"
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{tarball.name}: SHA-256 {digest}, expected {sha256}; not written")
    with tarfile.open(tarball) as tar:
        script = tar.extractfile(f"package/{member}").read().decode("utf-8")
        names = tar.getnames()
        license_text = tar.extractfile("package/LICENSE").read().decode("utf-8") if "package/LICENSE" in names else None
    if "</script" in script or any(p in script for p in PLACEHOLDERS):
        raise SystemExit(f"{name}: its build contains '</script' or a DVC placeholder; it cannot be inlined")
    return script, license_text


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fetched = {name: fetch(name, version, sha, member, Path(tmp)) for name, version, sha, member in PACKAGES}
    scripts = "\n".join(f"<script>\n{fetched[name][0]}\n</script>" for name, *_ in PACKAGES)
    versions = ", ".join(f"{name} {version}" for name, version, *_ in PACKAGES)
    page = PAGE.format(versions=versions, license=fetched[LICENSE_FROM][1].strip(), scripts=scripts)
    OUT.write_text(page)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KiB): {versions}")


if __name__ == "__main__":
    main()
