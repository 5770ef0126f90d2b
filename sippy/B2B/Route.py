"""`sippy.B2B.Route`: Sippy 2.x's name for `sippy.B2BRoute` (the one implementation lives there)."""

from sippy.B2BRoute import *  # noqa: F403
from sippy.B2BRoute import __all__  # noqa: F401
