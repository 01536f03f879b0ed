"""The crawl's typed configuration: one flat model, units in the field names, unknown keys refused.

It lives beside the crawler until a job's `source: crawl` wires it in; it is written into the crawl
folder as `crawl_config.json` on every run.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_USER_AGENT = "gristmill-crawler/0.1 (+https://github.com/gristmill/gristmill#crawler)"


class CrawlConfig(BaseModel):
    """What to crawl, how politely, and within which limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: list[str] = Field(min_length=1)
    # Frontier limits: pages is the number of HTTP fetches of frontier URLs (robots.txt not counted;
    # URLs refused before connecting not counted); depth 0 is the seeds.
    max_pages: int | None = Field(default=None, ge=1)
    max_depth: int = Field(default=3, ge=0)
    # Scope: `seed_hosts` follows links only to the seeds' hosts (scheme, host and port); `domains`
    # to the hosts in `domains` and their subdomains; `any` everywhere (the safety rules still apply).
    scope: Literal["seed_hosts", "domains", "any"] = "seed_hosts"
    domains: list[str] = Field(default_factory=list)
    # Regular expressions on the canonical URL: when `include_patterns` is set a URL must match one;
    # a URL matching any `exclude_patterns` is never fetched. Seeds are subject to both.
    include_patterns: list[str] = Field(default_factory=list)
    exclude_patterns: list[str] = Field(default_factory=list)

    # Politeness. The user agent names a contact URL (checked); robots.txt groups are matched on
    # `robots_token` (the agent's product token by default).
    user_agent: str = DEFAULT_USER_AGENT
    robots_token: str | None = None
    # Seconds between the end of one request to a host and the start of the next; a robots.txt
    # Crawl-delay raises it (up to max_crawl_delay_s) unless obey_crawl_delay is off.
    min_delay_s: float = Field(default=1.0, ge=0)
    obey_crawl_delay: bool = True
    max_crawl_delay_s: float = Field(default=30.0, ge=0)
    per_host_concurrency: int = Field(default=1, ge=1)
    # robots.txt is cached in the crawl folder and reused for this long (RFC 9309: at most a day).
    robots_ttl_s: float = Field(default=86_400, ge=0)

    # Workers: hosts are assigned to `fetchers` by a hash of their name, so a host is only ever fetched
    # by one of them; each fetcher runs up to `connections_per_fetcher` requests at once (to different
    # hosts unless per_host_concurrency > 1). `use_ray: false` runs the same fetchers as threads in
    # this process (no Ray).
    fetchers: int = Field(default=2, ge=1)
    connections_per_fetcher: int = Field(default=8, ge=1)
    use_ray: bool = True
    fetcher_num_cpus: float = Field(default=0.25, ge=0)
    # Extra `.options()` for the fetcher actors (runtime_env, scheduling_strategy, ...).
    ray_actor_options: dict[str, Any] = Field(default_factory=dict)

    # Safety. Addresses that are not globally routable (private, loopback, link-local, multicast,
    # reserved, ...) are refused before connecting unless listed here (IPs or networks, e.g. 127.0.0.1).
    allow_addresses: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=30.0, gt=0)  # whole request: connect, send, headers, body
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)  # as received (compressed, chunked)
    max_decoded_bytes: int = Field(default=5_000_000, ge=1024)  # after decompression: the bomb guard
    max_redirects: int = Field(default=5, ge=0, le=5)
    content_types: list[str] = Field(default_factory=lambda: ["text/html", "application/xhtml+xml", "text/plain"])

    # Opt-out (pipeline/lists/optout.py): list files or URIs, and inline entries ("domain:example.com",
    # "prefix:https://…", "url:https://…"). A listed URL never enters the frontier, and a queued one that
    # a later list names is refused before it is fetched; both are counted (crawl_stats.json: opted_out).
    opt_out_lists: list[str] = Field(default_factory=list)
    opt_out: list[str] = Field(default_factory=list)

    # Output: request and response records in gzipped WARC/1.1; fsync makes every record durable before
    # the crawl moves on (what lets a killed crawl resume without fetching anything twice).
    fsync: bool = True

    @field_validator("user_agent")
    @classmethod
    def _contact(cls, value: str) -> str:
        if not re.search(r"https?://|@", value):
            raise ValueError("the user agent must name a contact URL or address, e.g. 'mybot/1.0 (+https://example.org/bot)'")
        return value

    @field_validator("allow_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"allow_addresses: {entry!r} is not an IP address or network") from None
        return value

    @field_validator("include_patterns", "exclude_patterns")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"bad regular expression {pattern!r}: {err}") from None
        return value

    @model_validator(mode="after")
    def _domains_given(self):
        if self.scope == "domains" and not self.domains:
            raise ValueError("scope 'domains' needs a list of domains")
        return self

    @property
    def token(self) -> str:
        """The product token robots.txt groups are matched against."""
        return self.robots_token or self.user_agent.split("/")[0].split()[0]
