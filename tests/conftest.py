import sys
from pathlib import Path

# tests/reference.py and other helpers import by bare name.
sys.path.insert(0, str(Path(__file__).parent))
