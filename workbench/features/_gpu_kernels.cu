// CUDA kernels of the CuPy backend (workbench.features._gpu), double precision.
//
// Layout: every input/output is a C-ordered (T, N) array, element (t, j) at t*N + j.
// One thread per asset (or per (pair, asset), or per asset pair for the mean pairwise
// correlation) walks t = 0 .. T-1, so at every step consecutive threads read
// consecutive addresses (coalesced). A NaN input leaves the thread's state untouched
// and writes NaN: each asset is computed on its own sequence of valid bars. Rolling
// windows keep a per-thread ring buffer in a (w, M) scratch array (row q of thread g
// at q*M + g, again coalesced).
//
// The arithmetic mirrors the numba kernels of _cpu.py, _cpu_ta.py and _cpu_micro.py
// operation for operation: the same sliding updates and exact re-syncs, and the same
// multiplies by precomputed reciprocals where those kernels use them (Wilder's
// "* (1 / period)", the sliding mean's "* (1 / w)", std "sqrt(m2 * (1 / c))", Bollinger
// "sqrt(m2 * (1 / w))") and true divisions where they divide. _gpu.py compiles this
// file with --fmad=false so no multiply-add is contracted into an FMA (numba, without
// fastmath, does not contract either); with contraction, e.g. the EMA update
// (v - prev) * k + prev would round differently. Division and sqrt are IEEE-rounded in
// CUDA double precision, so CPU and GPU then differ only where log/exp (libdevice vs
// libm, within an ulp) enter.
//
// The same source compiles as plain C++ with -DWB_HOST (one host loop per
// kernel instead of a grid): tests/features/test_gpu.py uses that build to check
// the kernels against the CPU backend bit for bit on a machine without a GPU.

#ifdef WB_HOST
#include <math.h>
#define WB_GLOBAL extern "C"
#define WB_DEV static inline
#define WB_NAN (__builtin_nan(""))
#define WB_FOR(j, n) for (long long j = 0; j < (long long)(n); ++j)
#else
#define WB_GLOBAL extern "C" __global__
#define WB_DEV __device__ __forceinline__
#define WB_NAN (__longlong_as_double(0x7ff8000000000000LL))
#define WB_FOR(j, n)                                                              \
    for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;          \
         j < (long long)(n); j += (long long)blockDim.x * gridDim.x)
#endif

// windows up to this length are recomputed exactly at every step (as _cpu._EXACT_W)
#define WB_EXACT_W 16

WB_DEV bool ok(double v) { return v == v; }

// pandas' zsqrt times scale: sqrt, 0 for non-positive, NaN stays NaN
WB_DEV double std_from_var(double x, double scale) {
    if (x > 0.0) return sqrt(x) * scale;
    if (x == x) return 0.0;
    return x;
}

// --------------------------------------------------------------------------- //
// rolling mean / sum of squared deviations (port of _cpu._roll_push)
// --------------------------------------------------------------------------- //

struct Roll {
    long long cnt;
    double K;
    double mean;
    double m2;
};

WB_DEV void roll_reset(Roll& s) {
    s.cnt = 0;
    s.K = 0.0;
    s.mean = 0.0;
    s.m2 = 0.0;
}

// Push a valid value; ring row q of this thread at buf[q * st]. True once full.
WB_DEV bool roll_push(Roll& s, double xv, long long w, double* buf, long long st) {
    long long i = s.cnt;
    long long p = i % w;
    if (i < w) {
        if (i == 0) {
            s.K = xv;
            s.mean = 0.0;
            s.m2 = 0.0;
        }
        double xs = xv - s.K;
        double mu = s.mean;
        double d = xs - mu;
        mu += d / (double)(i + 1);
        s.m2 += d * (xs - mu);
        s.mean = mu;
        buf[p * st] = xv;
    } else {
        double y = buf[p * st];
        buf[p * st] = xv;
        if (w <= WB_EXACT_W || p == w - 1) {
            // exact re-sync over the window, oldest first, re-centred on its mean
            double kk = s.K;
            double sum = 0.0;
            long long q = p;
            for (long long k = 0; k < w; ++k) {
                q = q + 1 < w ? q + 1 : 0;
                sum += buf[q * st] - kk;
            }
            kk = kk + sum / (double)w;
            sum = 0.0;
            for (long long k = 0; k < w; ++k) {
                q = q + 1 < w ? q + 1 : 0;
                sum += buf[q * st] - kk;
            }
            double mu = sum / (double)w;
            double s2 = 0.0;
            for (long long k = 0; k < w; ++k) {
                q = q + 1 < w ? q + 1 : 0;
                double d = buf[q * st] - kk - mu;
                s2 += d * d;
            }
            s.K = kk;
            s.mean = mu;
            s.m2 = s2;
        } else {
            double kk = s.K;
            double xs = xv - kk;
            double ys = y - kk;
            double old = s.mean;
            double mu = old + (xs - ys) * (1.0 / (double)w);  // reciprocal, as _cpu
            s.m2 += (xs - ys) * (xs - mu + ys - old);
            s.mean = mu;
        }
    }
    s.cnt = i + 1;
    return i >= w - 1;
}

// --------------------------------------------------------------------------- //
// sliding sums and co-moments (ports of _cpu_ta._sum_update / _mom4_push and
// _cpu_micro._ring_sum_push / _cm_add / _cm_remove / _cm_push / _flat_track)
// --------------------------------------------------------------------------- //

// _cpu_ta._sum_update: push value number i (0-based) into the ring (row i % w at buf[q * st])
// and keep the window sum s: slid in between (s += x - old), recomputed exactly (ring rows
// 0 .. w-1) whenever the ring wraps, including the first full window.
WB_DEV void sum_update(long long i, double xv, long long w, double& s, double* buf,
                       long long st) {
    long long p = i % w;
    if (i < w - 1) {
        if (i == 0) s = 0.0;
        s += xv;
        buf[p * st] = xv;
    } else if (p == w - 1) {
        buf[p * st] = xv;
        double acc = 0.0;
        for (long long q = 0; q < w; ++q) acc += buf[q * st];
        s = acc;
    } else {
        s += xv - buf[p * st];
        buf[p * st] = xv;
    }
}

// _cpu_micro._ring_sum_push: c values pushed so far; returns c + 1. s = s + x - old while
// the ring is full, exact sum (ring rows 0 .. w-1) each time the ring wraps.
WB_DEV long long ring_sum_push(long long c, double xv, long long w, double& s, double* ring,
                               long long st) {
    long long p = c % w;
    if (c >= w) {
        s = s + xv - ring[p * st];
    } else {
        s = s + xv;
    }
    ring[p * st] = xv;
    c += 1;
    if (c % w == 0) {
        double acc = 0.0;
        for (long long q = 0; q < w; ++q) acc += ring[q * st];
        s = acc;
    }
    return c;
}

