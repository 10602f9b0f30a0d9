"""The documentation: a short README, links and paths that resolve, one source for the config keys,
and a troubleshooting page that lists every message the records of bad input produce.

The config keys have one source, ``KEYS`` in components/settings.py (default and description);
the README's configuration table and ``Pulumi.yaml``'s ``config:`` section must say exactly the
same, which these tests check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import settings
from tests.support import documented
from tests.support.documented import CODE_SPAN as _CODE_SPAN
from tests.support.documented import code_spans as _code_spans
from tests.support.documented import prose as _prose

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
DOCS = ROOT / "docs"
README_MAX_BYTES = 12288

#: The pages the README's content moved to (issue 11): each must exist and be linked from the README.
PAGES = ("traefik.md", "review.md", "verify.md", "troubleshooting.md", "limitations.md", "architecture.md")
#: What the front page keeps.
README_SECTIONS = (
    "What it does", "Prerequisites", "Run it", "Test it", "Configuration", "Stack outputs", "Teardown", "More",
)
#: Names from before the tools moved out of components/ (and the test helpers into tests/support/).
OLD_NAMES = (
    "components.render", "components/render.py",
    "components.rehearse", "components/rehearse.py",
    "components.verify", "components/verify.py",
    "components.renderer", "components/renderer.py",
    "components.mock_program", "components/mock_program.py",
    "components.manifests", "components/manifests.py",
    "components.dataplane", "components/dataplane",
    "components.traefik_conf", "components/traefik_conf.py",
    "components.standin_pki", "components/standin_pki.py",
    "components.tls_standin", "components/tls_standin.py",
    "components/ibmcloud.py",  # now the package components/ibmcloud/
    "tests/pki.py", "tests/schemas.py", "tests/cluster.py",
    "Python 3.9+",
)
#: Paths the docs name that the user creates, not the repository.
USER_MADE = ("policy/venv",)
#: The top-level folders whose paths and modules the docs must name correctly.
PROJECT_DIRS = ("components", "tools", "tests", "bench", "policy", "docs", ".ci")

CONFIG_PREFIX = documented.CONFIG_PREFIX


def _pages() -> list[Path]:
    return [README, CONTRIBUTING, *sorted(DOCS.glob("*.md"))]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _links(text: str) -> list[str]:
    """Targets of ``[text](target)`` links outside code."""
    prose = _CODE_SPAN.sub("", _prose(text))
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(path.read_text(encoding="utf-8")), flags=re.M):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


# --- the front page -----------------------------------------------------------------------------


def test_readme_is_a_front_page_of_at_most_12_kib() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/ (limit {README_MAX_BYTES})"
    headings = re.findall(r"^## (.+)$", _prose(README.read_text(encoding="utf-8")), flags=re.M)
    assert headings == list(README_SECTIONS)


def test_readme_links_every_page_and_contributing() -> None:
    links = set(_links(README.read_text(encoding="utf-8")))
    for page in PAGES:
        assert (DOCS / page).is_file(), f"docs/{page} is missing"
        assert f"docs/{page}" in links, f"README.md does not link docs/{page}"
    assert "CONTRIBUTING.md" in links


def test_the_link_checker_sees_links_and_anchors() -> None:
    """The helpers themselves, so a broken parser cannot make the link test pass vacuously."""
    text = "See [a](docs/x.md#b) and `[not](a-link.md)`.\n```\n[nor](this.md)\n# Not a heading\n```\n"
    assert _links(text) == ["docs/x.md#b"]
    assert _slug("Recipe step → file") == "recipe-step--file"
    assert _slug("The ALB's certificate (`clientCertSource=alb`)") == "the-albs-certificate-clientcertsourcealb"
    assert "test-tiers" in _anchors(CONTRIBUTING)
    assert len([t for t in _links(README.read_text(encoding="utf-8")) if "://" not in t]) >= len(PAGES) + 1


@pytest.mark.parametrize("page", _pages(), ids=_id)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_id(dest)}")
    assert broken == [], f"{_id(page)}: {broken}"


@pytest.mark.parametrize("page", _pages(), ids=_id)
def test_no_old_module_paths(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert [name for name in OLD_NAMES if name in text] == []


@pytest.mark.parametrize("page", _pages(), ids=_id)
def test_named_paths_and_modules_exist(page: Path) -> None:
    """Every project path (``tools/render.py``) and module (``tools.render``) a page names in code."""
    dirs = "|".join(re.escape(d) for d in PROJECT_DIRS)
    path_re = re.compile(rf"^(?:{dirs})/[\w./-]*$")
    module_re = re.compile(r"^(?:components|tools|tests)(?:\.\w+)+$")
    missing = []
    for span in _code_spans(page.read_text(encoding="utf-8")):
        for token in re.split(r"[\s,;()]+", span):
            token = token.rstrip(".:")
            if path_re.match(token) and not token.startswith(USER_MADE):
                if not (ROOT / token).exists():
                    missing.append(token)
            elif module_re.match(token):
                base = ROOT.joinpath(*token.split("."))
                if not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()):
                    missing.append(token)
    assert missing == [], f"{_id(page)} names what does not exist: {sorted(set(missing))}"


# --- the config keys: one source, three places ----------------------------------------------------


def _readme_config_table() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]


def _readme_default(default: Any) -> str:
    """How the README writes a fixed default: as the value one would ``pulumi config set``."""
    return f"`{default}`" if isinstance(default, str) else f"`{json.dumps(default)}`"


def test_readme_config_table_is_keys() -> None:
    table = _readme_config_table()
    assert all(len(row) == 3 for row in table), table
    assert [row[0] for row in table] == [f"`{key}`" for key in settings.KEYS]
    for (_, default, meaning), (key, spec) in zip(table, settings.KEYS.items(), strict=True):
        assert meaning == spec.description, f"README description of {key} differs from settings.KEYS"
        if spec.default is None:
            # Unset or computed: words that say what happens, never a value that looks settable.
            assert default and "`" not in default, (key, default)
        else:
            assert default == _readme_default(spec.default), (key, default)
    assert dict(zip(settings.KEYS, table, strict=True))["cluster"][1] == "required on iks"


def test_pulumi_yaml_config_is_keys() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))["config"]
    assert list(declared) == list(settings.KEYS)
    for key, spec in settings.KEYS.items():
        entry = declared[key]
        assert entry["description"] == spec.description, f"Pulumi.yaml description of {key} differs from settings.KEYS"
        # Every key has a default, "" for unset: the CLI would require a typed key without one, and
        # the program, not the CLI, knows when cluster is required (platform iks).
        default = entry["default"]
        if key == "gatewaySelector":  # a JSON string: the CLI's config values are strings
            default = json.loads(default)
        assert default == ("" if spec.default is None else spec.default), key


def test_the_three_places_agree_and_would_notice_a_difference() -> None:
    """README cell == Pulumi.yaml description == KEYS; a changed word is caught."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))["config"]
    readme = {row[0].strip("`"): row[2] for row in _readme_config_table()}
    assert readme == {key: declared[key]["description"] for key in declared}
    assert readme == {key: spec.description for key, spec in settings.KEYS.items()}
    tampered = dict(readme, cluster=readme["cluster"] + " (changed)")
    assert tampered != {key: spec.description for key, spec in settings.KEYS.items()}


# --- troubleshooting: the matcher the records use (tests/support/documented.py) --------------------


def test_the_message_matcher_is_strict() -> None:
    ok = f"{CONFIG_PREFIX}albDomain: is not a valid DNS subdomain: 'localhost'"
    assert documented.is_documented(ok)
    for wrong in (
        f"{CONFIG_PREFIX}albDomain: is not a valid DNS name: 'localhost'",  # other words
        f"{CONFIG_PREFIX}albDomain: is not a valid DNS subdomain",  # the value left out
        "a message nobody documented, long enough to count",
    ):
        assert not documented.is_documented(wrong), wrong


