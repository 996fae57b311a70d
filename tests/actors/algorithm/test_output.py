import json
from decimal import Decimal

from actors.algorithm.output import format_human, format_json
from transport.protocol import Decision

PLAIN = Decision(1764088783.968, 1, "B001", "default", tuple(Decimal(p) for p in ("18.02", "17.98", "17.99", "17.94",
                                                                                "17.95")),
                 Decimal("17.976"), 1795624778487461, False, Decimal("16.18"))
HUMAN = ("2025-11-25T16:39:43.968Z tick=1 book=B001 strategy=default avg_comp_price=17.976 sold=no price=16.18 "
         "request_id=1795624778487461 prices=[18.02 17.98 17.99 17.94 17.95]")
JSON = ('{"ts":"2025-11-25T16:39:43.968Z","tick":1,"book":"B001","strategy":"default","prices":["18.02","17.98",'
        '"17.99","17.94","17.95"],"avg_comp_price":"17.976","request_id":1795624778487461,"sold":false,'
        '"price":"16.18"}')


def test_without_guardrails_the_output_is_unchanged() -> None:
    assert format_human(PLAIN) == HUMAN
    assert format_json(PLAIN) == JSON


def test_with_guardrails_json_always_says_rule_price_and_guardrail() -> None:
    unmoved = Decision(**{**{f: getattr(PLAIN, f) for f in PLAIN.__dataclass_fields__}, "rule_price": Decimal("16.18")})
    assert json.loads(format_json(unmoved)) == {**json.loads(JSON), "rule_price": "16.18", "guardrail": None}
    assert format_human(unmoved) == HUMAN  # the human line adds them only when a guardrail moved the price
    moved = Decision(**{**{f: getattr(PLAIN, f) for f in PLAIN.__dataclass_fields__}, "price": Decimal("20.00"),
                        "rule_price": Decimal("16.18"), "guardrail": ("step", "floor")})
    record = json.loads(format_json(moved))
    assert record["price"] == "20.00" and record["rule_price"] == "16.18" and record["guardrail"] == ["step", "floor"]
    assert format_human(moved) == HUMAN.replace("price=16.18", "price=20.00") + " rule_price=16.18 guardrail=step,floor"
