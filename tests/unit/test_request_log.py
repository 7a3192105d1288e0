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
    return json.loads(line[line.index("{") :])


def test_the_line_is_json_even_with_quotes_newlines_and_unicode_in_the_error():
    error = 'bad "currency"\nnext line \\ tab\t é ⚡ \x01'
    fields = logged_fields(
        developer='dev "x"',
        sdk="node",
        error=error,
        patch="p-1",
        version="1.2.0",
        matched_by="code",
        recorded=True,
        latency_ms=0.123456,
    )
    assert fields == {
        "developer": 'dev "x"',
        "sdk": "node",
        "error": error,
        "patch": "p-1",
        "version": "1.2.0",
        "matched_by": "code",
        "recorded": True,
        "latency_ms": 0.123,
    }


def test_a_miss_has_null_patch_and_version_and_the_error_is_cut_at_200_characters():
    fields = logged_fields(
        developer="d",
        sdk="python",
        error="x" * 500,
        patch=None,
        version=None,
        matched_by="miss",
        recorded=False,
        latency_ms=1,
    )
    assert (fields["patch"], fields["version"], fields["recorded"], len(fields["error"])) == (None, None, False, 200)


def test_a_stalled_sink_drops_lines_beyond_the_bound_and_says_how_many():
    stream = io.StringIO()
    log = RequestLog(stream, max_pending_bytes=600)  # two lines of 254 bytes
    for _ in range(5):
        log.self_heal(
            developer="d",
            sdk="node",
            error="e",
            patch=None,
            version=None,
            matched_by="miss",
            recorded=True,
            latency_ms=1,
        )
    log.flush()
    assert stream.getvalue().count("self-heal {") == 2 and "3 self-heal log lines dropped" in stream.getvalue()


def test_json_lines_are_pure_json_in_utc_and_keep_the_word_self_heal():
    import datetime
    import io
    import json

    from selfheal.api.request_log import RequestLog

    stream = io.StringIO()
    log = RequestLog(stream, json_lines=True, max_pending_bytes=300)  # one line
    log.self_heal("dev-1", "node", 'bad "quote"\n', "p1", "1.0.0", "exact", recorded=True, latency_ms=2.5)
    log.self_heal("dev-2", "node", "dropped", None, None, "none", recorded=False, latency_ms=1)
    log.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all("self-heal" in line for line in lines)  # the runbook greps it
    request, dropped = (json.loads(line) for line in lines)
    assert request["message"] == "self-heal" and request["error"] == 'bad "quote"\n'
    assert (request["developer"], request["patch"], request["recorded"], request["latency_ms"]) == (
        "dev-1",
        "p1",
        True,
        2.5,
    )
    stamp = datetime.datetime.fromisoformat(request["timestamp"])
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert (dropped["severity"], dropped["dropped"]) == ("warn", 1)
