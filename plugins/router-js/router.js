// A Sluice router written in JavaScript, built with jco's QuickJS backend
// and its default flags (`make plugins` does it).
//
// Routes a request that carries `x-route-lang: js` to the mock provider,
// naming the model `from-js`, and abstains otherwise. It logs through the
// host on every call (QuickJS has no `console`).

import { log } from "sluice:plugin/host@0.2.0";

export function describe() {
  return {
    name: "js-router",
    version: "0.1.0",
    kind: "router",
    description: "Routes x-route-lang: js to mock:from-js",
    defaultOrder: 45,
    capabilities: [],
    configSchema: undefined,
  };
}

export const routing = {
  route(request) {
    const lang = request.header("x-route-lang");
    log("info", `js router saw model=${request.model()} lang=${lang}`);
    if (lang !== "js") {
      return { tag: "abstain" };
    }
    return {
      tag: "route",
      val: { candidates: [{ provider: "mock", model: "from-js" }], reason: "js router" },
    };
  },
};
