"""`steerc catalogue calibrate`: a catalogue for any SAE from any corpus (docs/catalogue.md).

Pipeline: corpus (streamed windows) -> model up to the deepest SAE hook -> SAE activations
-> mergeable `Partial` statistics (local engine, or Ray Data) -> labels, tags, output-side
tokens -> a validated catalogue JSON. Importing this package imports nothing heavy (the
CLI registers it on every start); `Job`, `Source` and `calibrate` load on first use.
"""

__all__ = ["Job", "Source", "calibrate"]


def __getattr__(name: str):
    if name == "Job":
        from steerc.catalogue.calibrate.job import Job
        return Job
    if name == "Source":
        from steerc.catalogue.calibrate.corpus import Source
        return Source
    if name == "calibrate":
        from steerc.catalogue.calibrate.run import calibrate
        return calibrate
    raise AttributeError(name)
