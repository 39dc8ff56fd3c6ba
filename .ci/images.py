#!/usr/bin/env python3
"""Build the landstack container images with podman, without a Docker engine or a registry.

    .ci/images.py setup              # podman/buildah/runc/catatonit/debootstrap + the base image (once)
    .ci/images.py build [NAME ...]   # build the images whose inputs changed (all by default)
    .ci/images.py list               # each image, its content tag and whether it is built
    .ci/images.py tag NAME           # the content tag of one image (what the chart/tests run)

Every image is tagged with a hash of its inputs (Dockerfile, constraints, the members' files, the
wheels, the base image), so a build is skipped when an image with that tag is already in the local
store. The build context is assembled under .tools/images/ (never committed): the Dockerfile, the
pins, the third-party requirements of the members, the members' sources and, for images with torch,
torch's CPU wheel from pip's find-links folder, and for the tiler the web map's npm packages
(Leaflet) from `.tools/web/node_modules`, which `make setup` installs. Only the Python standard
library is used, so the script runs before the project's virtual environment exists.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / ".tools"
WORK = TOOLS / "images"
CONTAINERS_CONF = TOOLS / "containers.conf"
BASE_IMAGE = "localhost/debian:bookworm-slim"
REPOSITORY = "localhost/landstack"
APT_PACKAGES = [
    "podman",
    "buildah",
    "runc",
    "catatonit",
    "debootstrap",
    "fuse-overlayfs",
    "slirp4netns",
    "uidmap",
]
# runc: crun fails on this kind of kernel ("cgroups in hybrid mode not supported"); the default
# ulimits raise RLIMIT_NOFILE above what an unprivileged container may set, so they are explicit.
_CONF_TEXT = """\
# Written by .ci/images.py setup; used through CONTAINERS_CONF by every podman/buildah call.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
_SKIP_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "bench", "tests"}
WEB_MODULES = TOOLS / "web" / "node_modules"
# What a browser loads from an npm package (plus its licence); its sources and docs stay out.
_WEB_PARTS = ("dist", "LICENSE", "package.json")


@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile and the workspace members installed into it."""

    name: str
    dockerfile: str
    members: tuple[str, ...]
    torch: bool
    web: tuple[str, ...] = ()  # npm packages from .tools/web/node_modules, copied to web/<package>

    @property
    def repository(self) -> str:
        return f"{REPOSITORY}/{self.name}"


IMAGES = {
    i.name: i
    for i in (
        Image("stac-api", "services/stac-api/Dockerfile", ("catalog", "services/stac-api"), torch=False),
        Image(
            "model-server",
            "services/model-server/Dockerfile",
            ("catalog", "models", "services/model-server"),
            torch=True,
        ),
        Image("pipelines", "pipelines/Dockerfile", ("catalog", "models", "pipelines"), torch=True),
        Image(
            "tiler",
            "services/tiler/Dockerfile",
            ("catalog", "services/tiler"),
            torch=False,
            web=("leaflet",),
        ),
    )
}


class ImageError(Exception):
    """A build input or tool is missing; the message says what to install or change."""


def podman_env() -> dict[str, str]:
    """The environment every podman call needs (containers.conf with runc and explicit ulimits)."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's containers.conf."""
    if not shutil.which("podman"):
        raise ImageError("podman is not installed: run 'make images-setup' (Debian: apt-get install podman)")
    return subprocess.run(["podman", *args], env=podman_env(), check=check, text=True, capture_output=capture)


def image_exists(ref: str) -> bool:
    """True when the local image store holds `ref`."""
    return podman("image", "exists", ref, check=False).returncode == 0


def _find_links() -> list[Path]:
    value = os.environ.get("PIP_FIND_LINKS", "")
    if not value:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.find-links"],
            capture_output=True,
            text=True,
            check=False,
        )
        value = out.stdout.strip() if out.returncode == 0 else ""
    return [Path(p) for p in value.split() if p and Path(p).is_dir()]


def _pip_cert() -> Path | None:
    """The CA bundle pip on this machine trusts (PIP_CERT or pip's config), if one is configured."""
    value = os.environ.get("PIP_CERT", "")
    if not value:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.cert"],
            capture_output=True,
            text=True,
            check=False,
        )
        value = out.stdout.strip() if out.returncode == 0 else ""
    return Path(value) if value and Path(value).is_file() else None


