import numpy as np

from .conftest import synthetic_dataset


def _ref_before(ds, before):
    """Brute force: pair (t, j) valid and its asset's next bar (finite close) < before."""
    ok = ds.valid_mask()
    T, N = ok.shape
    out = np.zeros_like(ok)
    for j in range(N):
        for t in range(T):
            nxt = [u for u in range(t + 1, T) if np.isfinite(ds.close[u, j])]
            out[t, j] = ok[t, j] and bool(nxt) and nxt[0] < before
    return out


def test_valid_mask_before_drops_targets_realised_at_or_after_the_row():
    ds = synthetic_dataset(T=60, N=3)
    close = ds.close.copy()
    close[30:36, 0] = np.nan  # a gap across row 33
    close[:5, 2] = np.nan  # listed late
    nxt = ds.next_returns.copy()
    nxt[30:36, 0] = np.nan
    ds = type(ds)(**{**ds.__dict__, "close": close, "next_returns": nxt})
    assert np.array_equal(ds.valid_mask(before=None), ds.valid_mask())
    for before in (0, 3, 20, 31, 33, 36, 37, 59, 60, 1000):
        np.testing.assert_array_equal(ds.valid_mask(before=before), _ref_before(ds, before),
                                      err_msg=f"before={before}")
    # asset 0's last bar before row 33 is row 29: its target is realised at row 36
    m = ds.valid_mask(before=33)
    assert not m[29, 0] and m[28, 0] and m[31, 1] and not m[32, 1]
    # negative values count from the end, as in slicing
    np.testing.assert_array_equal(ds.valid_mask(before=-10), ds.valid_mask(before=50))