// Sums of (x - K)^k, k = 1..4, over the last w values (_cpu_ta._mom4_push). K is reset to
// the window mean at every exact re-sync (ring wrap, or every value for w <= WB_EXACT_W).
struct Mom4 {
    double K, s1, s2, s3, s4;
};

WB_DEV bool mom4_push(long long i, double xv, long long w, Mom4& m, double* buf, long long st) {
    long long p = i % w;
    if (i < w - 1) {
        if (i == 0) {
            m.K = xv;
            m.s1 = 0.0;
            m.s2 = 0.0;
            m.s3 = 0.0;
            m.s4 = 0.0;
        }
        double d = xv - m.K;
        double d2 = d * d;
        m.s1 += d;
        m.s2 += d2;
        m.s3 += d2 * d;
        m.s4 += d2 * d2;
        buf[p * st] = xv;
    } else if (w <= WB_EXACT_W || p == w - 1) {
        buf[p * st] = xv;
        double kk = m.K;
        double acc = 0.0;
        for (long long q = 0; q < w; ++q) acc += buf[q * st] - kk;
        kk = kk + acc / (double)w;
        double a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0;
        for (long long q = 0; q < w; ++q) {
            double d = buf[q * st] - kk;
            double d2 = d * d;
            a1 += d;
            a2 += d2;
            a3 += d2 * d;
            a4 += d2 * d2;
        }
        m.K = kk;
        m.s1 = a1;
        m.s2 = a2;
        m.s3 = a3;
        m.s4 = a4;
    } else {
        double kk = m.K;
        double d = xv - kk;
        double e = buf[p * st] - kk;
        buf[p * st] = xv;
        double d2 = d * d;
        double e2 = e * e;
        m.s1 += d - e;
        m.s2 += d2 - e2;
        m.s3 += d2 * d - e2 * e;
        m.s4 += d2 * d2 - e2 * e2;
    }
    return i >= w - 1;
}

// Co-moments of the finite pairs (x, y) of a window: count, means, sums of centred products.
struct Cm {
    double n, mx, my, cxx, cyy, cxy;
};

WB_DEV void cm_reset(Cm& m) {
    m.n = 0.0;
    m.mx = 0.0;
    m.my = 0.0;
    m.cxx = 0.0;
    m.cyy = 0.0;
    m.cxy = 0.0;
}

// Welford addition of (x, y) (_cpu_micro._cm_add).
WB_DEV void cm_add(Cm& m, double x, double y) {
    double nn = m.n + 1.0;
    double dx = x - m.mx;
    double dy = y - m.my;
    double mxn = m.mx + dx / nn;
    double myn = m.my + dy / nn;
    m.cxx += dx * (x - mxn);
    m.cyy += dy * (y - myn);
    m.cxy += dx * (y - myn);
    m.mx = mxn;
    m.my = myn;
    m.n = nn;
}

// Welford removal of (x, y) (_cpu_micro._cm_remove); an emptied window resets to zeros.
WB_DEV void cm_remove(Cm& m, double x, double y) {
    double nn = m.n - 1.0;
    if (nn <= 0.0) {
        cm_reset(m);
        return;
    }
    double mxo = m.mx, myo = m.my;
    double mxn = mxo - (x - mxo) / nn;
    double myn = myo - (y - myo) / nn;
    m.cxx -= (x - mxn) * (x - mxo);
    m.cyy -= (y - myn) * (y - myo);
    m.cxy -= (x - mxn) * (y - myo);
    m.mx = mxn;
    m.my = myn;
    m.n = nn;
}

// Exact two-pass co-moments of the finite pairs of rows u0 .. u0+w-1 of (a, b), in that
// order; element u of a at a[u * st].
WB_DEV void cm_exact(Cm& m, const double* a, const double* b, long long st, long long u0,
                     long long w) {
    double nn = 0.0, sx = 0.0, sy = 0.0;
    for (long long u = u0; u < u0 + w; ++u) {
        double x = a[u * st], y = b[u * st];
        if (ok(x) && ok(y)) {
            nn += 1.0;
            sx += x;
            sy += y;
        }
    }
    double ax = nn > 0.0 ? sx / nn : 0.0;
    double ay = nn > 0.0 ? sy / nn : 0.0;
    double sxx = 0.0, syy = 0.0, sxy = 0.0;
    for (long long u = u0; u < u0 + w; ++u) {
        double x = a[u * st], y = b[u * st];
        if (ok(x) && ok(y)) {
            sxx += (x - ax) * (x - ax);
            syy += (y - ay) * (y - ay);
            sxy += (x - ax) * (y - ay);
        }
    }
    m.n = nn;
    m.mx = ax;
    m.my = ay;
    m.cxx = sxx;
    m.cyy = syy;
    m.cxy = sxy;
}

// _cpu_micro._cm_push: push (x, y) (NaN in either: not counted) as pair number c of a ring of
// w pairs (rows q at rx[q * st], ry[q * st]); Welford removal of the leaving pair and
// addition, exact re-sync (oldest first) each time the ring wraps. Returns c + 1.
WB_DEV long long cm_push(Cm& m, long long c, double x, double y, long long w, double* rx,
                         double* ry, long long st) {
    long long p = c % w;
    if (c >= w) {
        double xo = rx[p * st], yo = ry[p * st];
        if (ok(xo) && ok(yo)) cm_remove(m, xo, yo);
    }
    rx[p * st] = x;
    ry[p * st] = y;
    if (ok(x) && ok(y)) cm_add(m, x, y);
    c += 1;
    if (c % w == 0) cm_exact(m, rx, ry, st, 0, w);  // p == w - 1: rows 0 .. w-1 are oldest first
    return c;
}

// Flat-series tracking (_cpu_micro._flat_track): chx (chy) is the row of the counted
// observation just before the latest change of x (y); the counted values of the window of
// rows [t - w + 1, t] differ iff chx >= t - w + 1 (an exact zero-variance test).
#define WB_NEVER (-4611686018427387904LL)  // -(1 << 62), _cpu_micro._NEVER

struct Flat {
    double lx, ly;
    long long lr, chx, chy;
};

WB_DEV void flat_reset(Flat& f) {
    f.lx = 0.0;
    f.ly = 0.0;
    f.lr = WB_NEVER;
    f.chx = WB_NEVER;
    f.chy = WB_NEVER;
}

