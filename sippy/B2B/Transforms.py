"""`sippy.B2B.Transforms`: Sippy 2.x's name for `sippy.B2BTransforms` (the one implementation)."""

from sippy.B2BTransforms import *  # noqa: F403
from sippy.B2BTransforms import __all__  # noqa: F401
