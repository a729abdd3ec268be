"""Training the head (and the two baselines it must beat) on the mix or on operator JSONL.

    examples -> cap per stratum -> deterministic split (sha256 of text)
    train:  embed (progress bar; not for "lexical") + text features -> standardise ->
            [+ hashed n-grams for "combined"/"lexical"] -> logistic regression (class-balanced;
            or a one-hidden-layer MLP, "embedding" only) -> temperature fitted on a
            calibration slice of train -> refit on all of train
    report: held-out metrics, MATH-500 Spearman, and the same for a length-only model and
            TF-IDF + logistic regression trained on the same split
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.base import TIERS
from classifier.data import (
    DEFAULT_CAP_PER_STRATUM,
    Example,
    cap_strata,
    load_eval,
    load_mix,
    load_operator_jsonl,
    split,
    text_hash,
)
from classifier.embedder import PACKAGED_MODEL, Embedder
from classifier.evaluation import evaluate, level_spearman
from classifier.features import FEATURE_NAMES, text_features, window
from classifier.head import Head, save_head
from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS, rule_features
from classifier.lexical import LexicalSpec, LexicalVectorizer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]

Progress = Callable[[int], None]  # advance by n texts


@dataclass(frozen=True)
class TrainConfig:
    cap_per_stratum: int = DEFAULT_CAP_PER_STRATUM
    c: float = 1.0  # inverse L2 strength (logistic regression)
    hidden: int = 0  # 0 = logistic regression; >0 = MLP hidden units
    seed: int = 0
    model: str = PACKAGED_MODEL
    solve_rate_thresholds: tuple[float, float, float] = DEFAULT_SOLVE_RATE_THRESHOLDS
    version: str = "1"
    backend: str = "embedding"  # "embedding" | "combined" | "lexical" (the CLI: combined)
    dense_weight: float = 1.0  # scale of the standardised dense block beside lexical ones
    lexical: LexicalSpec = field(default_factory=LexicalSpec)
    # task heads: keyword-rule verdicts (`classifier.labels.rule_task`) the head reads as
    # one-hot features, and their scale beside the other blocks (lexical backends only)
    rule_classes: tuple[str, ...] = ()
    rule_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.backend not in ("embedding", "combined", "lexical"):
            raise ValueError(f"unknown backend {self.backend!r}")
        if self.backend != "embedding" and self.hidden > 0:
            raise ValueError("the MLP head is for the embedding backend only")
        if self.rule_classes and self.backend == "embedding":
            raise ValueError("rule features need a lexical backend (combined or lexical)")


@dataclass
class Dataset:
    train: list[Example]
    test: list[Example]
    eval: list[Example]  # MATH-500 (levels), evaluation only
    source: str


def build_dataset(data: Path, cfg: TrainConfig) -> Dataset:
    """A data directory (the public mix) or one operator JSONL file."""
    if data.is_file():
        examples = load_operator_jsonl(data, cfg.solve_rate_thresholds)
        evals: list[Example] = []
    else:
        examples = cap_strata(load_mix(data), cfg.cap_per_stratum, cfg.seed)
        evals = load_eval(data)
    train, test = split(examples)
    if not train or not test:
        raise ValueError(f"{data}: too few examples to split ({len(examples)})")
    missing = {t for t in TIERS} - {e.tier for e in train}
    if missing:
        raise ValueError(f"{data}: no training example for {sorted(m.value for m in missing)}")
    return Dataset(train, test, evals, data.name)


def labels_of(examples: Sequence[Example]) -> list[int]:
    return [e.tier.rank for e in examples]


def embed(
    embedder: Embedder,
    texts: Sequence[str],
    progress: Progress | None = None,
    chunk: int = 128,
    cache: Path | None = None,
) -> Array:
    """Embeddings of the windows of `texts`; `cache` (an .npz) keeps them across runs."""
    import numpy as np

    if embedder.dim == 0:  # no embedding model (lexical backend)
        if progress is not None:
            progress(len(texts))
        return np.zeros((len(texts), 0), np.float32)
    windows = [window(t) for t in texts]
    runtime = getattr(embedder, "runtime", "torch")  # int8 vectors differ from fp32 ones
    tag = "|".join([embedder.name, *([runtime] if runtime != "torch" else []),
                    f"{getattr(embedder, 'max_seq_length', '')}|"])
    keys = [text_hash(tag + w) for w in windows]
    known: dict[str, Array] = {}
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            known = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
    todo = sorted({k: i for i, k in enumerate(keys) if k not in known}.values())
    if progress is not None:
        progress(len(texts) - len(todo))
    for start in range(0, len(todo), chunk):
        idx = todo[start : start + chunk]
        vecs = embedder.encode([windows[i] for i in idx])
        for i, v in zip(idx, vecs, strict=True):
            known[keys[i]] = v
        if progress is not None:
            progress(len(idx))
    if cache is not None and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("wb") as f:
            np.savez(f, keys=np.array(list(known)), vecs=np.stack(list(known.values())))
    if not keys:
        return np.zeros((0, embedder.dim), np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def _fit_temperature(logits: Array, y: Sequence[int]) -> float:
    """The temperature (a grid over 0.25-6) that minimises the log loss of `logits / t`."""
    import numpy as np

    yt = np.asarray(y)
    best, best_nll = 1.0, float("inf")
    for t in np.geomspace(0.25, 6.0, 80):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = float(-logp[np.arange(len(yt)), yt].mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def _fit_layers(x: Array, y: Any, cfg: TrainConfig) -> tuple[list[Array], list[Array]]:
    import numpy as np

    if cfg.hidden <= 0:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=cfg.c, max_iter=3000, class_weight="balanced")
        lr.fit(x, y)
        return [lr.coef_.T.astype(np.float32)], [lr.intercept_.astype(np.float32)]
    from sklearn.neural_network import MLPClassifier

    # class balance by deterministic oversampling (MLPClassifier has no class_weight)
    yt = np.asarray(y)
    counts = np.bincount(yt, minlength=len(TIERS))
    rng = np.random.default_rng(cfg.seed)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(yt == k), counts.max(), replace=True) for k in range(len(TIERS))]
    )
    mlp = MLPClassifier(
        (cfg.hidden,), alpha=1.0 / cfg.c, max_iter=300, early_stopping=True,
        random_state=cfg.seed,
    )
    mlp.fit(x[idx], yt[idx])
    weights = [w.astype(np.float32) for w in mlp.coefs_]
    return weights, [b.astype(np.float32) for b in mlp.intercepts_]


def _fit_lexical(
    xs: Array, lex: Any, y: Any, cfg: TrainConfig, rules: Array | None = None
) -> dict[str, Any]:
    """One logistic regression over [hashed n-grams, dense block, rule one-hots]; weights as
    Head fields (the rule block's weights carry its `rule_weight` scale)."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    blocks = [lex, sp.csr_matrix(xs)]
    if rules is not None:
        blocks.append(sp.csr_matrix(rules * cfg.rule_weight))
    lr = LogisticRegression(C=cfg.c, max_iter=3000, class_weight="balanced")
    lr.fit(sp.hstack(blocks, format="csr"), y)
    n, d = lex.shape[1], xs.shape[1]
    coef = lr.coef_.T.astype(np.float32)
    rows = np.flatnonzero(np.abs(coef[:n]).max(axis=1) > 0).astype(np.int32)
    out = {
        "weights": (coef[n : n + d],),
        "biases": (lr.intercept_.astype(np.float32),),
        "lexical": cfg.lexical,
        "lex_rows": rows,
        "lex_weights": coef[:n][rows],
    }
    if rules is not None:
        out["rule_classes"] = cfg.rule_classes
        out["rule_weights"] = coef[n + d :] * cfg.rule_weight
    return out


def fit_head(
    emb: Array,
    feats: Array,
    y: Sequence[int],
    keys: Sequence[str],
    cfg: TrainConfig,
    texts: Sequence[str] = (),
    n_classes: int = len(TIERS),
) -> Head:
    """Standardise, fit, calibrate the temperature on a slice of train, refit on all of it.

    `texts` (the windows) feed the hashed lexical block unless `cfg.backend` is "embedding".
    """
    import numpy as np

    x = np.concatenate([emb, feats], axis=1).astype(np.float32)
    mean = x.mean(axis=0)
    scale = (x.std(axis=0) + 1e-6) / (cfg.dense_weight if cfg.backend != "embedding" else 1.0)
    xs = (x - mean) / scale
    yt = np.asarray(y)
    lex = None
    if cfg.backend != "embedding":
        if len(texts) != len(yt):
            raise ValueError("the lexical backends need the training texts")
        lex = LexicalVectorizer(cfg.lexical).transform(texts)
    rules = rule_features(texts, cfg.rule_classes) if cfg.rule_classes else None

    def fit(rows: Any) -> Head:
        if lex is None:
            w, b = _fit_layers(xs[rows], yt[rows], cfg)
            return Head(mean, scale, tuple(w), tuple(b))
        r = None if rules is None else rules[rows]
        return Head(mean, scale, **_fit_lexical(xs[rows], lex[rows], yt[rows], cfg, r))

    calib = np.array([int(k[8:16], 16) % 7 == 0 for k in keys])  # independent of the split
    temperature = 1.0
    if calib.sum() >= 50 and len(set(yt[~calib].tolist())) == n_classes:
        probe = fit(~calib)
        cal_texts = [t for t, c in zip(texts, calib, strict=True) if c] if lex is not None else None
        logits = probe.logits(emb[calib], feats[calib], cal_texts)
        temperature = _fit_temperature(logits, yt[calib])
    head = fit(np.ones(len(yt), dtype=bool))
    return replace(head, temperature=temperature)


def baseline_length(
    train: Sequence[str], y: Sequence[int], *others: Sequence[str]
) -> list[Array]:
    """Length-only: logistic regression on log characters and log words."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def f(texts: Sequence[str]) -> Array:
        return text_features([window(t) for t in texts])[:, :2]

    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
    model.fit(f(train), y)
    return [model.predict_proba(f(o)) for o in others]


def baseline_tfidf(
    train: Sequence[str], y: Sequence[int], *others: Sequence[str]
) -> list[Array]:
    """TF-IDF (word 1-2 grams) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=100_000, sublinear_tf=True),
        LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced"),
    )
    model.fit([window(t) for t in train], y)
    return [model.predict_proba([window(t) for t in o]) for o in others]


