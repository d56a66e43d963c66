"""steerc.commands: one module per subcommand (see steerc/cli.py), plus shared flags."""


def add_allow_pickle_argument(p) -> None:
    """`--allow-pickle` for commands that read SAE files (E307 names it)."""
    p.add_argument("--allow-pickle", action="store_true",
                   help="let torch-pickled SAE files (OpenAI, Goodfire .pt/.pth) load; pickles can "
                        "run code, so only for files you trust (read with torch.load(weights_only=True))")


def show(text: str = "", file=None) -> None:
    """print() for human-readable output: control and bidi characters that came from an
    input (a catalogue label, a file name, model output) are shown escaped, never sent to
    the terminal raw (see `steerc.diagnostics.printable`). JSON output uses print()."""
    import sys

    from steerc.diagnostics import printable

    print(printable(text, keep="\n\t"), file=file if file is not None else sys.stdout)
