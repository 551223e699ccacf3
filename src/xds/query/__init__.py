"""The stored-query model of ITI-18 (and ITI-51): value grammar, query definitions, requests.

* :mod:`xds.query.grammar`: the parameter value syntax (quoted strings, lists, codes, times).
* :mod:`xds.query.definitions`: the 16 stored queries as data (ids, parameters, rules).
* :mod:`xds.query.request`: ``AdhocQueryRequest`` <-> :class:`StoredQuery`, validated with the
  TF error codes.
"""

from xds.query.definitions import (
    DEFINITIONS,
    HOME_COMMUNITY_ID,
    Param,
    QueryDefinition,
    QueryParam,
    StoredQueryId,
    ValueKind,
    definition_for,
    find_definition,
)
from xds.query.grammar import CodeValue, ParseError
from xds.query.request import (
    ParamValue,
    ReturnType,
    StoredQuery,
    TimeRange,
    build_adhoc_query,
    parse_query,
)

__all__ = [
    "DEFINITIONS",
    "HOME_COMMUNITY_ID",
    "CodeValue",
    "Param",
    "ParamValue",
    "ParseError",
    "QueryDefinition",
    "QueryParam",
    "ReturnType",
    "StoredQuery",
    "StoredQueryId",
    "TimeRange",
    "ValueKind",
    "build_adhoc_query",
    "definition_for",
    "find_definition",
    "parse_query",
]
