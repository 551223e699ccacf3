"""XDS metadata: the domain model, the ebRIM 3.0 codec and validation with TF error codes."""

from xds.metadata.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    RegistryObject,
    Slot,
    Submission,
    SubmissionSet,
)

__all__ = [
    "Association",
    "Author",
    "Code",
    "DocumentEntry",
    "Folder",
    "RegistryObject",
    "Slot",
    "Submission",
    "SubmissionSet",
]