def _pinned(name: str) -> str:
    for line in (REPO / "constraints.txt").read_text().splitlines():
        m = re.match(rf"^{re.escape(name)}==([^\s;#]+)", line.strip(), re.IGNORECASE)
        if m:
            return m.group(1)
    raise ImageError(f"{name} is not pinned in constraints.txt: add a '{name}==VERSION' line")


def torch_wheel() -> Path:
    """torch's CPU wheel of the pinned version from pip's find-links folder."""
    version = _pinned("torch")
    for folder in _find_links():
        hits = sorted(folder.glob(f"torch-{version}+cpu-cp311-*.whl")) or sorted(
            folder.glob(f"torch-{version}-cp311-*.whl")
        )
        if hits:
            return hits[0]
    raise ImageError(
        f"no torch {version} CPU wheel for Python 3.11 in pip's find-links folders "
        f"({[str(p) for p in _find_links()] or 'none configured'}): put "
        f"torch-{version}+cpu-cp311-cp311-manylinux_2_28_x86_64.whl in a folder and set PIP_FIND_LINKS to it"
    )


def _requirements(members: tuple[str, ...]) -> list[str]:
    """Third-party requirements of the members (the members themselves are installed from source)."""
    reqs: set[str] = set()
    for member in members:
        project = tomllib.loads((REPO / member / "pyproject.toml").read_text())["project"]
        for req in project.get("dependencies", []):
            if not req.lower().startswith("landstack-"):
                reqs.add(req)
    return sorted(reqs, key=str.lower)


def _member_files(member: str) -> list[Path]:
    root = REPO / member
    files = [root / "pyproject.toml", *(p for p in (root / "src").rglob("*") if p.is_file())]
    readme = root / "README.md"
    if readme.is_file():
        files.append(readme)
    return sorted(
        p for p in files if not (_SKIP_PARTS & set(p.relative_to(root).parts)) and p.suffix != ".pyc"
    )


def _web_files(package: str) -> list[Path]:
    """The files of an npm package that a browser needs, from .tools/web/node_modules."""
    root = WEB_MODULES / package
    if not (root / "package.json").is_file():
        raise ImageError(
            f"{root} is missing: run 'make setup' (or npm install --prefix {WEB_MODULES.parent} {package})"
        )
    files: list[Path] = []
    for part in _WEB_PARTS:
        path = root / part
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return [p for p in files if p.is_file()]


