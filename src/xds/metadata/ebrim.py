"""The ebRIM 3.0 codec of XDS metadata (ITI TF-3 §4.2.3, §4.2.2; xds-notes §3): one import for
both directions.

Decoding (:mod:`xds.metadata.ebrim_decode`) turns an ``lcm:SubmitObjectsRequest`` or a
``rim:RegistryObjectList`` into a :class:`~xds.metadata.model.Submission` plus the wire findings
the model cannot carry; encoding (:mod:`xds.metadata.ebrim_encode`) writes the model back,
schema-valid, with generated ids for classifications and external identifiers. Extra
(``urn:``) slots and multi-valued slots keep their value order through decode -> encode -> decode.

Public API::

    decode_submit_objects_request(el) -> Decoded
    decode_registry_object_list(el) -> Decoded
    Decoded(submission: Submission, findings: list[RegistryError])
    encode_submit_objects_request(sub) -> el
    encode_registry_object_list(objects, *, for_query=True) -> el
    encode_object(obj, *, for_query=True) -> el
    encode_object_bytes(obj, *, for_query=True) -> bytes   # no tree: what a registry stores
    encode_object_refs(ids) -> el
"""

from __future__ import annotations

from xds.metadata.ebrim_decode import Decoded, decode_registry_object_list, decode_submit_objects_request
from xds.metadata.ebrim_encode import (
    encode_object,
    encode_object_bytes,
    encode_object_refs,
    encode_registry_object_list,
    encode_submit_objects_request,
)

__all__ = [
    "Decoded",
    "decode_registry_object_list",
    "decode_submit_objects_request",
    "encode_object",
    "encode_object_bytes",
    "encode_object_refs",
    "encode_registry_object_list",
    "encode_submit_objects_request",
]
