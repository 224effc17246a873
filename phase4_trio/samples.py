"""The one array type audio travels in: float32 samples in [-1, 1), frames by channels."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