def score_report(
    test_y: Sequence[int], test_probs: Array, eval_levels: Sequence[int], eval_probs: Array | None
) -> dict[str, Any]:
    m = evaluate(test_y, test_probs)
    if eval_probs is not None and len(eval_levels) > 2:
        m["math500_spearman"] = level_spearman(eval_levels, eval_probs)
    return m


def train(
    data: Path,
    out: Path,
    embedder: Embedder,
    cfg: TrainConfig,
    progress: Progress | None = None,
    status: Callable[[str], None] = lambda s: None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate against the baselines, save the artifact; return the report."""
    import numpy as np

    ds = build_dataset(data, cfg)
    evals = [e for e in ds.eval if e.level is not None]
    if (embedder.dim == 0) != (cfg.backend == "lexical"):
        raise ValueError(f"backend {cfg.backend!r} does not fit embedder {embedder.name!r}")
    status(f"embedding {len(ds.train) + len(ds.test) + len(evals)} texts with {embedder.name}")
    emb = embed(embedder, [e.text for e in ds.train + ds.test + evals], progress, cache=cache)
    n_tr, n_te = len(ds.train), len(ds.test)
    wins = [window(e.text) for e in ds.train + ds.test + evals]
    feats = text_features(wins)
    y_tr, y_te = labels_of(ds.train), labels_of(ds.test)
    status(f"fitting the head ({cfg.backend})")
    keys = [text_hash(e.text) for e in ds.train]
    head = fit_head(emb[:n_tr], feats[:n_tr], y_tr, keys, cfg, wins[:n_tr])
    te, ev = slice(n_tr, n_tr + n_te), slice(n_tr + n_te, None)
    p_te = head.predict_proba(emb[te], feats[te], wins[te])
    p_ev = head.predict_proba(emb[ev], feats[ev], wins[ev]) if evals else None
    levels = [e.level for e in evals if e.level is not None]
    status("fitting the baselines")
    tr_text, te_text, ev_text = ([e.text for e in s] for s in (ds.train, ds.test, evals))
    length = baseline_length(tr_text, y_tr, te_text, ev_text or te_text[:1])
    tfidf = baseline_tfidf(tr_text, y_tr, te_text, ev_text or te_text[:1])
    metrics = {
        "model": score_report(y_te, p_te, levels, p_ev),
        "length_only": score_report(y_te, length[0], levels, length[1] if evals else None),
        "tfidf_lr": score_report(y_te, tfidf[0], levels, tfidf[1] if evals else None),
    }
    conf = p_te.max(axis=1)
    pred = p_te.argmax(axis=1)
    extra = {
        "heldout_confidence": conf.astype(np.float32),
        "heldout_pred": pred.astype(np.int8),
        "heldout_true": np.asarray(y_te, dtype=np.int8),
    }
    card = {
        "name": "ttc-router difficulty head",
        "version": cfg.version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "embedding_model": embedder.name if embedder.dim else None,
        "embedding_runtime": getattr(embedder, "runtime", "torch") if embedder.dim else None,
        "max_seq_length": getattr(embedder, "max_seq_length", None),
        "static_table_sha256": getattr(embedder, "card", {}).get("sha256"),
        "head": "logistic_regression" if cfg.hidden <= 0 else f"mlp_{cfg.hidden}",
        "config": {
            **asdict(cfg),
            "solve_rate_thresholds": list(cfg.solve_rate_thresholds),
            "lexical": cfg.lexical.as_card(),
        },
        "label_mapping": "classifier/labels.py (SOURCES, solve_rate_tier)",
        "training_data": {
            "source": ds.source,
            "train": n_tr,
            "test": n_te,
            "math500_eval": len(evals),
            "split": "sha256(text) % 5 == 0 -> test",
            "per_tier_train": dict(Counter(e.tier.value for e in ds.train)),
            "per_stratum": dict(sorted(Counter(e.stratum for e in ds.train + ds.test).items())),
        },
        "features": list(FEATURE_NAMES),
        "metrics": metrics,
        "heldout_confidence_quantiles": {
            f"{q:.2f}": float(np.quantile(conf, q)) for q in np.linspace(0, 1, 21)
        },
    }
    save_head(replace(head, card=card, extra=extra), out)
    return metrics
