"""`egemaps`: the 88 eGeMAPSv02 functionals of each segment, computed by openSMILE (`opensmile`).

eGeMAPS (Eyben et al. 2016) is the field's standard minimal acoustic set for voice and
affect research (pitch, jitter, shimmer, loudness, spectral balance, formants, rate).
The `opensmile` wheel ships the openSMILE library and its configs, so nothing is
downloaded. It is an optional extra (`pip install 'hilbert-cli[egemaps]'`) because its
licence is audEERING's research licence (free for research and education, not for
commercial use).

Values are stored in openSMILE's own units (Hz, dB, semitones, ratios), unscaled: their
scales differ by orders of magnitude, and the trainer standardises every feature per fold
on the training recordings only (training/data.py Preprocessor, `standardize = true` by
default), which also covers an `egemaps+...` concatenation. Scaling here would need
statistics from data the encoder does not see, or leak across folds.

A clip shorter than openSMILE's shortest analysable input (about 60 ms) is zero-padded to
0.1 s (silence adds no voiced frames); a functional openSMILE still leaves undefined is 0.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import ModelUnavailable

MIN_SAMPLES = SAMPLE_RATE // 10
INSTALL_HINT = "pip install 'hilbert-cli[egemaps]' (opensmile; audEERING research licence)"


def require_opensmile():
    """The opensmile module, or the one-line ModelUnavailable naming the extra."""
    try:
        import opensmile
    except ImportError as exc:
        raise ModelUnavailable(f"audio encoder 'egemaps' needs the opensmile package, which is not installed: "
                               f"{INSTALL_HINT}") from exc
    return opensmile


class EgemapsEncoder:
    """Clip -> 88 eGeMAPSv02 functionals (float32, openSMILE's units)."""

    def __init__(self, alias: str = "egemaps", device: str = "cpu", provenance: dict | None = None, **_: object):
        opensmile = require_opensmile()
        self.smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self.alias = alias
        self.device = "cpu"  # openSMILE runs on the CPU whatever the other encoders use
        self.feature_names = list(self.smile.feature_names)
        self.dim = len(self.feature_names)
        self.max_input_s = None
        self.options = {"feature_set": "eGeMAPSv02", "level": "functionals"}
        self.provenance = {**(provenance or {"alias": alias}), "arch": "egemaps", "dim": self.dim,
                           "opensmile": getattr(opensmile, "__version__", None)}

    def _one(self, clip: np.ndarray) -> np.ndarray:
        x = np.asarray(clip, dtype=np.float32).reshape(-1)
        if x.size < MIN_SAMPLES:
            x = np.pad(x, (0, MIN_SAMPLES - x.size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Segment too short": handled below
            v = self.smile.process_signal(x, SAMPLE_RATE).to_numpy(dtype=np.float64).reshape(-1)
        return np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(clips), self.dim), dtype=np.float32)
        for i, c in enumerate(clips):
            out[i] = self._one(c)
        return out
