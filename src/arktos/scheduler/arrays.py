"""Array type aliases shared by the scheduler core. No I/O here."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
CodeArray = npt.NDArray[np.int32]
"""Label value codes per node row; -1 where the node has no such label."""
