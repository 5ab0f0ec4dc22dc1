import sys
from pathlib import Path

# tests/reference.py and other helpers import by bare name.
sys.path.insert(0, str(Path(__file__).parent))

# Hypothesis: the same examples on every run (a failure in CI reproduces here), no
# per-example deadline (a loaded 2-core machine is slow, not wrong). `--hypothesis-profile
# explore` searches afresh with more examples.
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile("ci")