WB_DEV void flat_track(Flat& f, double x, double y, long long t) {
    if (f.lr != WB_NEVER) {
        if (x != f.lx) f.chx = f.lr;
        if (y != f.ly) f.chy = f.lr;
    }
    f.lx = x;
    f.ly = y;
    f.lr = t;
}

// --------------------------------------------------------------------------- //
// returns, EMA, RSI, MACD (ports of returns_nb, _ema_block, _rsi_block, _macd_block)
// --------------------------------------------------------------------------- //

WB_GLOBAL void wb_returns(const double* __restrict__ x, double* __restrict__ out, long long T,
                          long long N, long long logret) {
    WB_FOR(j, N) {
        double last = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            out[t * N + j] = logret ? log(v / last) : v / last - 1.0;  // NaN if v or last is NaN
            if (ok(v)) last = v;
        }
    }
}

WB_GLOBAL void wb_ema(const double* __restrict__ x, double* __restrict__ out, long long T,
                      long long N, long long span) {
    WB_FOR(j, N) {
        const double k = 2.0 / ((double)span + 1.0);
        const double fspan = (double)span;
        double cnt = 0.0, ssum = 0.0, prev = 0.0;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            if (!ok(v)) {
                out[t * N + j] = WB_NAN;
                continue;
            }
            double c1 = cnt + 1.0;
            double s1 = ssum + v;
            double e;
            if (cnt >= fspan) {
                e = (v - prev) * k + prev;
            } else if (c1 == fspan) {
                e = s1 / fspan;
            } else {
                e = prev;
            }
            out[t * N + j] = c1 >= fspan ? e : WB_NAN;
            cnt = c1;
            ssum = s1;
            prev = e;
        }
    }
}

WB_GLOBAL void wb_rsi(const double* __restrict__ x, double* __restrict__ out, long long T,
                      long long N, long long period) {
    WB_FOR(j, N) {
        const double fp = (double)period;
        const double pm1 = fp - 1.0;
        const double rfp = 1.0 / fp;  // Wilder's "/ period" as a multiply, as _cpu._rsi_block
        double cnt = 0.0, last = 0.0, gain = 0.0, loss = 0.0;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            if (!ok(v)) {
                out[t * N + j] = WB_NAN;
                continue;
            }
            double c = cnt;
            double d = v - last;
            double up = d > 0.0 ? d : 0.0;
            double dn = d < 0.0 ? -d : 0.0;
            double ng = (c > fp ? gain * pm1 : gain) + up;
            double nl = (c > fp ? loss * pm1 : loss) + dn;
            double g, lo;
            if (c >= fp) {
                g = ng * rfp;
                lo = nl * rfp;
            } else if (c > 0.0) {
                g = ng;
                lo = nl;
            } else {
                g = gain;
                lo = loss;
            }
            double tot = g + lo;
            double r = tot != 0.0 ? 100.0 * (g / tot) : 0.0;
            out[t * N + j] = c >= fp ? r : WB_NAN;
            cnt = c + 1.0;
            last = v;
            gain = g;
            loss = lo;
        }
    }
}

WB_GLOBAL void wb_macd(const double* __restrict__ x, double* __restrict__ line_o,
                       double* __restrict__ sig_o, double* __restrict__ hist_o, long long T,
                       long long N, long long fast, long long slow, long long signal) {
    WB_FOR(j, N) {
        const double kf = 2.0 / ((double)fast + 1.0);
        const double ks = 2.0 / ((double)slow + 1.0);
        const double kg = 2.0 / ((double)signal + 1.0);
        const double ff = (double)fast, fs = (double)slow, fg = (double)signal;
        const double s0 = fs - 1.0;          // first valid bar with a line
        const double first = s0 + fg - 1.0;  // first valid bar with all outputs
        const double f0 = fs - ff;           // first valid bar in the fast seed
        double cnt = 0.0, ssl = 0.0, sfa = 0.0, ef = 0.0, es = 0.0, lsum = 0.0, sg = 0.0;
        for (long long t = 0; t < T; ++t) {
            long long o = t * N + j;
            double v = x[o];
            if (!ok(v)) {
                line_o[o] = WB_NAN;
                sig_o[o] = WB_NAN;
                hist_o[o] = WB_NAN;
                continue;
            }
            double c = cnt;
            if (c < fs) {
                ssl += v;
                if (c >= f0) sfa += v;
            }
            if (c > s0) {
                ef = (v - ef) * kf + ef;
                es = (v - es) * ks + es;
            } else if (c == s0) {
                ef = sfa / ff;
                es = ssl / fs;
            }
            double line = ef - es;
            if (c >= s0 && c <= first) lsum += line;
            if (c > first) {
                sg = (line - sg) * kg + sg;
            } else if (c == first) {
                sg = lsum / fg;
            }
            if (c >= first) {
                line_o[o] = line;
                sig_o[o] = sg;
                hist_o[o] = line - sg;
            } else {
                line_o[o] = WB_NAN;
                sig_o[o] = WB_NAN;
                hist_o[o] = WB_NAN;
            }
            cnt = c + 1.0;
        }
    }
}

// --------------------------------------------------------------------------- //
// rolling windows: SMA / std / Bollinger (_roll_block), rolling volatility
// --------------------------------------------------------------------------- //

// what: 0 -> SMA into o1; 1 -> std sqrt(m2 * (1 / c)) into o1; 2 -> Bollinger
// mean +/- c * sqrt(m2 * (1 / w)) into o1 (upper), o2 (middle), o3 (lower); 3 -> std
// sqrt(m2 / c) into o1 (a true division, as _cpu_ta._vov_step). The reciprocal multiplies
// of modes 1 and 2 are those of _cpu._roll_block (bitwise parity).
// buf: (w, N) scratch.
WB_GLOBAL void wb_rolling(const double* __restrict__ x, double* __restrict__ o1,
                          double* __restrict__ o2, double* __restrict__ o3,
                          double* __restrict__ buf, long long T, long long N, long long w,
                          long long what, double c) {
    WB_FOR(j, N) {
        Roll s;
        roll_reset(s);
        for (long long t = 0; t < T; ++t) {
            long long o = t * N + j;
            double v = x[o];
            double r1 = WB_NAN, r2 = WB_NAN, r3 = WB_NAN;
            if (ok(v) && roll_push(s, v, w, buf + j, N)) {
                double mid = s.K + s.mean;
                double v2 = s.m2 > 0.0 ? s.m2 : 0.0;
                if (what == 0) {
                    r1 = mid;
                } else if (what == 1) {
                    r1 = sqrt(v2 * (1.0 / c));
                } else if (what == 3) {
                    r1 = sqrt(v2 / c);
                } else {
                    double hw = c * sqrt(v2 * (1.0 / (double)w));
                    r1 = mid + hw;
                    r2 = mid;
                    r3 = mid - hw;
                }
            }
            o1[o] = r1;
            if (what == 2) {
                o2[o] = r2;
                o3[o] = r3;
            }
        }
    }
}

