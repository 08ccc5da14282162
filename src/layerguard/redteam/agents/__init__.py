"""Agent scenarios: tool-use tasks under attack, with and without the guard.

Injected instructions, forged tool outputs, poisoned documents, exfiltration, destructive and
privileged calls, played by a model or an oracle agent with and without the tool gate and the
other rings. See :mod:`layerguard.redteam.agents.run`.
"""

from layerguard.redteam.agents.harness import MODES, run_model_agent, run_oracle
from layerguard.redteam.agents.scenarios import Scenario, load_scenarios

__all__ = ["MODES", "Scenario", "load_scenarios", "run_model_agent", "run_oracle"]
