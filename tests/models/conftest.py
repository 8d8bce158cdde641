import numpy as np
import pandas as pd
import pytest

from workbench.models import MomentumDataset


def synthetic_dataset(T=600, N=3, F=4, seed=0):
    """A dataset whose next return is partly predictable from feature 0."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(T, N, F))
    r = 0.01 * rng.normal(size=(T, N)) + 0.004 * np.tanh(feats[:, :, 0])
    nxt = r.copy()
    returns = np.vstack([np.full((1, N), np.nan), r[:-1]])
    nxt[-1] = np.nan
    feats[:20, 1] = np.nan  # an asset in warm-up
    close = 100 * np.cumprod(1 + np.nan_to_num(returns), axis=0)
    return MomentumDataset(
        index=pd.date_range("2000-01-03", periods=T, freq="B", tz="UTC"),
        symbols=tuple(f"A{j}" for j in range(N)),
        features=feats,
        feature_names=tuple(f"f{k}" for k in range(F)),
        returns=returns,
        next_returns=nxt,
        sigma=np.full((T, N), 0.16),
        close=close,
        data_hash="synthetic",
    )


@pytest.fixture
def dataset():
    return synthetic_dataset()