def assemble(image: Image) -> tuple[Path, str]:
    """Write the build context of `image` under .tools/images/; returns (folder, content hash).

    Each content hash gets its own folder, so assembling never touches a context a running build
    reads; only the newest few folders of an image are kept.
    """
    root = WORK / "context"
    ctx = root / f".tmp-{image.name}-{os.getpid()}"
    shutil.rmtree(ctx, ignore_errors=True)
    (ctx / "wheels").mkdir(parents=True)
    digest = hashlib.sha256()

    def add(rel: str, data: bytes) -> None:
        dest = ctx / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())

    add("Dockerfile", (REPO / image.dockerfile).read_bytes())
    add("constraints.txt", (REPO / "constraints.txt").read_bytes())
    add("deps.txt", ("\n".join(_requirements(image.members)) + "\n").encode())
    for member in image.members:
        for path in _member_files(member):
            add(f"members/{member}/{path.relative_to(REPO / member).as_posix()}", path.read_bytes())
    (ctx / "web").mkdir()
    for package in image.web:
        for path in _web_files(package):
            add(f"web/{package}/{path.relative_to(WEB_MODULES / package).as_posix()}", path.read_bytes())
    cert = _pip_cert()
    (ctx / "certs").mkdir()
    if cert:
        # Not part of the hash: the trust store of the build machine does not change the image.
        shutil.copyfile(cert, ctx / "certs" / "ca.crt")
    if image.torch:
        wheel = torch_wheel()
        dest = ctx / "wheels" / wheel.name
        try:
            os.link(wheel, dest)
        except OSError:
            shutil.copy2(wheel, dest)
        # The wheel is identified by its name and size: hashing 200 MB on every call buys nothing.
        digest.update(f"wheels/{wheel.name}\0{wheel.stat().st_size}".encode())
    base_id = podman("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE, check=False).stdout.strip()
    digest.update(f"base\0{base_id}".encode())
    tag = digest.hexdigest()[:16]
    final = root / f"{image.name}-{tag}"
    if final.exists():
        shutil.rmtree(ctx)
    else:
        ctx.rename(final)
    older = sorted(root.glob(f"{image.name}-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in older[3:]:
        shutil.rmtree(stale, ignore_errors=True)
    return final, tag


def content_tag(name: str) -> str:
    """`localhost/landstack/NAME:HASH` for the current inputs (assembles the context)."""
    image = _image(name)
    _, tag = assemble(image)
    return f"{image.repository}:{tag}"


def _image(name: str) -> Image:
    if name not in IMAGES:
        raise ImageError(f"unknown image {name!r}: choose one of {', '.join(IMAGES)}")
    return IMAGES[name]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git_revision() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def build(name: str, *, force: bool = False) -> str:
    """Build one image unless its content tag exists; returns the tag."""
    if not image_exists(BASE_IMAGE):
        raise ImageError(f"the base image {BASE_IMAGE} is missing: run 'make images-setup'")
    image = _image(name)
    ctx, tag = assemble(image)
    ref = f"{image.repository}:{tag}"
    if image_exists(ref) and not force:
        print(f"{name}: {ref} is up to date")
    else:
        print(f"{name}: building {ref}", flush=True)
        cmd = [
            "nice", "-n", "10", "podman", "build", "--pull=never", "--network=host", "--layers",
            "--format=docker", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--label", f"org.opencontainers.image.revision={_git_revision()}",
            "--label", f"org.opencontainers.image.version={tag}",
            "--label", f"org.opencontainers.image.created={_now()}",
            "-f", str(ctx / "Dockerfile"), "-t", ref, "-t", f"{image.repository}:dev", str(ctx),
        ]  # fmt: skip
        subprocess.run(cmd, env=podman_env(), check=True)
    if not image_exists(f"{image.repository}:dev") or force:
        podman("tag", ref, f"{image.repository}:dev")
    _drop_old_tags(image, keep=ref)
    return ref


def _drop_old_tags(image: Image, keep: str) -> None:
    """Untag earlier content tags of the image (their cached build layers stay for reuse)."""
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", image.repository, check=False).stdout
    for old in out.split():
        if old not in (keep, f"{image.repository}:dev") and not old.endswith(":<none>"):
            podman("rmi", old, check=False)


def _debian_mirror() -> str:
    apt = Path("/etc/apt")
    for path in sorted(apt.glob("sources.list")) + sorted(apt.glob("sources.list.d/*")):
        text = path.read_text(errors="replace")
        for m in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            uri = m.group(1)
            if "security" not in uri and "debian" in uri:
                return uri
    return "http://deb.debian.org/debian"


def _apt_install() -> None:
    missing = [p for p in APT_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"installing {' '.join(missing)} from Debian packages", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    subprocess.run([*sudo, "apt-get", "update", "-qq", *lock], check=True, env=env, capture_output=True)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", *lock, "--no-install-recommends", *missing],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _base_image() -> None:
    if image_exists(BASE_IMAGE):
        return
    rootfs = WORK / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    mirror = _debian_mirror()
    print(f"creating {BASE_IMAGE} with debootstrap from {mirror} (about a minute)", flush=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["podman", "import", "-", BASE_IMAGE],
        stdin=tar.stdout,
        env=podman_env(),
        check=True,
        capture_output=True,
    )
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)


def setup() -> None:
    """Install the container tools (idempotent), write containers.conf, create the base image once."""
    _apt_install()
    CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
    if not CONTAINERS_CONF.exists() or CONTAINERS_CONF.read_text() != _CONF_TEXT:
        CONTAINERS_CONF.write_text(_CONF_TEXT)
    _base_image()


def _list() -> None:
    for name in IMAGES:
        ref = content_tag(name)
        print(f"{name:14} {ref:48} {'built' if image_exists(ref) else 'not built'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="install podman & co. and create the base image (idempotent)")
    b = sub.add_parser("build", help="build the images whose inputs changed")
    b.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join(IMAGES)} (default: all)")
    b.add_argument("--force", action="store_true", help="rebuild even when the content tag exists")
    sub.add_parser("list", help="each image, its content tag and whether it is built")
    t = sub.add_parser("tag", help="the content tag of one image")
    t.add_argument("name", choices=list(IMAGES))
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            setup()
        elif args.command == "build":
            for name in args.names or list(IMAGES):
                print(build(name, force=args.force))
        elif args.command == "list":
            _list()
        else:
            print(content_tag(args.name))
    except ImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"error: {' '.join(map(str, e.cmd))} failed with exit code {e.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
