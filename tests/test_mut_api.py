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


# -- POST /halt-idle body: the kernels the user confirmed in the dialog ---------------------


def test_halt_body_values():
    body = json.dumps({"kernel_ids": [KID, "abcd"], "spare": ["a" * 64]})
    assert api.parse_halt_body(body) == ([KID, "abcd"], ["a" * 64])
    assert api.parse_halt_body('{"kernel_ids": []}') == ([], [])
    assert api.parse_halt_body('{"kernel_ids": ["abcd"], "spare": null}') == (["abcd"], [])
    many = [f"k{i:04d}" for i in range(260)]
    assert api.parse_halt_body(json.dumps({"kernel_ids": many}))[0] == many[:200]
    assert api.parse_halt_body(json.dumps({"kernel_ids": [], "spare": many}))[1] == many[:200]


@pytest.mark.parametrize(
    "raw, line",
    [
        (None, 'the body must be JSON: {"kernel_ids": [...]}'),
        ("", 'the body must be JSON: {"kernel_ids": [...]}'),
        ("{not json", 'the body must be JSON: {"kernel_ids": [...]}'),
        ("[1, 2]", "the body must be a JSON object with kernel_ids"),
        ('"text"', "the body must be a JSON object with kernel_ids"),
        ("{}", "the body must be a JSON object with kernel_ids"),
        ('{"spare": ["abcd"]}', "the body must be a JSON object with kernel_ids"),
        ('{"kernel_ids": "abcd"}', "kernel_ids must be a list of kernel ids"),
        ('{"kernel_ids": null}', "kernel_ids must be a list of kernel ids"),
        ('{"kernel_ids": [1234]}', "kernel_ids must be a list of kernel ids"),
        ('{"kernel_ids": ["abc"]}', "kernel_ids must be a list of kernel ids"),
        ('{"kernel_ids": ["' + "a" * 65 + '"]}', "kernel_ids must be a list of kernel ids"),
        ('{"kernel_ids": ["ab/cd"]}', "kernel_ids must be a list of kernel ids"),
        ('{"kernel_ids": ["abcd", "ab cd"]}', "kernel_ids must be a list of kernel ids"),
        ('{"kernel_ids": [], "spare": "abcd"}', "spare must be a list of kernel ids"),
        ('{"kernel_ids": [], "spare": ["abc"]}', "spare must be a list of kernel ids"),
    ],
)
def test_halt_body_bad_input_is_one_line(raw, line):
    with pytest.raises(api.BadRequest) as e:
        api.parse_halt_body(raw)
    assert str(e.value) == line


# -- notebook paths as the page names them ------------------------------------------------


class _Server:
    def __init__(self, root):
        self.root_dir = str(root)


def test_notebooks_relative_to_the_servers_root(tmp_path):
    (tmp_path / "sub").mkdir()
    server = _Server(tmp_path)
    assert api.relative_notebook(server, str(tmp_path / "sub" / "a.ipynb")) == "sub/a.ipynb"
    assert api.relative_notebook(server, str(tmp_path / "a.ipynb")) == "a.ipynb"
    # outside the root, the root itself, and nothing: as given
    assert api.relative_notebook(server, "/elsewhere/b.ipynb") == "/elsewhere/b.ipynb"
    assert api.relative_notebook(server, str(tmp_path)) == str(tmp_path)
    assert api.relative_notebook(_Server(str(tmp_path) + "x"), str(tmp_path / "a.ipynb")) == str(
        tmp_path / "a.ipynb"
    )
    assert api.relative_notebook(server, None) is None
    assert api.relative_notebook(server, "") == ""


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
