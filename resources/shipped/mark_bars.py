"""Write issue 17's bar into each shipped manifest (run when shipping: python resources/shipped/mark_bars.py resources/shipped).

Expert: >= 80 normalised over 10 episodes; medium about a third of it; a safety expert also spends less
sum(a^2) per step than the plain expert. A policy that misses the bar is shipped with "met": false and by how much.
"""

import json
import sys
from pathlib import Path

BAR = 80.0
root = Path(sys.argv[1])
for env_dir in sorted((root / "behaviour").iterdir()):
    plain = json.loads((env_dir / "manifest.json").read_text())
    for kind in ("behaviour", "safety_expert"):
        path = root / kind / env_dir.name / "manifest.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        score = m["expert"]["normalized_score"]
        bar = {
            "expert_normalized_min": BAR,
            "expert_normalized": round(score, 1),
            "met": score >= BAR,
            "short_by": round(max(0.0, BAR - score), 1),
        }
        if kind == "safety_expert":
            less = m["expert"]["sum_sq_action_per_step"] < plain["expert"]["sum_sq_action_per_step"]
            bar["sum_sq_action_per_step_below_plain_expert"] = less
            bar["met"] = bar["met"] and less
        else:
            bar["medium_target"] = "about a third of the expert's normalised score"
        m["bar"] = bar
        path.write_text(json.dumps(m, indent=2) + "\n")
        print(path, bar)
