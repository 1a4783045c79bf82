"""Conditions: JSON paths into [BODY], regular expressions, text placeholders, and the
evidence each check keeps."""

import pytest

from policies.conditions import Condition, Noted

BODY = '{"status": "degraded", "count": 5, "ratio": 0.25, "up": true, "none": null, ' \
       '"data": {"items": [{"id": 7, "name": "a-b"}, {"id": 8}]}}'


@pytest.mark.parametrize("source,values,ok,text", [
    ("[BODY].status == ok", {"BODY": BODY}, False, "[BODY].status == ok -> got degraded"),
    ("[BODY].status == degraded", {"BODY": BODY}, True, "[BODY].status == degraded -> got degraded"),
    ("[BODY].status != ok", {"BODY": BODY}, True, "[BODY].status != ok -> got degraded"),
    ("[BODY].data.items[0].id == 7", {"BODY": BODY}, True, "[BODY].data.items[0].id == 7 -> got 7"),
    ("[BODY].data.items[1].id > 7", {"BODY": BODY}, True, "[BODY].data.items[1].id > 7 -> got 8"),
    ("[BODY].count > 3", {"BODY": BODY}, True, "[BODY].count > 3 -> got 5"),
    ("[BODY].count > 30", {"BODY": BODY}, False, "[BODY].count > 30 -> got 5"),
    ("[BODY].ratio <= 0.25", {"BODY": BODY}, True, "[BODY].ratio <= 0.25 -> got 0.25"),
    ("[BODY].up == true", {"BODY": BODY}, True, "[BODY].up == true -> got true"),
    ("[BODY].none == null", {"BODY": BODY}, True, "[BODY].none == null -> got null"),
    ("[BODY].data.items[0] contains a-b", {"BODY": BODY}, True,
     '[BODY].data.items[0] contains a-b -> got {"id": 7, "name": "a-b"}'),
    ("[BODY][1] == 2", {"BODY": "[1, 2]"}, True, "[BODY][1] == 2 -> got 2"),
    # a missing path or a body that is not JSON fails the check, saying why
    ("[BODY].data.items[5].id == 7", {"BODY": BODY}, False,
     "[BODY].data.items[5].id == 7 -> got no value at data.items[5]"),
    ("[BODY].data.things[0] == 1", {"BODY": BODY}, False, "[BODY].data.things[0] == 1 -> got no value at data.things"),
    ("[BODY].status.code == 1", {"BODY": BODY}, False, "[BODY].status.code == 1 -> got no value at status.code"),
    ("[BODY].data[0] == 1", {"BODY": BODY}, False, "[BODY].data[0] == 1 -> got no value at data[0]"),
    ("[BODY].status == ok", {"BODY": "<html>down</html>"}, False,
     "[BODY].status == ok -> got invalid JSON: Expecting value at line 1 column 1"),
    ("[BODY].status == ok", {"BODY": '{"status": "ok"'}, False,
     "[BODY].status == ok -> got invalid JSON: Expecting ',' delimiter at line 1 column 16"),
    ("[BODY].status == ok", {"BODY": ""}, False,
     "[BODY].status == ok -> got invalid JSON: Expecting value at line 1 column 1"),
    ("[BODY].status == ok", {}, False, "[BODY].status == ok -> got nothing (not measured)"),
    # regular expressions search the text
    ("[BODY] matches ^up( and ready)?$", {"BODY": "up and ready"}, True,
     "[BODY] matches ^up( and ready)?$ -> got up and ready"),
    ("[BODY] matches ^up$", {"BODY": "upstream"}, False, "[BODY] matches ^up$ -> got upstream"),
    ("[BODY] not-matches (?i)error", {"BODY": "ERROR 42"}, False, "[BODY] not-matches (?i)error -> got ERROR 42"),
    ("[BODY] not-matches error", {"BODY": "all fine"}, True, "[BODY] not-matches error -> got all fine"),
    ("[BODY].data.items[0].name matches ^a-", {"BODY": BODY}, True, "[BODY].data.items[0].name matches ^a- -> got a-b"),
    ("[STATUS] matches ^2..$", {"STATUS": 204}, True, "[STATUS] matches ^2..$ -> got 204"),
])
def test_http_conditions(source, values, ok, text):
    result = Condition.parse(source, "http").evaluate(values)
    assert (result.ok, result.text) == (ok, text)


@pytest.mark.parametrize("source,kind,values,ok,text", [
    ("[DNS_RCODE] == NXDOMAIN", "dns", {"DNS_RCODE": "NXDOMAIN"}, True, "[DNS_RCODE] == NXDOMAIN -> got NXDOMAIN"),
    ("[DNS_RCODE] == NOERROR", "dns", {"DNS_RCODE": "SERVFAIL"}, False, "[DNS_RCODE] == NOERROR -> got SERVFAIL"),
    ("[CHAIN_VALID] == true", "tls", {"CHAIN_VALID": Noted(False, "self-signed certificate")}, False,
     "[CHAIN_VALID] == true -> got false (self-signed certificate)"),
    ("[CHAIN_VALID] == false", "tls", {"CHAIN_VALID": Noted(False, "certificate has expired")}, True,
     "[CHAIN_VALID] == false -> got false (certificate has expired)"),
    ("[CERTIFICATE_EXPIRATION] > 7", "tls", {"CERTIFICATE_EXPIRATION": -10.0}, False,
     "[CERTIFICATE_EXPIRATION] > 7 -> got -10.0"),
    ("[BODY] contains +PONG", "tcp", {"BODY": "+PONG\r\n"}, True, "[BODY] contains +PONG -> got +PONG\r\n"),
])
def test_other_kinds(source, kind, values, ok, text):
    result = Condition.parse(source, kind).evaluate(values)
    assert (result.ok, result.text) == (ok, text)


@pytest.mark.parametrize("source,kind,problem", [
    ("[BODY] matches ([a-z]", "http",
     "[BODY] matches needs a regular expression, '([a-z]' is not: missing ), unterminated subpattern at position 0"),
    ("[BODY] not-matches *", "http", "[BODY] not-matches needs a regular expression, '*' is not: nothing to repeat"),
    ("[STATUS].code == 200", "http", "[STATUS].code: a JSON path only applies to [BODY]"),
    ("[BODY].a..b == 1", "http", "cannot parse condition '[BODY].a..b == 1'"),
    ("[BODY].items[x] == 1", "http", "cannot parse condition '[BODY].items[x] == 1'"),
    ("[BODY] resembles ok", "http",
     "with OP one of ==, !=, <=, >=, <, >, contains, not-contains, matches, not-matches"),
    ("[RECORD_COUNT] == many", "dns", "[RECORD_COUNT] == needs a number, got 'many'"),
    ("[DNS_RCODE] == NXDOMAIN", "http", "unknown placeholder [DNS_RCODE] for a http probe"),
])
def test_bad_conditions_are_refused_at_parse_time(source, kind, problem):
    with pytest.raises(ValueError) as caught:
        Condition.parse(source, kind)
    assert problem in str(caught.value)


def test_a_path_is_parsed_once_into_keys_and_indexes():
    condition = Condition.parse("[BODY].data.items[0].id == 7", "http")
    assert condition.path == ("data", "items", 0, "id")
    assert (condition.name, condition.op, condition.expected) == ("BODY", "==", "7")
