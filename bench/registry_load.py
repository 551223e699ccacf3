"""Build a Document Registry database of N DocumentEntries quickly, for the benchmarks.

    python bench/registry_load.py --db sqlite --entries 1000000
    python bench/registry_load.py --db pg --entries 100000 --keep

The schema is Alembic's own: ``upgrade()`` runs on the empty database, the secondary indexes
(every ``Index`` of ``registry.store.schema.metadata``) are dropped, the rows are bulk-loaded
(raw ``sqlite3`` executemany / psycopg binary ``COPY``), and the indexes are recreated from the
same metadata, followed by ANALYZE. The index definitions read back from the database are
compared with those Alembic made, and Alembic's autogenerate comparison must find no difference.

Content: patients of 10 DocumentEntries each (~90 % Approved; each Deprecated entry is replaced
by an RPLC from a later one), in SubmissionSets of 2 entries with one HasMember association per
entry; codes, authors and reference ids from :mod:`registry_data`. Every ``xml`` column holds the
project codec's encoding of that very object (templates per structural variant, values
substituted and XML-escaped).
"""

from __future__ import annotations

import argparse
import queue
import random
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import Engine, Index, text
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex

import registry_data as rd
from benchutil import REGISTRY_SCRATCH, disk_usage, machine, pg_create, pg_database_size, pg_drop, pg_url, write_json
from registry.store import schema as t
from registry.store.db import make_engine, upgrade
from xds.metadata.ebrim import decode_registry_object_list, encode_object_bytes
from xds.vocabulary import NS_RIM, AssociationType, ObjectType, Status

DOCS_PER_PATIENT = 10
DOCS_PER_SUBMISSION = 2
DEPRECATED_SHARE = 0.10
CHUNK_PATIENTS = 1000

TABLES: dict[str, tuple[str, ...]] = {
    "patient": ("id", "patient_id", "family_name", "given_name", "birth_date", "sex", "updated"),
    "document_entry": tuple(c.name for c in t.document_entry.columns),
    "document_entry_code": ("entry_id", "kind", "code", "scheme"),
    "document_entry_author": ("entry_id", "person"),
    "document_entry_reference": ("entry_id", "value"),
    "submission_set": tuple(c.name for c in t.submission_set.columns),
    "submission_set_author": ("set_id", "person"),
    "association": tuple(c.name for c in t.association.columns),
}


# -- content -------------------------------------------------------------------------------


class Templates:
    """One encoded template per DocumentEntry variant, plus SubmissionSet and associations."""

    def __init__(self) -> None:
        self.documents: dict[rd.Variant, rd.Template] = {}
        for variant in rd.variants():
            self.documents[variant] = rd.Template(_encode(rd.document_entry(variant, _de_tokens(variant))))
        self.submission_set = rd.Template(_encode(rd.submission_set({k: rd.token(k) for k in
                                                                     ("ID", "TITLE", "UID", "PID", "STIME", "AUTHOR", "INST")})))
        tokens = {k: rd.token(k) for k in ("ID", "SRC", "TGT")}
        self.has_member = rd.Template(_encode(rd.association(tokens, kind=AssociationType.HAS_MEMBER)))
        self.rplc = rd.Template(_encode(rd.association(tokens, kind=AssociationType.RPLC)))
        self.self_check()

    def self_check(self) -> None:
        """A filled template must equal the codec's own encoding of the same object (child ids
        aside), or the loaded XML would not be what the registry stores."""
        for variant, template in self.documents.items():
            raw: dict[str, object] = {
                "ID": "urn:uuid:0a0b0c0d-0000-4000-8000-000000000001", "STATUS": Status.DEPRECATED, "TITLE": "CT <Chest> & \"more\"",
                "UID": "1.2.3.4.5", "PID": rd.patient_id(7), "AUTHOR": rd.authors_pool()[0], "INST": rd.INSTITUTIONS[5],
                "ROLE": rd.ROLES[0], "CTIME": "20240102030405", "SSTART": "202401020304", "SSTOP": "202401020314",
                "HASH": "ab" * 20, "SIZE": "1234", "REPO": rd.REPOSITORIES[1], "SRCPID": "L7^^^&1.2.3&ISO",
                "NAME": "DOE^JANE^^^", "BIRTH": "19700101", "SEX": "F", "ACC": rd.accession(7), "STUDY": rd.study_uid("1.2", 7),
                "HCFT": rd.HCFT_CODES[1], "PRACTICE": rd.PRACTICE_CODES[2], "CONF0": rd.CONF_N, "CONF1": rd.CONF_R,
                "EVENT0": rd.MODALITIES[0], "EVENT1": rd.MODALITIES[4],
            }
            holes: dict[str, str] = {}
            for key, value in raw.items():
                if isinstance(value, rd.Code):
                    holes.update(rd.code_values(key, value))
                else:
                    holes[key] = rd.xml_escape(str(value))
            holes.update({f"K{k}": f"child-{k}" for k in range(template.children)})
            expected = _encode(rd.document_entry(variant, raw))
            count = iter(range(1000))
            expected = re.sub(r' id="urn:uuid:[^"]+"', lambda m: m.group(0) if raw["ID"] in m.group(0) else f' id="child-{next(count)}"', expected)
            if template.render(holes).decode("utf-8") != expected:
                raise AssertionError(f"template of {variant} does not reproduce the codec's encoding")