WB_GLOBAL void wb_rolling_volatility(const double* __restrict__ x, double* __restrict__ out,
                                     double* __restrict__ buf, long long T, long long N,
                                     long long w, double scale) {
    WB_FOR(j, N) {
        Roll s;
        roll_reset(s);
        double last = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            double o = WB_NAN;
            if (ok(v)) {
                if (ok(last)) {
                    double r = log(v / last);
                    if (roll_push(s, r, w, buf + j, N)) {
                        double s2 = s.m2 > 0.0 ? s.m2 : 0.0;
                        o = sqrt(s2 / (double)(w - 1)) * scale;
                    }
                }
                last = v;
            }
            out[t * N + j] = o;
        }
    }
}

// --------------------------------------------------------------------------- //
// EWM variance (pandas ewm(adjust=True).var(bias=False) online recursion)
// --------------------------------------------------------------------------- //

struct Ewm {
    double cnt, mean, cov, sw, sw2, ow;
};

WB_DEV void ewm_reset(Ewm& e) {
    e.cnt = 0.0;
    e.mean = 0.0;
    e.cov = 0.0;
    e.sw = 0.0;
    e.sw2 = 0.0;
    e.ow = 0.0;
}

// Push a valid observation; returns the bias-corrected variance or NaN.
WB_DEV double ewm_push(Ewm& e, double xv, double owf, double fminp) {
    double res = WB_NAN;
    double c = e.cnt;
    if (c == 0.0) {
        e.mean = xv;
        e.cov = 0.0;
        e.sw = 1.0;
        e.sw2 = 1.0;
        e.ow = 1.0;
    } else {
        double s1 = e.sw * owf;
        double s2 = e.sw2 * (owf * owf);
        double w0 = e.ow * owf;
        double om = e.mean;
        double mu = om;
        if (mu != xv) mu = (w0 * om + xv) / (w0 + 1.0);
        double cv = (w0 * (e.cov + (om - mu) * (om - mu)) + ((xv - mu) * (xv - mu))) / (w0 + 1.0);
        s1 += 1.0;
        s2 += 1.0;
        w0 += 1.0;
        e.mean = mu;
        e.cov = cv;
        e.sw = s1;
        e.sw2 = s2;
        e.ow = w0;
        if (c + 1.0 >= fminp) {
            double num = s1 * s1;
            double den = num - s2;
            if (den > 0.0) res = (num / den) * cv;
        }
    }
    e.cnt = c + 1.0;
    return res;
}

WB_GLOBAL void wb_ewm_volatility(const double* __restrict__ x, double* __restrict__ out,
                                 long long T, long long N, double alpha, long long minp,
                                 double scale, long long from_prices) {
    WB_FOR(j, N) {
        const double owf = 1.0 - alpha;
        const double fminp = (double)minp;
        Ewm e;
        ewm_reset(e);
        double last = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            bool good;
            double xv;
            if (from_prices) {
                good = ok(v) && ok(last);
                xv = v / last - 1.0;
                if (ok(v)) last = v;
            } else {
                good = ok(v);
                xv = v;
            }
            double o = WB_NAN;
            if (good) {
                double var = ewm_push(e, xv, owf, fminp);
                if (ok(var)) o = std_from_var(var, scale);
            }
            out[t * N + j] = o;
        }
    }
}

// --------------------------------------------------------------------------- //
// deep momentum inputs
// --------------------------------------------------------------------------- //

// out: (T, N, C); channel off + h = r_{t-k,t} / (sigma_t sqrt(k)), k = horizons[h].
// ring: (R, N) scratch of the last R = max(horizons) + 1 valid prices.
WB_GLOBAL void wb_normalised_returns(const double* __restrict__ x, double* __restrict__ out,
                                     double* __restrict__ ring,
                                     const long long* __restrict__ horizons, long long H,
                                     long long R, long long T, long long N, double alpha,
                                     long long minp, long long C, long long off) {
    WB_FOR(j, N) {
        const double owf = 1.0 - alpha;
        const double fminp = (double)minp;
        Ewm e;
        ewm_reset(e);
        long long n = 0;  // valid bars seen
        double last = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            double* o = out + (t * N + j) * C + off;
            if (!ok(v)) {
                for (long long h = 0; h < H; ++h) o[h] = WB_NAN;
                continue;
            }
            double sig = WB_NAN;
            if (n > 0) {
                double var = ewm_push(e, v / last - 1.0, owf, fminp);
                sig = std_from_var(var, 1.0);
            }
            ring[(n % R) * N + j] = v;
            for (long long h = 0; h < H; ++h) {
                long long k = horizons[h];
                if (n < k) {
                    o[h] = WB_NAN;
                } else {
                    double pk = ring[((n - k) % R) * N + j];
                    o[h] = (v / pk - 1.0) / (sig * sqrt((double)k));
                }
            }
            last = v;
            n += 1;
        }
    }
}

// One thread per (pair p, asset j), g = p * N + j. out: (T, N, C), channel off + p.
// pbuf: (pw, P*N), qbuf: (sw, P*N) scratch.
WB_GLOBAL void wb_macd_signals(const double* __restrict__ x, double* __restrict__ out,
                               double* __restrict__ pbuf, double* __restrict__ qbuf,
                               const double* __restrict__ shorts, const double* __restrict__ longs,
                               long long P, long long T, long long N, long long pw, long long sw,
                               long long C, long long off) {
    WB_FOR(g, P * N) {
        const long long p = g / N;
        const long long j = g - p * N;
        const long long M = P * N;
        const double as = 1.0 / shorts[p], al = 1.0 / longs[p];
        const double owfs = 1.0 - as, owfl = 1.0 - al;
        const long long start = pw - 1;  // first valid bar with a price std
        Roll ps, qs;
        roll_reset(ps);
        roll_reset(qs);
        double ms = 0.0, ml = 0.0;
        long long n = 0;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            long long o = (t * N + j) * C + off + p;
            if (!ok(v)) {
                out[o] = WB_NAN;
                continue;
            }
            bool full = roll_push(ps, v, pw, pbuf + g, M);
            if (n == 0) {
                ms = v;
                ml = v;
            } else {
                if (ms != v) ms = (owfs * ms + as * v) / (owfs + as);
                if (ml != v) ml = (owfl * ml + al * v) / (owfl + al);
            }
            double y = WB_NAN;
            if (n >= start && full) {
                double m2 = ps.m2 > 0.0 ? ps.m2 : 0.0;
                double d = sqrt(m2 / (double)(pw - 1));
                double q = d > 0.0 ? (ms - ml) / d : WB_NAN;
                if (!ok(q)) {
                    roll_reset(qs);  // a window holding a NaN q is NaN: restart the run
                } else if (roll_push(qs, q, sw, qbuf + g, M)) {
                    double s2 = qs.m2 > 0.0 ? qs.m2 : 0.0;
                    double sd = sqrt(s2 / (double)(sw - 1));
                    y = sd > 0.0 ? q / sd : WB_NAN;
                }
            }
            out[o] = y;
            n += 1;
        }
    }
}

