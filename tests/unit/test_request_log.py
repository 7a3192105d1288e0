"""The self-heal log line: one JSON object per request, whatever the error text holds."""

import io
import json

from selfheal.api.request_log import RequestLog


def logged_fields(**fields) -> dict:
    stream = io.StringIO()
    log = RequestLog(stream)
    log.self_heal(**fields)
    log.flush()
    line = stream.getvalue()
    assert line.count("\n") == 1 and " INFO selfheal.api self-heal {" in line
    return json.loads(line[line.index("{"):])


def test_the_line_is_json_even_with_quotes_newlines_and_unicode_in_the_error():
    error = 'bad "currency"\nnext line \\ tab\t é ⚡ \x01'
    fields = logged_fields(developer='dev "x"', sdk="node", error=error, patch="p-1", version="1.2.0",
                           matched_by="code", recorded=True, latency_ms=0.123456)
    assert fields == {"developer": 'dev "x"', "sdk": "node", "error": error, "patch": "p-1", "version": "1.2.0",
                      "matched_by": "code", "recorded": True, "latency_ms": 0.123}


def test_a_miss_has_null_patch_and_version_and_the_error_is_cut_at_200_characters():
    fields = logged_fields(developer="d", sdk="python", error="x" * 500, patch=None, version=None,
                           matched_by="miss", recorded=False, latency_ms=1)
    assert (fields["patch"], fields["version"], fields["recorded"], len(fields["error"])) == (None, None, False, 200)


def test_a_stalled_sink_drops_lines_beyond_the_bound_and_says_how_many():
    stream = io.StringIO()
    log = RequestLog(stream, max_pending=2)
    for _ in range(5):
        log.self_heal(developer="d", sdk="node", error="e", patch=None, version=None, matched_by="miss",
                      recorded=True, latency_ms=1)
    log.flush()
    assert stream.getvalue().count("self-heal {") == 2 and "3 self-heal log lines dropped" in stream.getvalue()