def _encode(obj: object) -> str:
    """The bytes the registry stores for ``obj`` (ITI-42 writes ``encode_object_bytes``)."""
    return encode_object_bytes(obj).decode("utf-8")  # type: ignore[arg-type]


def _de_tokens(variant: rd.Variant) -> dict[str, object]:
    v: dict[str, object] = {k: rd.token(k) for k in (
        "ID", "STATUS", "TITLE", "UID", "PID", "AUTHOR", "INST", "ROLE", "CTIME", "SSTART", "SSTOP", "HASH",
        "SIZE", "REPO", "SRCPID", "NAME", "BIRTH", "SEX", "ACC", "STUDY")}
    v["HCFT"] = rd.code_tokens("HCFT")
    v["PRACTICE"] = rd.code_tokens("PRACTICE")
    for i in range(variant.confs):
        v[f"CONF{i}"] = rd.code_tokens(f"CONF{i}")
    for i in range(variant.events):
        v[f"EVENT{i}"] = rd.code_tokens(f"EVENT{i}")
    return v


@dataclass(slots=True)
class Chunk:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {name: [] for name in TABLES})


class Generator:
    """Rows of a registry, one chunk of patients at a time (deterministic for a seed).

    Written for speed (a million entries in well under a minute of CPU): random draws use
    ``random()`` directly, constant strings are prepared once, and each object's encoding is one
    ``%``-format of its template.
    """

    def __init__(self, entries: int, *, seed: int) -> None:
        if entries % DOCS_PER_PATIENT:
            raise ValueError(f"entries must be a multiple of {DOCS_PER_PATIENT}")
        self.patients = entries // DOCS_PER_PATIENT
        self.seed = seed
        self.rng = random.Random(seed)
        self.ids = rd.Ids(self.rng)
        self.templates = Templates()
        self.authors = [(a, rd.xml_escape(a)) for a in rd.authors_pool()]
        self.institutions = [rd.xml_escape(i) for i in rd.INSTITUTIONS]
        self.now = datetime.now(UTC).isoformat(timespec="seconds")
        # Every day from 2015 to 2025 as DTM date text; documents pick days from it.
        first = datetime(2015, 1, 1, tzinfo=UTC).timestamp()
        self.days = [time.strftime("%Y%m%d", time.gmtime(first + 86400 * d)) for d in range(11 * 365)]
        self.kinds: list[tuple[float, rd.DocKind]] = []
        acc = 0.0
        for kind in rd.KINDS:
            acc += kind.weight
            self.kinds.append((acc, kind))
        self.kinds[-1] = (2.0, self.kinds[-1][1])
        # Per variant (keyed by kind name, conf and event counts): template and child-id prefixes.
        self.prepared: dict[tuple[str, int, int], tuple[rd.Template, list[tuple[str, str]]]] = {}
        for variant, template in self.templates.documents.items():
            kids = [(f"K{k}", f"{self.ids.prefix}{rd.Ids.DE_CHILD + k:04x}-") for k in range(template.children)]
            self.prepared[(variant.kind.name, variant.confs, variant.events)] = (template, kids)
        # Escaped hole values of each code in each role, looked up by the code's identity.
        self.code_values: dict[tuple[str, int], dict[str, str]] = {}
        codes = (*rd.HCFT_CODES, *rd.PRACTICE_CODES, *rd.MODALITIES, rd.CONF_N, rd.CONF_R, rd.CONF_V)
        for name in ("HCFT", "PRACTICE", "CONF0", "CONF1", "EVENT0", "EVENT1"):
            for code in codes:
                self.code_values[(name, id(code))] = rd.code_values(name, code)
        self.de_prefix = f"{self.ids.prefix}{rd.Ids.DE:04x}-"
        self.ss_kids = [(f"K{k}", f"{self.ids.prefix}{rd.Ids.SS_CHILD + k:04x}-") for k in range(self.templates.submission_set.children)]

    def _codes(self, name: str, code: rd.Code) -> dict[str, str]:
        return self.code_values[(name, id(code))]

    def chunk_count(self, size: int = CHUNK_PATIENTS) -> int:
        return -(-self.patients // size)

    def chunk(self, index: int, size: int = CHUNK_PATIENTS) -> Chunk:
        """The rows of patients ``index * size`` onwards; each chunk has its own random stream,
        so chunks can be made in any order and in other processes."""
        self.rng = random.Random(self.seed * 1_000_003 + index)
        chunk = Chunk()
        for p in range(index * size, min((index + 1) * size, self.patients)):
            self._patient(p, chunk.rows)
        return chunk

    def chunks(self) -> Iterator[Chunk]:
        """All chunks, in order. (Making them in other processes costs more in pickling than it
        saves: the rows are millions of small objects.)"""
        for i in range(self.chunk_count()):
            yield self.chunk(i)

    def _patient(self, p: int, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        rnd, ids = self.rng.random, self.ids
        pid = rd.patient_id(p + 1)
        pid_x = rd.xml_escape(pid)
        family = rd.FAMILY[int(rnd() * len(rd.FAMILY))]
        given = rd.GIVEN[int(rnd() * len(rd.GIVEN))]
        sex = "F" if rnd() < 0.5 else "M"
        birth = f"{1930 + int(rnd() * 90)}{1 + int(rnd() * 12):02d}{1 + int(rnd() * 28):02d}"
        patient = {
            "PID": pid_x, "SRCPID": rd.xml_escape(f"L{p + 1}^^^&1.3.6.1.4.1.21367.13.30.1&ISO"),
            "NAME": f"{family.upper()}^{given.upper()}^^^", "BIRTH": birth, "SEX": sex,
        }
        rows["patient"].append((p + 1, pid, family, given, birth, sex, self.now))

        first_doc = p * DOCS_PER_PATIENT  # 0-based entry number of the patient's first document
        deprecated = [rnd() < DEPRECATED_SHARE for _ in range(DOCS_PER_PATIENT)]
        days = sorted(int(rnd() * len(self.days)) for _ in range(DOCS_PER_PATIENT))
        ss_t, hm_t, rplc_t = self.templates.submission_set, self.templates.has_member, self.templates.rplc
        assoc = rows["association"]
        for s in range(DOCS_PER_PATIENT // DOCS_PER_SUBMISSION):
            set_n = first_doc // DOCS_PER_SUBMISSION + s
            set_hex = f"{set_n:012x}"
            set_uuid = f"{ids.prefix}{rd.Ids.SS:04x}-{set_hex}"
            author, author_x = self.authors[int(rnd() * len(self.authors))]
            inst_x = self.institutions[int(rnd() * len(self.institutions))]
            last_day = self.days[days[(s + 1) * DOCS_PER_SUBMISSION - 1]]
            stime = f"{last_day}{19 + int(rnd() * 4):02d}{int(rnd() * 60):02d}00"
            uid = ids.uid(2, set_n)
            ss_values = {"ID": set_uuid, "TITLE": "Imaging submission", "UID": uid, "PID": pid_x, "STIME": stime,
                         "AUTHOR": author_x, "INST": inst_x}
            for name, prefix in self.ss_kids:
                ss_values[name] = prefix + set_hex
            rows["submission_set"].append((
                set_n + 1, set_uuid, uid, rd.SOURCE_ID, pid, Status.APPROVED, stime,
                rd.CONTENT_TYPE.code, rd.CONTENT_TYPE.scheme, ss_t.render(ss_values),
            ))
            rows["submission_set_author"].append((set_n + 1, author))
            for j in range(s * DOCS_PER_SUBMISSION, (s + 1) * DOCS_PER_SUBMISSION):
                n = first_doc + j
                nhex = f"{n:012x}"
                de_uuid = self.de_prefix + nhex
                status = Status.DEPRECATED if deprecated[j] else Status.APPROVED
                self._document(n, nhex, de_uuid, pid, status, self.days[days[j]], author, author_x, inst_x, patient, rows)
                hm = f"{ids.prefix}{rd.Ids.HAS_MEMBER:04x}-{nhex}"
                assoc.append((None, hm, AssociationType.HAS_MEMBER, set_uuid, de_uuid, Status.APPROVED,
                              hm_t.render({"ID": hm, "SRC": set_uuid, "TGT": de_uuid})))
        # A Deprecated entry was replaced by the entry at the same place in the next submission.
        for j in range(DOCS_PER_PATIENT - DOCS_PER_SUBMISSION):
            if deprecated[j]:
                n = first_doc + j
                rid = ids.uuid(rd.Ids.RPLC, n)
                src, tgt = self.de_prefix + f"{n + DOCS_PER_SUBMISSION:012x}", self.de_prefix + f"{n:012x}"
                assoc.append((None, rid, AssociationType.RPLC, src, tgt, Status.APPROVED,
                              rplc_t.render({"ID": rid, "SRC": src, "TGT": tgt})))

    def _document(
        self, n: int, nhex: str, de_uuid: str, pid: str, status: str, day: str, author: str, author_x: str,
        inst_x: str, patient: dict[str, str], rows: dict[str, list[tuple[Any, ...]]],
    ) -> None:
        rnd, ids = self.rng.random, self.ids
        r = rnd()
        kind = next(k for bound, k in self.kinds if r < bound)
        confs = 2 if rnd() < 0.1 else 1
        events = kind.event_counts[int(rnd() * len(kind.event_counts))]
        template, kids = self.prepared[(kind.name, confs, events)]
        conf_codes = [rd.CONF_N, rd.CONF_R] if confs == 2 else [rd.CONF_R if rnd() < 0.05 else rd.CONF_N]
        event_codes = []
        if events:
            first = int(rnd() * len(rd.MODALITIES))
            event_codes.append(rd.MODALITIES[first])
            if events > 1:
                event_codes.append(rd.MODALITIES[(first + 1 + int(rnd() * (len(rd.MODALITIES) - 1))) % len(rd.MODALITIES)])
        hcft = rd.HCFT_CODES[int(rnd() * len(rd.HCFT_CODES))]
        if kind.name == "consultation":
            practice = rd.PRACTICE_CODES[1 + int(rnd() * (len(rd.PRACTICE_CODES) - 1))]
        else:
            practice = rd.PRACTICE_CODES[0]
        hour, minute = 7 + int(rnd() * 12), int(rnd() * 50)
        uid = ids.uid(1, n)
        digest = f"{self.rng.getrandbits(160):040x}"
        size = 2_000 + int(rnd() * 2_000_000)
        repo = rd.REPOSITORIES[int(rnd() * len(rd.REPOSITORIES))]
        acc = rd.accession(n)
        study = rd.study_uid(ids.oid_root, n)
        ctime, sstart, sstop = f"{day}{hour + 1:02d}{minute:02d}00", f"{day}{hour:02d}{minute:02d}", f"{day}{hour:02d}{minute + 9:02d}"
        v = {
            "ID": de_uuid, "STATUS": status, "TITLE": kind.titles[int(rnd() * len(kind.titles))], "UID": uid,
            "AUTHOR": author_x, "INST": inst_x, "ROLE": rd.ROLES[0] if kind.name == "consultation" else rd.ROLES[1],
            "CTIME": ctime, "SSTART": sstart, "SSTOP": sstop, "HASH": digest, "SIZE": str(size), "REPO": repo,
            "ACC": acc.replace("&", "&amp;"), "STUDY": study,
        }
        v.update(patient)
        v.update(self._codes("HCFT", hcft))
        v.update(self._codes("PRACTICE", practice))
        for i, c in enumerate(conf_codes):
            v.update(self._codes(f"CONF{i}", c))
        for i, c in enumerate(event_codes):
            v.update(self._codes(f"EVENT{i}", c))
        for name, prefix in kids:
            v[name] = prefix + nhex
        row_id = n + 1
        rows["document_entry"].append((
            row_id, de_uuid, uid, pid, status, ObjectType.STABLE_DOCUMENT_ENTRY, kind.mime_type, digest, size, repo,
            ctime, sstart, sstop, kind.class_code.code, kind.class_code.scheme, kind.type_code.code,
            kind.type_code.scheme, kind.format_code.code, kind.format_code.scheme, hcft.code, hcft.scheme,
            practice.code, practice.scheme, template.render(v),
        ))
        codes = rows["document_entry_code"]
        for c in conf_codes:
            codes.append((row_id, "conf", c.code, c.scheme))
        for c in event_codes:
            codes.append((row_id, "event", c.code, c.scheme))
        rows["document_entry_author"].append((row_id, author))
        refs = rows["document_entry_reference"]
        refs.append((row_id, acc))
        if kind.reference_ids > 1:
            refs.append((row_id, study))


# -- schema handling ------------------------------------------------------------------------


def secondary_indexes() -> list[Index]:
    """Every Index the application schema defines (unique constraints and primary keys stay)."""
    return sorted((idx for table in t.metadata.sorted_tables for idx in table.indexes), key=lambda i: str(i.name))


def index_definitions(engine: Engine) -> dict[str, str]:
    """name -> definition of the database's indexes, as the database reports them."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("select name, sql from sqlite_master where type = 'index'")).all()
            return {name: sql or "(automatic)" for name, sql in rows}
        rows = conn.execute(text("select indexname, indexdef from pg_indexes where schemaname = 'public'")).all()
        return dict(rows)  # type: ignore[arg-type]


def schema_differences(engine: Engine) -> list[str]:
    """Alembic's autogenerate comparison of the database with the application metadata."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), t.metadata)
    return [repr(d) for d in diffs]


# -- writers -------------------------------------------------------------------------------


class SqliteWriter:
    """Raw sqlite3, one transaction, no journal (a failed build is simply deleted)."""

    threads = 1

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-524288", "temp_store=MEMORY",
                       "foreign_keys=OFF", "locking_mode=EXCLUSIVE"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.sql = {name: f'INSERT INTO "{name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
                    for name, cols in TABLES.items()}

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def start_load(self) -> None:
        self.conn.execute("BEGIN")

    def write(self, chunk: Chunk, _slot: int) -> None:
        for name, rows in chunk.rows.items():
            if rows:
                self.conn.executemany(self.sql[name], rows)

    def finish_load(self) -> None:
        self.conn.execute("COMMIT")

    def analyze(self) -> None:
        self.conn.execute("ANALYZE")

    def close(self) -> None:
        self.conn.execute("PRAGMA locking_mode=NORMAL")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.close()


PG_TYPES = {"BIGINT": "int8", "INTEGER": "int4", "VARCHAR": "text", "TEXT": "text", "BYTEA": "bytea"}


class PgWriter:
    """psycopg binary COPY on two connections in parallel (the server compresses the XML)."""

    threads = 2

    def __init__(self, url: str, engine: Engine) -> None:
        import psycopg

        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.admin = psycopg.connect(self.dsn, autocommit=True)
        self.admin.execute("SET maintenance_work_mem = '1GB'")
        self.loaders: list[Any] = []
        self.types: dict[str, list[str]] = {}
        self.copy_sql: dict[str, str] = {}
        for name, cols in TABLES.items():
            if name == "association":
                cols = cols[1:]  # the id is a serial: leave it to the sequence
            table = t.metadata.tables[name]
            self.types[name] = [PG_TYPES[table.c[c].type.compile(dialect=engine.dialect).split("(")[0]] for c in cols]
            self.copy_sql[name] = f'COPY "{name}" ({", ".join(cols)}) FROM STDIN (FORMAT BINARY)'

    def execute(self, sql: str) -> None:
        self.admin.execute(sql)

    def start_load(self) -> None:
        import psycopg

        for _ in range(self.threads):
            conn = psycopg.connect(self.dsn, autocommit=True)
            # Rows are consistent by construction: skip the per-row foreign-key triggers while
            # loading (verify() checks integrity with anti-joins afterwards).
            conn.execute("SET session_replication_role = replica")
            conn.execute("SET synchronous_commit = off")
            self.loaders.append(conn)

    def write(self, chunk: Chunk, slot: int) -> None:
        from psycopg.copy import QueuedLibpqWriter

        conn = self.loaders[slot]
        with conn.transaction():
            cur = conn.cursor()
            for name, rows in chunk.rows.items():
                if not rows:
                    continue
                if name == "association":
                    rows = [r[1:] for r in rows]
                with cur.copy(self.copy_sql[name], writer=QueuedLibpqWriter(cur)) as copy:
                    copy.set_types(self.types[name])
                    for row in rows:
                        copy.write_row(row)

    def finish_load(self) -> None:
        for conn in self.loaders:
            conn.close()
        self.loaders.clear()
        # Serial columns loaded with explicit ids: move their sequences past the data.
        for name in ("patient", "document_entry", "submission_set"):
            self.admin.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM \"{name}\"))")

    def analyze(self) -> None:
        self.admin.execute("VACUUM ANALYZE")

    def close(self) -> None:
        self.admin.close()


def _pipeline(chunks: Iterator[Chunk], writer: SqliteWriter | PgWriter, on_chunk: Any) -> None:
    """Generate in this thread while writer threads load (sqlite3 and libpq release the GIL)."""
    q: queue.Queue[Chunk | None] = queue.Queue(maxsize=writer.threads + 1)
    errors: list[BaseException] = []

    def work(slot: int) -> None:
        while (chunk := q.get()) is not None:
            if errors:
                continue
            try:
                writer.write(chunk, slot)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(writer.threads)]
    for th in threads:
        th.start()
    try:
        for chunk in chunks:
            on_chunk(chunk)
            while not errors:
                try:
                    q.put(chunk, timeout=1)
                    break
                except queue.Full:
                    continue
            if errors:
                break
    finally:
        for _ in threads:
            q.put(None)
        for th in threads:
            th.join()
    if errors:
        raise errors[0]


# -- the build -----------------------------------------------------------------------------


@dataclass(slots=True)
class LoadReport:
    backend: str
    url: str
    entries: int
    patients: int
    rows: dict[str, int]
    seconds_generate_and_load: float
    seconds_index: float
    seconds_analyze: float
    seconds_total: float
    size_bytes: int
    xml_bytes_per_entry: float
    index_definitions_match: bool
    schema_differences: list[str]

    def summary(self) -> str:
        total_rows = sum(self.rows.values())
        return (
            f"{self.backend:6} {self.entries:>9,} entries ({total_rows:,} rows): load {self.seconds_generate_and_load:6.1f} s"
            f" + index {self.seconds_index:5.1f} s + analyze {self.seconds_analyze:5.1f} s = {self.seconds_total:6.1f} s;"
            f" {self.size_bytes / 2**20:,.0f} MiB; xml {self.xml_bytes_per_entry:,.0f} B/entry;"
            f" schema {'identical to Alembic' if self.index_definitions_match and not self.schema_differences else 'DIFFERENT'}"
        )


def sqlite_path(entries: int, scratch: Path = REGISTRY_SCRATCH) -> Path:
    return scratch / f"registry_{entries}.sqlite"


def pg_name(entries: int) -> str:
    return f"xds_bench_reg_{entries}"


def database_url(backend: str, entries: int, scratch: Path = REGISTRY_SCRATCH) -> str:
    return f"sqlite:///{sqlite_path(entries, scratch)}" if backend == "sqlite" else pg_url(pg_name(entries))


def build(
    backend: str, entries: int, *, seed: int = 1, scratch: Path = REGISTRY_SCRATCH, verbose: bool = True
) -> LoadReport:
    """Create a fresh registry database of ``entries`` DocumentEntries; returns what it took."""
    if backend == "sqlite":
        path = sqlite_path(entries, scratch)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    elif backend == "pg":
        url = pg_create(pg_name(entries))
    else:
        raise ValueError(backend)
    engine = make_engine(url)
    upgrade(engine)
    alembic_indexes = index_definitions(engine)
    indexes = secondary_indexes()
    engine.dispose()

    t0 = time.perf_counter()
    writer: SqliteWriter | PgWriter = SqliteWriter(path) if backend == "sqlite" else PgWriter(url, engine)
    gen = Generator(entries, seed=seed)
    counts = dict.fromkeys(TABLES, 0)
    progress = {"entries": 0, "xml": 0}

    def on_chunk(chunk: Chunk) -> None:
        for name, rows in chunk.rows.items():
            counts[name] += len(rows)
        progress["xml"] += sum(len(r[-1]) for r in chunk.rows["document_entry"])
        progress["entries"] += len(chunk.rows["document_entry"])
        if verbose and progress["entries"] % 200_000 == 0:
            print(f"  {backend}: {progress['entries']:,} entries generated, {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr, flush=True)

    try:
        for idx in indexes:
            writer.execute(f'DROP INDEX "{idx.name}"')
        writer.start_load()
        _pipeline(gen.chunks(), writer, on_chunk)
        writer.finish_load()
        t1 = time.perf_counter()
        for idx in indexes:
            writer.execute(str(CreateIndex(idx).compile(dialect=engine.dialect)))
        t2 = time.perf_counter()
        writer.analyze()
        t3 = time.perf_counter()
    finally:
        writer.close()

    engine = make_engine(url)
    after = index_definitions(engine)
    diffs = schema_differences(engine)
    problems = verify(engine, counts)
    engine.dispose()
    if problems:
        raise RuntimeError("loaded registry failed its checks:\n  " + "\n  ".join(problems))
    size = disk_usage(path) if backend == "sqlite" else pg_database_size(pg_name(entries))
    return LoadReport(
        backend=backend, url=url, entries=entries, patients=gen.patients, rows=counts,
        seconds_generate_and_load=t1 - t0, seconds_index=t2 - t1, seconds_analyze=t3 - t2, seconds_total=t3 - t0,
        size_bytes=size, xml_bytes_per_entry=progress["xml"] / max(entries, 1),
        index_definitions_match=after == alembic_indexes, schema_differences=diffs,
    )


def verify(engine: Engine, counts: dict[str, int]) -> list[str]:
    """Row counts, referential integrity, and a sample of stored encodings decoded back."""
    problems: list[str] = []
    with engine.connect() as conn:
        for name, expected in counts.items():
            got = conn.execute(text(f'select count(*) from "{name}"')).scalar_one()
            if got != expected:
                problems.append(f"{name}: {got} rows, expected {expected}")
        for child, key, parent in (
            ("document_entry_code", "entry_id", "document_entry"),
            ("document_entry_author", "entry_id", "document_entry"),
            ("document_entry_reference", "entry_id", "document_entry"),
            ("submission_set_author", "set_id", "submission_set"),
        ):
            orphans = conn.execute(text(
                f'select count(*) from "{child}" c where not exists (select 1 from "{parent}" p where p.id = c.{key})'
            )).scalar_one()
            if orphans:
                problems.append(f"{child}: {orphans} rows without a {parent}")
        sample = random.Random(7).sample(range(1, counts["document_entry"] + 1), k=min(20, counts["document_entry"]))
        d = t.document_entry
        for row in conn.execute(d.select().where(d.c.id.in_(sample))):
            problems += _check_encoding(row)
    return problems


def _check_encoding(row: Any) -> list[str]:
    wrapper = etree.Element(f"{{{NS_RIM}}}RegistryObjectList", nsmap={"rim": NS_RIM})
    wrapper.append(etree.fromstring(row.xml))
    decoded = decode_registry_object_list(wrapper)
    entries = decoded.submission.document_entries
    if len(entries) != 1:
        return [f"entry {row.id}: xml decodes to {len(entries)} DocumentEntries"]
    de = entries[0]
    want = {
        "id": row.entry_uuid, "unique_id": row.unique_id, "patient_id": row.patient_id, "status": row.status,
        "hash": row.hash, "size": str(row.size), "creation_time": row.creation_time, "mime_type": row.mime_type,
        "class": (row.class_code, row.class_scheme), "hcft": (row.hcft_code, row.hcft_scheme),
    }
    got = {
        "id": de.id, "unique_id": de.unique_id, "patient_id": de.patient_id, "status": de.status, "hash": de.hash,
        "size": de.size, "creation_time": de.creation_time, "mime_type": de.mime_type,
        "class": (de.class_code.code, de.class_code.scheme) if de.class_code else None,
        "hcft": (de.healthcare_facility_type_code.code, de.healthcare_facility_type_code.scheme)
        if de.healthcare_facility_type_code else None,
    }
    return [f"entry {row.id}: xml {k}={got[k]!r}, column {want[k]!r}" for k in want if got[k] != want[k]]


def drop(backend: str, entries: int, *, scratch: Path = REGISTRY_SCRATCH) -> None:
    """Remove a database made by :func:`build`."""
    if backend == "sqlite":
        path = sqlite_path(entries, scratch)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        pg_drop(pg_name(entries))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=REGISTRY_SCRATCH, help="where SQLite files go")
    parser.add_argument("--keep", action="store_true", help="keep the databases (default: drop them at the end)")
    parser.add_argument("--json", type=Path, help="write the reports here")
    args = parser.parse_args(argv)
    missing = rd.check_codes_in_affinity_domain()
    if missing:
        print(f"warning: codes not in the affinity domain: {missing}", file=sys.stderr)
    backends = ["sqlite", "pg"] if args.db == "both" else [args.db]
    reports = []
    try:
        for backend in backends:
            for n in args.entries:
                report = build(backend, n, seed=args.seed, scratch=args.scratch)
                reports.append(report)
                print(report.summary(), flush=True)
                if not args.keep:
                    drop(backend, n, scratch=args.scratch)
    finally:
        if not args.keep:
            for backend in backends:
                for n in args.entries:
                    drop(backend, n, scratch=args.scratch)
    if args.json:
        write_json(args.json, {"machine": machine(), "reports": [asdict(r) for r in reports]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