// --------------------------------------------------------------------------- //
// trend / volume (TA-Lib family)
// --------------------------------------------------------------------------- //

// mode 0: ROC 100*(p_t/p_{t-k} - 1) (NaN where p_{t-k} == 0; TA-Lib gives 0 there, _cpu_ta NaN);
// mode 1: MOM p_t - p_{t-k}.
// buf: (period, N) ring of the last `period` valid values.
WB_GLOBAL void wb_roc(const double* __restrict__ x, double* __restrict__ out,
                      double* __restrict__ buf, long long T, long long N, long long period,
                      long long mode) {
    WB_FOR(j, N) {
        long long n = 0;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            double o = WB_NAN;
            if (ok(v)) {
                long long q = (n % period) * N + j;
                if (n >= period) {
                    double old = buf[q];
                    if (mode == 0) {
                        o = old != 0.0 ? (v / old - 1.0) * 100.0 : WB_NAN;
                    } else {
                        o = v - old;
                    }
                }
                buf[q] = v;
                n += 1;
            }
            out[t * N + j] = o;
        }
    }
}

// TA-Lib ATR: TR from the 2nd bar, seed = mean of the first `period` TRs, then Wilder.
// A bar is present where high, low and close are finite.
WB_GLOBAL void wb_atr(const double* __restrict__ h, const double* __restrict__ l,
                      const double* __restrict__ c, double* __restrict__ out, long long T,
                      long long N, long long period) {
    WB_FOR(j, N) {
        const double fp = (double)period;
        long long n = 0;
        double prevc = 0.0, sum = 0.0, atr = 0.0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double cv = c[i], hv = h[i], lv = l[i];
            double o = WB_NAN;
            if (ok(cv) && ok(hv) && ok(lv)) {
                if (n > 0) {
                    double tr = hv - lv;
                    double v2 = fabs(prevc - hv);
                    double v3 = fabs(lv - prevc);
                    if (v2 > tr) tr = v2;
                    if (v3 > tr) tr = v3;
                    if (n <= period) {
                        sum += tr;
                        if (n == period) {
                            atr = sum / fp;
                            o = atr;
                        }
                    } else {
                        atr = (atr * (fp - 1.0) + tr) / fp;
                        o = atr;
                    }
                }
                prevc = cv;
                n += 1;
            }
            out[i] = o;
        }
    }
}

// TA-Lib OBV: OBV_0 = v_0, then +v on an up close, -v on a down close; bars where close and
// volume are finite.
WB_GLOBAL void wb_obv(const double* __restrict__ c, const double* __restrict__ vol,
                      double* __restrict__ out, long long T, long long N) {
    WB_FOR(j, N) {
        long long n = 0;
        double prev = 0.0, obv = 0.0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double cv = c[i], v = vol[i];
            double o = WB_NAN;
            if (ok(cv) && ok(v)) {
                if (n == 0) {
                    obv = v;
                } else if (cv > prev) {
                    obv += v;
                } else if (cv < prev) {
                    obv -= v;
                }
                o = obv;
                prev = cv;
                n += 1;
            }
            out[i] = o;
        }
    }
}

// (c - min low_w) / (max high_w - min low_w) over the last w bars with h, l, c finite;
// NaN where the range is 0. hb, lb: (w, N) rings.
WB_GLOBAL void wb_price_position(const double* __restrict__ h, const double* __restrict__ l,
                                 const double* __restrict__ c, double* __restrict__ out,
                                 double* __restrict__ hb, double* __restrict__ lb, long long T,
                                 long long N, long long w) {
    WB_FOR(j, N) {
        long long n = 0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double cv = c[i];
            double o = WB_NAN;
            if (ok(cv) && ok(h[i]) && ok(l[i])) {
                long long p = (n % w) * N + j;
                hb[p] = h[i];
                lb[p] = l[i];
                n += 1;
                if (n >= w) {
                    double hi = hb[j], lo = lb[j];
                    for (long long q = 1; q < w; ++q) {
                        double a = hb[q * N + j], b = lb[q * N + j];
                        hi = a > hi ? a : hi;
                        lo = b < lo ? b : lo;
                    }
                    double rng = hi - lo;
                    o = rng > 0.0 ? (cv - lo) / rng : WB_NAN;
                }
            }
            out[i] = o;
        }
    }
}

// sum(tp * v) / sum(v) over the last w bars with h, l, c, v finite, tp = (h + l + c) / 3
// (port of _cpu_ta._vwap_step: sliding sums, exact at every ring wrap); NaN where every
// volume in the window is 0. bpv, bv: (w, N) rings.
WB_GLOBAL void wb_rolling_vwap(const double* __restrict__ h, const double* __restrict__ l,
                               const double* __restrict__ c, const double* __restrict__ vol,
                               double* __restrict__ out, double* __restrict__ bpv,
                               double* __restrict__ bv, long long T, long long N, long long w) {
    WB_FOR(j, N) {
        long long n = 0, nz = 0;
        double spv = 0.0, sv = 0.0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double cv = c[i], vv = vol[i];
            double o = WB_NAN;
            if (ok(cv) && ok(vv) && ok(h[i]) && ok(l[i])) {
                long long k = n;
                n += 1;
                if (k >= w) nz -= bv[(k % w) * N + j] != 0.0;  // the leaving volume
                nz += vv != 0.0;
                double tp = (h[i] + l[i] + cv) / 3.0;
                sum_update(k, tp * vv, w, spv, bpv + j, N);
                sum_update(k, vv, w, sv, bv + j, N);
                if (k >= w - 1 && nz != 0) o = spv / sv;
            }
            out[i] = o;
        }
    }
}

