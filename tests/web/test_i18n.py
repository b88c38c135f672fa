"""Each domain's pages speak with their own catalogue: the same English word may be different Chinese in two domains."""

from __future__ import annotations

from jinja2 import DictLoader

from yilian.web.i18n import catalogues_zh, translate
from yilian.web.templating import environment


def _clashes() -> dict[str, dict[str, str]]:
    """msgid → {domain: Chinese} for the msgids two domains translate differently."""
    seen: dict[str, dict[str, str]] = {}
    for domain, messages in catalogues_zh().items():
        for msgid, text in messages.items():
            seen.setdefault(msgid, {})[domain] = text
    return {m: d for m, d in seen.items() if len(set(d.values())) > 1}


def test_a_domain_template_uses_its_own_words_when_two_domains_disagree() -> None:
    clashes = _clashes()
    assert clashes, "no two domains disagree any more: this test needs a new example"
    msgid, by_domain = next(iter(sorted(clashes.items())))
    templates = {f"{d}/probe.html": "{{ _(msgid) }}" for d in by_domain}
    env = environment().overlay(loader=DictLoader(templates))
    for domain, chinese in by_domain.items():
        assert env.get_template(f"{domain}/probe.html").render(lang="zh", msgid=msgid) == chinese
        assert env.get_template(f"{domain}/probe.html").render(lang="en", msgid=msgid) == msgid


def test_an_included_panel_speaks_its_own_domain_inside_another_page() -> None:
    msgid, by_domain = next(iter(sorted(_clashes().items())))
    first, second = sorted(by_domain)[:2]
    env = environment().overlay(
        loader=DictLoader(
            {
                f"{first}/page.html": "{{ _(msgid) }}|{% include '" + second + "/panel.html' %}",
                f"{second}/panel.html": "{{ _(msgid) }}",
            }
        )
    )
    assert env.get_template(f"{first}/page.html").render(lang="zh", msgid=msgid) == (
        f"{by_domain[first]}|{by_domain[second]}"
    )


def test_python_side_lookups_fall_back_to_every_catalogue_and_format_values() -> None:
    msgid, by_domain = next(iter(sorted(_clashes().items())))
    assert translate("zh", None, msgid) in set(by_domain.values())
    assert translate("en", "referrals", "{n} items", n=3) == "3 items"
    assert translate("zh", "no-such-domain", "no such message") == "no such message"
