"""The kernel-wizard API's pure parts, in-process: query and body parsing (bad input is
one line, HTTP 400), the halt command line, the answers built from the wizard's JSON."""

import json

import pytest

from wizard.server import api

NOW = 1_700_000_000.0
KID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"


# -- GET /deaths query --------------------------------------------------------------------


def test_deaths_query_defaults():
    assert api.parse_deaths_query({}, NOW) == {
        "kernel_id": None,
        "since": NOW - api.DEFAULT_SINCE,
        "limit": 50,
    }
    empty = {"kernel_id": "", "since": "", "limit": ""}
    assert api.parse_deaths_query(empty, NOW) == api.parse_deaths_query({}, NOW)


def test_deaths_query_values():
    q = api.parse_deaths_query({"kernel_id": KID, "since": "12.5", "limit": "7"}, NOW)
    assert q == {"kernel_id": KID, "since": 12.5, "limit": 7}
    assert api.parse_deaths_query({"limit": "0"}, NOW)["limit"] == 0
    assert api.parse_deaths_query({"limit": "3.0"}, NOW)["limit"] == 3
    assert api.parse_deaths_query({"limit": str(api.MAX_LIMIT)}, NOW)["limit"] == api.MAX_LIMIT
    assert api.parse_deaths_query({"limit": "100000"}, NOW)["limit"] == api.MAX_LIMIT
    assert api.parse_deaths_query({"kernel_id": "a" * 64}, NOW)["kernel_id"] == "a" * 64
    assert api.parse_deaths_query({"since": "-5"}, NOW)["since"] == -5.0


@pytest.mark.parametrize(
    "args, line",
    [
        ({"kernel_id": "a" * 65}, "kernel_id must be a kernel id (letters, digits and '-')"),
        ({"kernel_id": "../etc"}, "kernel_id must be a kernel id (letters, digits and '-')"),
        ({"kernel_id": "a_b"}, "kernel_id must be a kernel id (letters, digits and '-')"),
        ({"since": "yesterday"}, "since must be a number, not 'yesterday'"),
        ({"since": "x" * 50}, "since must be a number, not " + repr("x" * 40)),
        ({"since": "nan"}, "since must be a finite number"),
        ({"since": "inf"}, "since must be a finite number"),
        ({"since": "-inf"}, "since must be a finite number"),
        ({"limit": "-1"}, "limit must be a whole number, 0 or more"),
        ({"limit": "2.5"}, "limit must be a whole number, 0 or more"),
        ({"limit": "ten"}, "limit must be a number, not 'ten'"),
    ],
)
def test_deaths_query_bad_input_is_one_line(args, line):
    with pytest.raises(api.BadRequest) as e:
        api.parse_deaths_query(args, NOW)
    assert str(e.value) == line


def test_float_arg_reads_any_float_spelling():
    assert api._float_arg("1e3", "x") == 1000.0
    assert api._float_arg(" 2 ", "x") == 2.0


# -- POST /halt-idle body -------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "  \n"])
def test_halt_body_empty_means_idle_zero_spare_none(raw):
    assert api.parse_halt_body(raw) == (0.0, [])


def test_halt_body_values():
    body = json.dumps({"idle_seconds": 90, "spare": [KID, "abcd"]})
    idle, spare = api.parse_halt_body(body)
    assert (idle, spare) == (90.0, [KID, "abcd"]) and isinstance(idle, float)
    assert api.parse_halt_body("{}") == (0.0, [])
    assert api.parse_halt_body('{"spare": null}') == (0.0, [])
    assert api.parse_halt_body('{"idle_seconds": 0.5}') == (0.5, [])
    many = [f"k{i:04d}" for i in range(60)]
    assert api.parse_halt_body(json.dumps({"spare": many}))[1] == many[:50]
    assert api.parse_halt_body(json.dumps({"spare": ["a" * 64]}))[1] == ["a" * 64]


@pytest.mark.parametrize(
    "raw, line",
    [
        ("{not json", "the body must be JSON"),
        ("[1, 2]", "the body must be a JSON object"),
        ('"text"', "the body must be a JSON object"),
        ('{"idle_seconds": true}', "idle_seconds must be a number of seconds, 0 or more"),
        ('{"idle_seconds": "60"}', "idle_seconds must be a number of seconds, 0 or more"),
        ('{"idle_seconds": -1}', "idle_seconds must be a number of seconds, 0 or more"),
        ('{"idle_seconds": 1e9}', "idle_seconds must be a number of seconds, 0 or more"),
        ('{"idle_seconds": null}', "idle_seconds must be a number of seconds, 0 or more"),
        ('{"spare": "abcd"}', "spare must be a list of kernel ids"),
        ('{"spare": [1234]}', "spare must be a list of kernel ids"),
        ('{"spare": ["abc"]}', "spare must be a list of kernel ids"),
        ('{"spare": ["' + "a" * 65 + '"]}', "spare must be a list of kernel ids"),
        ('{"spare": ["ab/cd"]}', "spare must be a list of kernel ids"),
        ('{"spare": ["abcd", "ab cd"]}', "spare must be a list of kernel ids"),
    ],
)
def test_halt_body_bad_input_is_one_line(raw, line):
    with pytest.raises(api.BadRequest) as e:
        api.parse_halt_body(raw)
    assert str(e.value) == line