// Bollinger %b and bandwidth (port of _cpu_ta._bb_step): bands mid +/- k * sqrt(m2 / w)
// over the last w valid closes (population std; a true division here, as in _bb_step);
// %b = (c - lower) / (upper - lower), bandwidth = (upper - lower) / mid. A window of
// identical closes (exact test: a run of >= w equal values) gives %b NaN, bandwidth 0
// (NaN if mid is 0). buf: (w, N) scratch.
WB_GLOBAL void wb_bollinger_pb(const double* __restrict__ x, double* __restrict__ pb_o,
                               double* __restrict__ bw_o, double* __restrict__ buf, long long T,
                               long long N, long long w, double k) {
    WB_FOR(j, N) {
        Roll s;
        roll_reset(s);
        long long run = 0;
        double prev = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            long long o = t * N + j;
            double v = x[o];
            double pb = WB_NAN, bw = WB_NAN;
            if (ok(v)) {
                run = v == prev ? run + 1 : 1;
                prev = v;
                if (roll_push(s, v, w, buf + j, N)) {
                    double mid = s.K + s.mean;
                    double v2 = s.m2 > 0.0 ? s.m2 : 0.0;
                    double hw = k * sqrt(v2 / (double)w);
                    double up = mid + hw;
                    double lo = mid - hw;
                    if (run >= w) {
                        bw = mid != 0.0 ? 0.0 : WB_NAN;
                    } else {
                        double d = up - lo;
                        pb = d > 0.0 ? (v - lo) / d : WB_NAN;
                        bw = mid != 0.0 ? d / mid : WB_NAN;
                    }
                }
            }
            pb_o[o] = pb;
            bw_o[o] = bw;
        }
    }
}

// (v - mean_w) / std_w (ddof=1) over the last w valid volumes (v included); NaN where the
// window is constant (exact test: a run of >= w equal values) or its std is 0.
WB_GLOBAL void wb_volume_zscore(const double* __restrict__ x, double* __restrict__ out,
                                double* __restrict__ buf, long long T, long long N, long long w) {
    WB_FOR(j, N) {
        Roll s;
        roll_reset(s);
        long long run = 0;
        double prev = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            double o = WB_NAN;
            if (ok(v)) {
                run = v == prev ? run + 1 : 1;
                prev = v;
                if (roll_push(s, v, w, buf + j, N) && run < w) {
                    double sd = sqrt(s.m2 / (double)(w - 1));
                    o = s.m2 > 0.0 ? (v - (s.K + s.mean)) / sd : WB_NAN;
                }
            }
            out[t * N + j] = o;
        }
    }
}

// --------------------------------------------------------------------------- //
// volatility: higher moments and range estimators
// --------------------------------------------------------------------------- //

// Rolling skewness (kind 0, pandas bias-corrected G1) or excess kurtosis (kind 1, G2) of
// log returns over the last w returns (port of _cpu_ta._moments_step: sliding sums of
// (r - K)^k with exact re-syncs). NaN where the window's population variance is at most
// WB_VAR_FLOOR (pandas' constant-window rule, as _cpu_ta._VAR_FLOOR). buf: (w, N) ring.
#define WB_VAR_FLOOR 1e-14

WB_GLOBAL void wb_rolling_moments(const double* __restrict__ x, double* __restrict__ out,
                                  double* __restrict__ buf, long long T, long long N, long long w,
                                  long long kind) {
    WB_FOR(j, N) {
        const double n = (double)w;
        long long cnt = 0;
        double last = WB_NAN;
        Mom4 m;
        m.K = 0.0;
        m.s1 = 0.0;
        m.s2 = 0.0;
        m.s3 = 0.0;
        m.s4 = 0.0;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            double o = WB_NAN;
            if (ok(v)) {
                double p = last;
                last = v;
                if (ok(p)) {
                    double r = log(v / p);
                    long long i = cnt;
                    cnt += 1;
                    if (mom4_push(i, r, w, m, buf + j, N)) {
                        double a = m.s1 / n, q2 = m.s2 / n, q3 = m.s3 / n;
                        double aa = a * a;
                        double m2 = q2 - aa;
                        if (m2 > WB_VAR_FLOOR) {
                            double m3 = q3 - 3.0 * a * q2 + 2.0 * aa * a;
                            if (kind == 0) {
                                o = sqrt(n * (n - 1.0)) * m3 / ((n - 2.0) * m2 * sqrt(m2));
                            } else {
                                double q4 = m.s4 / n;
                                double m4 = q4 - 4.0 * a * q3 + 6.0 * aa * q2 - 3.0 * aa * aa;
                                double g = (n * n - 1.0) * m4 / (m2 * m2) - 3.0 * (n - 1.0) * (n - 1.0);
                                o = g / ((n - 2.0) * (n - 3.0));
                            }
                        }
                    }
                }
            }
            out[t * N + j] = o;
        }
    }
}

// ln 2 and the Garman-Klass constant 2 ln 2 - 1 (as _cpu_ta._LN2 / _GK_C)
#define WB_LN2 0.6931471805599453094172321214581766
#define WB_GK_C (2.0 * WB_LN2 - 1.0)

// kind 0: Parkinson sqrt(mean(ln(h/l)^2) / (4 ln 2) * ppy), bars where h and l are finite;
// kind 1: Garman-Klass sqrt(mean(0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2) * ppy), bars where
// o, h, l, c are finite, NaN where the mean is negative (port of _cpu_ta._range_vol_step:
// sliding window sum, exact at every ring wrap). buf: (w, N) ring of terms.
WB_GLOBAL void wb_range_volatility(const double* __restrict__ op, const double* __restrict__ h,
                                   const double* __restrict__ l, const double* __restrict__ c,
                                   double* __restrict__ out, double* __restrict__ buf, long long T,
                                   long long N, long long w, double ppy, long long kind) {
    WB_FOR(j, N) {
        long long n = 0;
        double s = 0.0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double hv = h[i], lv = l[i];
            bool present = ok(hv) && ok(lv);
            if (kind == 1) present = present && ok(op[i]) && ok(c[i]);
            double o = WB_NAN;
            if (present) {
                double u = log(hv / lv);
                double g;
                if (kind == 0) {
                    g = u * u;
                } else {
                    double z = log(c[i] / op[i]);
                    g = 0.5 * u * u - WB_GK_C * z * z;
                }
                long long k = n;
                n += 1;
                sum_update(k, g, w, s, buf + j, N);
                if (k >= w - 1) {
                    double m = s / (double)w;
                    if (kind == 0) {
                        m = m / (4.0 * WB_LN2);
                        if (m < 0.0) m = 0.0;  // a sum of squares; only rounding makes it < 0
                        o = sqrt(m * ppy);
                    } else {
                        o = m < 0.0 ? WB_NAN : sqrt(m * ppy);
                    }
                }
            }
            out[i] = o;
        }
    }
}

// --------------------------------------------------------------------------- //
// microstructure from OHLCV
// --------------------------------------------------------------------------- //

