"""The tier router in Python (componentize-py; `make plugins` builds it).

The same decision as plugins/router-tier (Rust) and plugins/router-tier-js:
a trial-tier caller goes to `small`, a prompt of `long_prompt_tokens` or
more to `large`, anything else abstains. Config (defaults shown):
{"small": "mock:gpt-4o-mini", "large": "mock:claude-sonnet-4-6",
 "long_prompt_tokens": 2000}; a malformed value falls back to its default.
"""

import json

from wit_world import WitWorld as World
from wit_world.exports import Routing as RoutingExport
from wit_world.exports.routing import Decision_Abstain, Decision_Route, RoutePlan
from wit_world.imports import host
from wit_world.imports.types import CustomerTier, PluginInfo, PluginKind, Target

DEFAULTS = {"small": "mock:gpt-4o-mini", "large": "mock:claude-sonnet-4-6"}


def load_config():
    try:
        cfg = json.loads(host.config())
        return cfg if isinstance(cfg, dict) else {}
    except ValueError:
        return {}


# Constant for an instance's life: parsed once.
CONFIG = None


def config():
    global CONFIG
    if CONFIG is None:
        CONFIG = load_config()
    return CONFIG


def target(key):
    value = config().get(key)
    if isinstance(value, str):
        provider, _, model = value.partition(":")
        if provider and model:
            return Target(provider=provider, model=model)
    provider, _, model = DEFAULTS[key].partition(":")
    return Target(provider=provider, model=model)


def route_to(key, reason):
    return Decision_Route(RoutePlan(candidates=[target(key)], reason=reason))


class WitWorld(World):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="tier-router-python",
            version="0.1.0",
            kind=PluginKind.ROUTER,
            description="Trial tier to a small model, long prompts to a large one",
            default_order=60,
            capabilities=[],
            config_schema=None,
        )


class Routing(RoutingExport):
    def route(self, request):
        with request:
            if request.tier() == CustomerTier.TRIAL:
                return route_to("small", "trial tier")
            long = config().get("long_prompt_tokens")
            if not isinstance(long, int) or isinstance(long, bool) or long < 0:
                long = 2000
            tokens = request.estimated_input_tokens()
            if tokens >= long:
                return route_to("large", f"long prompt: {tokens} tokens")
            return Decision_Abstain()
