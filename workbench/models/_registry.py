"""Model registry: save a fitted member or ensemble to a folder, load it back without pickle.

A saved model is a folder (DESIGN.md section 4)::

    <path>/
        card.json              provenance and fitted scalars (strict JSON)
        weights.safetensors    tensors (safetensors format; may hold no tensor)
        state.<key>.txt        text state too large for the card (e.g. a LightGBM model)
        members/<name>/        an Ensemble only: one full save per member

Loading never unpickles: the card is JSON, tensors come from
:func:`safetensors.torch.load`, large text state is read as UTF-8, and the class
named in the card must be one of :data:`ALLOWED_CLASSES` (resolved with
:mod:`importlib`), so a tampered card cannot make the loader run arbitrary code.

Integrity: every byte that determines the loaded model is covered by a SHA-256 digest
that :func:`load_model` verifies before anything is parsed by a third-party parser
(safetensors, LightGBM) or a network is built, raising ``ValueError`` that names the
file modified after saving:

- the card's own content: ``card_sha256`` is the SHA-256 of the card without that field,
  as canonical JSON (``json.dumps(card, sort_keys=True, separators=(",", ":"),
  ensure_ascii=True)`` encoded as UTF-8), so params, inline state (e.g. a LightGBM model
  under 64 kB), feature names and every digest below are covered;
- ``weights.safetensors`` (``weights_sha256``) and each ``state.<key>.txt``
  (``state_files[key]["sha256"]``), whose bytes are read once, hashed and then parsed
  from those same bytes;
- for an Ensemble, each member's card (``members_sha256[name]`` is the member card's
  ``card_sha256``), hence, through it, each member's files and its own members. The
  whole tree is verified before any member is built.

Cards of the previous format ``workbench-model/1`` (no ``card_sha256``) still load, with
a warning that their own content is unchecked; their files are checked as before. The
digests detect modification, they are not a signature: whoever can write the folder can
recompute them (or rewrite the card as ``workbench-model/1``), so load models only from
a location you trust.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import logging
import math
import platform
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["save_model", "load_model", "read_card", "ALLOWED_CLASSES", "CARD_FORMAT",
           "LEGACY_FORMATS"]

_LOG = logging.getLogger("workbench.models.registry")

#: Format tag written to every new card: ``card_sha256`` (and ``members_sha256`` for an
#: Ensemble) are required.
CARD_FORMAT = "workbench-model/2"
#: Older format tags still read: cards without ``card_sha256``/``members_sha256``, whose
#: own content is not integrity-checked (loading logs a warning).
LEGACY_FORMATS = ("workbench-model/1",)

#: The only classes :func:`load_model` instantiates: short name -> dotted import path.
ALLOWED_CLASSES: dict[str, str] = {
    "DeepMomentumLSTM": "workbench.models._lstm.DeepMomentumLSTM",
    "LinearModel": "workbench.models._zoo.LinearModel",
    "MLPModel": "workbench.models._zoo.MLPModel",
    "CNNModel": "workbench.models._zoo.CNNModel",
    "MomentumTransformer": "workbench.models._transformer.MomentumTransformer",
    "BoostedTreesModel": "workbench.models._trees.BoostedTreesModel",
    "Ensemble": "workbench.models._ensemble.Ensemble",
}

CARD_FILE = "card.json"
WEIGHTS_FILE = "weights.safetensors"
MEMBERS_DIR = "members"
#: Top-level string values of the state larger than this (UTF-8 bytes) go to their own file.
MAX_INLINE_BYTES = 64 * 1024

_RESERVED = frozenset({
    "format", "class", "params", "feature_names", "n_features", "training_window", "metrics",
    "state", "state_files", "members", "versions", "created", "weights_sha256",
    "members_sha256", "card_sha256",
})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+\-]*$")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# -- JSON helpers ------------------------------------------------------------------------
def _to_json(value: Any, where: str) -> Any:
    """JSON-ready copy of ``value``: numpy scalars to Python, tuples to lists.

    Non-finite floats become ``{"$float": "nan" | "inf" | "-inf"}`` so that the card stays
    strict JSON and still round-trips them. Raises ``ValueError`` naming ``where`` for
    anything else (objects, arrays, non-string keys).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f):
            return f
        return {"$float": "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}; card keys must be str")
            if k == "$float":
                raise ValueError(f"{where} uses the reserved key '$float'")
            out[k] = _to_json(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValueError(
        f"{where} is not JSON-serialisable: {type(value).__name__} {value!r:.80}"
    )


def _from_json(value: Any) -> Any:
    """Inverse of :func:`_to_json` for the non-finite float tags."""
    if isinstance(value, dict):
        if len(value) == 1 and "$float" in value and value["$float"] in _NONFINITE:
            return _NONFINITE[value["$float"]]
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _card_digest(card: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a card's canonical JSON, without its ``card_sha256`` field.

    ``card`` is the card as stored (non-finite floats still tagged). Canonical JSON is
    ``json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    allow_nan=False)`` encoded as UTF-8, so whitespace and key order do not matter, any
    value that reaches the model does.
    """
    body = {k: v for k, v in card.items() if k != "card_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _short(digest: Any) -> str:
    """The first 12 hex digits of a recorded digest, for error messages."""
    return f"{digest[:12]}..." if isinstance(digest, str) else repr(digest)


# -- classes -----------------------------------------------------------------------------
def _class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _resolve_class(dotted: Any) -> type:
    """Import a class named in a card, only if it is in :data:`ALLOWED_CLASSES`."""
    if not isinstance(dotted, str) or dotted not in ALLOWED_CLASSES.values():
        raise ValueError(
            f"class {dotted!r} is not in the registry allow-list "
            f"{sorted(ALLOWED_CLASSES.values())}; refusing to load it"
        )
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not isinstance(cls, type):  # pragma: no cover - allow-list holds classes only
        raise ValueError(f"{dotted} is not a class")
    return cls


def _is_ensemble(dotted: str) -> bool:
    return dotted == ALLOWED_CLASSES["Ensemble"]


def _check_member_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise ValueError(
            f"{where} {name!r} cannot be a folder name: use letters, digits, '_', '.', '+', "
            "'-' and do not start with '.', '+' or '-'"
        )
    return name


def _ensemble_members(model: Any, names: Sequence[str]) -> dict[str, Any]:
    """Name -> fitted member of an Ensemble, in the order of ``names``."""
    found = None
    for attr in ("members", "members_", "_members"):
        cand = getattr(model, attr, None)
        if isinstance(cand, Mapping):
            found = cand
            break
    if found is None:
        raise ValueError(f"{type(model).__name__} exposes no members mapping to save")
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"ensemble state names members {missing} that the ensemble lacks")
    return {n: found[n] for n in names}


# -- card pieces -------------------------------------------------------------------------
def _versions(uses_lightgbm: bool) -> dict[str, str]:
    import safetensors
    import torch

    import workbench

    out = {
        "python": platform.python_version(),
        "workbench": str(workbench.__version__),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "safetensors": str(safetensors.__version__),
    }
    if uses_lightgbm:
        import lightgbm

        out["lightgbm"] = str(lightgbm.__version__)
    return out


def _rows(pair: Any) -> list[int] | None:
    if pair is None:
        return None
    a, b = (int(v) for v in pair)
    return None if a < 0 or b < 0 else [a, b]


def _training_window(model: Any, dataset: Any) -> dict[str, Any]:
    """Rows (half-open ``[start, stop)``) and, given the dataset, dates and provenance."""
    tw = getattr(model, "training_window_", None)
    if tw is not None and len(tw) == 4:
        window: dict[str, Any] = {"train_rows": _rows(tw[:2]), "valid_rows": _rows(tw[2:])}
    else:  # an Ensemble: weights are fitted on its validation rows only
        window = {"train_rows": None, "valid_rows": _rows(getattr(model, "valid_rows_", None))}
    if dataset is None:
        return window
    names = tuple(getattr(dataset, "feature_names", ()))
    model_names = tuple(getattr(model, "feature_names_in_", ()))
    if names != model_names:
        raise ValueError(
            f"dataset.feature_names {list(names)} differ from the model's feature names "
            f"{list(model_names)}; pass the dataset the model was fitted on"
        )
    index = dataset.index
    for key in ("train", "valid"):
        rows = window[f"{key}_rows"]
        if rows is None:
            window[f"{key}_dates"] = None
            continue
        a, b = rows
        if not 0 <= a < b <= len(index):
            raise ValueError(
                f"model {key} rows {a}:{b} lie outside the dataset's {len(index)} rows; "
                "pass the dataset the model was fitted on"
            )
        window[f"{key}_dates"] = [index[a].isoformat(), index[b - 1].isoformat()]
    window["data_hash"] = str(dataset.data_hash)
    window["symbols"] = [str(s) for s in dataset.symbols]
    return window


def _default_metrics(model: Any) -> dict[str, Any]:
    sharpe = getattr(model, "best_valid_sharpe_", None)
    out: dict[str, Any] = {}
    if sharpe is not None:
        out["best_valid_sharpe"] = float(sharpe)
    epoch = getattr(model, "best_epoch_", None)
    if epoch is not None:
        out["best_epoch"] = int(epoch)
    return out


# -- save --------------------------------------------------------------------------------
def _write_state_files(folder: Path, meta: dict[str, Any]) -> tuple[dict, dict]:
    """Move top-level strings > 64 kB of ``meta`` to ``state.<key>.txt`` files.

    Returns the inline state and ``{key: {"file": name, "sha256": digest}}``.
    """
    inline: dict[str, Any] = {}
    files: dict[str, dict[str, str]] = {}
    for i, (key, value) in enumerate(meta.items()):
        if isinstance(value, str) and len(value.encode("utf-8")) > MAX_INLINE_BYTES:
            stem = key if _SAFE_NAME.match(key) else f"key{i}"
            fname = f"state.{stem}.txt"
            if any(ref["file"] == fname for ref in files.values()):
                fname = f"state.{stem}.{i}.txt"
            fpath = folder / fname
            with open(fpath, "w", encoding="utf-8", newline="") as fh:
                fh.write(value)
            files[key] = {"file": fname, "sha256": _sha256(fpath)}
        else:
            inline[key] = value
    return inline, files


def _write(model: Any, folder: Path, *, metrics: Mapping[str, Any] | None, dataset: Any,
           extra: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Write one model (recursively for ensembles) into the existing empty ``folder``.

    Returns whether LightGBM is used by the model or any member, and the card's
    ``card_sha256`` (which an ensemble records for each member in ``members_sha256``).
    """
    from safetensors.torch import save_file

    dotted = _class_path(model)
    if dotted not in ALLOWED_CLASSES.values():
        raise ValueError(
            f"model class {dotted} is not in the registry allow-list "
            f"{sorted(ALLOWED_CLASSES.values())}; it could not be loaded back"
        )
    tensors, meta = model._registry_state()
    if not isinstance(meta, Mapping):
        raise ValueError(f"{dotted}._registry_state() must return (tensors, dict)")
    meta = _to_json(dict(meta), "state")
    params = _to_json(model.get_params(), "params")
    uses_lgbm = dotted == ALLOWED_CLASSES["BoostedTreesModel"]

    card: dict[str, Any] = {"format": CARD_FORMAT, "class": dotted, "params": params}
    if _is_ensemble(dotted):
        names = [_check_member_name(n, "ensemble member name") for n in meta["names"]]
        members = _ensemble_members(model, names)
        (folder / MEMBERS_DIR).mkdir()
        member_digests: dict[str, str] = {}
        for name, member in members.items():
            sub = folder / MEMBERS_DIR / name
            sub.mkdir()
            member_lgbm, member_digests[name] = _write(member, sub, metrics=None,
                                                       dataset=dataset, extra=None)
            uses_lgbm |= member_lgbm
        card["members"] = names
        card["members_sha256"] = member_digests

    fn = getattr(model, "feature_names_in_", None)
    card["feature_names"] = [str(n) for n in fn] if fn is not None else None
    nf = getattr(model, "n_features_in_", None)
    card["n_features"] = int(nf) if nf is not None else None
    card["training_window"] = _to_json(_training_window(model, dataset), "training_window")
    card["metrics"] = _to_json(dict(metrics) if metrics is not None
                               else _default_metrics(model), "metrics")

    inline, files = _write_state_files(folder, meta)
    card["state"] = inline
    card["state_files"] = files

    weights = folder / WEIGHTS_FILE
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(weights),
              metadata={"format": "pt"})
    card["weights_sha256"] = _sha256(weights)
    card["versions"] = _versions(uses_lgbm)
    card["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or key in _RESERVED:
            raise ValueError(f"extra key {key!r} is reserved or not a str; reserved: "
                             f"{sorted(_RESERVED)}")
        card[key] = _to_json(value, f"extra[{key!r}]")
    # hash what a loader will parse back, not the in-memory dict
    digest = _card_digest(json.loads(json.dumps(card, allow_nan=False)))
    card["card_sha256"] = digest
    text = json.dumps(card, indent=2, allow_nan=False, ensure_ascii=False)
    (folder / CARD_FILE).write_text(text + "\n", encoding="utf-8")
    return uses_lgbm, digest


def save_model(model: Any, path: str | Path, *, metrics: Mapping[str, Any] | None = None,
               dataset: Any = None, overwrite: bool = False,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Save a fitted member or :class:`~workbench.models.Ensemble` to a folder.

    The folder holds ``weights.safetensors`` (the model's tensors, possibly none),
    ``card.json`` and, for text state over 64 kB (e.g. a LightGBM model), a
    ``state.<key>.txt`` file whose name and SHA-256 the card records; an Ensemble also
    gets ``members/<name>/``, each a full save of one member. Nothing is pickled.

    Card fields: ``format`` (``"workbench-model/2"``), ``class`` (dotted path),
    ``params`` (constructor hyperparameters), ``feature_names`` (ordered),
    ``n_features``, ``training_window`` (``train_rows``/``valid_rows`` as half-open
    ``[start, stop)`` row indices; with ``dataset`` also ``train_dates``/``valid_dates``,
    the ISO timestamps of the first and last row of each range, ``data_hash`` and
    ``symbols``), ``metrics``, ``state`` (fitted scalars), ``state_files``, ``members``
    (ensembles: the names, in order), ``members_sha256`` (ensembles: name -> the member
    card's ``card_sha256``), ``versions`` (python, workbench, torch, numpy, safetensors,
    lightgbm when a trees model is involved), ``created`` (UTC ISO 8601),
    ``weights_sha256`` (SHA-256 of ``weights.safetensors``), any ``extra`` fields and,
    last, ``card_sha256``: the SHA-256 of the card's canonical JSON without that field
    (``json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``,
    UTF-8). So every byte that determines the model is covered by a digest that
    :func:`load_model` checks. Non-finite floats are written as ``{"$float": "nan"}``
    (and ``"inf"``, ``"-inf"``) so the card is strict JSON; :func:`read_card` decodes
    them.

    Writing is atomic: everything goes to a temporary sibling folder that is renamed to
    ``path`` only once complete. With ``overwrite=True`` an existing save is replaced
    only after the new one is complete; on any failure the old folder is left as it was
    and the temporary folder removed.

    Parameters
    ----------
    model : fitted member or Ensemble
        An instance of a class in :data:`ALLOWED_CLASSES` (``DeepMomentumLSTM``,
        ``LinearModel``, ``MLPModel``, ``CNNModel``, ``MomentumTransformer``,
        ``BoostedTreesModel``, ``Ensemble``).
    path : str or pathlib.Path
        Target folder (created; its parent must exist).
    metrics : mapping, optional
        JSON-able metrics to record (e.g. ``{"valid_sharpe": 1.2}``); default
        ``{"best_valid_sharpe": model.best_valid_sharpe_, "best_epoch": ...}`` where the
        model has them (annualised Sharpe, net of the model's ``cost_bps``).
    dataset : MomentumDataset, optional
        The dataset the model was fitted on: adds dates, ``data_hash`` and symbols to
        the training window (and to each member's card).
    overwrite : bool, default False
        Replace an existing save at ``path``.
    extra : mapping, optional
        Additional JSON-able card fields, e.g. ``{"trial": 17}`` (Optuna trial number);
        reserved field names raise.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the parent folder of ``path`` does not exist.
    ValueError
        If the model's class is not allowed, the model is not fitted, ``params``,
        ``metrics``, ``extra`` or the state is not JSON-able, an ensemble member name is
        not a safe folder name, ``dataset`` does not match the model's feature names or
        rows, or ``path`` exists but is a file or a non-empty folder without
        ``card.json`` (never replaced, even with ``overwrite=True``).
    """
    path = Path(path)
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite must be a bool, got {overwrite!r}")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        if not path.is_dir() or path.is_symlink():
            raise ValueError(f"path {str(path)!r} exists and is not a folder (or is a "
                             "symlink); not replacing it")
        if any(path.iterdir()) and not (path / CARD_FILE).is_file():
            raise ValueError(
                f"path {str(path)!r} is a non-empty folder without {CARD_FILE}, so not a saved "
                "model; refusing to replace it"
            )
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"parent folder {parent} of {path} does not exist")
    tag = uuid.uuid4().hex[:12]
    tmp = parent / f".{path.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        _write(model, tmp, metrics=metrics, dataset=dataset, extra=extra)
        if path.exists():
            old = parent / f".{path.name}.old-{tag}"
            path.rename(old)
            try:
                tmp.rename(path)
            except BaseException:
                old.rename(path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# -- load --------------------------------------------------------------------------------
def _card_path(path: Path) -> Path:
    return path if path.name == CARD_FILE and path.is_file() else path / CARD_FILE


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-standard JSON constant {token}")


def _load_card(card_file: Path, expected: str | None = None) -> tuple[dict[str, Any], str]:
    """Parse ``card_file`` and check its format and its own digest.

    Returns the card as stored (non-finite floats still tagged) and the digest of its
    content. ``expected`` is the digest an ensemble card records for this (member) card.
    Raises ``FileNotFoundError`` or ``ValueError`` as :func:`read_card` documents, and
    ``ValueError`` when the digest differs from ``expected``.
    """
    if not card_file.is_file():
        raise FileNotFoundError(f"no model card: {card_file} does not exist")
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"),
                          parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"{card_file} is corrupt (not valid strict JSON): {exc}") from exc
    if not isinstance(card, dict):
        raise ValueError(f"{card_file} is corrupt: expected a JSON object, "
                         f"got {type(card).__name__}")
    fmt = card.get("format")
    if fmt != CARD_FORMAT and fmt not in LEGACY_FORMATS:
        raise ValueError(f"{card_file} has format {fmt!r}; expected {CARD_FORMAT!r} "
                         f"(or the older {', '.join(map(repr, LEGACY_FORMATS))})")
    digest = _card_digest(card)
    if fmt == CARD_FORMAT:
        recorded = card.get("card_sha256")
        if not isinstance(recorded, str):
            raise ValueError(f"{card_file} has no card_sha256 (its format {fmt!r} requires "
                             "one): the card was modified after saving")
        if recorded != digest:
            raise ValueError(
                f"{card_file} was modified after saving: its card_sha256 records "
                f"{_short(recorded)}, its content hashes to {_short(digest)}"
            )
    if expected is not None and digest != expected:
        raise ValueError(
            f"{card_file} was modified after saving: the ensemble card's members_sha256 "
            f"records {_short(expected)} for it, the card hashes to {_short(digest)} (a "
            "different or edited member save)"
        )
    if fmt != CARD_FORMAT:
        _LOG.warning(
            "%s has the older format %r, without card_sha256: its own content (params, "
            "inline state, feature names, members) is not integrity-checked, only the "
            "weights and state files it records; re-save it with save_model to add the "
            "check", card_file, fmt,
        )
    return card, digest


def read_card(path: str | Path) -> dict[str, Any]:
    """Read a saved model's card, checking the card's own digest.

    Parameters
    ----------
    path : str or pathlib.Path
        The model folder (or its ``card.json``).

    Returns
    -------
    dict
        The card, non-finite float tags decoded to ``float("nan")``/``inf``.

    Raises
    ------
    FileNotFoundError
        If there is no ``card.json``.
    ValueError
        If ``card.json`` is not valid strict JSON or not an object, its ``format`` is
        neither ``"workbench-model/2"`` nor one of :data:`LEGACY_FORMATS`, or (format 2)
        it lacks ``card_sha256`` or its content no longer hashes to it (the card was
        modified after saving). Files the card names are not checked here; see
        :func:`load_model`.
    """
    card, _ = _load_card(_card_path(Path(path)))
    return _from_json(card)


def _check_features(card: Mapping[str, Any], feature_names: Any, folder: Path) -> None:
    if isinstance(feature_names, str):
        raise ValueError(f"feature_names must be a sequence of str, got the str {feature_names!r}")
    got = [str(n) for n in feature_names]
    want = list(card.get("feature_names") or [])
    if got == want:
        return
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"extra {extra}")
    if not missing and not extra:
        moved = [n for i, n in enumerate(got) if i >= len(want) or want[i] != n]
        parts.append(f"reordered {moved} (model order {want}, got {got})")
    raise ValueError(f"feature_names do not match the model saved in {folder}: "
                     + "; ".join(parts))


def _read_checked(fpath: Path, what: str, recorded: Any, field: str) -> bytes:
    """The bytes of ``fpath`` once their SHA-256 matched ``recorded`` (card ``field``)."""
    if not fpath.is_file():
        raise FileNotFoundError(f"{what} {fpath} is missing")
    data = fpath.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != recorded:
        raise ValueError(
            f"{what} {fpath} is corrupt or was modified after saving: its sha256 is "
            f"{_short(found)}, {field} in the card records {_short(recorded)}"
        )
    return data


def _read_state(folder: Path, card: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(card.get("state") or {})
    files = card.get("state_files") or {}
    if not isinstance(files, dict):
        raise ValueError(f"{folder / CARD_FILE} is corrupt: 'state_files' must be an object")
    for key, ref in files.items():
        fname = ref.get("file") if isinstance(ref, dict) else None
        if not isinstance(fname, str) or not _SAFE_NAME.match(fname):
            raise ValueError(f"{folder / CARD_FILE} names an invalid state file {fname!r}")
        fpath = folder / fname
        data = _read_checked(fpath, "state file", ref.get("sha256"),
                             f"state_files[{key!r}]['sha256']")
        try:  # no newline translation: the text comes back byte for byte
            meta[key] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"state file {fpath} is corrupt (not UTF-8): {exc}") from exc
    return meta


def _parse_weights(weights: Path, data: bytes) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except SafetensorError as exc:
        raise ValueError(f"weights file {weights} is corrupt: {exc}") from exc


@dataclass
class _Checked:
    """One saved model whose card and files passed their digests, not yet parsed."""

    folder: Path
    cls: type
    params: dict[str, Any]
    meta: dict[str, Any]
    weights: bytes
    members: dict[str, _Checked] | None


def _check_tree(folder: Path, feature_names: Sequence[str] | None,
                expected: str | None = None) -> _Checked:
    """Verify a saved model folder, recursively for ensembles, before parsing anything.

    Reads the card (own digest, format, class allow-list, features, ``params``), the
    state files and the weights (each against its recorded SHA-256) and, for an
    Ensemble, each member folder against ``members_sha256``. Only JSON is parsed here.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"no saved model at {folder} (not a folder)")
    card_file = folder / CARD_FILE
    raw, _ = _load_card(card_file, expected)
    card = _from_json(raw)
    dotted = card.get("class")
    cls = _resolve_class(dotted)
    if feature_names is not None:
        _check_features(card, feature_names, folder)
    params = card.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"{card_file} is corrupt: 'params' must be an object")
    meta = _read_state(folder, card)
    weights = _read_checked(folder / WEIGHTS_FILE, "weights file",
                            card.get("weights_sha256"), "weights_sha256")
    members: dict[str, _Checked] | None = None
    if _is_ensemble(str(dotted)):
        names = card.get("members")
        if not isinstance(names, list):
            raise ValueError(f"{card_file} is corrupt: 'members' must be a list")
        digests: dict[str, Any] = {}
        if raw["format"] == CARD_FORMAT:  # older cards record no member digests
            recorded = card.get("members_sha256")
            if not isinstance(recorded, dict) or set(recorded) != set(names):
                raise ValueError(f"{card_file} is corrupt: 'members_sha256' must map each "
                                 f"member {names} to its card's sha256")
            digests = recorded
        members = {}
        for name in names:
            sub = folder / MEMBERS_DIR / _check_member_name(name, "ensemble member name")
            members[name] = _check_tree(sub, feature_names, digests.get(name))
    return _Checked(folder, cls, params, meta, weights, members)


def _build(checked: _Checked) -> Any:
    """Parse the verified weights and rebuild the model (members first)."""
    tensors = _parse_weights(checked.folder / WEIGHTS_FILE, checked.weights)
    members = None
    if checked.members is not None:
        members = {name: _build(sub) for name, sub in checked.members.items()}
    cls, params, meta = checked.cls, checked.params, checked.meta
    try:
        if members is not None:
            return cls._registry_restore(params, tensors, meta, members)  # type: ignore[attr-defined]
        return cls._registry_restore(params, tensors, meta)  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"cannot restore {cls.__module__}.{cls.__qualname__} from "
                         f"{checked.folder}: the card's state, params or weights do not "
                         f"fit the class ({type(exc).__name__}: {exc})") from exc


def load_model(path: str | Path, *, feature_names: Sequence[str] | None = None) -> Any:
    """Load a model saved by :func:`save_model`, without unpickling anything.

    First verifies the whole save, parsing nothing but JSON: reads ``card.json``, checks
    its format and that its canonical JSON (without ``card_sha256``) hashes to
    ``card_sha256``, resolves the class through the allow-list :data:`ALLOWED_CLASSES`,
    checks ``feature_names``, reads ``weights.safetensors`` and each ``state.<key>.txt``
    and checks their SHA-256 against ``weights_sha256`` and ``state_files``; for an
    Ensemble, does the same for each ``members/<name>/`` and checks that the member
    card's digest is the one ``members_sha256`` records. Only then are the tensors
    parsed (:func:`safetensors.torch.load` on the bytes just hashed) and the models
    rebuilt with the class's ``_registry_restore``, members first. So no edited byte
    reaches LightGBM, safetensors or a network. A card of the older format
    ``workbench-model/1`` has no ``card_sha256``: it loads with a logged warning
    (logger ``workbench.models.registry``), its files still checked.

    Parameters
    ----------
    path : str or pathlib.Path
        The model folder.
    feature_names : sequence of str, optional
        The features that will be offered to the model, in order; checked against the
        card (and each member's card) before any file other than the card is read.

    Returns
    -------
    object
        The fitted model (same class and predictions as the one saved).

    Raises
    ------
    FileNotFoundError
        If the folder, its card, weights, a state file or a member folder is missing.
    ValueError
        If a card is corrupt or of another format, names a class outside the allow-list,
        or was modified after saving (its content no longer hashes to its
        ``card_sha256``, or a member's card is not the one the ensemble recorded), a
        file's SHA-256 does not match the card (corrupt or modified after saving), the
        weights cannot be parsed or do not fit the model, or ``feature_names`` differ
        from the card's (the message lists missing, extra or reordered names). Each
        message names the file or folder at fault.
    """
    return _build(_check_tree(Path(path), feature_names))
