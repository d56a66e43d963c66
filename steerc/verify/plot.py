"""`--plot OUT.png`: mean feature activation base vs steered, one bar pair per feature."""

from __future__ import annotations

from pathlib import Path

from steerc.diagnostics import Diagnostic


PLOT_FEATURES = 20


def plot_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_plot(report, out: str | Path) -> Diagnostic | None:
    """Write the PNG; returns a W502 warning instead when matplotlib is not installed or
    there is nothing to plot."""
    if not plot_available():
        return Diagnostic("W502", f"no plot written to {out}: matplotlib is not installed", None,
                          "pip install matplotlib")
    if not report.features:
        return Diagnostic("W502", f"no plot written to {out}: the spec targets no feature")
    import matplotlib

    matplotlib.use("Agg")  # no display on CI machines
    import matplotlib.pyplot as plt

    # the features with the highest base mean (a set rule can target hundreds)
    feats = sorted(report.features, key=lambda f: -f.base_mean)[:PLOT_FEATURES]
    names = [f.target.feature.ref
             + (f"\n{f.target.feature.label[:24]}" if f.target.feature.label else "") for f in feats]
    xs = range(len(feats))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(feats) + 2), 3.6), dpi=120)
    w = 0.38
    ax.bar([x - w / 2 for x in xs], [f.base_mean for f in feats], w, label="base", color="#7a8ba6")
    ax.bar([x + w / 2 for x in xs], [f.steered_mean for f in feats], w, label="steered",
           color="#d0643b")
    ax.set_xticks(list(xs), names, fontsize=7, rotation=30 if len(feats) > 6 else 0, ha="right"
                  if len(feats) > 6 else "center")
    ax.set_ylabel("mean activation at hook")
    more = len(report.features) - len(feats)
    ax.set_title(f"{Path(report.checkpoint).name}: targeted features ({report.prompt_tokens} tokens)"
                 + (f"; top {len(feats)} of {len(report.features)} by base mean" if more else ""),
                 fontsize=9)
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(out))
    plt.close(fig)
    return None
