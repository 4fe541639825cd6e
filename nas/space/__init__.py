"""Search spaces (a base model and its insertion points) and architectures (one choice per point, its model YAML)."""

from .architecture import Architecture, Choice
from .space import SPACES_DIR, InsertionPoint, SearchSpace, load_space

__all__ = ["SPACES_DIR", "Architecture", "Choice", "InsertionPoint", "SearchSpace", "load_space"]
