"""Shared check: a streaming feature reproduces its batch kernel at every step."""

from __future__ import annotations

import numpy as np

from workbench.features._catalogue import FeatureDef


def run_stream(defn: FeatureDef, inputs: dict[str, np.ndarray], **params) -> np.ndarray:
    """Feed ``inputs`` (each (T, N) or (T, N, k)) bar by bar; return outputs (T, N, n_out)."""
    first = next(iter(inputs.values()))
    T, N = first.shape[:2]
    feat = defn.stream(N, **params)
    out = np.full((T, N, feat.n_outputs), np.nan)
    step = np.empty((N, feat.n_outputs))
    for t in range(T):
        feat.update({k: np.ascontiguousarray(v[t]) for k, v in inputs.items()}, step)
        out[t] = step
    return out


def assert_stream_matches_batch(defn: FeatureDef, inputs: dict[str, np.ndarray], rtol=1e-9,
                                atol=1e-12, **params) -> None:
    """Streaming output at every step equals the batch output (NaN positions identical)."""
    batch = defn.batch(*(inputs[f] for f in defn.inputs), **params)
    batch = batch if isinstance(batch, tuple) else (batch,)
    stream = run_stream(defn, {f: inputs[f] for f in defn.inputs}, **params)
    assert stream.shape[-1] == len(batch), (defn.name, stream.shape, len(batch))
    for k, b in enumerate(batch):
        b = np.asarray(b, dtype=np.float64)
        if b.ndim == 1:  # a (T,) cross-sectional output, repeated for every symbol
            b = np.repeat(b[:, None], stream.shape[1], axis=1)
        np.testing.assert_array_equal(np.isnan(stream[..., k]), np.isnan(b),
                                      err_msg=f"{defn.name} output {k}: NaN positions differ")
        np.testing.assert_allclose(stream[..., k], b, rtol=rtol, atol=atol,
                                   err_msg=f"{defn.name} output {k}")
