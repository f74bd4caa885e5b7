"""Hostile SPARQL on every backend: updates, SERVICE, cross products, injection strings."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from graphbrain.kg import Iri, KnowledgeGraph, concept_iri
from graphbrain.kg.backends.guard import (
    SparqlBindingError,
    SparqlError,
    SparqlRowLimitError,
    SparqlServiceError,
    SparqlSyntaxError,
    SparqlTimeoutError,
    SparqlUpdateError,
    check_query,
)

BACKENDS = ["memory", "oxigraph", "rdflib"]
SKOS = "PREFIX skos: <http://www.w3.org/2004/02/skos/core#> "
LABEL_Q = SKOS + "SELECT ?c ?l WHERE { ?c skos:prefLabel ?l }"
SIX = (
    "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o . "
    "?p ?q ?r }"
)
INJECTIONS = [
    'x" } ; DROP ALL ; #',
    "l } ; DROP ALL ; #",
    "?s ?p ?o",
    'epilepsy" || true || "',
    "} UNION { ?c ?p ?q }",
    "\x00",
    "tab\there\nnewline",
    "\\u0022) } DROP ALL #",
    "épilepsie 癫痫 🧠",
]
UPDATES = [
    "DROP ALL",
    "drop all",
    "# a comment first\nDROP SILENT DEFAULT",
    "CLEAR DEFAULT",
    "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
    "DELETE WHERE { ?s ?p ?o }",
    "DELETE { ?s ?p ?o } INSERT { ?s ?p 1 } WHERE { ?s ?p ?o }",
    "WITH <urn:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    "LOAD <http://127.0.0.1:9/data.ttl>",
    "CREATE GRAPH <urn:g>",
    "ADD DEFAULT TO <urn:g>",
    "MOVE DEFAULT TO <urn:g>",
    "COPY DEFAULT TO <urn:g>",
    "SELECT * WHERE { ?s ?p ?o } ; DROP ALL",
    "\\u0044ROP ALL",
]


@pytest.fixture(scope="module")
def kgs():
    from graphbrain.kg.model import DISEASE, SIGN_OR_SYMPTOM, Concept, Relation

    concepts = [
        Concept("D:1", "epilepsy", ("seizure disorder",), (DISEASE,), ("UMLS:C0014544",)),
        Concept("D:2", "migraine", (), (DISEASE,)),
        Concept("S:1", "seizure", (), (SIGN_OR_SYMPTOM,)),
        Concept("S:2", "headache", (), (SIGN_OR_SYMPTOM,)),
    ]
    relations = [
        Relation("D:1", "has_symptom", "S:1", "DO"),
        Relation("D:2", "has_symptom", "S:2", "DO"),
        Relation("D:1", "is_a", "D:2", ""),
    ]
    base = KnowledgeGraph.from_records(concepts, relations)
    return {b: base.with_backend(b) for b in BACKENDS}


class Listener:
    """A TCP server on 127.0.0.1 that records connections and bytes and never answers."""

    def __init__(self, lifetime: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sparql"

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.settimeout(0.2)
            self._conns.append(conn)
            try:
                self.received += conn.recv(65536)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture()
def listener():
    lst = Listener()
    yield lst
    lst.close()


def _content(kg):
    return kg.concepts(), kg.relations()


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_forms_are_refused_with_a_specific_error(kgs, backend):
    kg = kgs[backend]
    before = _content(kg)
    for q in UPDATES:
        with pytest.raises(SparqlUpdateError, match="read-only"):
            kg.sparql(q)
    assert _content(kg) == before
    assert len(kg.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }")) > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_service_is_refused_and_nothing_reaches_the_listener(kgs, backend, listener):
    kg = kgs[backend]
    url = listener.url
    variants = [
        f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"select * where {{ service silent <{url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ ?c ?p ?o . SeRvIcE<{url}>{{ ?c ?q ?r }} }}",
        f"SELECT * WHERE {{ \\u0053ERVICE <{url}> {{ ?s ?p ?o }} }}",
        f'SELECT * WHERE {{ BIND("\\u0022" AS ?x) SERVICE <{url}> {{ ?s ?p ?o }} }}',
        f"SELECT * WHERE {{ # comment\n SERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"ASK {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
        f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
    ]
    for q in variants:
        with pytest.raises(SparqlServiceError, match="allow_service=True"):
            kg.sparql(q)
    with pytest.raises(SparqlServiceError):
        kg.sparql("SELECT ?s WHERE { SERVICE ?ep { ?s ?p ?o } }", {"ep": Iri(url)})
    time.sleep(0.3)
    assert listener.connections == 0 and listener.received == b""


@pytest.mark.parametrize("backend", BACKENDS)
def test_opted_in_service_to_a_silent_endpoint_is_stopped_by_the_timeout(kgs, backend, listener):
    # The listener accepts and never answers: without a time limit the call would hang.
    kg = kgs[backend]
    t = time.monotonic()
    with pytest.raises(SparqlTimeoutError, match="stopped"):
        kg.sparql(f"SELECT * WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}",
                  allow_service=True, timeout=1.0)
    # 1 s limit; the rest is process start and clean-up on a loaded 2-core machine
    assert time.monotonic() - t < 6.0
    assert listener.connections >= 1  # the opt-in really reached the endpoint


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_products_end_with_a_clear_error(kgs, backend):
    import psutil

    kg = kgs[backend]
    # children that earlier tests left (joblib / multiprocessing helpers) are not ours
    before = {p.pid for p in psutil.Process().children()}
    n_triples = len(kg.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }"))
    # n^2 rows > max_rows: the row limit stops it
    with pytest.raises(SparqlRowLimitError, match="more than 500 rows"):
        kg.sparql("SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }", max_rows=500)
    assert n_triples**2 > 500
    # an aggregate over n^6 combinations (> 10^9) yields no row before it ends: the timeout stops it
    assert n_triples**6 > 10**9
    t = time.monotonic()
    with pytest.raises(SparqlTimeoutError, match="longer than 0.5 s"):
        kg.sparql(
            SIX, timeout=0.5
        )
    assert time.monotonic() - t < 20.0  # stopped near 0.5 s; generous for a loaded CI machine
    if backend == "rdflib":
        with pytest.raises(SparqlTimeoutError, match="oxigraph backend"):
            kg.sparql(SIX, timeout=0.3)
    # the worker was killed, not left running
    left = [p for p in psutil.Process().children() if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_injection_strings_as_values_are_inert(kgs, backend):
    kg = kgs[backend]
    before = _content(kg)
    for s in INJECTIONS:  # each query is a forked worker: keep the count modest
        assert kg.sparql(LABEL_Q, {"l": s}) == []
    for s in INJECTIONS[:3]:
        assert kg.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", {"s": Iri(concept_iri(s))}) == []
        assert kg.sparql(SKOS + "ASK { ?c skos:prefLabel ?l }", {"l": s}) is False
    assert _content(kg) == before
    assert kg.sparql(LABEL_Q, {"l": "epilepsy"}) == [{"c": concept_iri("D:1"), "l": "epilepsy"}]


def test_invalid_binding_names_are_refused_identically(kgs):
    messages = {}
    for backend in BACKENDS:
        kg = kgs[backend]
        msgs = []
        for name in INJECTIONS + ["?l", "", "zz", "p"]:
            with pytest.raises(SparqlBindingError) as info:
                kg.sparql(LABEL_Q, {name: "epilepsy"})
            msgs.append(str(info.value))
        # "p" is a variable of the SELECT * query below, but not of LABEL_Q
        assert kg.sparql("SELECT * WHERE { ?c ?p ?l }", {"l": "epilepsy"})
        with pytest.raises(SparqlBindingError, match="not returned by the SELECT"):
            kg.sparql(SKOS + "SELECT ?c WHERE { ?c skos:prefLabel ?l }", {"l": "epilepsy"})
        with pytest.raises(SparqlBindingError, match="cannot bind"):
            kg.sparql(LABEL_Q, {"l": ["epilepsy"]})
        messages[backend] = msgs
    assert messages["memory"] == messages["oxigraph"] == messages["rdflib"]
    assert "l } ; DROP ALL ; #" in messages["rdflib"][1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_syntax_errors_and_limits(kgs, backend):
    kg = kgs[backend]
    for q in ["SELECT WHERE {", "SELECT ?s WHERE { ?s ?p }", "hello"]:
        with pytest.raises(SparqlSyntaxError):
            kg.sparql(q)
    with pytest.raises(ValueError, match="timeout"):
        kg.sparql("ASK { ?s ?p ?o }", timeout=0)
    with pytest.raises(ValueError, match="max_rows"):
        kg.sparql("ASK { ?s ?p ?o }", max_rows=0)
    rows = kg.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }")
    assert len(kg.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", max_rows=len(rows))) == len(rows)
    with pytest.raises(SparqlRowLimitError):
        kg.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", max_rows=len(rows) - 1)
    triples = kg.sparql("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
    assert len(triples) == len(rows) and isinstance(triples[0], tuple)


def test_thread_isolation_also_bounds_time(kgs):
    kg = kgs["oxigraph"]
    with pytest.raises(SparqlRowLimitError):
        kg.backend.sparql("SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }", max_rows=100, isolation="thread")
    t = time.monotonic()
    with pytest.raises(SparqlTimeoutError):
        kg.backend.sparql("SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }", max_rows=10**9,
                          timeout=0.3, isolation="thread")
    assert time.monotonic() - t < 3.0


def test_lexer_is_not_fooled_by_strings_iris_and_comments():
    q = 'SELECT ?x WHERE { ?x <http://a.org/SERVICE#DROP> "SERVICE; DROP ALL" } # DROP ALL'
    assert check_query(q).form == "SELECT"
    # variables named like keywords are variables
    info = check_query("SELECT ?x ?drop WHERE { ?x ?service ?drop }", {"drop": 1})
    assert info.projected == {"x", "drop"} and info.variables == {"x", "service", "drop"}
    with pytest.raises(SparqlError):
        check_query("SELECT ?x WHERE { ?x ?service ?drop }", {"drop": 1})


def test_cli_refusals_are_one_line_with_status_2(capsys, tmp_path, kgs, listener):
    from graphbrain.kg.cli import main

    path = str(kgs["memory"].save(tmp_path / "k.json.gz"))
    cases = [
        (["DROP ALL"], "read-only"),
        ([f"SELECT * WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}"], "allow-service"),
        ([LABEL_Q, "--bind", "l } ; DROP ALL ; #=x"], "binding name"),
        (["SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }", "--max-rows", "10"], "more than 10 rows"),
        ([SIX,
          "--timeout", "0.5"], "stopped"),
        (["SELECT WHERE {"], "invalid SPARQL"),
    ]
    for argv, needle in cases:
        rc = main(["sparql", *argv, "--kg", path])
        err = capsys.readouterr().err
        assert rc == 2, argv
        assert needle in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert listener.connections == 0


def test_refusals_come_before_the_sparql_mirror_is_built(capsys, kgs):
    from graphbrain.kg.cli import main

    kg = KnowledgeGraph.from_records(kgs["memory"].concepts(), kgs["memory"].relations())
    with pytest.raises(SparqlUpdateError):
        kg.sparql("DROP ALL")
    with pytest.raises(SparqlBindingError):
        kg.sparql(LABEL_Q, {"l } ; DROP ALL ; #": "x"})
    assert kg._sparql_mirror is None
    # on the shipped default graph too: the refusal is immediate, one line, status 2
    t = time.monotonic()
    assert main(["sparql", "DROP ALL"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read-only" in err
    assert time.monotonic() - t < 10.0  # no Oxigraph mirror of the default graph (10-30 s here)
