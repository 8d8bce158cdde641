"""Live Optuna study dashboard: history, Pareto front, importances, parallel coordinates, trials.

In a notebook (``pn.extension("plotly", "tabulator")`` first)::

    from widgets import TuningDashboard
    dash = TuningDashboard(storage="postgresql://user@db/optuna", study_name="lstm-sharpe")
    dash.panel()          # refreshes every 2 s while workers run; dash.stop() ends it

As an app::

    panel serve widgets/tuning_dashboard.py --args --storage URL --study NAME

(or ``WORKBENCH_TUNING_STORAGE`` / ``WORKBENCH_TUNING_STUDY``). With neither, the app
runs a demo: a three-objective study in a temporary journal file is optimised by two
background threads for about 30 s, and the page fills while it runs.

Every figure is labelled with the study's objective names
(:func:`workbench.tuning._tables.objective_names`), never Optuna's "Objective Value".
A refresh reloads the trials once, compares a cheap signature (trial counts per state and
the last completed trial) with the previous one and redraws only when it changed;
parameter importances are recomputed at most every ``importance_every_s`` seconds.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import warnings
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import panel as pn

from workbench.tuning._tables import objective_names, trials_table

__all__ = ["TuningDashboard"]

_log = logging.getLogger(__name__)

#: Trial states shown in the header, in this order.
STATES = ("COMPLETE", "RUNNING", "PRUNED", "FAIL", "WAITING")

_MARGIN = {"l": 60, "r": 20, "t": 50, "b": 50}


class TuningDashboard:
    """Live view of an Optuna study while tuning workers run.

    Parameters
    ----------
    study : optuna.study.Study, optional
        The study to show. Give either ``study`` or ``storage``.
    storage : str or optuna.storages.BaseStorage, optional
        Storage URL (``sqlite:///tuning.db``, ``postgresql://user:pw@host/db``) or storage
        object holding the study; loaded with :func:`optuna.load_study`.
    study_name : str, optional
        Name of the study in ``storage`` (may be omitted when the storage holds one study).
    refresh_s : float, default 2.0
        Seconds between automatic refreshes once :meth:`panel` has been called (> 0).
    importance_every_s : float, default 15.0
        Minimum seconds between two parameter-importance computations (>= 0).
    height : int, default 320
        Height of each chart in pixels (>= 100).

    Raises
    ------
    ValueError
        If neither or both of ``study`` and ``storage`` are given, if the study cannot be
        found or the storage cannot be opened (the message names the study and the storage
        URL with any password masked), or if a numeric argument is out of range.
    TypeError
        If ``study`` is not an :class:`optuna.study.Study`.

    Notes
    -----
    Panels shown: a header with the number of trials per state, the best value of each
    objective (and the size of the Pareto front for multi-objective studies) and the
    refresh time; the optimisation history of each objective (completed trials and the
    best so far); the Pareto front (2 or 3 objectives: ``optuna.visualization``; more: a
    scatter matrix; single-objective studies get a note); parameter importances from
    :func:`optuna.importance.get_param_importances` with Optuna's default evaluator
    (PED-ANOVA in Optuna 5), computed per objective with the objective negated when it is
    maximised, so importances always refer to reaching *good* values; a parallel-coordinates
    plot of the parameters present in every completed trial and the objectives (log-scaled
    parameters on a log10 axis); and the trials table of
    :func:`~workbench.tuning._tables.trials_table`, newest first, paginated.
    """

    def __init__(self, study: Any = None, *, storage: Any = None, study_name: str | None = None,
                 refresh_s: float = 2.0, importance_every_s: float = 15.0, height: int = 320):
        if not (isinstance(refresh_s, int | float) and refresh_s > 0):
            raise ValueError(f"TuningDashboard: refresh_s must be a number > 0, got {refresh_s!r}")
        if not (isinstance(importance_every_s, int | float) and importance_every_s >= 0):
            raise ValueError("TuningDashboard: importance_every_s must be a number >= 0, got "
                             f"{importance_every_s!r}")
        if not (isinstance(height, int | np.integer) and height >= 100):
            raise ValueError(f"TuningDashboard: height must be an int >= 100, got {height!r}")
        self.study = _resolve_study(study, storage, study_name)
        self.refresh_s = float(refresh_s)
        self.importance_every_s = float(importance_every_s)
        self.height = int(height)
        self.objectives = objective_names(self.study)
        self.maximize = [d.name == "MAXIMIZE" for d in self.study.directions]
        self.last_error: str | None = None

        self._lock = threading.Lock()
        self._callbacks: list[Any] = []
        self._signature: tuple | None = None
        self._importance_signature: tuple | None = None
        self._importance_time = -math.inf
        self._trials = pd.DataFrame(columns=["number", "state", *self.objectives])
        self._pareto_size = 0
        self._figures: dict[str, Any] = {}
        self._last_change: str = "never"

        multi = len(self.objectives) > 1
        self._header = pn.pane.Markdown("loading ...", sizing_mode="stretch_width",
                                        margin=(0, 10))
        self._history_panes = [self._plotly() for _ in self.objectives]
        self._history = pn.GridBox(*self._history_panes, ncols=min(len(self.objectives), 3),
                                   sizing_mode="stretch_width")
        # a 3-D Pareto scene needs more height than a 2-D chart to be readable
        self._middle_height = int(self.height * 1.35) if len(self.objectives) == 3 else self.height
        # every panel is built once and toggled (note <-> figure), never swapped: swapping
        # children of a live document while held raced the browser ("reference isn't known")
        single_note = "Pareto front: single-objective study, the best trial is in the header."
        self._pareto = _Section(self._middle_height, "" if multi else single_note)
        self._pareto_pane = self._pareto.pane if multi else None
        self._importance = _Section(self._middle_height)
        self._parallel = _Section(self.height)
        self._table = pn.widgets.Tabulator(
            self._trials, disabled=True, show_index=False, pagination="remote", page_size=15,
            sizing_mode="stretch_width", formatters=_formatters(self.objectives),
            header_filters=False)
        self.refresh(force=True)

    # -- public --------------------------------------------------------------
    @property
    def trials(self) -> pd.DataFrame:
        """Trials as of the last refresh, newest first.

        Returns
        -------
        pandas.DataFrame
            :func:`~workbench.tuning._tables.trials_table` sorted by trial number,
            descending (the rows of the dashboard's table).
        """
        return self._trials.copy()

    @property
    def figures(self) -> dict[str, Any]:
        """The plotly figures currently shown, by key.

        Returns
        -------
        dict of str to plotly.graph_objects.Figure
            ``"history:<objective>"`` for each objective, and ``"pareto"``,
            ``"importances"``, ``"parallel"`` when those panels show a figure (rather
            than a note).
        """
        return dict(self._figures)

    def _tick(self) -> None:
        """Periodic-callback entry point (Panel wants a no-argument callable)."""
        self.refresh()

    def refresh(self, force: bool = False) -> bool:
        """Reload the trials and redraw what changed.

        Parameters
        ----------
        force : bool, default False
            Redraw everything and recompute importances even if nothing changed.

        Returns
        -------
        bool
            True if the figures or the table were updated. False when the signature
            (trials per state, last completed trial) is unchanged and the importances are
            fresh or not due, when another refresh is running (calls never pile up: a
            periodic callback skips instead of waiting), or when reading the storage or
            drawing failed: the error is then logged, shown in the header and kept in
            :attr:`last_error`, and the next refresh tries again.
        """
        if not self._lock.acquire(blocking=force):
            return False
        try:
            return self._refresh(force)
        finally:
            self._lock.release()

    def panel(self) -> pn.viewable.Viewable:
        """The dashboard as a Panel layout; starts the periodic refresh.

        Returns
        -------
        panel.viewable.Viewable
            Column of header, history, Pareto front and importances, parallel coordinates
            and the trials table.

        Notes
        -----
        Registers ``pn.state.add_periodic_callback(self.refresh, period=refresh_s * 1000)``
        for the current document (served app or notebook); in a served session it is
        stopped when the session is destroyed, otherwise call :meth:`stop`.
        """
        multi = len(self.objectives) > 1
        if multi:
            middle = pn.Row(self._pareto.layout, self._importance.layout,
                            sizing_mode="stretch_width")
            body = [self._history, middle]
        else:
            body = [pn.Row(self._history, self._importance.layout, sizing_mode="stretch_width"),
                    self._pareto.layout]
        layout = pn.Column(
            pn.pane.Markdown(f"## Tuning dashboard: `{self.study.study_name}`", margin=(0, 10)),
            self._header,
            *body,
            self._parallel.layout,
            pn.pane.Markdown("#### Trials (newest first)", margin=(0, 10)),
            self._table,
            sizing_mode="stretch_width",
        )
        cb = pn.state.add_periodic_callback(self._tick, period=int(self.refresh_s * 1000))
        self._callbacks.append(cb)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            def _destroyed(session_context: Any, cb: Any = cb) -> None:
                self._stop_callback(cb)

            pn.state.on_session_destroyed(_destroyed)
        return layout

    def servable(self, title: str | None = None) -> pn.viewable.Viewable:
        """Mark :meth:`panel` servable (for ``panel serve``); returns the layout."""
        return self.panel().servable(title=title or "Tuning dashboard")

    def stop(self) -> None:
        """Stop every periodic refresh started by :meth:`panel` (idempotent)."""
        for cb in list(self._callbacks):
            self._stop_callback(cb)

    @property
    def running(self) -> bool:
        """Whether a periodic refresh is registered and running."""
        return any(getattr(cb, "running", False) for cb in self._callbacks)

    # -- internals -----------------------------------------------------------
    def _plotly(self) -> pn.pane.Plotly:
        return pn.pane.Plotly(None, height=self.height, sizing_mode="stretch_width",
                              config={"responsive": True, "displaylogo": False})

    def _stop_callback(self, cb: Any) -> None:
        try:
            cb.stop()
        except Exception:  # noqa: BLE001 - stopping a dead session's callback must not raise
            pass
        if cb in self._callbacks:
            self._callbacks.remove(cb)

    def _refresh(self, force: bool) -> bool:
        now = datetime.now().astimezone().strftime("%H:%M:%S")
        try:
            updated = self._update(force, now)
        except Exception as exc:  # noqa: BLE001 - keep the periodic callback alive
            _log.warning("TuningDashboard(%s): refresh failed", self.study.study_name,
                         exc_info=True)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._header.object = self._header_text(now, error=self.last_error)
            return False
        self.last_error = None
        return updated

    def _update(self, force: bool, now: str) -> bool:
        from optuna.trial import TrialState

        frozen = self.study.get_trials(deepcopy=False)
        signature = _signature(frozen)
        changed = force or signature != self._signature
        complete = [t for t in frozen if t.state == TrialState.COMPLETE and t.values is not None]
        due = (force or (self._importance_signature != signature
                         and time.monotonic() - self._importance_time >= self.importance_every_s))
        updated = False
        with pn.io.hold(), warnings.catch_warnings():
            # Optuna's experimental-API notices would repeat on every refresh
            warnings.simplefilter("ignore", _experimental_warning())
            if changed:
                table = trials_table(self.study)
                self._trials = (table.sort_values("number", ascending=False)
                                .reset_index(drop=True))
                self._table.value = _display(self._trials)
                self._draw_history()
                self._draw_pareto(complete)
                self._draw_parallel(complete)
                # only now: a failed drawing is retried on the next refresh
                self._signature = signature
                self._last_change = now
                updated = True
            if due:
                self._draw_importances(complete)
                self._importance_signature = signature
                self._importance_time = time.monotonic()
                updated = True
            self._header.object = self._header_text(now)
        return updated

    def _header_text(self, now: str, error: str | None = None) -> str:
        df = self._trials
        counts = df["state"].value_counts() if not df.empty else pd.Series(dtype=int)
        states = " · ".join(f"**{s}** {int(counts.get(s, 0))}" for s in STATES)
        done = df[df["state"] == "COMPLETE"]
        best = []
        for name, up in zip(self.objectives, self.maximize, strict=True):
            v = done[name].astype(float)
            v = v[np.isfinite(v)]
            if v.empty:
                continue
            i = v.idxmax() if up else v.idxmin()
            best.append(f"best {name} **{v[i]:.4g}** ({'max' if up else 'min'}, "
                        f"trial {int(done.loc[i, 'number'])})")
        if len(self.objectives) > 1 and not done.empty:
            best.append(f"Pareto front **{self._pareto_size}** trials")
        lines = [f"{states} · total {len(df)}",
                 " · ".join(best) if best else "no completed trials yet",
                 f"refreshed {now} · last change {self._last_change}"]
        if error:
            lines.append(f"**refresh failed:** `{error}`")
        return "  \n".join(lines)

    def _draw_history(self) -> None:
        done = self._trials[self._trials["state"] == "COMPLETE"].sort_values("number")
        for name, up, pane in zip(self.objectives, self.maximize, self._history_panes,
                                  strict=True):
            fig = _history_figure(done, name, up, self.height)
            self._figures[f"history:{name}"] = fig
            pane.object = fig

    def _draw_pareto(self, complete: list) -> None:
        if self._pareto_pane is None:
            self._pareto_size = 0
            return
        from workbench.tuning._tables import pareto_front

        front = pareto_front(self.study) if complete else pd.DataFrame()
        self._pareto_size = len(front)
        if not complete:
            self._figures.pop("pareto", None)
            self._pareto.show_note("Pareto front: no completed trials yet.")
            return
        fig = _pareto_figure(self.study, self._trials, front, self.objectives,
                             self._middle_height)
        self._figures["pareto"] = fig
        self._pareto.show_figure(fig)

    def _draw_parallel(self, complete: list) -> None:
        fig = _parallel_figure(complete, self.objectives, self.maximize, self.height)
        if fig is None:
            self._figures.pop("parallel", None)
            self._parallel.show_note("Parallel coordinates: no completed trials yet.")
            return
        self._figures["parallel"] = fig
        self._parallel.show_figure(fig)

    def _draw_importances(self, complete: list) -> None:
        result = _importances(self.study, complete, self.objectives, self.maximize)
        if isinstance(result, str):
            self._figures.pop("importances", None)
            self._importance.show_note(f"Parameter importances: {result}")
            return
        fig = _importance_figure(result, self._middle_height)
        self._figures["importances"] = fig
        self._importance.show_figure(fig)


class _Section:
    """A note and a plotly pane in one column; exactly one of them is visible."""

    def __init__(self, height: int, note: str = ""):
        self.note = pn.pane.Markdown(f"*{note}*" if note else "", margin=(5, 10),
                                     sizing_mode="stretch_width", visible=bool(note))
        self.pane = pn.pane.Plotly(None, height=height, sizing_mode="stretch_width",
                                   visible=False,
                                   config={"responsive": True, "displaylogo": False})
        self.layout = pn.Column(self.note, self.pane, sizing_mode="stretch_width")

    @property
    def showing_figure(self) -> bool:
        return self.pane.visible

    def show_note(self, text: str) -> None:
        self.note.object = f"*{text}*"
        self.note.visible, self.pane.visible = True, False

    def show_figure(self, fig: Any) -> None:
        self.pane.object = fig
        self.note.visible, self.pane.visible = False, True


# -- study loading -------------------------------------------------------------------------

def _mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _describe_storage(storage: Any) -> str:
    if isinstance(storage, str):
        return _mask_url(storage)
    url = getattr(storage, "url", None)
    if isinstance(url, str):
        return f"{type(storage).__name__}({_mask_url(url)})"
    return type(storage).__name__


def _password(storage: Any) -> str | None:
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    if not isinstance(url, str):
        return None
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).password
    except Exception:  # noqa: BLE001 - unparsable URL: nothing to mask
        return None


def _resolve_study(study: Any, storage: Any, study_name: str | None):
    import optuna

    if study is not None:
        if storage is not None:
            raise ValueError("TuningDashboard: give either a study or storage (+ study_name), "
                             "not both")
        if not isinstance(study, optuna.study.Study):
            raise TypeError("TuningDashboard: study must be an optuna.study.Study, got "
                            f"{type(study).__name__}")
        return study
    if storage is None:
        raise ValueError("TuningDashboard: give a study, or storage (URL or optuna storage) "
                         "and study_name")
    where = _describe_storage(storage)
    what = f"study {study_name!r}" if study_name is not None else "the study"
    if isinstance(storage, str):
        from sqlalchemy.engine import make_url

        try:
            url = make_url(storage)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"TuningDashboard: cannot load {what}: storage {where!r} is not "
                             f"a database URL ({exc})") from None
        db = url.database
        if url.drivername.startswith("sqlite") and db and db != ":memory:" and not (
                db.startswith("file:") or os.path.exists(db)):
            raise ValueError(f"TuningDashboard: cannot load {what}: SQLite file {db!r} of "
                             f"storage {where!r} does not exist")
    if isinstance(storage, str) and storage.split("://", 1)[0].startswith("postgres"):
        # workbench stores PostgreSQL studies as a journal log (see resolve_storage)
        from workbench.tuning import StorageError, resolve_storage

        try:
            storage = resolve_storage(storage, heartbeat_interval=None)
        except StorageError as exc:
            raise ValueError(f"TuningDashboard: cannot load {what}: {exc}") from None
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        try:
            names = optuna.get_all_study_names(storage)
        except Exception:  # noqa: BLE001
            names = None
        have = f"; studies there: {names}" if names is not None else ""
        raise ValueError(f"TuningDashboard: {what} not found in storage {where!r}{have}") from None
    except Exception as exc:  # noqa: BLE001 - driver, network and schema errors
        msg = f"{type(exc).__name__}: {exc}"
        pw = _password(storage)
        if pw:
            msg = msg.replace(pw, "***")
        raise ValueError(f"TuningDashboard: cannot load {what} from storage {where!r}: "
                         f"{msg}") from None


# -- figures -------------------------------------------------------------------------------

def _signature(frozen: list) -> tuple:
    """(trials per state, number of the last trial to complete): cheap change detector."""
    counts: dict[str, int] = {}
    last, last_time = -1, None
    for t in frozen:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
        if t.state.name == "COMPLETE" and t.datetime_complete is not None and (
                last_time is None or t.datetime_complete >= last_time):
            last, last_time = t.number, t.datetime_complete
    return tuple(sorted(counts.items())), last


def _experimental_warning() -> type[Warning]:
    import optuna

    return optuna.exceptions.ExperimentalWarning


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """The trials table as shown: datetimes as text, integer parameters as integers."""
    out = table.copy()
    for c in ("datetime_start", "datetime_complete"):
        if c in out:
            t = pd.to_datetime(out[c])
            out[c] = t.dt.strftime("%Y-%m-%d %H:%M:%S").where(t.notna(), "")
    for c in out.columns:
        if c.startswith("params_") and out[c].dtype.kind == "f":
            v = out[c].dropna()
            if len(v) and np.all(np.mod(v, 1) == 0):
                out[c] = out[c].astype("Int64")
    return out


def _formatters(names: list[str]) -> dict:
    from bokeh.models.widgets.tables import NumberFormatter

    fmt = {n: NumberFormatter(format="0.0000") for n in names}
    fmt["duration_s"] = NumberFormatter(format="0.00")
    return fmt


def _layout(fig, title: str, height: int):
    fig.update_layout(title={"text": title, "x": 0.02, "font": {"size": 14}}, height=height,
                      margin=_MARGIN, template="plotly_white",
                      legend={"orientation": "h", "y": -0.25, "x": 0})
    return fig


def _history_figure(done: pd.DataFrame, name: str, maximize: bool, height: int):
    """Completed trials' values of one objective and the best so far, by trial number."""
    import plotly.graph_objects as go

    fig = go.Figure()
    v = done[name].astype(float).to_numpy() if not done.empty else np.array([])
    x = done["number"].to_numpy() if not done.empty else np.array([])
    ok = np.isfinite(v)
    x, v = x[ok], v[ok]
    if len(v):
        best = np.maximum.accumulate(v) if maximize else np.minimum.accumulate(v)
        fig.add_scatter(x=x, y=v, mode="markers", name=name, marker={"size": 6, "opacity": 0.7},
                        hovertemplate=f"trial %{{x}}<br>{name} %{{y:.4g}}<extra></extra>")
        fig.add_scatter(x=x, y=best, mode="lines", line_shape="hv", name=f"best {name}",
                        hoverinfo="skip")
    else:
        fig.add_annotation(text="no completed trials yet", showarrow=False, xref="paper",
                           yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(title_text="trial")
    fig.update_yaxes(title_text=name)
    return _layout(fig, f"History: {name} ({'maximise' if maximize else 'minimise'})", height)


def _pareto_figure(study, trials: pd.DataFrame, front: pd.DataFrame, names: list[str],
                   height: int):
    """Pareto front: Optuna's plot for 2-3 objectives, a scatter matrix beyond."""
    import plotly.graph_objects as go

    if len(names) <= 3:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fig = optuna.visualization.plot_pareto_front(study, target_names=list(names))
        fig = _layout(fig, f"Pareto front ({len(front)} trials)", height)
        # Optuna's two colour bars (all trials, best trials): thin, inside the figure
        for trace, x in zip(fig.data, (0.82, 0.91), strict=False):
            if trace.marker is not None and trace.marker.colorbar is not None:
                trace.marker.colorbar.update(x=x, xanchor="left", xpad=0, thickness=10,
                                             len=0.8, title={"side": "top"})
        if len(names) == 3:
            fig.update_layout(scene={"xaxis_title": names[0], "yaxis_title": names[1],
                                     "zaxis_title": names[2], "domain": {"x": [0, 0.8]},
                                     "camera": {"eye": {"x": 1.5, "y": 1.5, "z": 0.8}}},
                              margin={"l": 10, "r": 10, "t": 40, "b": 10})
        else:
            fig.update_xaxes(domain=[0, 0.78])
        return fig
    done = trials[trials["state"] == "COMPLETE"]
    on = done["number"].isin(front["number"])
    fig = go.Figure()
    for mask, label, color in ((~on, "dominated", "#bbbbbb"), (on, "Pareto front", "#d62728")):
        sub = done[mask]
        fig.add_trace(go.Splom(dimensions=[{"label": n, "values": sub[n]} for n in names],
                               name=label, marker={"color": color, "size": 5},
                               text=[f"trial {n}" for n in sub["number"]], diagonal_visible=False,
                               showupperhalf=False))
    return _layout(fig, f"Pareto front ({len(front)} trials)", max(height, 120 * len(names)))


def _parallel_figure(complete: list, names: list[str], maximize: list[bool], height: int):
    """Parallel coordinates over the parameters shared by all completed trials + objectives.

    Returns None when there is nothing to draw (no completed trial with finite values).
    """
    import plotly.graph_objects as go
    from optuna.distributions import CategoricalDistribution

    done = [t for t in complete if all(math.isfinite(float(v)) for v in t.values)]
    if not done:
        return None
    common = set(done[0].params)
    for t in done[1:]:
        common &= set(t.params)
    params = [p for p in done[-1].params if p in common]
    dims = []
    for p in params:
        vals = [t.params[p] for t in done]
        dist = done[-1].distributions[p]
        if isinstance(dist, CategoricalDistribution):
            labels = [str(c) for c in dist.choices]
            labels += sorted({str(v) for v in vals} - set(labels))
            codes = [labels.index(str(v)) for v in vals]
            dims.append({"label": p, "values": codes, "tickvals": list(range(len(labels))),
                         "ticktext": labels})
        elif getattr(dist, "log", False):
            lv = np.log10(np.asarray(vals, dtype=float))
            lo, hi = math.log10(dist.low), math.log10(dist.high)
            ticks = [math.log10(m * 10.0 ** k) for k in range(math.floor(lo), math.ceil(hi) + 1)
                     for m in (1, 2, 5) if lo - 1e-9 <= math.log10(m * 10.0 ** k) <= hi + 1e-9]
            dims.append({"label": f"{p} (log)", "values": lv, "range": [lo, hi],
                         "tickvals": ticks, "ticktext": [f"{10 ** k:.3g}" for k in ticks]})
        else:
            dims.append({"label": p, "values": [float(v) for v in vals],
                         "range": [float(dist.low), float(dist.high)]})
    for i, n in enumerate(names):
        dims.append({"label": n, "values": [float(t.values[i]) for t in done]})
    color = [float(t.values[0]) for t in done]
    fig = go.Figure(go.Parcoords(
        dimensions=dims,
        line={"color": color, "colorscale": "Viridis", "reversescale": not maximize[0],
              "showscale": True, "colorbar": {"title": {"text": names[0]}, "thickness": 12}}))
    fig = _layout(fig, f"Parallel coordinates ({len(done)} completed trials, colour: {names[0]})",
                  height)
    fig.update_layout(margin={"l": 60, "r": 60, "t": 90, "b": 30},
                      title={"y": 0.98, "yanchor": "top"})
    return fig


def _importances(study, complete: list, names: list[str],
                 maximize: list[bool]) -> dict[str, dict[str, float]] | str:
    """Importances per objective, or the reason there are none (a sentence)."""
    import optuna

    if len(complete) < 2:
        return f"need at least 2 completed trials ({len(complete)} so far)."
    common = set(complete[0].params)
    for t in complete[1:]:
        common &= set(t.params)
    varying = [p for p in common if len({repr(t.params[p]) for t in complete}) > 1]
    if not varying:
        return "no parameter varies across the completed trials yet."
    out: dict[str, dict[str, float]] = {}
    try:
        for i, (name, up) in enumerate(zip(names, maximize, strict=True)):
            sign = -1.0 if up else 1.0  # default evaluator (PED-ANOVA) looks for low targets

            def target(t: Any, i: int = i, sign: float = sign) -> float:
                return sign * float(t.values[i])

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # PED-ANOVA: "low target"
                out[name] = optuna.importance.get_param_importances(study, target=target)
    except Exception as exc:  # noqa: BLE001 - never let importances break the dashboard
        return f"not available ({type(exc).__name__}: {exc})."
    if not any(out.values()):
        return "not available (no parameters)."
    return out


def _importance_figure(imp: dict[str, dict[str, float]], height: int):
    """Horizontal bars of normalised importance per parameter, one trace per objective."""
    import plotly.graph_objects as go

    params = sorted({p for d in imp.values() for p in d},
                    key=lambda p: np.mean([d.get(p, 0.0) for d in imp.values()]))
    fig = go.Figure()
    for name, d in imp.items():
        fig.add_bar(y=params, x=[d.get(p, 0.0) for p in params], orientation="h", name=name,
                    hovertemplate=f"{name}<br>%{{y}}: %{{x:.3f}}<extra></extra>")
    fig.update_layout(barmode="group", showlegend=True)
    only = next(iter(imp)) if len(imp) == 1 else None
    fig.update_xaxes(title_text=(f"importance for {only}" if only else "importance"),
                     range=[0, 1])
    fig.update_yaxes(title_text="parameter", automargin=True)
    return _layout(fig, "Parameter importances (PED-ANOVA, normalised)", height)


# -- app -----------------------------------------------------------------------------------

def _demo_objective(trial: Any) -> tuple[float, float, float]:
    """A cheap crafted trade-off: Sharpe vs drawdown vs turnover (sleeps 0.3-0.6 s)."""
    import optuna

    lookback = trial.suggest_int("lookback", 5, 250, log=True)
    vol_target = trial.suggest_float("vol_target", 0.05, 0.40)
    signal = trial.suggest_categorical("signal", ["tsmom", "macd", "breakout"])
    smoothing = trial.suggest_float("smoothing", 0.0, 1.0)
    rng = np.random.default_rng(trial.number)
    time.sleep(rng.uniform(0.3, 0.6))
    u = rng.uniform()
    if u < 0.03:
        raise FloatingPointError("demo: diverged")
    if u < 0.08:
        raise optuna.TrialPruned()
    fast = math.log(lookback)
    edge = {"tsmom": 0.9, "macd": 0.75, "breakout": 0.6}[signal]
    sharpe = (edge - 0.08 * (fast - 4.2) ** 2 + 0.4 * smoothing * (1 - smoothing)
              - 0.3 * max(vol_target - 0.25, 0) + rng.normal(0, 0.08))
    drawdown = 0.6 * vol_target + 0.05 * (1 - smoothing) + abs(rng.normal(0, 0.02))
    turnover = 12.0 / lookback * (1.2 - smoothing) + abs(rng.normal(0, 0.05))
    return sharpe, drawdown, turnover


def _demo_study() -> tuple[Any, str]:
    """Start (once per server process) the demo study and its worker threads.

    The study lives in a journal file: its workers pop the enqueued trials atomically
    (two RDB workers on SQLite can both take the same queued trial, and the second
    ``tell`` then fails with "Cannot tell a COMPLETE trial").
    """
    import tempfile
    from pathlib import Path

    import optuna

    from workbench.tuning import resolve_storage

    key = "workbench_tuning_dashboard_demo"
    with _DEMO_LOCK:
        if key in pn.state.cache:
            return pn.state.cache[key]
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        url = str(Path(tempfile.mkdtemp(prefix="tuning-demo-")) / "demo.log")
        study = optuna.create_study(
            study_name="demo-momentum", storage=resolve_storage(url),
            directions=["maximize", "minimize", "minimize"])
        study.set_user_attr("workbench_objectives", ["sharpe", "max_drawdown", "turnover"])
        for lb in (21, 63, 252 // 2):
            study.enqueue_trial({"lookback": lb, "vol_target": 0.15, "signal": "tsmom",
                                 "smoothing": 0.5})

        def work(seed: int) -> None:  # one worker: its own storage connection
            worker = optuna.load_study(study_name=study.study_name,
                                       storage=resolve_storage(url),
                                       sampler=optuna.samplers.NSGAIISampler(
                                           seed=seed, population_size=20))
            worker.optimize(_demo_objective, n_trials=65, catch=(FloatingPointError,))

        for seed in (0, 1):
            threading.Thread(target=work, args=(seed,), daemon=True,
                             name=f"tuning-dashboard-demo-{seed}").start()
        pn.state.cache[key] = (resolve_storage(url), study.study_name)
        return pn.state.cache[key]


_DEMO_LOCK = threading.Lock()


def _app(argv: list[str]) -> pn.viewable.Viewable:
    """The served page: ``--storage URL --study NAME`` (or env vars), else the demo."""
    import argparse

    parser = argparse.ArgumentParser(prog="tuning_dashboard")
    parser.add_argument("--storage", default=os.environ.get("WORKBENCH_TUNING_STORAGE"))
    parser.add_argument("--study", default=os.environ.get("WORKBENCH_TUNING_STUDY"))
    parser.add_argument("--refresh", type=float, default=2.0)
    args, _ = parser.parse_known_args(argv)
    if args.storage:
        dash = TuningDashboard(storage=args.storage, study_name=args.study,
                               refresh_s=args.refresh)
    else:
        url, name = _demo_study()
        dash = TuningDashboard(storage=url, study_name=name, refresh_s=args.refresh,
                               importance_every_s=5.0)
    return dash.servable(title="Tuning dashboard")


if __name__.startswith("bokeh"):  # panel serve widgets/tuning_dashboard.py [--args ...]
    import sys

    pn.extension("tabulator", "plotly")
    # from the imported module, not this per-session script: Bokeh clears a script's
    # globals when its session ends, and the demo's worker threads outlive the session
    from widgets.tuning_dashboard import _app as _served_app

    _served_app(sys.argv[1:])
