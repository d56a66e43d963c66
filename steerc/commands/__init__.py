"""steerc.commands: one module per subcommand (see steerc/cli.py), plus shared flags."""


def add_allow_pickle_argument(p) -> None:
    """`--allow-pickle` for commands that read SAE files (E307 names it)."""
    p.add_argument("--allow-pickle", action="store_true",
                   help="let torch-pickled SAE files (OpenAI, Goodfire .pt/.pth) load; pickles can "
                        "run code, so only for files you trust (read with torch.load(weights_only=True))")


def positive_int(text: str) -> int:
    """argparse `type=` for counts that must be at least 1 (`--jobs`): a usage error (exit 2)
    otherwise, not a silent clamp."""
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got '{text}'") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n
