"""Turn an upstream go.mod's replace and godebug lines into `go mod edit` flags for a wrapper module.

`go install mod/cmd@version` refuses a module whose go.mod has replace lines, so engine/provision.sh
builds each binary from a small wrapper module (in the cache, never in the repository) that requires
the upstream module.  The upstream replace lines matter there as they did upstream; this translates
them:

- a replace to another module (``old => new vX``) is copied as is;
- a replace to a local folder (``old => ../sdk``, ``old => ./staging/src/k8s.io/api``) pointed at a
  sibling module of the same repository, built from the same commit: it becomes ``old => old
  <sibling version>`` (``--sibling-version``), or the version named by ``--pin old=version`` when the
  proxy lacks the sibling at that version; a local folder the module zip cannot provide (e.g. the TLS
  provider's ``./shim``) is printed by ``--list-local`` for the caller to recreate.

``godebug`` lines are copied, since the main module's godebug settings change runtime behaviour.

Usage: python3 wrapper_mod.py GO_MOD --sibling-version v0.37.2 [--pin mod=ver ...] [--skip mod ...]
prints one ``go mod edit`` flag per line.
"""

from __future__ import annotations

import argparse
import re
import sys


def _directives(text: str, keyword: str) -> list[str]:
    """The bodies of single-line and block `keyword` directives of a go.mod text."""
    out: list[str] = []
    block = False
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block:
            if line == ")":
                block = False
            else:
                out.append(line)
            continue
        if line == f"{keyword} (":
            block = True
        elif line.startswith(keyword + " "):
            out.append(line[len(keyword) + 1 :].strip())
    return out


def replaces(text: str) -> list[tuple[str, str, str, str]]:
    """(old path, old version or '', new path, new version or '') for each replace line."""
    out = []
    for body in _directives(text, "replace"):
        left, _, right = body.partition("=>")
        lp = left.split()
        rp = right.split()
        if not lp or not rp:
            raise ValueError(f"unreadable replace line: {body!r}")
        out.append((lp[0], lp[1] if len(lp) > 1 else "", rp[0], rp[1] if len(rp) > 1 else ""))
    return out


def is_local(path: str) -> bool:
    return path.startswith("./") or path.startswith("../") or path in {".", ".."}


def edit_flags(text: str, sibling_version: str, pins: dict[str, str], skip: set[str]) -> list[str]:
    flags: list[str] = []
    for old, old_v, new, new_v in replaces(text):
        if old in skip:
            continue
        lhs = f"{old}@{old_v}" if old_v else old
        if is_local(new):
            version = pins.get(old, sibling_version)
            flags.append(f"-replace={lhs}={old}@{version}")
        else:
            flags.append(f"-replace={lhs}={new}@{new_v}" if new_v else f"-replace={lhs}={new}")
    for body in _directives(text, "godebug"):
        flags.append(f"-godebug={body.replace(' ', '')}")
    return flags


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("gomod")
    ap.add_argument("--sibling-version", required=True)
    ap.add_argument("--pin", action="append", default=[], help="MODULE=VERSION for one local replace")
    ap.add_argument("--skip", action="append", default=[], help="a replaced module the caller handles")
    ap.add_argument("--list-local", action="store_true", help="print the local replace targets and stop")
    args = ap.parse_args(argv)
    with open(args.gomod, encoding="utf-8") as fh:
        text = fh.read()
    if args.list_local:
        for old, _, new, _ in replaces(text):
            if is_local(new):
                print(f"{old} {new}")
        return 0
    pins = {}
    for pin in args.pin:
        mod, sep, ver = pin.partition("=")
        if not sep or not re.match(r"^v\d", ver):
            ap.error(f"--pin wants MODULE=vVERSION, got {pin!r}")
        pins[mod] = ver
    for flag in edit_flags(text, args.sibling_version, pins, set(args.skip)):
        print(flag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
