"""Which node settings a given Elasticsearch **minor** accepts, beyond what its major does.

:mod:`es_framework.core.es_catalog` knows the majors: what 8 removed, what both accept. A setting
registered only from a later minor is refused by older ones at start like any unknown setting
("unknown setting [...]", ``AbstractScopedSettings.validate`` in elastic/elasticsearch), so a user
setting that the target version (:mod:`es_framework.config.versions`) is too old for is an error.

Each entry records the first release that registers the setting and where that is written down.
Only settings a user may add are listed; a setting missing here is simply not version-checked
(the catalogs' major rules still apply). The list errs towards the earlier release when the
sources disagree: refusing a setting that Elasticsearch accepts would stop a valid cluster, while
accepting one too early only leaves the refusal to Elasticsearch, as before this check.
"""

from __future__ import annotations

from dataclasses import dataclass

from es_framework.config.versions import EsVersion, TargetVersion, version_in_text
from es_framework.core.es_catalog import Verdict, check_setting, pattern_matches


@dataclass(frozen=True)
class Introduced:
    """A setting (exact, ``*`` for one name segment, or a prefix ending in ``.``) and its first release."""

    key: str
    since: EsVersion
    #: Where the release is documented (release notes, pull request).
    source: str

    def matches(self, key: str) -> bool:
        return pattern_matches(self.key, key)


_R713 = "Elasticsearch 7.13.0 release notes"
_R85 = "Elasticsearch 8.5.0 release notes, 'Introduce max headroom for disk watermark stages' (#88639)"

INTRODUCED = (
    # The GeoIP database downloader shipped in 7.13 ("GeoIP database downloader", #68424), switched
    # off by default there through the ingest.geoip.downloader.enabled.default property (#72880,
    # the 7.13 backport of #72716), and on by default from 7.14 (#74323), where it is documented.
    # The setting itself is registered from 7.13.
    Introduced("ingest.geoip.downloader.enabled", EsVersion(7, 13), f"{_R713} (#68424, #72880)"),
    # "Introduce separate shard limit for frozen shards" (#71392).
    Introduced("cluster.max_shards_per_node.frozen", EsVersion(7, 13), f"{_R713} (#71392)"),
    Introduced("cluster.routing.allocation.disk.watermark.low.max_headroom", EsVersion(8, 5), _R85),
    Introduced("cluster.routing.allocation.disk.watermark.high.max_headroom", EsVersion(8, 5), _R85),
    Introduced("cluster.routing.allocation.disk.watermark.flood_stage.max_headroom", EsVersion(8, 5), _R85),
)


def introduction(key: str) -> Introduced | None:
    return next((entry for entry in INTRODUCED if entry.matches(key)), None)


def check_setting_at(key: str, version: EsVersion) -> Verdict:
    """What Elasticsearch ``version`` makes of the node setting ``key``: its major's verdict, and an
    error when the setting is newer than ``version`` (unknown minor: the major's verdict only)."""
    verdict = check_setting(key, version.major)
    if verdict.error is not None:
        return verdict
    entry = introduction(key)
    if entry is not None and version.at_least(entry.since) is False:
        return Verdict(
            error=f"[{key}] was added in Elasticsearch {entry.since} ({entry.source}); Elasticsearch {version} does "
            "not know it and refuses to start with it"
        )
    return verdict


def version_news(reported: str | None, recorded: str | None, target: TargetVersion) -> str | None:
    """What to warn about when a node reports its version (``NodeReport.version``) for the first time
    or a new one: a version other than the target's, which the settings were checked against."""
    if not reported or reported == recorded or target.version is None:
        return None
    found, wanted = version_in_text(reported), target.version
    if found is None:
        return f"reports Elasticsearch {reported!r}, which is not a version; the target is {target}"
    same = found.major == wanted.major
    same = same and (wanted.minor is None or found.minor in (None, wanted.minor))
    same = same and (wanted.patch is None or found.patch in (None, wanted.patch))
    if same:
        return None
    return (
        f"runs Elasticsearch {reported}, not the target version {target}, which the user settings were checked "
        f"against: give --elasticsearchVersion {found} if that is what the nodes should run, else give them the "
        f"image or distribution of {wanted}"
    )
