// CUDA kernels of the CuPy backend (workbench.features._gpu), double precision.
//
// Layout: every input/output is a C-ordered (T, N) array, element (t, j) at t*N + j.
// One thread per asset (or per (pair, asset)) walks t = 0 .. T-1, so at every
// step consecutive threads read consecutive addresses (coalesced). A NaN input
// leaves the thread's state untouched and writes NaN: each asset is computed on
// its own sequence of valid bars. Rolling windows keep a per-thread ring buffer
// in a (w, M) scratch array (row q of thread g at q*M + g, again coalesced).
//
// The arithmetic mirrors the numba kernels in _cpu.py operation for operation;
// _gpu.py compiles this file with --fmad=false so no multiply-add is contracted
// (numba does not contract either), which keeps CPU/GPU parity at ~1e-15.
//
// The same source compiles as plain C++ with -DWB_HOST (one host loop per
// kernel instead of a grid): tests/features/test_gpu.py uses that build to check
// the kernels' logic against the CPU backend on a machine without a GPU.

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
            double mu = old + (xs - ys) / (double)w;
            s.m2 += (xs - ys) * (xs - mu + ys - old);
            s.mean = mu;
        }
    }
    s.cnt = i + 1;
    return i >= w - 1;
}

// Exact sum of the ring (oldest first), the newest value at row p.
WB_DEV double ring_sum(const double* buf, long long st, long long p, long long w) {
    double s = 0.0;
    long long q = p;
    for (long long k = 0; k < w; ++k) {
        q = q + 1 < w ? q + 1 : 0;
        s += buf[q * st];
    }
    return s;
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
                g = ng / fp;
                lo = nl / fp;
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

// what: 0 -> SMA into o1; 1 -> std sqrt(m2 / c) into o1; 2 -> Bollinger
// mean +/- c * sqrt(m2 / w) into o1 (upper), o2 (middle), o3 (lower).
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
                    r1 = sqrt(v2 / c);
                } else {
                    double hw = c * sqrt(v2 / (double)w);
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

// sum(tp * v) / sum(v) over the last w bars with h, l, c, v finite, tp = (h + l + c) / 3;
// exact window sums at every step; NaN where every volume in the window is 0. bpv, bv: (w, N).
WB_GLOBAL void wb_rolling_vwap(const double* __restrict__ h, const double* __restrict__ l,
                               const double* __restrict__ c, const double* __restrict__ vol,
                               double* __restrict__ out, double* __restrict__ bpv,
                               double* __restrict__ bv, long long T, long long N, long long w) {
    WB_FOR(j, N) {
        long long n = 0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double cv = c[i], vv = vol[i];
            double o = WB_NAN;
            if (ok(cv) && ok(vv) && ok(h[i]) && ok(l[i])) {
                long long p = n % w;
                double tp = (h[i] + l[i] + cv) / 3.0;
                bpv[p * N + j] = tp * vv;
                bv[p * N + j] = vv;
                n += 1;
                if (n >= w) {
                    bool any = false;
                    for (long long q = 0; q < w; ++q) any = any || bv[q * N + j] != 0.0;
                    double sv = ring_sum(bv + j, N, p, w);
                    double spv = ring_sum(bpv + j, N, p, w);
                    o = any ? spv / sv : WB_NAN;
                }
            }
            out[i] = o;
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
// log returns over the last w returns; exact two-pass central moments at every step.
// buf: (w, N) ring of returns. NaN where the window is constant (a run of >= w equal
// returns) or its variance is 0.
WB_GLOBAL void wb_rolling_moments(const double* __restrict__ x, double* __restrict__ out,
                                  double* __restrict__ buf, long long T, long long N, long long w,
                                  long long kind) {
    WB_FOR(j, N) {
        const double n = (double)w;
        long long nr = 0, run = 0;
        double last = WB_NAN, prevr = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            double v = x[t * N + j];
            double o = WB_NAN;
            if (ok(v)) {
                if (ok(last)) {
                    double r = log(v / last);
                    run = r == prevr ? run + 1 : 1;
                    prevr = r;
                    buf[(nr % w) * N + j] = r;
                    nr += 1;
                    if (nr >= w && run < w) {
                        double s = 0.0;
                        for (long long q = 0; q < w; ++q) s += buf[q * N + j];
                        double mu = s / n;
                        double m2 = 0.0, m3 = 0.0, m4 = 0.0;
                        for (long long q = 0; q < w; ++q) {
                            double d = buf[q * N + j] - mu;
                            double d2 = d * d;
                            m2 += d2;
                            m3 += d2 * d;
                            m4 += d2 * d2;
                        }
                        if (m2 > 0.0) {
                            double B = m2 / n, Cm = m3 / n, D = m4 / n;
                            if (kind == 0) {
                                double R = sqrt(B);
                                o = (sqrt(n * (n - 1.0)) * Cm) / ((n - 2.0) * R * R * R);
                            } else {
                                double K = (n * n - 1.0) * D / (B * B) - 3.0 * ((n - 1.0) * (n - 1.0));
                                o = K / ((n - 2.0) * (n - 3.0));
                            }
                        }
                    }
                }
                last = v;
            }
            out[t * N + j] = o;
        }
    }
}

// kind 0: Parkinson sqrt(mean(ln(h/l)^2) / (4 ln 2) * ppy), bars where h and l are finite;
// kind 1: Garman-Klass sqrt(mean(0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2) * ppy), bars where
// o, h, l, c are finite, NaN where the mean is negative. buf: (w, N) ring of terms.
WB_GLOBAL void wb_range_volatility(const double* __restrict__ op, const double* __restrict__ h,
                                   const double* __restrict__ l, const double* __restrict__ c,
                                   double* __restrict__ out, double* __restrict__ buf, long long T,
                                   long long N, long long w, double ppy, long long kind) {
    WB_FOR(j, N) {
        const double ln2 = log(2.0);
        long long n = 0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double hv = h[i], lv = l[i];
            bool present = ok(hv) && ok(lv);
            if (kind == 1) present = present && ok(op[i]) && ok(c[i]);
            double o = WB_NAN;
            if (present) {
                double a = log(hv / lv);
                double term;
                if (kind == 0) {
                    term = a * a;
                } else {
                    double b = log(c[i] / op[i]);
                    term = 0.5 * a * a - (2.0 * ln2 - 1.0) * b * b;
                }
                long long p = n % w;
                buf[p * N + j] = term;
                n += 1;
                if (n >= w) {
                    double m = ring_sum(buf + j, N, p, w) / (double)w;
                    if (kind == 0) {
                        o = sqrt(m / (4.0 * ln2) * ppy);
                    } else {
                        o = m >= 0.0 ? sqrt(m * ppy) : WB_NAN;
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

// Corwin & Schultz (2012) two-bar spread, negative S set to 0, mean of the last w estimates.
// Bars where h and l are finite. buf: (w, N) ring of S.
WB_GLOBAL void wb_corwin_schultz(const double* __restrict__ h, const double* __restrict__ l,
                                 double* __restrict__ out, double* __restrict__ buf, long long T,
                                 long long N, long long w) {
    WB_FOR(j, N) {
        const double k = 3.0 - 2.0 * sqrt(2.0);
        long long n = 0, ne = 0;
        double hp = 0.0, lp = 0.0;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double hv = h[i], lv = l[i];
            double o = WB_NAN;
            if (ok(hv) && ok(lv)) {
                if (n > 0) {
                    double a1 = log(hv / lv), a0 = log(hp / lp);
                    double beta = a1 * a1 + a0 * a0;
                    double hh = hv > hp ? hv : hp;
                    double ll = lv < lp ? lv : lp;
                    double g0 = log(hh / ll);
                    double gamma = g0 * g0;
                    double alpha = (sqrt(2.0 * beta) - sqrt(beta)) / k - sqrt(gamma / k);
                    double ea = exp(alpha);
                    double S = 2.0 * (ea - 1.0) / (1.0 + ea);
                    if (S < 0.0) S = 0.0;
                    long long p = ne % w;
                    buf[p * N + j] = S;
                    ne += 1;
                    if (ne >= w) o = ring_sum(buf + j, N, p, w) / (double)w;
                }
                hp = hv;
                lp = lv;
                n += 1;
            }
            out[i] = o;
        }
    }
}

// Roll (1984): 2 sqrt(max(-cov(r_t, r_{t-1}), 0)), log returns over valid bars, sample cov
// (ddof=1) over the last w pairs. buf: (w + 1, N) ring of returns.
WB_GLOBAL void wb_roll_spread(const double* __restrict__ c, double* __restrict__ out,
                              double* __restrict__ buf, long long T, long long N, long long w) {
    WB_FOR(j, N) {
        const long long R = w + 1;
        long long nr = 0;
        double last = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double v = c[i];
            double o = WB_NAN;
            if (ok(v)) {
                if (ok(last)) {
                    buf[(nr % R) * N + j] = log(v / last);
                    nr += 1;
                    if (nr >= R) {
                        // pairs (r_k, r_{k-1}) for return numbers k = nr-w .. nr-1
                        double sa = 0.0, sb = 0.0;
                        for (long long k = nr - w; k < nr; ++k) {
                            sa += buf[(k % R) * N + j];
                            sb += buf[((k - 1) % R) * N + j];
                        }
                        double ma = sa / (double)w, mb = sb / (double)w;
                        double cab = 0.0;
                        for (long long k = nr - w; k < nr; ++k) {
                            cab += (buf[(k % R) * N + j] - ma) * (buf[((k - 1) % R) * N + j] - mb);
                        }
                        double cov = cab / (double)(w - 1);
                        o = -cov > 0.0 ? 2.0 * sqrt(-cov) : 0.0;
                    }
                }
                last = v;
            }
            out[i] = o;
        }
    }
}

// Amihud (2002): mean over the last w returns of |r_t| / (p_t v_t) (simple returns; terms with
// p v == 0 or NaN skipped in sum and count), times scale. Bars where close is finite.
// buf: (w, N) ring of terms (NaN = skipped).
WB_GLOBAL void wb_amihud(const double* __restrict__ c, const double* __restrict__ vol,
                         double* __restrict__ out, double* __restrict__ buf, long long T,
                         long long N, long long w, double scale) {
    WB_FOR(j, N) {
        long long nr = 0;
        double last = WB_NAN;
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double v = c[i], vv = vol[i];
            double o = WB_NAN;
            if (ok(v)) {
                if (ok(last)) {
                    double r = v / last - 1.0;
                    double dv = v * vv;
                    long long p = nr % w;
                    buf[p * N + j] = (ok(dv) && dv != 0.0) ? fabs(r) / dv : WB_NAN;
                    nr += 1;
                    if (nr >= w) {
                        double s = 0.0;
                        long long cnt = 0;
                        long long q = p;
                        for (long long k = 0; k < w; ++k) {
                            q = q + 1 < w ? q + 1 : 0;
                            double a = buf[q * N + j];
                            if (ok(a)) {
                                s += a;
                                cnt += 1;
                            }
                        }
                        if (cnt > 0) o = s / (double)cnt * scale;
                    }
                }
                last = v;
            }
            out[i] = o;
        }
    }
}

// --------------------------------------------------------------------------- //
// cross-asset
// --------------------------------------------------------------------------- //

// Correlation (kind 0) or beta (kind 1) of each asset's log returns r[:, j] with r[:, m]
// over the last w PANEL rows, pairwise complete, exact two-pass co-moments at every row.
// NaN where close x[t, j] is NaN, fewer than minp rows count, or either return is constant
// over the counted rows; the correlation is clipped to [-1, 1]; the market's own column is 1.
WB_GLOBAL void wb_corr_beta(const double* __restrict__ r, const double* __restrict__ x,
                            double* __restrict__ out, long long T, long long N, long long m,
                            long long w, long long minp, long long kind) {
    WB_FOR(j, N) {
        for (long long t = 0; t < T; ++t) {
            long long i = t * N + j;
            double o = WB_NAN;
            if (ok(x[i])) {
                long long lo = t - w + 1 > 0 ? t - w + 1 : 0;
                long long n = 0;
                double sa = 0.0, sb = 0.0, a0 = 0.0, b0 = 0.0;
                bool flat_a = true, flat_b = true;
                for (long long u = lo; u <= t; ++u) {
                    double a = r[u * N + j], b = r[u * N + m];
                    if (ok(a) && ok(b)) {
                        if (n == 0) {
                            a0 = a;
                            b0 = b;
                        }
                        flat_a = flat_a && a == a0;
                        flat_b = flat_b && b == b0;
                        sa += a;
                        sb += b;
                        n += 1;
                    }
                }
                if (n >= minp && n > 0 && !flat_a && !flat_b) {
                    double ma = sa / (double)n, mb = sb / (double)n;
                    double caa = 0.0, cbb = 0.0, cab = 0.0;
                    for (long long u = lo; u <= t; ++u) {
                        double a = r[u * N + j], b = r[u * N + m];
                        if (ok(a) && ok(b)) {
                            double da = a - ma, db = b - mb;
                            caa += da * da;
                            cbb += db * db;
                            cab += da * db;
                        }
                    }
                    if (caa > 0.0 && cbb > 0.0) {
                        if (j == m) {
                            o = 1.0;
                        } else if (kind == 0) {
                            o = cab / sqrt(caa * cbb);
                            o = o > 1.0 ? 1.0 : (o < -1.0 ? -1.0 : o);
                        } else {
                            o = cab / cbb;
                        }
                    }
                }
            }
            out[i] = o;
        }
    }
}