def test_halt_body_largest_idle_accepted():
    assert api.parse_halt_body('{"idle_seconds": 999999999}') == (999999999.0, [])


def test_halt_argv():
    assert api.halt_argv(0.0, []) == ["halt", "--idle", "0s", "--yes", "--json"]
    assert api.halt_argv(90.7, ["k1", "k2"]) == [
        "halt",
        "--idle",
        "90s",
        "--yes",
        "--json",
        "--all-except",
        "k1",
        "--all-except",
        "k2",
    ]


# -- answers --------------------------------------------------------------------------------


def test_halt_answer_from_the_commands_json():
    out = json.dumps(
        {
            "results": [
                {"name": "a.ipynb", "kernel_id": "k1", "halted": True},
                {"notebook": "/n/b.ipynb", "kernel_id": "k2", "halted": False, "error": "gone"},
            ],
            "skipped": [{"name": "c.ipynb", "reason": "busy"}, {"notebook": "/n/d.ipynb"}],
            "freed_bytes": 1234,
            "note": "one note",
        }
    )
    assert api.halt_answer(0, out, "") == {
        "schema": api.SCHEMA,
        "ok": True,
        "halted": [{"notebook": "a.ipynb", "kernel_id": "k1"}],
        "failed": [{"notebook": "/n/b.ipynb", "kernel_id": "k2", "error": "gone"}],
        "spared": [
            {"notebook": "c.ipynb", "reason": "busy"},
            {"notebook": "/n/d.ipynb", "reason": None},
        ],
        "freed_bytes": 1234,
        "note": "one note",
    }
    other = json.dumps(
        {
            "results": [
                {"notebook": "/n/e.ipynb", "kernel_id": "k5", "halted": True},
                {"name": "f.ipynb", "kernel_id": "k6", "halted": False, "error": "no"},
            ]
        }
    )
    got = api.halt_answer(0, other, "")
    assert got["halted"] == [{"notebook": "/n/e.ipynb", "kernel_id": "k5"}]
    assert got["failed"] == [{"notebook": "f.ipynb", "kernel_id": "k6", "error": "no"}]
    assert api.halt_answer(1, json.dumps({}), "")["ok"] is False
    empty = api.halt_answer(0, "{}", "")
    assert empty["halted"] == empty["failed"] == empty["spared"] == []
    assert empty["freed_bytes"] == 0 and empty["note"] is None


def test_halt_answer_without_json_is_the_last_error_line():
    got = api.halt_answer(2, "not json", "first\nlast line\n")
    assert got == {
        "schema": api.SCHEMA,
        "ok": False,
        "error": "last line",
        "halted": [],
        "spared": [],
    }
    assert api.halt_answer(None, "", "  ")["error"] == "no answer"


def test_death_answer_carries_only_what_the_plugin_needs():
    d = {
        "time": NOW,
        "kernel_id": KID,
        "notebook": "/n/a.ipynb",
        "kernel_name": "python3",
        "cause": "signal",
        "signal": "SIGSEGV",
        "exit_code": -11,
        "rss_bytes": 5,
        "limit_bytes": 10,
        "detail": "d",
        "exact": 1,
        "pid": 4242,
        "cgroup": "/secret/path",
    }
    got = api.death_answer(d, "https://docs.example/kw/")
    assert "pid" not in got and "cgroup" not in got
    assert got["exact"] is True and got["notify"] is True
    assert got["kernel_id"] == KID and got["signal"] == "SIGSEGV" and got["rss_bytes"] == 5
    assert got["limit_bytes"] == 10 and got["detail"] == "d" and got["time"] == NOW
    assert got["notebook"] == "/n/a.ipynb" and got["kernel_name"] == "python3"
    assert got["cause"] == "signal" and got["exit_code"] == -11
    assert got["summary"] and got["label"]
    assert got["url"].startswith("https://docs.example/kw/")
    shutdown = api.death_answer({"cause": "shutdown"})
    assert shutdown["notify"] is False and shutdown["exact"] is False
