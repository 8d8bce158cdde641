"""Live trading loop: one producer per process from a market-data feed to risk state.

``feed -> BarValidator -> FeatureStream -> InferenceEngine -> vol-targeted sizing ->
pre-trade checks (workbench.risk) -> PaperBroker -> Ledger -> RiskMonitor``; Panel
sessions subscribe to the producer (``widgets/live_app.py``). DESIGN.md sections 6-7.
Names load lazily.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

_EXPORTS = {
    "Bar": "workbench.live._types",
    "Malformed": "workbench.live._types",
    "Order": "workbench.live._types",
    "Fill": "workbench.live._types",
    "BarValidator": "workbench.live._validation",
    "REJECT_REASONS": "workbench.live._validation",
    "LiveEngine": "workbench.live._engine",
    "EngineUpdate": "workbench.live._engine",
    "STAGES": "workbench.live._engine",
    "PaperBroker": "workbench.live._broker",
    "Ledger": "workbench.live._ledger",
    "demo_ensemble": "workbench.live._demo",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
