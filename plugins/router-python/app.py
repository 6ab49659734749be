"""A Sluice router written in Python (componentize-py).

Routes a request that carries `x-route-lang: python` to the mock provider,
naming the model `from-python`, and abstains otherwise. It prints a line on
every call (with the names of the headers it may read): the gateway logs
guest stdout tagged with the plugin's name.
"""

from wit_world import WitWorld as World
from wit_world.exports import Routing as RoutingExport
from wit_world.exports.routing import Decision_Abstain, Decision_Route, RoutePlan
from wit_world.imports.types import PluginInfo, PluginKind, Target


class WitWorld(World):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="python-router",
            version="0.1.0",
            kind=PluginKind.ROUTER,
            description="Routes x-route-lang: python to mock:from-python",
            default_order=40,
            capabilities=[],
            config_schema=None,
        )


class Routing(RoutingExport):
    def route(self, request):
        with request:
            lang = request.header("x-route-lang")
            names = ",".join(sorted(request.header_names()))
            print(f"python router saw model={request.model()} lang={lang} headers={names}")
            if lang != "python":
                return Decision_Abstain()
            return Decision_Route(
                RoutePlan(candidates=[Target(provider="mock", model="from-python")], reason="python router")
            )
