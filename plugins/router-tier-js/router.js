// The tier router in JavaScript (jco, QuickJS backend, default flags;
// `make plugins` builds it). The same decision as plugins/router-tier (Rust)
// and plugins/router-tier-python: a trial-tier caller goes to `small`, a
// prompt of `long_prompt_tokens` or more to `large`, anything else abstains.
// Config (defaults shown): {"small": "mock:gpt-4o-mini",
// "large": "mock:claude-sonnet-4-6", "long_prompt_tokens": 2000}; a
// malformed value falls back to its default.

import { config as hostConfig } from "sluice:plugin/host@0.2.0";

const DEFAULTS = { small: "mock:gpt-4o-mini", large: "mock:claude-sonnet-4-6" };

// Constant for an instance's life: parsed once.
let parsed;
function config() {
  if (parsed === undefined) {
    try {
      const c = JSON.parse(hostConfig());
      parsed = c !== null && typeof c === "object" ? c : {};
    } catch (_) {
      parsed = {};
    }
  }
  return parsed;
}

function target(key) {
  const value = config()[key];
  const split = (s) => {
    const i = s.indexOf(":");
    return i > 0 && i < s.length - 1 ? { provider: s.slice(0, i), model: s.slice(i + 1) } : null;
  };
  return (typeof value === "string" && split(value)) || split(DEFAULTS[key]);
}

function routeTo(key, reason) {
  return { tag: "route", val: { candidates: [target(key)], reason } };
}

export function describe() {
  return {
    name: "tier-router-js",
    version: "0.1.0",
    kind: "router",
    description: "Trial tier to a small model, long prompts to a large one",
    defaultOrder: 60,
    capabilities: [],
    configSchema: undefined,
  };
}

export const routing = {
  route(request) {
    if (request.tier() === "trial") {
      return routeTo("small", "trial tier");
    }
    const c = config().long_prompt_tokens;
    const long = Number.isInteger(c) && c >= 0 ? BigInt(c) : 2000n;
    const tokens = request.estimatedInputTokens();
    if (tokens >= long) {
      return routeTo("large", `long prompt: ${tokens} tokens`);
    }
    return { tag: "abstain" };
  },
};