// Two-bar Corwin & Schultz (2012) spread estimate S, negative (or NaN) S set to 0
// (port of _cpu_micro._cs_estimate).
WB_DEV double cs_estimate(double h, double lo, double hp, double lp) {
    const double k = 3.0 - 2.0 * sqrt(2.0);
    double a = log(h / lo);
    double b = log(hp / lp);
    double beta = a * a + b * b;
    double hh = h > hp ? h : hp;
    double ll = lo < lp ? lo : lp;
    double g = log(hh / ll);
    double gamma = g * g;
    double alpha = (sqrt(2.0 * beta) - sqrt(beta)) / k - sqrt(gamma / k);
    double e = exp(alpha);
    double S = 2.0 * (e - 1.0) / (1.0 + e);
    return S > 0.0 ? S : 0.0;
}

// Corwin-Schultz: mean of the last w two-bar estimates, bars where h and l are finite
// (port of _cpu_micro.cs_row: sliding sum, exact at every ring wrap). buf: (w, N) ring of S.
WB_GLOBAL void wb_corwin_schultz(const double* __restrict__ h, const double* __restrict__ l,
                                 double* __restrict__ out, double* __restrict__ buf, long long T,
                                 long long N, long long w) {
    WB_FOR(j, N) {
        long long cnt = 0;
        double s = 0.0, hp = WB_NAN, lp = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double hv = h[i], lv = l[i];
            double o = WB_NAN;
            if (ok(hv) && ok(lv)) {
                double h0 = hp, l0 = lp;
                hp = hv;
                lp = lv;
                if (ok(h0)) {
                    cnt = ring_sum_push(cnt, cs_estimate(hv, lv, h0, l0), w, s, buf + j, N);
                    if (cnt >= w) o = s / (double)w;
                }
            }
            out[i] = o;
        }
    }
}

// Roll (1984): 2 sqrt(max(-cov(r_t, r_{t-1}), 0)), log returns over valid bars, sample cov
// (ddof=1) of the last w pairs (port of _cpu_micro.roll_row: Welford co-moments, exact
// re-sync at every ring wrap). buf: (2 w, N) scratch: rings of r_t (rows 0 .. w-1) and
// r_{t-1} (rows w .. 2w-1).
WB_GLOBAL void wb_roll_spread(const double* __restrict__ c, double* __restrict__ out,
                              double* __restrict__ buf, long long T, long long N, long long w) {
    WB_FOR(j, N) {
        Cm m;
        cm_reset(m);
        long long cnt = 0;
        double last = WB_NAN, prevr = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double v = c[i];
            double o = WB_NAN;
            if (ok(v)) {
                double p = last;
                last = v;
                double r = log(v / p);  // NaN at the first valid bar
                double rp = prevr;
                if (ok(r)) prevr = r;
                if (ok(r) && ok(rp)) {
                    cnt = cm_push(m, cnt, r, rp, w, buf + j, buf + w * N + j, N);
                    if (cnt >= w) {
                        double cov = m.cxy / ((double)w - 1.0);
                        o = cov < 0.0 ? 2.0 * sqrt(-cov) : 0.0;
                    }
                }
            }
            out[i] = o;
        }
    }
}

// Amihud (2002): scale * mean over the last w returns of |r_t| / (p_t v_t) (simple returns;
// terms with p v == 0 or NaN skipped in sum and count), bars where close is finite (port of
// _cpu_micro.amihud_row: sliding sum and count, exact at every ring wrap).
// buf: (w, N) ring of terms (NaN = skipped).
WB_GLOBAL void wb_amihud(const double* __restrict__ c, const double* __restrict__ vol,
                         double* __restrict__ out, double* __restrict__ buf, long long T,
                         long long N, long long w, double scale) {
    WB_FOR(j, N) {
        long long k = 0;
        double last = WB_NAN, s = 0.0, m = 0.0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double p = c[i];
            double o = WB_NAN;
            if (ok(p)) {
                double pp = last;
                last = p;
                if (ok(pp)) {
                    double dv = p * vol[i];
                    double term = (ok(dv) && dv != 0.0) ? fabs(p / pp - 1.0) / dv : WB_NAN;
                    long long q = k % w;
                    if (k >= w) {
                        double old = buf[q * N + j];
                        if (ok(old)) {
                            s -= old;
                            m -= 1.0;
                        }
                    }
                    buf[q * N + j] = term;
                    if (ok(term)) {
                        s += term;
                        m += 1.0;
                    }
                    k += 1;
                    if (k % w == 0) {
                        double acc = 0.0, n = 0.0;
                        for (long long u = 0; u < w; ++u) {
                            double a = buf[u * N + j];
                            if (ok(a)) {
                                acc += a;
                                n += 1.0;
                            }
                        }
                        s = acc;
                        m = n;
                    }
                    if (k >= w && m > 0.0) o = scale * (s / m);
                }
            }
            out[i] = o;
        }
    }
}

// --------------------------------------------------------------------------- //
// cross-asset
// --------------------------------------------------------------------------- //

// Correlation (kind 0) or beta (kind 1) of each asset's log returns r[:, j] with the market's
// r[:, m] over the last w PANEL rows, pairwise complete (port of _cpu_micro.corr_row: every
// row pushes one pair, NaN when either return is missing; Welford co-moments with an exact
// re-sync at every ring wrap; flat tracking). NaN where close x[t, j] is NaN, fewer than
// minp pairs count, or the market's return is constant over the counted pairs; where only the
// asset's return is constant the correlation is NaN and the beta 0; the correlation is
// clipped to [-1, 1]; the market's own column is 1. buf: (2 w, N) rings of the pairs.
WB_GLOBAL void wb_corr_beta(const double* __restrict__ r, const double* __restrict__ x,
                            double* __restrict__ out, double* __restrict__ buf, long long T,
                            long long N, long long m, long long w, double minp, long long kind) {
    WB_FOR(j, N) {
        Cm s;
        cm_reset(s);
        Flat f;
        flat_reset(f);
        long long cnt = 0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double a = r[i], b = r[t * N + m];
            cnt = cm_push(s, cnt, a, b, w, buf + j, buf + w * N + j, N);
            if (ok(a) && ok(b)) flat_track(f, a, b, t);
            long long lo = t - w + 1;
            double o = WB_NAN;
            if (ok(x[i]) && s.n >= minp && f.chy >= lo && s.cyy > 0.0) {
                if (j == m) {
                    o = 1.0;
                } else if (!(f.chx >= lo && s.cxx > 0.0)) {
                    if (kind == 1) o = 0.0;  // constant asset returns: beta exactly 0
                } else if (kind == 0) {
                    o = s.cxy / sqrt(s.cxx * s.cyy);
                    o = o > 1.0 ? 1.0 : (o < -1.0 ? -1.0 : o);
                } else {
                    o = s.cxy / s.cyy;
                }
            }
            out[i] = o;
        }
    }
}

// --------------------------------------------------------------------------- //
// mean pairwise correlation (port of _cpu_micro.mpc_row's per-pair arithmetic)
// --------------------------------------------------------------------------- //
//
// One thread per asset pair p = (i, j), i < j, packed row-major as in _cpu_micro
// (p = off(i) + j - i - 1, off(i) = i (2N - i - 1) / 2). Each thread walks panel rows
// t0 .. t1-1 and keeps the pair's pairwise-complete co-moments over the last w rows
// (count, means, cxx, cyy, cxy: Welford removal of row t-w, addition of row t, both only
// where both log returns are finite, then an exact chronological two-pass re-sync at
// every row with (t + 1) % w == 0) and the flat-series tracking (row of the observation
// before the latest change of x, of y). These are the operations _cpu_micro does for
// every pair: its "clean" pairs (same validity masks) share the per-asset terms but do
// the same floating-point operations in the same order. State persists between chunks
// of rows in st: (MPC_STATE, P), row k of pair p at k * P + p (coalesced).
// rc: (t1 - t0, P) correlations of the chunk, NaN where a pair is undefined. The reads
// r[t, i], r[t, j] of consecutive pairs are broadcast / consecutive (coalesced).
// Work O(T N^2) over all chunks (the re-syncs are O(w) every w rows), memory O(N^2).

#define MPC_STATE 11

// (i, j) of the packed pair index p (the inverse of p = off(i) + j - i - 1).
WB_DEV void pair_ij(long long p, long long N, long long* pi, long long* pj) {
    double b = 2.0 * (double)N - 1.0;
    double disc = b * b - 8.0 * (double)p;
    long long i = (long long)((b - sqrt(disc > 0.0 ? disc : 0.0)) * 0.5);
    if (i > N - 2) i = N - 2;
    if (i < 0) i = 0;
    while (i > 0 && i * (2 * N - i - 1) / 2 > p) --i;
    while (i < N - 2 && (i + 1) * (2 * N - i - 2) / 2 <= p) ++i;
    *pi = i;
    *pj = p - i * (2 * N - i - 1) / 2 + i + 1;
}

// st rows: n, mx, my, cxx, cyy, cxy, lx, ly, lr, chx, chy (rows as doubles, exact).
WB_GLOBAL void wb_mpc_pairs(const double* __restrict__ r, const double* __restrict__ c,
                            double* __restrict__ rc, double* __restrict__ st, long long T,
                            long long N, long long P, long long w, double minp, long long t0,
                            long long t1) {
    WB_FOR(p, P) {
        long long i, j;
        pair_ij(p, N, &i, &j);
        Cm m;
        m.n = st[0 * P + p];
        m.mx = st[1 * P + p];
        m.my = st[2 * P + p];
        m.cxx = st[3 * P + p];
        m.cyy = st[4 * P + p];
        m.cxy = st[5 * P + p];
        Flat f;
        f.lx = st[6 * P + p];
        f.ly = st[7 * P + p];
        f.lr = (long long)st[8 * P + p];
        f.chx = (long long)st[9 * P + p];
        f.chy = (long long)st[10 * P + p];
        for (long long t = t0; t < t1 && t < T; ++t) {
            if (t >= w) {  // row t - w leaves the window
                double xo = r[(t - w) * N + i], yo = r[(t - w) * N + j];
                if (ok(xo) && ok(yo)) cm_remove(m, xo, yo);
            }
            double x = r[t * N + i], y = r[t * N + j];
            if (ok(x) && ok(y)) {  // row t enters
                cm_add(m, x, y);
                flat_track(f, x, y, t);
            }
            // exact two-pass re-sync over rows t-w+1 .. t, oldest first
            if ((t + 1) % w == 0) cm_exact(m, r + i, r + j, N, t - w + 1, w);
            // clipped correlation where both assets have a bar at t (_pair_corr)
            long long lo = t - w + 1;
            double o = WB_NAN;
            if (ok(c[t * N + i]) && ok(c[t * N + j]) && m.n >= minp && f.chx >= lo &&
                f.chy >= lo && m.cxx > 0.0 && m.cyy > 0.0) {
                o = m.cxy / sqrt(m.cxx * m.cyy);
                o = o > 1.0 ? 1.0 : (o < -1.0 ? -1.0 : o);
            }
            rc[(t - t0) * P + p] = o;
        }
        st[0 * P + p] = m.n;
        st[1 * P + p] = m.mx;
        st[2 * P + p] = m.my;
        st[3 * P + p] = m.cxx;
        st[4 * P + p] = m.cyy;
        st[5 * P + p] = m.cxy;
        st[6 * P + p] = f.lx;
        st[7 * P + p] = f.ly;
        st[8 * P + p] = (double)f.lr;
        st[9 * P + p] = (double)f.chx;
        st[10 * P + p] = (double)f.chy;
    }
}

// Sum and count of the finite rc[tl, bounds[b] .. bounds[b+1]-1], in pair order, for every
// (chunk row tl, block b): thread g = tl * NB + b. acc, cnt: (R, NB). The fixed blocks and
// order are those of _cpu_micro._mpc_reduce (bitwise parity).
WB_GLOBAL void wb_mpc_block_sums(const double* __restrict__ rc,
                                 const long long* __restrict__ bounds, double* __restrict__ acc,
                                 double* __restrict__ cnt, long long P, long long NB,
                                 long long R) {
    WB_FOR(g, R * NB) {
        long long tl = g / NB;
        long long b = g - tl * NB;
        const double* row = rc + tl * P;
        double s = 0.0, k = 0.0;
        for (long long q = bounds[b]; q < bounds[b + 1]; ++q) {
            double v = row[q];
            if (ok(v)) {
                s += v;
                k += 1.0;
            }
        }
        acc[g] = s;
        cnt[g] = k;
    }
}

// out[t0 + tl] = (sum of the block sums, in block order) / (total count), NaN if none.
WB_GLOBAL void wb_mpc_combine(const double* __restrict__ acc, const double* __restrict__ cnt,
                              double* __restrict__ out, long long NB, long long t0, long long R) {
    WB_FOR(tl, R) {
        double s = acc[tl * NB], k = cnt[tl * NB];
        for (long long b = 1; b < NB; ++b) {
            s += acc[tl * NB + b];
            k += cnt[tl * NB + b];
        }
        out[t0 + tl] = k > 0.0 ? s / k : WB_NAN;
    }
}
